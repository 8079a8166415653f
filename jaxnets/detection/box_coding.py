"""Boxes: IoU and the centre/size offsets the regression head predicts (the ``r_a`` of eqs 56-58).

Boxes are ``(..., 4)`` x1, y1, x2, y2 in continuous pixel coordinates: width ``x2 - x1``, no
``+1``. (The WIDER evaluator, :func:`jaxnets.eval.wider_protocol.iou_plus_one`, adds 1 to every
side because the official MATLAB code counts pixels inclusively, and keeps it to reproduce the
official AP. In training the +1 would make IoU, and so which anchors pass the threshold, depend
on absolute size - an 8-px anchor gains 27 % area, a 256-px one 0.8 % - so training uses the
continuous form, as torchvision, RetinaNet and Detectron2 do.)

Offsets (Faster R-CNN eq 2, RetinaNet): with centres ``x, y``, sizes ``w, h`` of a box and
``x_a, y_a, w_a, h_a`` of its anchor, and per-coordinate ``variances`` ``v`` (SSD's trick;
``(1, 1, 1, 1)`` = none)::

    t_x = (x - x_a) / w_a / v_0     t_y = (y - y_a) / h_a / v_1
    t_w = log(w / w_a) / v_2        t_h = log(h / h_a) / v_3

:func:`decode` inverts it and clamps ``t_w, t_h`` (after the variance) at ``log(1000 / 16)``
so an untrained head cannot produce an overflowing ``exp``.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

BBOX_CLIP = math.log(1000.0 / 16.0)
NO_VARIANCES = (1.0, 1.0, 1.0, 1.0)


def area(boxes: jax.Array) -> jax.Array:
    """(..., 4) -> (...) continuous area; 0 for an empty (x2 <= x1 or y2 <= y1) box."""
    return jnp.clip(boxes[..., 2] - boxes[..., 0], 0) * jnp.clip(boxes[..., 3] - boxes[..., 1], 0)


def iou_matrix(a: jax.Array, b: jax.Array) -> jax.Array:
    """(N, 4), (M, 4) x1, y1, x2, y2 -> (N, M) IoU (eq 55), continuous coordinates; 0 where the
    union is empty. Jittable."""
    lt = jnp.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    rb = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = jnp.clip(rb - lt, 0)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0.0)


def _centre_size(boxes):
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


@partial(jax.jit, static_argnames=("variances",))
def encode(boxes: jax.Array, anchors: jax.Array, variances: tuple[float, ...] = NO_VARIANCES) -> jax.Array:
    """Boxes (..., 4) relative to anchors (..., 4) -> offsets (..., 4) ``t_x, t_y, t_w, t_h``.

    A box of zero width or height gives ``-inf`` in ``t_w`` / ``t_h``: callers mask such boxes
    (:func:`jaxnets.detection.assign.assign` zeroes the targets of non-positive anchors)."""
    x, y, w, h = _centre_size(boxes)
    xa, ya, wa, ha = _centre_size(anchors)
    v = variances
    return jnp.stack([(x - xa) / wa / v[0], (y - ya) / ha / v[1],
                      jnp.log(w / wa) / v[2], jnp.log(h / ha) / v[3]], axis=-1)


@partial(jax.jit, static_argnames=("variances", "clip"))
def decode(deltas: jax.Array, anchors: jax.Array, variances: tuple[float, ...] = NO_VARIANCES,
           clip: float = BBOX_CLIP) -> jax.Array:
    """Offsets (..., 4) on anchors (..., 4) -> boxes (..., 4) x1, y1, x2, y2; ``t_w, t_h`` clamped
    at ``clip`` (default log(1000/16)) after the variance."""
    xa, ya, wa, ha = _centre_size(anchors)
    v = variances
    x = xa + deltas[..., 0] * v[0] * wa
    y = ya + deltas[..., 1] * v[1] * ha
    w = wa * jnp.exp(jnp.minimum(deltas[..., 2] * v[2], clip))
    h = ha * jnp.exp(jnp.minimum(deltas[..., 3] * v[3], clip))
    return jnp.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], axis=-1)


def xywh_to_xyxy(boxes):
    """(..., 4) x1, y1, w, h (the WIDER files' form) -> x1, y1, x2, y2; numpy in, numpy out."""
    xp = np if isinstance(boxes, np.ndarray) else jnp
    return xp.concatenate([boxes[..., :2], boxes[..., :2] + boxes[..., 2:4]], axis=-1)
