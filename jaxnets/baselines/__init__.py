"""The face detectors a user would pick instead of ours, run through the WIDER FACE protocol.

* ``mtcnn``: MTCNN from ``facenet-pytorch`` (pretrained P/R/O-nets; optional, needs torch)
  -- :mod:`jaxnets.baselines.mtcnn`
* ``lbp``: scikit-image's LBP frontal-face cascade -- :mod:`jaxnets.baselines.cascades`
* ``haar``: OpenCV's Haar frontal-face cascade -- :mod:`jaxnets.baselines.cascades`

Each is a callable ``(H, W, 3) uint8 RGB -> (N, 5) x, y, w, h, score`` (:mod:`.detector`);
:func:`make_detector` builds one by name and raises :class:`MissingPackage` (its message ends
with the install command) when the library is absent. :func:`run_detector` runs one over a
WIDER split and times it (:mod:`.run`). ``jaxnets baselines`` and ``bench/face_baselines.py``
drive them; ``docs/baselines.md`` has the settings and the measured table.
"""

from __future__ import annotations

import importlib

from jaxnets.baselines.detector import Detector, MissingPackage, check_image, corners_to_rows
from jaxnets.baselines.run import RunStats, load_rgb, restrict_ground_truth, run_detector, split_image_names

DETECTORS = {
    "mtcnn": ("jaxnets.baselines.mtcnn", "MTCNNDetector"),
    "lbp": ("jaxnets.baselines.cascades", "LBPCascadeDetector"),
    "haar": ("jaxnets.baselines.cascades", "HaarCascadeDetector"),
    "facenet": ("jaxnets.baselines.facenet", "FaceNetDetector"),  # ours (a trained run), measured the same way
}


def make_detector(name: str, **settings) -> Detector:
    """The detector ``name`` (a key of :data:`DETECTORS`) with the library defaults documented in
    its module, overridden by ``settings``. MissingPackage when its library is not installed."""
    if name not in DETECTORS:
        raise ValueError(f"detector {name!r}: expected one of {', '.join(DETECTORS)}")
    module, cls = DETECTORS[name]
    return getattr(importlib.import_module(module), cls)(**settings)


__all__ = [
    "DETECTORS",
    "Detector",
    "MissingPackage",
    "RunStats",
    "check_image",
    "corners_to_rows",
    "load_rgb",
    "make_detector",
    "restrict_ground_truth",
    "run_detector",
    "split_image_names",
]
