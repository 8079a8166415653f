"""What every baseline face detector is, and the error for one whose package is absent.

A detector is a callable ``detector(image) -> boxes``:

    image: (H, W, 3) uint8 RGB
    boxes: (N, 5) float64 rows ``x, y, w, h, score`` (pixels, x and y the top-left corner),
           the WIDER FACE prediction-file row (:func:`jaxnets.eval.write_predictions`)

with four attributes: ``name`` (``mtcnn | lbp | haar``), ``settings`` (one line: the
parameters used), ``score`` (what the score column is) and ``default_threshold`` (boxes with a
score at or above it are the ones the library itself returns to a user who calls it with its
defaults; ``-inf`` when every box it returns counts).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class MissingPackage(RuntimeError):
    """A detector's Python package is not installed; the message ends with the install command."""


class Detector(Protocol):
    name: str
    settings: str
    score: str
    default_threshold: float

    def __call__(self, image: np.ndarray) -> np.ndarray:  # (H, W, 3) uint8 -> (N, 5) float64
        ...


def check_image(image) -> np.ndarray:
    """The (H, W, 3) uint8 RGB array a detector takes; ValueError naming the shape otherwise."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"a detector takes an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    return image


def corners_to_rows(corners: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 and (N,) scores -> (N, 5) x, y, w, h, score float64."""
    c = np.asarray(corners, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    return np.column_stack([c[:, 0], c[:, 1], c[:, 2] - c[:, 0], c[:, 3] - c[:, 1], s])
