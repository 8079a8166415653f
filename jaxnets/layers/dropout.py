"""Inverted dropout (paper §6.3.3: "Dropout randomly sets an activation to be equal to zero
during training") as a custom VJP.

During training each entry is kept with probability ``1 - rate`` and the kept entries are
scaled by ``1 / (1 - rate)``, so the expected activation is unchanged and inference
(``deterministic=True``) is the identity.  The mask comes from the caller's PRNG key:
``keep = jax.random.bernoulli(key, 1 - rate, x.shape)`` -- the same key gives the same mask
in ``reference.dropout``.  Any shape; for the TCN x is (R, C, T).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxnets.layers.shapes import check_dropout_args

__all__ = ["dropout"]


def _forward(x, keep, scale):
    return jnp.where(keep, x * scale, jnp.zeros_like(x))


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _dropout(x, keep, scale):
    return _forward(x, keep, scale)


def _dropout_fwd(x, keep, scale):
    # residual: the boolean mask (1 byte per entry; the scale is static)
    return _forward(x, keep, scale), keep


def _dropout_bwd(scale, keep, delta):
    """``X^(l+1) = X^(l) * M / (1 - rate)`` entrywise, with the fixed 0/1 mask M, so::

        delta^(l) = delta^(l+1) * M / (1 - rate)

    -- the delta-error flows back only through the kept entries, scaled like the forward
    pass.  The mask is not differentiable (``None``: no cotangent).
    """
    return _forward(delta, keep, scale), None


_dropout.defvjp(_dropout_fwd, _dropout_bwd)


def dropout(x, rate, key, deterministic=False):
    """Inverted dropout: ``x * M / (1 - rate)``, ``M ~ Bernoulli(1 - rate)`` entrywise.

    x: any shape; rate: float in [0, 1) (static); key: a PRNG key (may be None when the op
    is the identity); deterministic: bool (static).  ``deterministic=True`` or ``rate == 0``
    returns x unchanged.  Backward: ``_dropout_bwd``.  Bad arguments raise ``ValueError``
    (``shapes.check_dropout_args``).
    """
    rate = check_dropout_args(rate, deterministic, key)
    if deterministic or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return _dropout(x, keep, 1.0 / (1.0 - rate))
