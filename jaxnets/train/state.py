"""The train state: everything a step reads and writes, saved whole so a resume is exact.

Randomness: every random choice of training comes from ``config.seed``: the parameter
initialisation key is ``fold_in(PRNGKey(seed), 0)``, the dropout key ``fold_in(PRNGKey(seed), 1)``
(kept in the state; each step folds in its step number), and the batch order is
``jaxnets.data.batch_at_step(split, batch_size, seed, step)``. The step number is therefore the
whole data-iterator position, and ``(state, step)`` is a complete description of a run.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

PARAMS_KEY = 0
DROPOUT_KEY = 1


@flax.struct.dataclass
class TrainState:
    """step: int32 scalar, updates done so far; params / batch_stats: the model's variable
    collections; opt_state: optax state (momentum buffers, update count); rng: uint32 (2,) key
    for dropout-like randomness (``fold_in(rng, step)`` inside the step)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array


def init_variables(model: nn.Module, seed: int, input_shape: tuple[int, ...]) -> dict:
    """``model.init`` on zeros of ``(1, *input_shape)`` (inference mode) with the seed's params key."""
    root = jax.random.PRNGKey(seed)
    x = jnp.zeros((1, *input_shape), jnp.float32)
    rngs = {"params": jax.random.fold_in(root, PARAMS_KEY), "dropout": jax.random.fold_in(root, DROPOUT_KEY)}
    return model.init(rngs, x, train=False)


def create_train_state(
    model: nn.Module, tx: optax.GradientTransformation, seed: int, input_shape: tuple[int, ...]
) -> TrainState:
    """A fresh state at step 0 for inputs of shape ``(R, *input_shape)``, e.g. (1, 28, 28)."""
    variables = init_variables(model, seed, input_shape)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=jax.random.fold_in(jax.random.PRNGKey(seed), DROPOUT_KEY),
    )


def count_params(params) -> int:
    """Number of scalars in a parameter tree (trainable parameters; batch-norm statistics excluded)."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


@jax.jit
def tree_all_finite(tree) -> jax.Array:
    """True iff every floating-point leaf of ``tree`` is finite (a bool scalar on device)."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)
