"""Softmax layer (paper §3.8, eqs 51-52) as a custom VJP.

Shape: x ``X^(l)`` is (R, C) (or (R, ..., C)); softmax runs over the last axis, the classes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["softmax"]


def _forward(x):
    # eq 51 is invariant to subtracting a per-row constant; subtracting the row max keeps
    # every exponent <= 0, so nothing overflows.
    e = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


@jax.custom_vjp
def softmax(x):
    """Eq 51: ``X^(l+1)_{r,c} = e^{X_{r,c}} / sum_{c'} e^{X_{r,c'}}``.  x: (R, C) -> (R, C).

    Backward: the corrected eq 52, ``delta^(l)_c = X^(l+1)_c (delta_c - sum_c' delta_c' X^(l+1)_c')``
    (``_softmax_bwd``).
    """
    return _forward(x)


def _softmax_fwd(x):
    y = _forward(x)
    return y, y  # residual: the output X^(l+1) (the Jacobian needs nothing else)


def _softmax_bwd(y, delta):
    """Eq 52, corrected.  With ``Y = X^(l+1)``, eq 51 differentiates (quotient rule, eq 41's
    Kronecker delta) to ``dY_{r,c'} / dX_{r,c} = Y_{r,c'} (I_{c',c} - Y_{r,c})``, so::

        delta^(l)_{r,c} = sum_{c'} delta^(l+1)_{r,c'} Y_{r,c'} (I_{c',c} - Y_{r,c})
                        = Y_{r,c} (delta^(l+1)_{r,c} - sum_{c'} delta^(l+1)_{r,c'} Y_{r,c'})

    The printed eq 52 writes ``delta_{r,c}`` (not ``delta_{r,c'}``) inside the sum over c',
    which pulls it out of the sum and collapses the result to
    ``delta_c Y_c (1 - sum_c' Y_c') = 0``.
    """
    return (y * (delta - jnp.sum(delta * y, axis=-1, keepdims=True)),)


softmax.defvjp(_softmax_fwd, _softmax_bwd)
