"""Max-pooling layer (paper §3.6, eqs 28-33) as a custom VJP.

Layout: x ``X^(l)`` is (R, C, H, W) (NCHW); the output ``X^(l+1)`` is (R, C, H', W') with
``H' = floor((H - kh) / sh) + 1`` (eqs 28-29 with the floor).  Kernel and stride are static;
windows may overlap (``s < k``) or skip input (``s > k``).  No padding.

**Ties.**  When several elements of a window share the maximum, the whole delta-error of
that output goes to the *first* of them in row-major order (smallest j, then smallest i).
This is what XLA's ``select_and_scatter`` with ``ge`` does, i.e. ``jax.grad`` of
``lax.reduce_window(max)``; it keeps the gradient a valid subgradient whose total mass equals
``sum delta^(l+1)``.  The printed eqs 32-33 would hand ``delta`` to every tied element.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import check_pool_args

__all__ = ["max_pool2d"]


def _forward(x, kernel, stride):
    init = jnp.array(-jnp.inf, dtype=x.dtype)
    return lax.reduce_window(x, init, lax.max, (1, 1) + kernel, (1, 1) + stride, "VALID")


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool2d(x, kernel, stride):
    return _forward(x, kernel, stride)


def _max_pool2d_fwd(x, kernel, stride):
    y = _forward(x, kernel, stride)
    # residuals: the input X^(l) and the output X^(l+1); together they say which neuron of
    # each window is responsible for the output (eq 32).
    return y, (x, y)


def _max_pool2d_bwd(kernel, stride, res, delta):
    """Backward pass of eq 31; ``delta = delta^(l+1)``, shape (R, C, H', W').

    Eq 32: ``dX^(l+1)_{r,c,h',w'} / dX^(l)_{r,c,h,w}`` is 1 for the neuron at offset (j, i)
    of window (h', w') that attains the maximum, ``h = s_h h' + j, w = s_w w' + i``, and 0
    otherwise.  Eq 33: ``delta^(l+1)`` is redirected to that responsible neuron and summed
    when one neuron is responsible for several (overlapping) windows::

        delta^(l)_{r,c,h,w} = sum_{h',w'} delta^(l+1)_{r,c,h',w'} [(h, w) = argmax of window (h', w')]

    Implementation: visit the ``kh * kw`` offsets (j, i) in row-major order.  The strided view
    ``X_{r,c,s_h h'+j, s_w w'+i}`` has the output's shape; where it equals ``X^(l+1)`` and no
    earlier offset has claimed that window (the first-maximum tie rule), the window's delta
    goes to that neuron.  Scattering back is ``lax.pad`` with interior padding ``s - 1``
    (neurons ``s`` apart), low padding ``j`` and the rest as high padding; the ``kh * kw``
    scattered maps are summed, which is eq 33's "summed when responsible for several".
    """
    x, y = res
    kh, kw = kernel
    sh, sw = stride
    _, _, h, w = x.shape
    _, _, ho, wo = y.shape
    zero = jnp.zeros((), dtype=delta.dtype)
    taken = jnp.zeros(y.shape, dtype=bool)
    dx = jnp.zeros(x.shape, dtype=delta.dtype)
    for j in range(kh):
        for i in range(kw):
            end_h, end_w = j + sh * (ho - 1) + 1, i + sw * (wo - 1) + 1
            # (R, C, H', W'): X_{r,c,s h'+j, s w'+i}
            view = lax.slice(x, (0, 0, j, i), x.shape[:2] + (end_h, end_w), (1, 1, sh, sw))
            hit = (view == y) & ~taken
            taken = taken | hit
            part = jnp.where(hit, delta, zero)
            dx = dx + lax.pad(
                part,
                zero,
                ((0, 0, 0), (0, 0, 0), (j, h - end_h, sh - 1), (i, w - end_w, sw - 1)),
            )
    return (dx.astype(x.dtype),)


_max_pool2d.defvjp(_max_pool2d_fwd, _max_pool2d_bwd)


def max_pool2d(x, kernel, stride=None):
    """Eq 31: ``X^(l+1)_{r,c,h',w'} = max_{0<=j<kh, 0<=i<kw} X^(l)_{r,c,s_h h'+j, s_w w'+i}``.

    x: (R, C, H, W); kernel: ``k`` or ``(kh, kw)``; stride: ``s`` or ``(sh, sw)``, default
    ``kernel``.  Returns (R, C, H', W'), ``H' = floor((H - kh) / sh) + 1`` (eqs 28-30).
    Backward: eq 33, ties to the first maximum in row-major order (``_max_pool2d_bwd``).
    """
    k, s = check_pool_args(x.shape, kernel, stride)
    return _max_pool2d(x, k, s)
