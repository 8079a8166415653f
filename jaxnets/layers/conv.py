"""Convolutional layer (paper §3.4, eqs 20-25) as a custom VJP.

Layout: x ``X^(l)`` is (R, C, H, W) (NCHW), the kernel ``W^(l)`` is (C', C, kh, kw) (OIHW),
the bias is (C',), the output ``X^(l+1)`` is (R, C', H', W').  Stride ``(sh, sw)`` and
zero-padding ``((p_top, p_bottom), (p_left, p_right))`` are static.

The paper indexes from 1; below, indices start at 0 and ``Xp`` is the zero-padded input, so
eq 22 reads ``X^(l+1)_{r,c',h',w'} = b_c' + sum_{c,j,i} Xp_{r,c,s_h h'+j, s_w w'+i} W_{c',c,j,i}``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import check_conv_args

__all__ = ["conv2d"]

_DIMS = ("NCHW", "OIHW", "NCHW")


def _forward(x, w, b, stride, padding):
    y = lax.conv_general_dilated(x, w, stride, padding, dimension_numbers=_DIMS)
    return y + b[None, :, None, None]


@partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _conv2d(x, w, b, stride, padding):
    return _forward(x, w, b, stride, padding)


def _conv2d_fwd(x, w, b, stride, padding):
    # residuals: the layer input X^(l) (for dL/dW, eq 25) and the kernel W^(l) (for
    # delta^(l), eq 24)
    return _forward(x, w, b, stride, padding), (x, w)


def _unread(size, pad, k, s):
    """Rows (or columns) at the bottom (right) of the padded input that no window reads:
    ``(H + p_top + p_bottom - k) mod s`` -- zero when eqs 20-21 divide exactly."""
    return (size + pad[0] + pad[1] - k) % s


def _conv2d_bwd(stride, padding, res, delta):
    """Backward pass of eq 22; ``delta = delta^(l+1) = dL/dX^(l+1)``, shape (R, C', H', W').

    **Delta-error, eq 24.**  Differentiating eq 22, ``X_{r,c,h,w}`` (padded coordinates)
    meets ``W_{c',c,j,i}`` in output ``(h', w')`` exactly when ``h = s_h h' + j`` and
    ``w = s_w w' + i``, so::

        delta^(l)_{r,c,h,w} = sum_{c',h',w'} delta^(l+1)_{r,c',h',w'} W_{c',c, h - s_h h', w - s_w w'}

    (terms with a kernel index outside ``[0, k)`` vanish).  Insert ``s - 1`` zeros between
    neighbouring entries of ``delta^(l+1)`` (the stride-dilated delta ``D``, with
    ``D_{s h'} = delta_{h'}``); then ``delta^(l)_h = sum_u D_u W_{h-u}``: a *full* correlation
    of ``D`` with the 180-degree-rotated kernel ``W_rot_{c,c',j,i} = W_{c',c,k-1-j,k-1-i}``
    (channels swapped, spatial axes flipped) -- the paper's "convolution with the kernels
    rotated by 180 degrees", generalised to ``s > 1`` by the dilation.  A full correlation
    pads ``D`` by ``k - 1`` on both sides.  Two corrections give the unpadded ``delta^(l)``:
    drop the first ``p_top`` / last ``p_bottom`` rows (the zero padding has no delta-error),
    i.e. pad by ``k - 1 - p`` (negative = crop), and append the
    ``(H + p_top + p_bottom - k) mod s`` bottom rows that no window read (their delta-error
    is 0; eqs 20-21 assume there are none).  One ``lax.conv_general_dilated`` with
    ``lhs_dilation = stride`` does all of it.

    **Kernel gradient, eq 25.**  ``dL/dW_{c',c,j,i} = sum_{r,h',w'} Xp_{r,c,s_h h'+j, s_w w'+i}
    delta^(l+1)_{r,c',h',w'}``: a correlation of the padded input with ``delta^(l+1)`` whose
    taps are ``s`` apart (``rhs_dilation = stride``), contracting over the batch r.  As a
    conv: batch axis = C, feature axis = R (contracted), output features = C'.  The window
    slides ``kh`` positions plus the unread rows, which the negative high padding drops.

    **Bias gradient** (eq 18 for the conv): ``dL/db_c' = sum_{r,h',w'} delta^(l+1)_{r,c',h',w'}``.
    """
    x, w = res
    _, _, h, wd = x.shape
    _, _, kh, kw = w.shape
    (ph, pw), (sh, sw) = padding, stride
    eh, ew = _unread(h, ph, kh, sh), _unread(wd, pw, kw, sw)

    # eq 24: delta^(l) = full-correlation(dilate_s(delta^(l+1)), rot180(W)), cropped.
    w_rot = jnp.flip(w, axis=(2, 3))  # (C', C, kh, kw); "IOHW" swaps C' and C below
    dx = lax.conv_general_dilated(
        delta,
        w_rot,
        window_strides=(1, 1),
        padding=((kh - 1 - ph[0], kh - 1 - ph[1] + eh), (kw - 1 - pw[0], kw - 1 - pw[1] + ew)),
        lhs_dilation=(sh, sw),
        dimension_numbers=("NCHW", "IOHW", "NCHW"),
    )

    # eq 25: dL/dW = correlation(Xp, dilate_s(delta^(l+1))), summed over r.
    dw = lax.conv_general_dilated(
        x,
        delta,
        window_strides=(1, 1),
        padding=((ph[0], ph[1] - eh), (pw[0], pw[1] - ew)),
        rhs_dilation=(sh, sw),
        dimension_numbers=("CNHW", "IOHW", "CNHW"),
    )

    db = jnp.sum(delta, axis=(0, 2, 3))
    return dx.astype(x.dtype), dw.astype(w.dtype), db


_conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def conv2d(x, w, b=None, stride=1, padding=0):
    """Eq 22: ``X^(l+1) = X^(l) * W^(l) + b``, a cross-correlation (no kernel flip).

    x: (R, C, H, W); w: (C', C, kh, kw); b: (C',) or None (no bias);
    stride: ``s`` or ``(sh, sw)``; padding: ``p``, ``(ph, pw)`` or
    ``((p_top, p_bottom), (p_left, p_right))`` zeros.
    Returns (R, C', H', W') with ``H' = floor((H + p_top + p_bottom - kh) / sh) + 1``
    (eqs 20-21; they assume the division is exact).  Backward: eqs 24-25 (``_conv2d_bwd``).
    Bad arguments raise ``ValueError`` at trace time (see ``shapes.check_conv_args``).
    """
    s, p = check_conv_args(x.shape, w.shape, None if b is None else b.shape, stride, padding)
    if b is None:
        b = jnp.zeros((w.shape[0],), dtype=w.dtype)
    return _conv2d(x, w, b, s, p)
