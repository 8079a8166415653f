"""The paper's layers as pure functions with hand-derived backward passes (``jax.custom_vjp``).

Layout is the paper's NCHW: activations ``(R, C, H, W)``, conv kernels ``(C', C, kh, kw)``,
dense weights ``(N, N')``; the temporal layers (§6) use ``(R, C, T)`` and kernels ``(C', C, k)``.  Each op's ``_bwd`` docstring derives its rule and cites the
paper's equations; ``reference`` holds plain ``jnp`` versions with the same signatures, which
``jax.grad`` differentiates.  ``get_ops("custom" | "autodiff")`` picks one set; the Flax
modules in ``jaxnets.nn`` call layers only through it.

No Flax here: parameters live in ``jaxnets.nn``.
"""

from __future__ import annotations

import types

from jaxnets.layers import reference
from jaxnets.layers.activation import relu, sigmoid, tanh
from jaxnets.layers.conv import conv2d
from jaxnets.layers.dense import dense
from jaxnets.layers.dropout import dropout
from jaxnets.layers.losses import cross_entropy, mse, softmax_cross_entropy
from jaxnets.layers.norm import batch_norm, batch_norm_inference, update_running_stats
from jaxnets.layers.pool import max_pool2d
from jaxnets.layers.shapes import (
    causal_conv1d_output_shape,
    conv_output_shape,
    pool_output_shape,
)
from jaxnets.layers.softmax import softmax
from jaxnets.layers.temporal import causal_conv1d
from jaxnets.layers.weight_norm import weight_norm

OP_NAMES = (
    "dense",
    "conv2d",
    "relu",
    "sigmoid",
    "tanh",
    "max_pool2d",
    "batch_norm",
    "batch_norm_inference",
    "update_running_stats",
    "softmax",
    "cross_entropy",
    "softmax_cross_entropy",
    "mse",
    "causal_conv1d",
    "weight_norm",
    "dropout",
)

GRAD_MODES = ("custom", "autodiff")

_CUSTOM = types.SimpleNamespace(**{name: globals()[name] for name in OP_NAMES})
_AUTODIFF = types.SimpleNamespace(**{name: getattr(reference, name) for name in OP_NAMES})


def get_ops(grad: str) -> types.SimpleNamespace:
    """The layer functions, by how their gradients are computed.

    ``grad="custom"``: the hand-derived custom VJPs of this package (the paper's equations);
    ``grad="autodiff"``: the plain ``jnp`` references in ``reference``, differentiated by JAX.
    Both namespaces have the same attributes (``OP_NAMES``) with the same signatures.
    """
    if grad == "custom":
        return _CUSTOM
    if grad == "autodiff":
        return _AUTODIFF
    raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}")


__all__ = [
    *OP_NAMES,
    "OP_NAMES",
    "GRAD_MODES",
    "get_ops",
    "reference",
    "conv_output_shape",
    "pool_output_shape",
    "causal_conv1d_output_shape",
]
