"""Anchor assignment (section 5.1.2): each anchor is positive, negative or ignored.

The paper's rule: an anchor whose IoU (eq 55) with some face is ``>= iou_threshold`` (0.55 for
v1.0-v1.8 and v2.2, 0.65 for v1.9+) is positive and regresses onto its best face; "the rest"
are negative. What the paper does not say and this module makes explicit, each a parameter:

* ``neg_threshold``: below it an anchor is negative; between it and ``iou_threshold`` ignored
  (label -1). Default ``None`` = ``iou_threshold``: no ignore band (the paper's text).
* ``match_best``: each face also claims its best anchor when that anchor is not already
  positive, so no face is left without a positive (SSD and Faster R-CNN do this; RetinaNet does
  not). Default ``False``: the paper's text, and what ``jaxnets anchors-report`` counts.
* Faces with WIDER's ``invalid`` flag are never positives; an anchor that is not positive and
  overlaps an invalid face with IoU ``> invalid_iou`` (default 0: any overlap) is ignored, so the
  net is neither taught that such a face is background nor that it is a face (the evaluator
  ignores detections on them too).

Fixed shapes for ``jit``: faces come padded to ``G`` rows with a ``valid`` mask. The ``(A, G)``
IoU matrix is never held whole: anchors are processed ``chunk`` at a time (``lax.map``), so
memory is ``O(chunk * G)`` - 524 256 anchors (v2.4 at 512^2) x 400 faces would be 0.8 GB.
Boxes are continuous x1, y1, x2, y2 pixels (no +1; see :mod:`jaxnets.detection.box_coding`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.detection.box_coding import NO_VARIANCES, encode, iou_matrix

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


class Assignment(NamedTuple):
    """labels (A,) int32: 1 positive, 0 negative, -1 ignore; matched (A,) int32: the face index a
    positive regresses onto (-1 otherwise); targets (A, 4) float32: encoded offsets of the matched
    face (0 for non-positives); max_iou (A,) float32: best IoU with a valid, non-invalid face
    (-1 when the image has none)."""

    labels: jax.Array
    matched: jax.Array
    targets: jax.Array
    max_iou: jax.Array


def _chunk_stats(anchors, gt, usable, invalid, invalid_iou):
    """anchors (C, 4) vs faces (G, 4): per anchor best usable IoU / index / invalid overlap, and per
    face the best IoU / anchor (within the chunk)."""
    iou = iou_matrix(anchors, gt)  # (C, G)
    iou_u = jnp.where(usable[None, :], iou, -1.0)
    hits_invalid = jnp.any(invalid[None, :] & (iou > invalid_iou), axis=1)  # (C,)
    return (jnp.max(iou_u, axis=1), jnp.argmax(iou_u, axis=1).astype(jnp.int32), hits_invalid,
            jnp.max(iou_u, axis=0), jnp.argmax(iou_u, axis=0).astype(jnp.int32))


def _anchor_stats(anchors, gt, usable, invalid, invalid_iou, chunk):
    """_chunk_stats over all A anchors, ``chunk`` at a time; per-face results reduced over chunks."""
    a = anchors.shape[0]
    n = -(-a // chunk)
    pad = jnp.full((n * chunk - a, 4), -1e6, anchors.dtype)  # far away: IoU 0 with everything
    blocks = jnp.concatenate([anchors, pad]).reshape(n, chunk, 4)
    mx, arg, hits, g_max, g_arg = jax.lax.map(
        lambda b: _chunk_stats(b, gt, usable, invalid, invalid_iou), blocks)  # (n, chunk) / (n, G)
    best_chunk = jnp.argmax(g_max, axis=0)  # (G,)
    g_best = jnp.take_along_axis(g_max, best_chunk[None], 0)[0]
    g_anchor = best_chunk.astype(jnp.int32) * chunk + jnp.take_along_axis(g_arg, best_chunk[None], 0)[0]
    return mx.reshape(-1)[:a], arg.reshape(-1)[:a], hits.reshape(-1)[:a], g_best, g_anchor


def _forced_matches(g_best, g_anchor, usable, num_anchors):
    """Per anchor: whether some face claims it as its best anchor, and which (the face with the
    highest IoU, then the lowest index): deterministic, no scatter with duplicate indices."""
    g = g_best.shape[0]
    ok = usable & (g_best > 0)
    val = jnp.where(ok, g_best, -1.0)
    top = jax.ops.segment_max(val, g_anchor, num_segments=num_anchors)  # (A,)
    is_top = ok & (val >= top[g_anchor])
    face = jax.ops.segment_min(jnp.where(is_top, jnp.arange(g), g), g_anchor, num_segments=num_anchors)
    return face < g, jnp.minimum(face, g - 1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("iou_threshold", "neg_threshold", "match_best", "invalid_iou",
                                   "variances", "chunk"))
def assign(anchors: jax.Array, gt_boxes: jax.Array, gt_valid: jax.Array, gt_invalid: jax.Array | None = None,
           *, iou_threshold: float = 0.65, neg_threshold: float | None = None, match_best: bool = False,
           invalid_iou: float = 0.0, variances: tuple[float, ...] = NO_VARIANCES, chunk: int = 8192) -> Assignment:
    """Label the anchors of one image.

    anchors (A, 4), gt_boxes (G, 4) x1, y1, x2, y2 pixels; gt_valid (G,) bool: a real face, not
    padding; gt_invalid (G,) bool: WIDER's invalid flag (default none). ``jax.vmap`` it over a
    batch R (anchors shared: ``in_axes=(None, 0, 0, 0)``). Returns an :class:`Assignment`.
    """
    neg = iou_threshold if neg_threshold is None else neg_threshold
    if not 0.0 <= neg <= iou_threshold:
        raise ValueError(f"neg_threshold: expected 0 <= neg_threshold <= iou_threshold, got {neg_threshold}")
    gt_valid = gt_valid.astype(bool)
    invalid = gt_valid & (jnp.zeros_like(gt_valid) if gt_invalid is None else gt_invalid.astype(bool))
    usable = gt_valid & ~invalid
    a = anchors.shape[0]
    max_iou, matched, hits_invalid, g_best, g_anchor = _anchor_stats(
        anchors, gt_boxes, usable, invalid, invalid_iou, min(chunk, a))
    pos = max_iou >= iou_threshold
    if match_best:
        forced, face = _forced_matches(g_best, g_anchor, usable, a)
        forced = forced & ~pos
        matched, pos = jnp.where(forced, face, matched), pos | forced
    negative = (max_iou < neg) & ~hits_invalid
    labels = jnp.where(pos, POSITIVE, jnp.where(negative, NEGATIVE, IGNORE)).astype(jnp.int32)
    matched = jnp.where(pos, matched, -1)
    boxes = gt_boxes[jnp.maximum(matched, 0)]  # (A, 4)
    safe = jnp.where(pos[:, None], boxes, anchors)  # encode(anchor, anchor) = 0: no inf/NaN anywhere
    targets = jnp.where(pos[:, None], encode(safe, anchors, variances), 0.0)
    return Assignment(labels, matched, targets.astype(jnp.float32), max_iou.astype(jnp.float32))


def pad_faces(boxes, invalid=None, max_faces: int = 0):
    """numpy helper: (K, 4) boxes (+ (K,) invalid flags) -> fixed-size (G, 4) float32 boxes, (G,)
    valid, (G,) invalid with G = max_faces. ValueError when K > max_faces."""
    import numpy as np

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    k = len(boxes)
    if k > max_faces:
        raise ValueError(f"max_faces: {k} faces do not fit in max_faces = {max_faces}")
    out = np.zeros((max_faces, 4), np.float32)
    out[:k] = boxes
    valid = np.arange(max_faces) < k
    inv = np.zeros(max_faces, bool)
    if invalid is not None:
        inv[:k] = np.asarray(invalid, bool).reshape(-1)
    return out, valid, inv
