"""Our detector (section 5, a trained FaceNet run) behind the baselines' detector interface
(:mod:`jaxnets.baselines.detector`), so the yardstick measures it exactly as it measures MTCNN and
the cascades: same images, same timing, same AP code, same real-photo hits.

``FaceNetDetector(workdir, size=None, scales="1", score_threshold=None, nms_iou=None)``: the
run's best checkpoint (:class:`~jaxnets.detection.inference.FaceDetectorRunner`); every call is
one image, batch 1, letterboxed to ``size`` (default: the run's ``eval.image_size``). Boxes come
back down to ``score_threshold`` (default: the run's ``eval.score_threshold``, so the AP is the
one the training run's evaluator reports); ``default_threshold`` (0.5, ``jaxnets detect``'s
default) marks the boxes a user of ``jaxnets detect`` sees, which is what a real-photo hit counts.
"""

from __future__ import annotations

import numpy as np

from jaxnets.baselines.detector import check_image, corners_to_rows


class FaceNetDetector:
    name = "facenet"
    score = "sigmoid (softmax) face probability of the anchor"
    default_threshold = 0.5

    def __init__(self, workdir, size: int | None = None, scales: str = "1", score_threshold: float | None = None,
                 nms_iou: float | None = None):
        from jaxnets.detection.inference import FaceDetectorRunner

        self.runner = FaceDetectorRunner.from_workdir(workdir)
        ev = self.runner.config.eval
        self.size = int(size) if size else self.runner.size
        self.scales = tuple(float(s) for s in str(scales).split(","))
        self.score_threshold = float(ev.score_threshold if score_threshold is None else score_threshold)
        self.nms_iou = float(ev.nms_iou if nms_iou is None else nms_iou)
        self.max_detections = int(ev.max_detections)
        self.settings = (f"run {workdir} (step {self.runner.step}), letterbox {self.size}², scales {self.scales}, "
                         f"score >= {self.score_threshold}, NMS IoU {self.nms_iou}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        d = self.runner.detect(check_image(image), self.size, self.scales, self.score_threshold, self.nms_iou,
                               self.max_detections)
        return corners_to_rows(d.boxes, d.scores)
