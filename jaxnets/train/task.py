"""The contract between the driver (:mod:`jaxnets.train.loop`) and one kind of training.

The driver knows nothing of labels, boxes or words: it initialises a model, steps an optimizer
on the task's loss, runs the task's evaluators, keeps the checkpoint the task's selection rule
prefers, and writes what the evaluators return. A task supplies:

``model``
    a ``flax.linen`` module (its ``init``/``apply`` are pure functions of explicit variables --
    the design this project keeps: every array that changes lives in the state the driver saves).
``train_data``
    a :class:`~jaxnets.data.batches.DataSource`: ``batch_at_step(step) -> dict`` of host
    arrays, batch axis first, a pure function of ``(seed, step)``; ``describe()`` -> a JSON
    fingerprint the driver saves with each checkpoint and compares on resume; optionally
    ``device_transform(key, batch) -> batch`` (augmentation, run inside the jitted step).
``example_batch() -> dict``
    a batch like the training ones (host arrays, batch axis first): what ``init`` is traced on.
``init(rngs, batch) -> variables``
    the model's initial variables (``{"params": ..., "batch_stats": ...}``).
``loss_fn(params, model_state, batch, rng, train) -> (loss, metrics, new_model_state)``
    a scalar loss, a dict of scalar metrics of the batch (averaged over each log window) and the
    updated non-trainable collections; traced inside the jitted, sharded step.
``evaluators`` / ``final_evaluators``
    ``{name: evaluator}``, each with ``run(state) -> {metric: float}``. ``evaluators`` run every
    ``config.eval_every`` steps and at the last step (e.g. "validation"); ``final_evaluators``
    run once, on the selected checkpoint (e.g. "test").
``selection``
    ``("<evaluator>/<metric>", "min" | "max")``: which checkpoint is "best", e.g.
    ``("validation/loss", "min")`` or a detector's ``("validation/ap_hard", "max")``.

Worked example -- :mod:`jaxnets.tasks.toy_boxes` (one bright square per image, a small conv net
regressing its box): ``example_batch`` is a batch of ``{"image", "box", "present"}``; ``loss_fn``
is a logistic loss on ``present`` plus a smooth-L1 box loss on the images that have a square;
its ``validation`` evaluator decodes every image and reports mean IoU and the hit rate (IoU ≥
0.5); ``selection = ("validation/iou", "max")``; its training source flips images and boxes
together. It trains with ``jaxnets train experiments/toy/boxes.py`` and nothing in
``jaxnets/train`` was changed to admit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax

from jaxnets.train.state import TrainState

SELECTION_MODES = ("min", "max")


@runtime_checkable
class Evaluator(Protocol):
    def run(self, state: TrainState) -> dict[str, float]: ...


@runtime_checkable
class Task(Protocol):
    model: Any
    train_data: Any
    evaluators: Mapping[str, Evaluator]
    final_evaluators: Mapping[str, Evaluator]
    selection: tuple[str, str]

    def example_batch(self) -> dict[str, Any]: ...

    def init(self, rngs: dict[str, jax.Array], batch: dict[str, Any]) -> dict: ...

    def loss_fn(self, params, model_state, batch, rng, train: bool) -> tuple[jax.Array, dict, Any]: ...


def check_task(task) -> None:
    """Raise TypeError / ValueError naming what a task object lacks or gets wrong."""
    missing = [n for n in ("model", "train_data", "evaluators", "final_evaluators", "selection",
                           "example_batch", "init", "loss_fn") if not hasattr(task, n)]
    if missing:
        raise TypeError(f"{type(task).__name__} is not a Task: it lacks {missing}")
    metric, mode = task.selection
    name = metric.split("/", 1)[0]
    if mode not in SELECTION_MODES or "/" not in metric or name not in task.evaluators:
        raise ValueError(
            f"task selection {task.selection!r}: expected ('<evaluator>/<metric>', 'min'|'max') "
            f"with an evaluator of {sorted(task.evaluators)}"
        )
    clash = set(task.evaluators) & (set(task.final_evaluators) | {"train"})
    if clash:
        raise ValueError(f"evaluator names {sorted(clash)} are used twice (or as 'train')")
