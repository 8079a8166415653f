"""Hits on a handful of hand-labelled photos: did the detector find each face at all?

A face is *hit* when some box the detector itself would report (score >= its
``default_threshold``) overlaps it with IoU >= 0.5, the IoU of the WIDER FACE protocol
(:func:`jaxnets.eval.iou_plus_one`, +1-pixel convention).
"""

from __future__ import annotations

import numpy as np


def face_hits(pred: np.ndarray, faces: np.ndarray, min_score: float = -np.inf,
              iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """pred (N, 5) x, y, w, h, score; faces (K, 4) x, y, w, h.

    Returns (hit (K,) bool, best_iou (K,) float64): per face, whether a box with score >=
    ``min_score`` reaches ``iou_threshold``, and the best IoU any such box reaches (0 if none)."""
    from jaxnets.eval import iou_plus_one

    pred = np.asarray(pred, np.float64).reshape(-1, 5)
    faces = np.asarray(faces, np.float64).reshape(-1, 4)
    kept = pred[pred[:, 4] >= min_score]
    if len(kept) == 0 or len(faces) == 0:
        return np.zeros(len(faces), bool), np.zeros(len(faces))
    best = iou_plus_one(kept[:, :4], faces).max(axis=0)  # (K,)
    return best >= iou_threshold, best
