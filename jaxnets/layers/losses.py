"""Loss functions (paper eqs 8, 16, 53, 54) as custom VJPs.

Shapes: predictions and targets are (R, C) -- R examples, C classes / outputs -- and every
loss returns a scalar.  For (R, ..., C) inputs every leading position counts as an example
(``R`` below is then the product of the leading sizes).  Targets ``y`` are one-hot or
probability rows; the rules below are exact for any ``y`` (its cotangent is returned too).

**Batch mean.**  The cross-entropy losses divide eq 53's sum by ``R``.  This matches the
PyTorch runs reported in the paper's Table 3 (losses such as 0.026 are per-example means,
PyTorch's default reduction; eq 53's sum over a batch of 50 would be 50 times larger) and
makes the gradient's scale, hence a good learning rate, independent of the batch size.  Eq 8 (MSE)
already divides by ``R N``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.layers.shapes import check_same_shape

__all__ = ["cross_entropy", "softmax_cross_entropy", "mse"]


def _examples(a) -> int:
    n = 1
    for d in a.shape[:-1]:
        n *= d
    return n


# -------------------------------------------------------------------------- cross-entropy
@jax.custom_vjp
def _cross_entropy(p, y):
    return -jnp.sum(y * jnp.log(p)) / _examples(p)


def _cross_entropy_fwd(p, y):
    return _cross_entropy(p, y), (p, y)  # residuals: prediction p = yhat, target y


def _cross_entropy_bwd(res, g):
    """Eq 54 with the batch mean: ``L = -(1/R) sum_{r,c} y_rc log p_rc`` gives
    ``dL/dp_rc = -y_rc / (R p_rc)`` (and ``dL/dy_rc = -log(p_rc) / R``), times the incoming
    scalar cotangent ``g``."""
    p, y = res
    r = _examples(p)
    return (-g / r) * y / p, (-g / r) * jnp.log(p)


_cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def cross_entropy(p, y):
    """Eq 53 / R: ``L = -(1/R) sum_{r,c} y_rc log p_rc``.  p (softmax output), y: (R, C) -> ().

    Backward: eq 54 / R, ``delta_rc = -y_rc / (R p_rc)``.
    """
    check_same_shape("cross_entropy", ("p", "y"), p.shape, y.shape)
    return _cross_entropy(p, y)


# ---------------------------------------------------------------- fused softmax + CE
def _log_softmax(z):
    m = jnp.max(z, axis=-1, keepdims=True)
    return z - m - jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))


@jax.custom_vjp
def _softmax_cross_entropy(logits, y):
    return -jnp.sum(y * _log_softmax(logits)) / _examples(logits)


def _softmax_cross_entropy_fwd(logits, y):
    logp = _log_softmax(logits)
    loss = -jnp.sum(y * logp) / _examples(logits)
    return loss, (logp, y)  # residuals: log-softmax (log yhat) and the target y


def _softmax_cross_entropy_bwd(res, g):
    """Eqs 52 and 54 composed.  With ``yhat = softmax(z)`` (eq 51) and
    ``L = -(1/R) sum y log yhat``, the corrected eq 52 applied to eq 54's
    ``delta = -y / (R yhat)`` gives::

        dL/dz_rc = yhat_rc (delta_rc - sum_c' delta_rc' yhat_rc') = (yhat_rc sum_c' y_rc' - y_rc) / R

    which is the familiar ``(yhat - y) / R`` for one-hot / probability rows.  Also
    ``dL/dy_rc = -log yhat_rc / R``.  No division by ``yhat``, so it is stable when a class
    probability underflows.
    """
    logp, y = res
    r = _examples(logp)
    yhat = jnp.exp(logp)
    dz = (yhat * jnp.sum(y, axis=-1, keepdims=True) - y) * (g / r)
    return dz, (-g / r) * logp


_softmax_cross_entropy.defvjp(_softmax_cross_entropy_fwd, _softmax_cross_entropy_bwd)


def softmax_cross_entropy(logits, y):
    """``cross_entropy(softmax(logits), y)`` computed stably with log-sum-exp.

    logits, y: (R, C) -> ().  Backward: ``(softmax(logits) - y) / R`` for rows of y summing to 1.
    """
    check_same_shape("softmax_cross_entropy", ("logits", "y"), logits.shape, y.shape)
    return _softmax_cross_entropy(logits, y)


# --------------------------------------------------------------------------------- MSE
@jax.custom_vjp
def _mse(yhat, y):
    d = yhat - y
    return jnp.sum(d * d) / d.size


def _mse_fwd(yhat, y):
    d = yhat - y
    return jnp.sum(d * d) / d.size, d  # residual: the error yhat - y


def _mse_bwd(d, g):
    """Eq 16: ``delta^(L) = dL/dyhat = 2 (yhat - y) / (R N^(L))``; ``dL/dy = -delta^(L)``."""
    dyhat = (2.0 * g / d.size) * d
    return dyhat, -dyhat


_mse.defvjp(_mse_fwd, _mse_bwd)


def mse(yhat, y):
    """Eq 8: ``L = (1/(R N)) sum_{r,i} (yhat_ri - y_ri)^2``.  yhat, y: (R, N) -> ().

    Backward: eq 16.
    """
    check_same_shape("mse", ("yhat", "y"), yhat.shape, y.shape)
    return _mse(yhat, y)
