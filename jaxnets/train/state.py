"""The train state: everything a step reads and writes, saved whole so a resume is exact.

Randomness: every random choice of training comes from ``config.seed``: the parameter
initialisation key is ``fold_in(PRNGKey(seed), 0)``, the step key ``fold_in(PRNGKey(seed), 1)``
(kept in the state; each step folds in its step number: dropout, and the data transforms that
run on device), and the batch order is the data source's pure function of ``(seed, step)``.
The step number is therefore the whole data-iterator position, and ``(state, step)`` is a
complete description of a run.
"""

from __future__ import annotations

import hashlib
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

PARAMS_KEY = 0
STEP_KEY = 1


@flax.struct.dataclass
class TrainState:
    """step: int32 scalar, updates done so far; params: the trainable variables; model_state:
    the model's other variable collections (e.g. ``{"batch_stats": ...}``, ``{}`` for none);
    opt_state: optax state; rng: uint32 (2,) key, ``fold_in(rng, step)`` inside the step."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array


def init_rngs(seed: int) -> dict[str, jax.Array]:
    """The keys ``model.init`` gets: ``{"params": fold_in(root, 0), "dropout": fold_in(root, 1)}``."""
    root = jax.random.PRNGKey(seed)
    return {"params": jax.random.fold_in(root, PARAMS_KEY), "dropout": jax.random.fold_in(root, STEP_KEY)}


def create_train_state(variables: dict, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """A fresh state at step 0 from a model's initial ``variables`` (``{"params": ..., ...}``)."""
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state={k: v for k, v in variables.items() if k != "params"},
        opt_state=tx.init(params),
        rng=jax.random.fold_in(jax.random.PRNGKey(seed), STEP_KEY),
    )


def initial_state(task, tx: optax.GradientTransformation, seed: int, mesh) -> TrainState:
    """The state at step 0 of ``task``: ``task.init`` on its example batch with the seed's keys,
    jitted and replicated over ``mesh`` (what the driver starts from, and restores into)."""
    from jaxnets.train.sharding import replicated

    example = task.example_batch()
    init = lambda: create_train_state(task.init(init_rngs(seed), example), tx, seed)  # noqa: E731
    return jax.jit(init, out_shardings=replicated(mesh))()


def variables_of(state: TrainState, params=None) -> dict:
    """``{"params": params, **model_state}`` for ``model.apply`` (params default to the state's)."""
    return {"params": state.params if params is None else params, **state.model_state}


@jax.jit
def tree_all_finite(tree) -> jax.Array:
    """True iff every floating-point leaf of ``tree`` is finite (a bool scalar on device)."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def tree_sha256(tree) -> str:
    """sha256 over every leaf's dtype, shape and bytes, in tree order (the checkpoint checksum).

    Reads one addressable copy of each array, so it works on replicated multi-host state.
    """
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.Array):
            leaf = leaf.addressable_data(0)
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def tree_signature(tree) -> str:
    """sha256 (16 hex digits) of a tree's structure: every leaf's path, shape and dtype."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        h.update(f"{jax.tree_util.keystr(path)}{tuple(np.shape(leaf))}{np.dtype(leaf.dtype).str};".encode())
    return h.hexdigest()[:16]
