"""MTCNN (Zhang et al. 2016) as ``facenet-pytorch`` ships it, with its pretrained P-, R- and
O-net weights (trained on real faces; the weights are inside the wheel, nothing is downloaded).

Settings: the library's defaults a user gets from ``MTCNN(keep_all=True, device='cpu')`` --
``min_face_size=20``, stage thresholds ``[0.6, 0.7, 0.7]``, pyramid factor 0.709,
``post_process`` irrelevant (only ``detect`` is called). Every box ``detect`` returns is kept,
scored by its O-net face probability; since the last stage already drops boxes below 0.7, every
score is >= 0.7 and ``default_threshold`` is 0.7. (A lower last-stage threshold -- the
``thresholds`` argument -- gives the PR curve more low-score points; the numbers in
``docs/baselines.md`` use the defaults.)

Install (torch 2.14.1 + torchvision 0.29.1 come from this machine's disk; facenet-pytorch's own
pins are older than this torch, hence ``--no-deps``)::

    pip install torch==2.14.1 torchvision==0.29.1
    pip install --no-deps facenet-pytorch==2.6.0
"""

from __future__ import annotations

import numpy as np

from jaxnets.baselines.detector import MissingPackage, check_image, corners_to_rows

INSTALL = "pip install torch==2.14.1 torchvision==0.29.1 && pip install --no-deps facenet-pytorch==2.6.0"
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)


class MTCNNDetector:
    """``detector(image) -> (N, 5)``; see :mod:`jaxnets.baselines.detector`."""

    name = "mtcnn"
    score = "O-net face probability"

    def __init__(self, min_face_size: int = 20, thresholds=DEFAULT_THRESHOLDS, device: str = "cpu"):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:  # torch, torchvision or facenet-pytorch itself
            raise MissingPackage(f"mtcnn needs facenet-pytorch and torch ({e.name or e} is not installed): "
                                 f"{INSTALL}") from None
        except RuntimeError as e:  # e.g. a torchvision built for another torch: "operator torchvision::nms ..."
            raise MissingPackage(f"mtcnn: facenet-pytorch failed to import ({str(e).splitlines()[0][:100]}): "
                                 f"{INSTALL}") from None
        self.thresholds = tuple(float(t) for t in thresholds)
        self.default_threshold = self.thresholds[-1]
        self.settings = (f"MTCNN(keep_all=True, device={device!r}, min_face_size={min_face_size}, "
                         f"thresholds={list(self.thresholds)}), factor 0.709")
        self._net = MTCNN(keep_all=True, device=device, min_face_size=min_face_size,
                          thresholds=list(self.thresholds))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            boxes, probs = self._net.detect(check_image(image))
        if boxes is None:
            return np.zeros((0, 5))
        return corners_to_rows(np.asarray(boxes, np.float64), np.asarray(probs, np.float64))
