"""Element-wise activation layers (paper §3.5, eqs 5-7, 26-27) as custom VJPs.

Any shape works; the paper's is ``X^(l), X^(l+1) in R^{R x C x H x W}`` (eq 26).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["relu", "sigmoid", "tanh"]


# ----------------------------------------------------------------------------------- ReLU
@jax.custom_vjp
def relu(x):
    """Eq 5: ``ReLU(x) = x if x >= 0 else 0``.  x: any shape (e.g. (R, C, H, W)) -> same.

    ReLU'(0) = 1: eq 5 puts ``x = 0`` in the identity branch, so this layer's derivative
    follows that branch (jax.nn.relu chooses 0 instead; ``reference.relu`` matches ours).
    """
    return jnp.where(x >= 0, x, jnp.zeros_like(x))


def _relu_fwd(x):
    y = relu(x)
    active = x >= 0  # residual: where f'(X^(l)) = 1
    return y, active


def _relu_bwd(active, delta):
    """Eq 27, ``delta^(l) = delta^(l+1) f'(X^(l))`` with, from eq 5,
    ``f'(x) = 1 if x >= 0 else 0``: the delta-error passes where the neuron was active."""
    return (jnp.where(active, delta, jnp.zeros_like(delta)),)


relu.defvjp(_relu_fwd, _relu_bwd)


# -------------------------------------------------------------------------------- sigmoid
@jax.custom_vjp
def sigmoid(x):
    """Eq 6: ``sigma(x) = 1 / (1 + e^{-x})``.  x: any shape -> same."""
    return lax.logistic(x)


def _sigmoid_fwd(x):
    y = lax.logistic(x)
    return y, y  # residual: the output X^(l+1) = sigma(X^(l))


def _sigmoid_bwd(y, delta):
    """Eq 27 with ``sigma'(x) = e^{-x} / (1 + e^{-x})^2 = sigma(x) (1 - sigma(x))``, so
    ``delta^(l) = delta^(l+1) X^(l+1) (1 - X^(l+1))`` from the saved output."""
    return (delta * y * (1 - y),)


sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)


# ----------------------------------------------------------------------------------- tanh
@jax.custom_vjp
def tanh(x):
    """Eq 7: ``tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})``.  x: any shape -> same."""
    return jnp.tanh(x)


def _tanh_fwd(x):
    y = jnp.tanh(x)
    return y, y  # residual: the output X^(l+1) = tanh(X^(l))


def _tanh_bwd(y, delta):
    """Eq 27 with ``tanh'(x) = 4 / (e^x + e^{-x})^2 = 1 - tanh(x)^2``, so
    ``delta^(l) = delta^(l+1) (1 - (X^(l+1))^2)``."""
    return (delta * (1 - y * y),)


tanh.defvjp(_tanh_fwd, _tanh_bwd)
