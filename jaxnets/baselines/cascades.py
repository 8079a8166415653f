"""The two cascade face detectors a user already has: scikit-image's LBP frontal-face cascade and
OpenCV's Haar frontal-face cascade (Viola & Jones 2001). Neither gives a probability.

* ``lbp``: ``skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())`` and
  ``detect_multi_scale(img, scale_factor=1.2, step_ratio=1, min_size=(20, 20),
  max_size=(H, W))`` with its defaults ``min_neighbor_number=4``,
  ``intersection_score_threshold=0.5`` -- the settings of scikit-image's own face-detection
  example, the window allowed to grow to the whole image. It returns boxes only (no score, no
  cluster size), so every box gets score 1: its PR curve is one point, and the WIDER AP (VOC
  interpolation with sentinels) is precision x recall at that point.
* ``haar``: ``cv2.CascadeClassifier(cv2.data.haarcascades +
  'haarcascade_frontalface_default.xml')`` on the grey, histogram-equalised image (as OpenCV's
  cascade tutorial does), ``detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=3,
  outputRejectLevels=True)`` -- OpenCV's default scale factor and neighbour count, the default
  24 x 24 minimum window. The score is the returned ``levelWeights``: the summed weak-classifier
  responses of the last stage for the strongest window of each group, a margin, not a
  probability. ``outputRejectLevels`` only adds the weights: the boxes are those
  ``detectMultiScale`` returns.

OpenCV 5.0 dropped ``CascadeClassifier`` from ``opencv-python-headless`` and ships no cascade
files; ``opencv-python-headless`` 4.x (4.14.0.94 used here) has both.
"""

from __future__ import annotations

import numpy as np

from jaxnets.baselines.detector import MissingPackage, check_image

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
OPENCV_INSTALL = "pip install 'opencv-python-headless>=4.8,<5'"
SKIMAGE_INSTALL = "pip install 'scikit-image>=0.26'"


class LBPCascadeDetector:
    """``detector(image) -> (N, 5)``, score 1 for every box; see :mod:`jaxnets.baselines.detector`."""

    name = "lbp"
    score = "none (constant 1: the cascade returns no score)"
    default_threshold = -np.inf

    def __init__(self, scale_factor: float = 1.2, step_ratio: float = 1.0, min_size=(20, 20),
                 min_neighbor_number: int = 4, intersection_score_threshold: float = 0.5):
        try:
            import skimage.data
            from skimage.feature import Cascade
        except ImportError:
            raise MissingPackage(f"lbp needs scikit-image: {SKIMAGE_INSTALL}") from None
        self._cascade = Cascade(skimage.data.lbp_frontal_face_cascade_filename())
        self._args = dict(scale_factor=float(scale_factor), step_ratio=float(step_ratio),
                          min_size=tuple(int(v) for v in min_size), min_neighbor_number=int(min_neighbor_number),
                          intersection_score_threshold=float(intersection_score_threshold))
        self.settings = ("skimage Cascade(lbp_frontal_face_cascade).detect_multi_scale("
                         + ", ".join(f"{k}={v}" for k, v in self._args.items()) + ", max_size=(H, W))")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        found = self._cascade.detect_multi_scale(img=image, max_size=image.shape[:2], **self._args)
        rows = [(d["c"], d["r"], d["width"], d["height"], 1.0) for d in found]
        return np.asarray(rows, np.float64).reshape(-1, 5)


class HaarCascadeDetector:
    """``detector(image) -> (N, 5)``, score = levelWeights; see :mod:`jaxnets.baselines.detector`."""

    name = "haar"
    score = "levelWeights of detectMultiScale3 (last-stage margin, not a probability)"
    default_threshold = -np.inf

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 3, equalize: bool = True):
        try:
            import cv2
        except ImportError:
            raise MissingPackage(f"haar needs OpenCV: {OPENCV_INSTALL}") from None
        path = cv2.data.haarcascades + HAAR_CASCADE if hasattr(cv2, "data") else HAAR_CASCADE
        if not hasattr(cv2, "CascadeClassifier"):
            raise MissingPackage(f"haar needs cv2.CascadeClassifier, which OpenCV {cv2.__version__} does not "
                                 f"have (removed in 5.0): {OPENCV_INSTALL}")
        self._cv2, self._classifier = cv2, cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise MissingPackage(f"haar: OpenCV {cv2.__version__} ships no {HAAR_CASCADE} (looked for {path}): "
                                 f"{OPENCV_INSTALL}")
        self.scale_factor, self.min_neighbors, self.equalize = float(scale_factor), int(min_neighbors), bool(equalize)
        self.settings = (f"cv2.CascadeClassifier({HAAR_CASCADE}).detectMultiScale3(gray"
                         f"{', equalizeHist' if equalize else ''}, scaleFactor={self.scale_factor}, "
                         f"minNeighbors={self.min_neighbors}, outputRejectLevels=True)")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        cv2 = self._cv2
        gray = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        boxes, _, weights = self._classifier.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, outputRejectLevels=True)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.column_stack([boxes, np.asarray(weights, np.float64).reshape(-1)])
