"""Greedy non-maximum suppression with fixed shapes (deliverable 6; OHEM's "after NMS", 5.3.4).

The classic greedy rule (torchvision.ops.nms): visit boxes by decreasing score; keep a box
unless a kept box overlaps it with IoU ``> iou_threshold``. Here, to be jittable, only the
``pre_nms_top_k`` best-scoring candidates take part (``lax.top_k``); their ``(K, K)`` IoU matrix
is computed once and a ``lax.fori_loop`` over the K candidates in score order carries the
suppressed set. The first ``max_out`` kept boxes (in score order) are returned as indices into
the original N boxes, padded with index 0 and ``valid = False``.

Boxes (x1, y1, x2, y2, continuous pixels, no +1, as torchvision) and scores are for one class
(faces). :func:`batched_nms` vmaps over images R.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxnets.detection.box_coding import iou_matrix


def _greedy_keep(iou: jax.Array, candidate: jax.Array, iou_threshold) -> jax.Array:
    """iou (K, K) of candidates in score order, candidate (K,) bool -> keep (K,) bool."""
    k = iou.shape[0]
    idx = jnp.arange(k)

    def body(i, state):
        keep, suppressed = state
        take = candidate[i] & ~suppressed[i]
        keep = keep.at[i].set(take)
        suppressed = suppressed | (take & (iou[i] > iou_threshold) & (idx > i))
        return keep, suppressed

    keep0 = jnp.zeros(k, bool)
    keep, _ = jax.lax.fori_loop(0, k, body, (keep0, keep0))
    return keep


def nms(boxes: jax.Array, scores: jax.Array, iou_threshold=0.3, *, max_out: int = 100,
        pre_nms_top_k: int = 1000, score_threshold=None, valid: jax.Array | None = None):
    """One image. boxes (N, 4), scores (N,), optional valid (N,) bool -> (indices (max_out,) int32,
    keep (max_out,) bool). Indices of kept boxes in decreasing score order; padding slots hold 0
    with keep False. Boxes with score < score_threshold (when given) or valid False never count.
    Only the ``min(pre_nms_top_k, N)`` best-scoring boxes are considered."""
    n = boxes.shape[0]
    k = min(pre_nms_top_k, n)
    if max_out < 1 or k < 1:
        raise ValueError(f"max_out / pre_nms_top_k: expected >= 1 each, got {max_out}, {pre_nms_top_k}")
    ok = jnp.ones(n, bool) if valid is None else valid.astype(bool)
    if score_threshold is not None:
        ok = ok & (scores >= score_threshold)
    ranked = jnp.where(ok, scores, -jnp.inf)
    top_scores, order = jax.lax.top_k(ranked, k)  # (K,) descending
    cand = ok[order] & (top_scores > -jnp.inf)
    b = boxes[order]  # (K, 4)
    keep = _greedy_keep(iou_matrix(b, b), cand, iou_threshold)  # (K,)
    slot = jnp.argsort(~keep, stable=True)  # kept first, in score order
    if max_out > k:
        slot = jnp.concatenate([slot, jnp.zeros(max_out - k, slot.dtype)])
        kept = jnp.concatenate([keep[slot[:k]], jnp.zeros(max_out - k, bool)])
    else:
        slot = slot[:max_out]
        kept = keep[slot]
    return jnp.where(kept, order[slot], 0).astype(jnp.int32), kept


@partial(jax.jit, static_argnames=("max_out", "pre_nms_top_k"))
def batched_nms(boxes: jax.Array, scores: jax.Array, iou_threshold=0.3, score_threshold=-jnp.inf,
                valid: jax.Array | None = None, *, max_out: int = 100, pre_nms_top_k: int = 1000):
    """A batch: boxes (R, N, 4), scores (R, N), optional valid (R, N) -> indices (R, max_out)
    int32 and keep (R, max_out) bool (see :func:`nms`). The thresholds are traced: changing them
    does not recompile."""
    if valid is None:
        valid = jnp.ones(scores.shape, bool)
    fn = lambda b, s, v: nms(b, s, iou_threshold, max_out=max_out, pre_nms_top_k=pre_nms_top_k,  # noqa: E731
                             score_threshold=score_threshold, valid=v)
    return jax.vmap(fn)(boxes, scores, valid)


def numpy_nms(boxes, scores, iou_threshold: float):
    """The plain greedy rule in numpy (the tests' reference): kept indices, by decreasing score."""
    import numpy as np

    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        w = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = w * h
        union = area[i] + area - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        suppressed |= iou > iou_threshold
    return np.array(keep, np.int64)
