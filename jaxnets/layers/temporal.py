"""Causal dilated temporal convolution (paper §6.2, eqs 63-64) as a custom VJP.

Layout: x ``X^(l)`` is (R, C, T) (NCT: batch, channels, time), the kernel ``W^(l)`` is
(C', C, k), the bias is (C',), the output ``X^(l+1)`` is (R, C', T').  Dilation ``d`` and
stride ``s`` are static.  The paper's "smart zero-padding" (§6.2.1) pads ``P = d(k - 1)``
zeros on the left only, so by eq 64 ``T' = floor((T - 1) / s) + 1`` (``T' = T`` for s = 1).

Indices start at 0 below and ``Xp`` is the left-padded input (``Xp_u = X_{u - P}``, zero for
``u < P``), so eq 63 reads::

    X^(l+1)_{r,c',t'} = b_c' + sum_{c,i} Xp_{r,c, s t' + d i} W_{c',c,i},   i = 0 .. k-1
                      = b_c' + sum_{c,i} X_{r,c, s t' - d (k-1-i)} W_{c',c,i}

The last tap (``i = k - 1``) reads time ``s t'`` and every other tap an earlier one: output
``t'`` never sees an input after time ``s t'``.  (Eq 63 as printed, with 1-based ``t'`` and
``i``, reads ``Xp`` at ``s t' - s + d i``; its last tap then lands ``d - 1`` steps in the future
-- see docs/derivations.md, Errata.)
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import check_causal_conv1d_args

__all__ = ["causal_conv1d"]


def _forward(x, w, b, dilation, stride):
    p = dilation * (w.shape[2] - 1)
    y = lax.conv_general_dilated(
        x, w, (stride,), ((p, 0),), rhs_dilation=(dilation,),
        dimension_numbers=("NCH", "OIH", "NCH"),
    )
    return y + b[None, :, None]


@partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _causal_conv1d(x, w, b, dilation, stride):
    return _forward(x, w, b, dilation, stride)


def _causal_conv1d_fwd(x, w, b, dilation, stride):
    # residuals: the layer input X^(l) (for dL/dW, like eq 25) and the kernel W^(l) (for
    # delta^(l), like eq 24)
    return _forward(x, w, b, dilation, stride), (x, w)


def _causal_conv1d_bwd(dilation, stride, res, delta):
    """Backward pass of eq 63; ``delta = delta^(l+1) = dL/dX^(l+1)``, shape (R, C', T').

    Write ``P = d(k - 1)`` and ``e = (T - 1) mod s``, the inputs after the last window's end
    (``T - 1 = s (T' - 1) + e``; zero for s = 1).

    **Delta-error (the temporal eq 24).**  Differentiating eq 63, ``X_{r,c,t}`` meets
    ``W_{c',c,i}`` in output ``t'`` exactly when ``s t' + d i - P = t``, so::

        delta^(l)_{r,c,t} = sum_{c',t',i : s t' = t + d (k-1-i)} delta^(l+1)_{r,c',t'} W_{c',c,i}

    Insert ``s - 1`` zeros between neighbouring entries of ``delta^(l+1)`` (the stride-dilated
    delta ``D``, ``D_{s t'} = delta^(l+1)_{t'}``, length ``s (T' - 1) + 1 = T - e``) and put
    ``j = k - 1 - i``::

        delta^(l)_{r,c,t} = sum_{c',j} D_{r,c', t + d j} W_{c',c,k-1-j}

    -- a correlation of ``D`` with the *time-reversed* kernel (channels swapped), its taps
    ``d`` apart, looking only *forward* in time: the mirror image of the causal forward pass.
    Where the forward pass padded ``P`` zeros on the left, this one pads on the right:
    ``P`` zeros so the last inputs see the kernel's tail, plus the ``e`` unread inputs at the
    end (their delta-error is 0).  No left padding: the forward pass's left zeros are
    constants and get no delta-error.  One ``lax.conv_general_dilated`` with
    ``lhs_dilation = s``, ``rhs_dilation = d``, padding ``(0, P + e)``.

    **Kernel gradient (the temporal eq 25).**  ``dL/dW_{c',c,i} = sum_{r,t'}
    Xp_{r,c, s t' + d i} delta^(l+1)_{r,c',t'}``: a correlation of the left-padded input with
    ``delta^(l+1)`` whose taps are ``s`` apart (``rhs_dilation = s``), evaluated at the ``k``
    offsets ``d i`` (``window_strides = d``), contracting over the batch r.  As a conv: batch
    axis = C, feature axis = R (contracted), output features = C'.  Padding ``(P, -e)``: the
    causal left zeros, and the ``e`` unread inputs cropped so exactly ``k`` offsets fit.

    **Bias gradient** (eq 18): ``dL/db_c' = sum_{r,t'} delta^(l+1)_{r,c',t'}``.
    """
    x, w = res
    t = x.shape[2]
    k = w.shape[2]
    p = dilation * (k - 1)
    e = (t - 1) % stride

    # delta^(l) = forward correlation of dilate_s(delta^(l+1)) with flip(W), taps d apart.
    dx = lax.conv_general_dilated(
        delta,
        jnp.flip(w, axis=2),  # (C', C, k); "IOH" swaps C' and C
        window_strides=(1,),
        padding=((0, p + e),),
        lhs_dilation=(stride,),
        rhs_dilation=(dilation,),
        dimension_numbers=("NCH", "IOH", "NCH"),
    )

    # dL/dW = correlation(Xp, dilate_s(delta^(l+1))) at offsets 0, d, ..., d(k-1), summed over r.
    dw = lax.conv_general_dilated(
        x,
        delta,
        window_strides=(dilation,),
        padding=((p, -e),),
        rhs_dilation=(stride,),
        dimension_numbers=("CNH", "IOH", "CNH"),
    )

    db = jnp.sum(delta, axis=(0, 2))
    return dx.astype(x.dtype), dw.astype(w.dtype), db


_causal_conv1d.defvjp(_causal_conv1d_fwd, _causal_conv1d_bwd)


def causal_conv1d(x, w, b=None, dilation=1, stride=1):
    """Eq 63 with left-only zero-padding ``p_left = d(k - 1)``, ``p_right = 0`` (§6.2.1): a
    dilated cross-correlation in which output ``t'`` depends only on inputs at times
    ``<= s t'``.

    x: (R, C, T); w: (C', C, k); b: (C',) or None (no bias); dilation ``d >= 1``;
    stride ``s >= 1``.  Returns (R, C', T') with ``T' = floor((T - 1) / s) + 1`` (eq 64;
    ``T' = T`` for s = 1).  Any ``T >= 1`` works, also ``T < d(k - 1)``.
    Backward: ``_causal_conv1d_bwd``.  Bad arguments raise ``ValueError`` at trace time
    (see ``shapes.check_causal_conv1d_args``).
    """
    d, s = check_causal_conv1d_args(x.shape, w.shape, None if b is None else b.shape,
                                    dilation, stride)
    if b is None:
        b = jnp.zeros((w.shape[0],), dtype=w.dtype)
    return _causal_conv1d(x, w, b, d, s)
