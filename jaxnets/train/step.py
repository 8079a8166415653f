"""Jitted, data-parallel train and eval steps.

Both take the batch as stored, ``images`` uint8 (R, C, H, W) and ``labels`` int32 (R,), and scale
the images to float32 in [0, 1] on device (a quarter of the host-to-device traffic of float32);
with ``normalize=(mean, std)`` (``config.data.normalize``) the scaled pixels are then
standardised, ``(x - mean) / std`` -- the section-6 TCN runs use MNIST's (0.1307, 0.3081), as the
original TCN's data loader does.
The batch is sharded over the mesh's ``"data"`` axis and the state replicated
(:mod:`jaxnets.train.sharding`); batch-norm statistics and the loss are means over the *global*
batch because GSPMD turns the means over R into all-reduces.

The loss is the paper's softmax cross-entropy (eq 53, averaged over the batch) from
:func:`jaxnets.layers.get_ops`, with the same ``grad`` mode ("custom" | "autodiff") as the model.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import Mesh

from jaxnets.layers import get_ops
from jaxnets.train.augment import AUGMENT_STREAM, Augment
from jaxnets.train.sharding import batch_sharding, check_batch_size, replicated, shard_batch
from jaxnets.train.state import TrainState

TrainStep = Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict]]
EvalStep = Callable[[TrainState, jax.Array, jax.Array, jax.Array], dict]


def cross_entropy_fn(grad: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(logits (R, C), onehot (R, C)) -> scalar`` batch-mean softmax cross-entropy (eq 53)."""
    return get_ops(grad).softmax_cross_entropy


def _variables(state: TrainState, params) -> dict:
    variables = {"params": params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    return variables


def _scale(images: jax.Array, normalize: tuple[float, float] | None = None) -> jax.Array:
    x = images.astype(jnp.float32) / 255.0  # uint8 (R, C, H, W) -> float32 in [0, 1]
    if normalize is None:
        return x
    mean, std = normalize
    return (x - jnp.float32(mean)) / jnp.float32(std)


def normalization(config) -> tuple[float, float] | None:
    """``config.data.normalize`` as ``(mean, std)`` of the [0, 1] pixels, or None (no standardising)."""
    value = config.get("data", {}).get("normalize", None) if hasattr(config, "get") else None
    if not value:
        return None
    if len(value) != 2 or float(value[1]) <= 0:
        raise ValueError(f"data.normalize={value!r}: expected (mean, std) with std > 0")
    return float(value[0]), float(value[1])


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    mesh: Mesh,
    *,
    grad: str = "custom",
    num_classes: int = 10,
    donate: bool = True,
    normalize: tuple[float, float] | None = None,
    augment: Augment | None = None,
) -> TrainStep:
    """``train_step(state, images, labels) -> (state, {"loss", "accuracy", "lr"})``, jitted over ``mesh``.

    loss / accuracy are of the batch *before* the update, lr is the rate the update used.
    ``augment(rng, images) -> images`` (:mod:`jaxnets.train.augment`), if given, transforms the
    uint8 batch first, with a key drawn from the state's seed and step.
    With ``donate`` the input state's buffers are reused for the output (do not touch it after).
    """
    cross_entropy = cross_entropy_fn(grad)

    def train_step(state: TrainState, images: jax.Array, labels: jax.Array):
        rng = jax.random.fold_in(state.rng, state.step)  # dropout stream of this step
        if augment is not None:
            images = augment(jax.random.fold_in(rng, AUGMENT_STREAM), images)
        x = _scale(images, normalize)  # (R, C, H, W)
        onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)  # (R, num_classes)

        def loss_fn(params):
            logits, updates = model.apply(
                _variables(state, params), x, train=True, mutable=["batch_stats"], rngs={"dropout": rng}
            )
            return cross_entropy(logits, onehot), (logits, updates)

        (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, param_updates),
            batch_stats=updates.get("batch_stats", state.batch_stats),
            opt_state=opt_state,
        )
        metrics = {
            "loss": loss,
            "accuracy": jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32)),
            "lr": jnp.asarray(schedule(state.step), jnp.float32),
        }
        return new_state, metrics

    repl, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(
        train_step,
        in_shardings=(repl, data, data),
        out_shardings=(repl, repl),
        donate_argnums=(0,) if donate else (),
    )


def make_eval_step(
    model: nn.Module,
    mesh: Mesh,
    *,
    grad: str = "custom",
    num_classes: int = 10,
    normalize: tuple[float, float] | None = None,
) -> EvalStep:
    """``eval_step(state, images, labels, mask) -> {"loss_sum", "correct", "count"}`` (inference-mode BN).

    mask (R,) float32 is 1 for real examples and 0 for padding; the sums run over real examples.
    """
    cross_entropy = cross_entropy_fn(grad)

    def eval_step(state: TrainState, images: jax.Array, labels: jax.Array, mask: jax.Array):
        logits = model.apply(_variables(state, state.params), _scale(images, normalize), train=False)  # (R, K)
        onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
        # per-example loss: the batch-mean op applied to batches of one
        per_example = jax.vmap(lambda z, y: cross_entropy(z[None], y[None]))(logits, onehot)  # (R,)
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
        return {
            "loss_sum": jnp.sum(per_example * mask),
            "correct": jnp.sum(correct * mask),
            "count": jnp.sum(mask),
        }

    repl, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(eval_step, in_shardings=(repl, data, data, data), out_shardings=repl)


def evaluate(eval_step: EvalStep, state: TrainState, split, batch_size: int, mesh: Mesh) -> dict[str, float]:
    """Mean loss and accuracy of ``state`` over a whole split (``.images`` uint8, ``.labels``).

    The last batch is zero-padded to ``batch_size`` and masked, so every batch has one shape
    (one compilation). Sums stay on device; one transfer at the end.
    """
    check_batch_size(batch_size, mesh, "eval_batch_size")
    images, labels = split.images, np.asarray(split.labels, np.int32)
    n = len(labels)
    if n == 0:
        raise ValueError("cannot evaluate on an empty split")
    totals = None
    for start in range(0, n, batch_size):
        x, y = images[start : start + batch_size], labels[start : start + batch_size]
        mask = np.ones(batch_size, np.float32)
        if len(y) < batch_size:
            pad = batch_size - len(y)
            mask[len(y) :] = 0.0
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros(pad, y.dtype)])
        sums = eval_step(state, *shard_batch((x, y, mask), mesh))
        totals = sums if totals is None else jax.tree_util.tree_map(jnp.add, totals, sums)
    totals = jax.device_get(totals)
    count = float(totals["count"])
    return {"loss": float(totals["loss_sum"]) / count, "accuracy": float(totals["correct"]) / count}
