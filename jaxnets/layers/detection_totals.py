"""The detector's total loss (paper eqs 58, 60, 62) and online hard example mining (§5.3.4), as
plain ``jnp`` over the per-anchor losses of :mod:`jaxnets.layers.detection_losses`.

No custom VJPs here, on purpose: a total is ``Σ_a w_a l_a`` with weights ``w_a`` that are masks
divided by counts -- constants with respect to the losses -- so its VJP is ``∂L/∂l_a = w_a``,
which ``jax.grad`` produces exactly; and OHEM's selection is a 0/1 mask with no gradient at all
(it goes through ``lax.stop_gradient``).  The hand-derived rules are the per-anchor losses'.
(These are not registry ops, so this module is not in ``registry.OP_MODULES``.)

Shapes (A = anchors of all levels of one image, the same anchor list for every image):

* ``cls_loss`` (R, A): the classification loss ``L_c(p_a, p̂_a)`` of every anchor (eq 57/59/61);
* ``reg_loss`` (R, A, 4) or (R, A): ``L_r(r_a − r̂_a)`` per coordinate (eq 56), summed over
  the coordinates of an anchor;
* ``pos`` (R, A) bool: ``N_pos``, the positively assigned anchors (IoU >= threshold);
* ``valid`` (R, A) bool: ``N``, the anchors whose classification loss counts; False marks an
  ignored anchor (none in the paper's assignment; the OHEM mask goes here).  Default: all.
* ``level`` (A,) int in ``[0, num_levels)``: the pyramid level p of each anchor (eq 62).

The sets are taken over the whole batch: ``|N_pos|`` counts the positives of all R images
(as SSD and RetinaNet normalise), and every count is guarded by ``max(1, ·)`` so an image or
level without positives gives a finite loss (its negatives' summed classification loss).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

__all__ = ["NORMALIZATIONS", "OHEM_PER", "DetectionLoss", "detection_loss", "ohem_mask"]

# "all": eq 58 (v1.0), classification sum / |N|;  "pos": eq 60 (v1.1-v1.4, v1.7+), / |N_pos|;
# "level": eq 62 (v1.5, v1.6), each level's sums / |N_pos^p|.
NORMALIZATIONS = ("all", "pos", "level")
OHEM_PER = ("image", "batch")  # v1.7: top k per image; v1.8: top k over the mini-batch


class DetectionLoss(NamedTuple):
    """``total = classification + regression``, each a scalar."""

    total: object
    classification: object
    regression: object


def _check_mask(name: str, shape, want, fn: str):
    if tuple(shape) != tuple(want):
        raise ValueError(f"{fn}: {name} must have shape (R, A)={tuple(want)}, got {tuple(shape)}")


def _anchor_reg(reg_loss, ra, fn):
    """(R, A) or (R, A, K) -> (R, A): eq 58's ``L_r(r_a − r̂_a)`` summed over coordinates."""
    if reg_loss.ndim not in (2, 3) or tuple(reg_loss.shape[:2]) != tuple(ra):
        raise ValueError(f"{fn}: reg_loss must have shape (R, A) or (R, A, 4) with "
                         f"(R, A)={tuple(ra)}, got {tuple(reg_loss.shape)}")
    return reg_loss if reg_loss.ndim == 2 else jnp.sum(reg_loss, axis=2)


def _masked(x, mask):
    return jnp.where(mask, x, jnp.zeros((), x.dtype))  # where, not *: an ignored inf/nan stays out


def _guarded(count, dtype):
    return jnp.maximum(count.astype(dtype), 1)  # max(1, |N|)


def detection_loss(cls_loss, reg_loss, pos, valid=None, normalize="pos", level=None,
                   num_levels=None) -> DetectionLoss:
    """The total loss of one step (shapes in the module docstring).

    * ``normalize="all"`` -- eq 58: ``(1/|N|) Σ_{a∈N} L_c + (1/|N_pos|) Σ_{a∈N_pos} L_r``;
    * ``normalize="pos"`` -- eq 60: ``(1/|N_pos|) Σ_{a∈N} L_c + (1/|N_pos|) Σ_{a∈N_pos} L_r``;
    * ``normalize="level"`` -- eq 62: ``Σ_p (1/|N_pos^p|) (Σ_{a∈N^p} L_c + Σ_{a∈N_pos^p} L_r)``,
      needs ``level`` (A,) and ``num_levels`` (static int); an anchor whose level is outside
      ``[0, num_levels)`` counts nowhere.

    ``|·|`` is guarded by ``max(1, ·)``.  With OHEM pass ``valid=ohem_mask(...)``: the
    classification sum runs over the selected anchors while ``N_pos`` (the regression term and
    the normaliser) stays every positive.  Returns ``DetectionLoss(total, classification,
    regression)``, scalars in ``cls_loss``'s dtype.
    """
    fn = "detection_loss"
    if cls_loss.ndim != 2:
        raise ValueError(f"{fn}: cls_loss must have shape (R, A), got {tuple(cls_loss.shape)}")
    ra = cls_loss.shape
    reg = _anchor_reg(reg_loss, ra, fn)
    valid = jnp.ones(ra, bool) if valid is None else valid
    _check_mask("pos", pos.shape, ra, fn)
    _check_mask("valid", valid.shape, ra, fn)
    pos, valid = pos.astype(bool), valid.astype(bool)
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"{fn}: normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    dt = cls_loss.dtype
    if normalize == "level":
        return _level_separated(cls_loss, reg, pos, valid, level, num_levels, fn)
    n_pos = _guarded(jnp.sum(pos), dt)
    n_cls = _guarded(jnp.sum(valid), dt) if normalize == "all" else n_pos
    cls = jnp.sum(_masked(cls_loss, valid)) / n_cls
    regr = (jnp.sum(_masked(reg, pos)) / n_pos).astype(dt)
    return DetectionLoss(cls + regr, cls, regr)


def _level_separated(cls_loss, reg, pos, valid, level, num_levels, fn):
    """Eq 62 via per-level segment sums: ``onehot[a, p] = [level_a = p]``."""
    if not isinstance(num_levels, numbers.Integral) or isinstance(num_levels, bool) \
            or num_levels < 1:
        raise ValueError(f"{fn}: num_levels must be an int >= 1 for normalize='level', "
                         f"got {num_levels!r}")
    if level is None or tuple(jnp.shape(level)) != (cls_loss.shape[1],):
        raise ValueError(f"{fn}: level must have shape (A,)=({cls_loss.shape[1]},) for "
                         f"normalize='level', got {None if level is None else jnp.shape(level)}")
    dt = cls_loss.dtype
    onehot = (jnp.asarray(level)[:, None] == jnp.arange(num_levels)).astype(dt)  # (A, P)
    cls_p = jnp.sum(_masked(cls_loss, valid), axis=0) @ onehot  # (P,) Σ_{a∈N^p} L_c
    reg_p = jnp.sum(_masked(reg, pos).astype(dt), axis=0) @ onehot  # (P,) Σ_{a∈N_pos^p} L_r
    n_pos_p = jnp.maximum(jnp.sum(pos.astype(dt), axis=0) @ onehot, 1)  # (P,) max(1, |N_pos^p|)
    cls, regr = jnp.sum(cls_p / n_pos_p), jnp.sum(reg_p / n_pos_p)
    return DetectionLoss(cls + regr, cls, regr)


def ohem_mask(cls_loss, keep, k=128, per="image"):
    """Online hard example mining (§5.3.4): the ``k`` largest classification losses among the
    anchors that survived NMS, as a mask.

    cls_loss: (R, A) per-anchor ``L_c`` (only compared: no gradient flows through the
    selection); keep: (R, A) bool, the NMS-kept anchors (NMS is run by the caller);
    k: int >= 1 (the paper: 128); per: ``"image"`` (v1.7, top k of each image) or
    ``"batch"`` (v1.8, top k of the R·A anchors together) -> (R, A) bool, a subset of ``keep``
    with ``min(k, #kept)`` True entries per image (per batch).

    Ties are broken towards the lower anchor index (row-major (r, a) for ``"batch"``), as
    ``lax.top_k`` does, so the mask is deterministic.
    """
    fn = "ohem_mask"
    if cls_loss.ndim != 2:
        raise ValueError(f"{fn}: cls_loss must have shape (R, A), got {tuple(cls_loss.shape)}")
    _check_mask("keep", keep.shape, cls_loss.shape, fn)
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{fn}: k must be an int >= 1, got {k!r}")
    if per not in OHEM_PER:
        raise ValueError(f"{fn}: per must be one of {OHEM_PER}, got {per!r}")
    keep = keep.astype(bool)
    score = jnp.where(keep, lax.stop_gradient(cls_loss), -jnp.inf)  # dropped anchors last
    rows = score if per == "image" else score.reshape(1, -1)  # (R, A) or (1, R A)
    _, idx = lax.top_k(rows, min(int(k), rows.shape[1]))  # (rows, k')
    chosen = jnp.zeros(rows.shape, bool).at[jnp.arange(rows.shape[0])[:, None], idx].set(True)
    return chosen.reshape(cls_loss.shape) & keep  # k > #kept: the -inf picks are dropped
