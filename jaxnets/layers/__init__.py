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
from jaxnets.layers.registry import CUSTOM as _CUSTOM_FUNCS
from jaxnets.layers.registry import OP_NAMES
from jaxnets.layers.shapes import (
    causal_conv1d_output_shape,
    conv_output_shape,
    pool_output_shape,
)

# The custom ops as attributes of this package (``jaxnets.layers.conv2d`` ...): the one list is
# the layer modules' ``__all__`` (``registry``), so no op is named again here.
globals().update(_CUSTOM_FUNCS)

GRAD_MODES = ("custom", "autodiff")

_CUSTOM = types.SimpleNamespace(**_CUSTOM_FUNCS)
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
