"""The jitted, data-parallel train step and the masked evaluation sums -- for any task.

Batches are dicts of arrays with the batch axis first. The batch is sharded over the mesh's
``"data"`` axis and the state replicated (:mod:`jaxnets.train.sharding`), so means over the
batch inside the task's loss (the loss itself, batch-norm statistics) are means over the
*global* batch: GSPMD turns them into all-reduces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxnets.train.sharding import batch_sharding, replicated, shard_batch
from jaxnets.train.state import TrainState

#: fold_in constant that separates the on-device data-transform stream from dropout.
TRANSFORM_STREAM = 0x41554721

Batch = dict[str, jax.Array]


def make_train_step(task, tx: optax.GradientTransformation, mesh: Mesh, *, schedule=None, donate: bool = True):
    """``train_step(state, batch) -> (state, metrics)``, jitted over ``mesh``.

    ``metrics`` holds ``"loss"`` and the task's metrics of the batch *before* the update, and
    ``"lr"`` (the rate the update used) when ``schedule`` is given. The step key is
    ``fold_in(state.rng, state.step)``; the train source's ``device_transform(key, batch)``,
    if it has one (augmentation), gets ``fold_in(key, TRANSFORM_STREAM)`` and runs first.
    With ``donate`` the input state's buffers are reused for the output (do not touch it after).
    """
    transform = getattr(task.train_data, "device_transform", None)

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        if transform is not None:
            batch = transform(jax.random.fold_in(rng, TRANSFORM_STREAM), batch)

        def loss_fn(params):
            loss, metrics, model_state = task.loss_fn(params, state.model_state, batch, rng, True)
            return loss, (metrics, model_state)

        (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            model_state=model_state,
            opt_state=opt_state,
        )
        out = {"loss": loss, **metrics}
        if schedule is not None:
            out["lr"] = jnp.asarray(schedule(state.step), jnp.float32)
        return new_state, out

    repl = replicated(mesh)
    return jax.jit(
        train_step,
        in_shardings=(repl, batch_sharding(mesh)),
        out_shardings=(repl, repl),
        donate_argnums=(0,) if donate else (),
    )


def make_sum_step(sums_fn: Callable[[TrainState, Batch], dict], mesh: Mesh):
    """Jit ``sums_fn(state, batch) -> {name: scalar sum over the batch's real rows}`` over ``mesh``."""
    return jax.jit(sums_fn, in_shardings=(replicated(mesh), batch_sharding(mesh)), out_shardings=replicated(mesh))


def sum_over_batches(sum_step, state: TrainState, batches: Iterable[dict], mesh: Mesh) -> dict[str, float]:
    """Add ``sum_step``'s outputs over host ``batches`` (each sharded here); one transfer at the end."""
    totals = None
    for batch in batches:
        sums = sum_step(state, shard_batch(batch, mesh))
        totals = sums if totals is None else jax.tree_util.tree_map(jnp.add, totals, sums)
    if totals is None:
        raise ValueError("cannot evaluate on an empty split")
    return {k: float(v) for k, v in jax.device_get(totals).items()}
