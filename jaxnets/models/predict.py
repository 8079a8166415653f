"""``predict(model, variables, x)``: the class probabilities of any classifier of this project.

Softmax (eq 51) of the logits in inference mode, computed with the model's own ``grad`` mode
(``layers.get_ops``), for the section-4 models and the TCN sequence classifier alike.
"""

from __future__ import annotations

import jax

from jaxnets import layers


def grad_mode(model) -> str:
    """The ``grad`` field of ``model`` ("custom" | "autodiff"), or of the TCN it wraps."""
    inner = getattr(model, "tcn", model)
    return getattr(inner, "grad", "custom")


def predict(model, variables, x: jax.Array) -> jax.Array:
    """Softmax probabilities (R, K) of ``model`` on ``x``, in inference mode."""
    return layers.get_ops(grad_mode(model)).softmax(model.apply(variables, x, train=False))
