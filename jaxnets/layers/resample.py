"""Bilinear upsampling by an integer factor (§5.3.5, FaceNet v2.1+: "bi-linear interpolation is
added to the classification and regression head ... the feature maps were upscaled by a factor
of 2"; optionally the FPN's top-down ×2) as a custom VJP.

Layout NCHW: x is (R, C, H, W), the output (R, C, f_h H, f_w W).

**Alignment: half-pixel centres** (PyTorch's ``F.interpolate(mode="bilinear",
align_corners=False)``, TensorFlow 2's ``resize(..., "bilinear")``).  Output row ``o`` samples
the input at ``s = (o + 1/2)/f − 1/2``, clamped to ``[0, H − 1]``, i.e. interpolates linearly
between rows ``floor(s)`` and ``floor(s) + 1``; the border rows are repeated (edge padding).
For ×2 every output row is ``3/4`` of its own source row plus ``1/4`` of the neighbour on its
side.  Along one axis, output row ``o = f i + j`` (phase ``j = 0 .. f−1``) reads source rows
``i − 1, i`` with weights ``(−δ_j, 1 + δ_j)`` when ``δ_j = (j + 1/2)/f − 1/2 < 0`` and rows
``i, i + 1`` with weights ``(1 − δ_j, δ_j)`` otherwise.  ``tests/test_resample.py`` checks the
values against PyTorch.

**Why no custom add.**  The FPN's ``M_l = lateral(C_l) + up(M_{l+1})`` and the heads' residual
sums are plain ``+``: the VJP of ``a + b`` (with broadcasting) hands ``δ`` to ``a`` and ``δ``
summed over the broadcast axes to ``b``.  That is what ``jax.grad`` does, exactly (no rounding
beyond the sum); the paper derives no rule for it, so a custom VJP would add code and nothing
to check.  Only the interpolation, whose transpose is a scatter the paper never writes down,
gets a hand-derived rule here (docs/derivations.md, "Bilinear upsampling").
"""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["upsample_bilinear"]


def _check_upsample_args(x_shape, factor, fn: str = "upsample_bilinear") -> tuple[int, int]:
    """x: (R, C, H, W); factor: an int >= 1 or a pair ``(f_h, f_w)``.  Returns ``(f_h, f_w)``."""
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x must have shape (R, C, H, W), got {tuple(x_shape)}")

    def ok(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1

    if ok(factor):
        return int(factor), int(factor)
    if isinstance(factor, (tuple, list)) and len(factor) == 2 and all(ok(v) for v in factor):
        return int(factor[0]), int(factor[1])
    raise ValueError(f"{fn}: factor must be an int >= 1 or a pair of them, got {factor!r}")


def _taps(f: int):
    """Per phase j of an ×f axis: (lo, w_lo, w_hi) -- output ``f i + j`` is
    ``w_lo Xe[i + lo] + w_hi Xe[i + lo + 1]`` over the edge-padded input
    ``Xe[u] = X[clip(u - 1, 0, n - 1)]``."""
    taps = []
    for j in range(f):
        d = (j + 0.5) / f - 0.5
        taps.append((0, -d, 1.0 + d) if d < 0 else (1, 1.0 - d, d))
    return taps


def _slice(x, axis: int, start: int, stop: int):
    return lax.slice_in_dim(x, start, stop, axis=axis)


def _up_axis(x, f: int, axis: int):
    """(..., n, ...) -> (..., f n, ...) along ``axis``: edge pad, two taps per phase, interleave."""
    if f == 1:
        return x
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    xe = jnp.pad(x, pad, mode="edge")  # (..., n + 2, ...)
    phases = [w0 * _slice(xe, axis, lo, lo + n) + w1 * _slice(xe, axis, lo + 1, lo + 1 + n)
              for lo, w0, w1 in _taps(f)]
    y = jnp.stack(phases, axis=axis + 1)  # (..., n, f, ...): row f i + j is phases[j][i]
    return y.reshape(x.shape[:axis] + (f * n,) + x.shape[axis + 1:])


def _up_axis_t(dy, f: int, axis: int):
    """The transpose of ``_up_axis``: (..., f n, ...) -> (..., n, ...), in gather form.

    Phase j's delta-error ``d_j`` (rows ``f i + j``) went to padded rows ``i + lo`` and
    ``i + lo + 1``; grouping by that offset t = 0, 1, 2 gives ``G_t`` and
    ``δXe[u] = G_0[u] + G_1[u − 1] + G_2[u − 2]``.  Dropping the padding rows and folding them
    back (row 0 read in place of ``Xe[0]``, row n − 1 in place of ``Xe[n + 1]``)::

        δX[i] = G_1[i] + (G_0[i + 1] or, for i = n − 1, G_2[n − 1])
                       + (G_2[i − 1] or, for i = 0,     G_0[0])

    -- slices and concatenations only, like the forward pass.
    """
    if f == 1:
        return dy
    n = dy.shape[axis] // f
    dy = dy.reshape(dy.shape[:axis] + (n, f) + dy.shape[axis + 1:])  # de-interleave
    g = [jnp.zeros((), dy.dtype)] * 3
    for j, (lo, w0, w1) in enumerate(_taps(f)):
        dj = lax.index_in_dim(dy, j, axis=axis + 1, keepdims=False)  # (..., n, ...)
        g[lo] = g[lo] + w0 * dj
        g[lo + 1] = g[lo + 1] + w1 * dj
    g = [jnp.broadcast_to(t, dj.shape) for t in g]
    above = jnp.concatenate([_slice(g[0], axis, 1, n), _slice(g[2], axis, n - 1, n)], axis=axis)
    below = jnp.concatenate([_slice(g[0], axis, 0, 1), _slice(g[2], axis, 0, n - 1)], axis=axis)
    return g[1] + above + below


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _upsample_bilinear(x, factor):
    return _up_axis(_up_axis(x, factor[0], 2), factor[1], 3)


def _upsample_bilinear_fwd(x, factor):
    return _upsample_bilinear(x, factor), None  # linear in x: no residuals (shapes are static)


def _upsample_bilinear_bwd(factor, _, delta):
    """The map is linear and separable, ``X^(l+1) = U_H X^(l) U_Wᵀ`` per (r, c), so
    ``δ^(l) = U_Hᵀ δ^(l+1) U_W``: the transpose of each axis' interpolation, applied in reverse
    order.  Per axis, ``U = I_f ∘ T ∘ E`` (edge padding E, the two taps per phase T,
    interleaving I_f), hence ``Uᵀ = Eᵀ ∘ Tᵀ ∘ I_fᵀ``:

    * ``I_fᵀ`` de-interleaves: ``δ^(l+1)`` row ``f i + j`` becomes phase j's row i;
    * ``Tᵀ`` scatters phase j's row i with weight ``w_lo`` to padded row ``i + lo`` and
      ``w_hi`` to ``i + lo + 1`` (a sum over the phases: every input row feeds 2f outputs);
    * ``Eᵀ`` folds the two padding rows back onto rows 0 and n − 1 (the clamp of the
      forward pass: the border row was read in their place).

    ``_up_axis_t`` does the three in gather form (slices and concatenations, no scatter).

    So ``δ^(l)_{r,c,h,w} = Σ_{o,p} U_H[o,h] U_W[p,w] δ^(l+1)_{r,c,o,p}``; for ×2 an interior
    row receives ``3/4`` of its two own outputs and ``1/4`` of the nearest output on each side.
    """
    dy = _up_axis_t(delta, factor[1], 3)
    return (_up_axis_t(dy, factor[0], 2),)


_upsample_bilinear.defvjp(_upsample_bilinear_fwd, _upsample_bilinear_bwd)


def upsample_bilinear(x, factor=2):
    """Bilinear upsampling, half-pixel centres (PyTorch ``align_corners=False``), borders
    clamped.  x: (R, C, H, W); factor: ``f`` or ``(f_h, f_w)``, ints >= 1 (static)
    -> (R, C, f_h H, f_w W).  Backward: the transpose of the interpolation
    (``_upsample_bilinear_bwd``).  Bad arguments raise ``ValueError``.
    """
    return _upsample_bilinear(x, _check_upsample_args(x.shape, factor))
