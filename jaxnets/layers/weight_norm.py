"""Weight normalisation (Salimans & Kingma 2016; paper §6.3.3) as a custom VJP.

The TCN blocks (fig 19) reparametrise every kernel as ``W = g V / ||V||``: the direction
comes from ``V`` and the magnitude from ``g``, one per output channel.  Layout: ``V`` is
(C', ...) -- a temporal kernel (C', C, k), a conv kernel (C', C, kh, kw) -- and the norm runs
over every axis but the first; ``g`` is (C',); ``W`` is shaped like ``V``.

Below ``c'`` indexes output channels, ``n_c' = ||V_c'||`` and ``U_c' = V_c' / n_c'`` (unit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.layers.shapes import check_weight_norm_args

__all__ = ["weight_norm"]


def _norm(v):
    """``||V_c'||`` for every c', shaped (C', 1, ...) to broadcast against v."""
    return jnp.sqrt(jnp.sum(v * v, axis=tuple(range(1, v.ndim)), keepdims=True))


def _column(g, ndim):
    return g.reshape((-1,) + (1,) * (ndim - 1))


@jax.custom_vjp
def _weight_norm(v, g):
    return _column(g, v.ndim) * (v / _norm(v))


def _weight_norm_fwd(v, g):
    # residuals: the unit direction U = V / ||V||, the norm ||V|| and the magnitude g
    n = _norm(v)
    u = v / n
    return _column(g, v.ndim) * u, (u, n, g)


def _weight_norm_bwd(res, delta):
    """Backward pass of ``W_c' = g_c' V_c' / ||V_c'||``; ``delta = dL/dW``, shaped like V.

    **Magnitude.**  ``dW_c' / dg_c' = U_c'``, so ``dL/dg_c' = sum delta_c' * U_c'`` (the sum
    over every entry of output channel c').

    **Direction.**  With ``n = ||V_c'||``, ``dn / dV_c' = V_c' / n = U_c'`` and so
    ``d(V / n) / dV = (I - U U^T) / n``: moving V along itself changes nothing (W depends on
    V's direction only).  By the chain rule::

        dL/dV_c' = (g_c' / n_c') (delta_c' - U_c' (U_c' . delta_c'))
                 = (g_c' / n_c') (delta_c' - (dL/dg_c') U_c')

    -- ``dL/dW`` with its component along ``V_c'`` removed, scaled by ``g_c' / ||V_c'||``.  It
    is orthogonal to ``V_c'``, so a gradient step changes ``||V||`` only to second order.
    """
    u, n, g = res
    axes = tuple(range(1, u.ndim))
    dg = jnp.sum(delta * u, axis=axes)  # (C',)
    dv = (_column(g, u.ndim) / n) * (delta - _column(dg, u.ndim) * u)
    return dv, dg


_weight_norm.defvjp(_weight_norm_fwd, _weight_norm_bwd)


def weight_norm(v, g):
    """``W = g V / ||V||`` per output channel (Salimans & Kingma 2016).

    v: (C', ...) with at least two axes (e.g. a kernel (C', C, k)); g: (C',).  Returns W
    shaped like v, with ``||W_c'|| = |g_c'|``.  Backward: ``_weight_norm_bwd``.  Bad shapes
    raise ``ValueError`` (``shapes.check_weight_norm_args``).  A zero row of v gives NaNs, as
    in the definition.
    """
    check_weight_norm_args(v.shape, g.shape)
    return _weight_norm(v, g)
