"""Classification (sections 4 and 6): digits or pixel sequences -> one of K classes.

Batches: ``{"image": uint8 (R, C, H, W), "label": int32 (R,)}``. On device the images are scaled
to [0, 1] (a quarter of the host-to-device traffic of float32) and, with ``data.normalize =
(mean, std)``, standardised -- the section-6 runs use MNIST's (0.1307, 0.3081) as the original
TCN's loader does. The loss is the paper's softmax cross-entropy (eq 53, batch mean) from
:func:`jaxnets.layers.get_ops` with the model's ``grad`` mode ("custom" | "autodiff"); the
train metric is accuracy. Evaluators: "validation" (every ``eval_every``) and "test" (once, on
the selected checkpoint), each the mean loss and accuracy over the whole split. Selection:
lowest validation loss (section 4.3).

Pixel sequences (Sequential / Permuted MNIST, section 6.3) are a host transform of the images
(:func:`jaxnets.data.sequence_task`) whose description -- with the permutation -- is part of the
training data's fingerprint, so a checkpoint trained on another permutation is refused on
resume. Augmentation (``data.augment``) is the training source's device transform. With
``data.streaming = True`` the training split is not loaded: each batch is read by index from the
prepared tfds split (an :class:`~jaxnets.data.IndexedSource`), the same examples in the same
order as in memory (tests/test_streaming.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.config import ConfigError
from jaxnets.data.batches import ArraySource, IndexedSource, eval_batches
from jaxnets.data.sources import Split
from jaxnets.data.transforms import check_augment, make_augment
from jaxnets.layers import get_ops
from jaxnets.registry import TASKS, build_model
from jaxnets.train import schema
from jaxnets.train.step import make_sum_step, sum_over_batches
from jaxnets.train.state import variables_of

DATA_SCHEMA = [
    schema.Field("data.name", "str", lambda v: v in ("mnist", "fashion_mnist", "mnist_sample"),
                 "one of ['mnist', 'fashion_mnist', 'mnist_sample']"),
    schema.Field("data.validation_size", "int", lambda v: v >= 0, ">= 0", required=False),
    schema.Field("data.limit", "int", lambda v: v >= 0, ">= 0 (0: no limit)", required=False),
    schema.Field("data.sequence", "str", lambda v: v in ("", "sequential", "permuted"),
                 "one of ['', 'sequential', 'permuted']", required=False),
    schema.Field("data.image_size", "int", lambda v: v >= 1 and 28 % v == 0, "a divisor of 28", required=False),
    schema.Field("data.normalize", "list", lambda v: len(v) == 2 and float(v[1]) > 0, "(mean, std) with std > 0",
                 required=False),
    schema.Field("data.streaming", "bool", required=False),
    schema.Field("model.num_classes", "int", lambda v: v >= 2, ">= 2", required=False),
]


def scale(images: jax.Array, normalize: tuple[float, float] | None) -> jax.Array:
    """uint8 (R, C, H, W) -> float32 in [0, 1], then ``(x - mean) / std`` if ``normalize``."""
    x = images.astype(jnp.float32) / 255.0
    if normalize is None:
        return x
    mean, std = normalize
    return (x - jnp.float32(mean)) / jnp.float32(std)


@dataclasses.dataclass(frozen=True, eq=False)
class SplitEvaluator:
    """Mean loss and accuracy over a whole split (padded, masked batches; sums stay on device)."""

    task: Any
    arrays: dict
    batch_size: int
    mesh: Any

    def run(self, state) -> dict[str, float]:
        step = self.task.sum_step(self.mesh)
        sums = sum_over_batches(step, state, eval_batches(self.arrays, self.batch_size), self.mesh)
        return {"loss": sums["loss_sum"] / sums["count"], "accuracy": sums["correct"] / sums["count"]}


@dataclasses.dataclass(eq=False)
class ClassificationTask:
    """See the module docstring. ``splits``: ``{"train" | "validation" | "test": (images, labels)}``."""

    model: Any
    train_data: ArraySource
    image_shape: tuple[int, ...]
    num_classes: int = 10
    grad: str = "custom"
    normalize: tuple[float, float] | None = None
    selection: tuple[str, str] = ("validation/loss", "min")
    evaluators: dict = dataclasses.field(default_factory=dict)
    final_evaluators: dict = dataclasses.field(default_factory=dict)

    def example_batch(self) -> dict[str, np.ndarray]:
        return {"image": np.zeros((1, *self.image_shape), np.uint8), "label": np.zeros((1,), np.int32)}

    def init(self, rngs, batch) -> dict:
        return self.model.init(rngs, scale(batch["image"], self.normalize), train=False)

    def loss_fn(self, params, model_state, batch, rng, train: bool):
        x = scale(batch["image"], self.normalize)  # (R, C, H, W)
        onehot = jax.nn.one_hot(batch["label"], self.num_classes, dtype=jnp.float32)  # (R, K)
        logits, updates = self.model.apply({"params": params, **model_state}, x, train=train,
                                           mutable=["batch_stats"], rngs={"dropout": rng})
        loss = get_ops(self.grad).softmax_cross_entropy(logits, onehot)
        accuracy = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
        return loss, {"accuracy": accuracy}, {**model_state, **updates}

    def sum_step(self, mesh):
        """The jitted :meth:`eval_sums` for ``mesh``, one per task: its evaluators (validation,
        test) share one compiled program."""
        steps = self.__dict__.setdefault("_sum_steps", {})
        if mesh not in steps:
            steps[mesh] = make_sum_step(self.eval_sums, mesh)
        return steps[mesh]

    def eval_sums(self, state, batch) -> dict[str, jax.Array]:
        """Sums over the real rows (``batch["mask"]``) of per-example loss and of correct predictions."""
        logits = self.model.apply(variables_of(state), scale(batch["image"], self.normalize), train=False)  # (R, K)
        onehot = jax.nn.one_hot(batch["label"], self.num_classes, dtype=jnp.float32)
        ce = get_ops(self.grad).softmax_cross_entropy
        per_example = jax.vmap(lambda z, y: ce(z[None], y[None]))(logits, onehot)  # (R,): the batch-mean op on batches of one
        correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
        mask = batch["mask"]
        return {"loss_sum": jnp.sum(per_example * mask), "correct": jnp.sum(correct * mask), "count": jnp.sum(mask)}


def normalization(data_config) -> tuple[float, float] | None:
    value = data_config.get("normalize", None)
    return (float(value[0]), float(value[1])) if value else None


def _load(config):
    """The digit splits of ``config.data`` through the pixel-sequence transform if one is set, and
    that transform; with ``data.streaming`` the training split stays on disk (a StreamedSplit)."""
    from jaxnets.data import load_digits, sequence_task

    d = config.data
    try:
        digits = load_digits(d.name, data_dir=d.get("data_dir", ""), idx_dir=d.get("idx_dir", ""),
                             validation_size=d.get("validation_size", 5000), limit=d.get("limit", 0), seed=config.seed,
                             stream_train=bool(d.get("streaming", False)))
    except OSError as e:  # e.g. data.data_dir is a file
        raise ConfigError(f"data: cannot use {e.filename or d.get('data_dir', '')}: {e.strerror or e}") from None
    sequence = sequence_task(d, config.seed)
    if sequence is None:
        return digits, None
    if isinstance(digits.train, Split):
        return sequence.apply(digits), sequence
    return dataclasses.replace(digits, validation=sequence.apply_split(digits.validation),
                               test=sequence.apply_split(digits.test),
                               source=f"{digits.source}; {sequence.summary()}"), sequence


def _train_source(config, digits, sequence, spec) -> ArraySource | IndexedSource:
    """The training batches: arrays in memory, or read by index from the prepared split."""
    description = {"augment": spec, "sequence": sequence.describe() if sequence else None}
    common = dict(summary=str(digits.source), device_transform=make_augment(spec), transform_description=description)
    train = digits.train
    if isinstance(train, Split):
        return ArraySource({"image": train.images, "label": train.labels}, config.batch_size, config.seed, **common)
    host = None if sequence is None else (lambda b: {**b, "image": sequence.apply_images(b["image"])})
    return IndexedSource(train.read, len(train), config.batch_size, config.seed, identity=train.identity(),
                         host_transform=host, **common)


@TASKS.register("classification")
def make_classification(config, mesh) -> ClassificationTask:
    """The classification task of ``config`` (model, data, augmentation) on ``mesh``."""
    schema.check(config, DATA_SCHEMA)
    model = build_model(config.model)
    digits, sequence = _load(config)
    image_shape = tuple(digits.validation.images.shape[1:])
    try:
        spec = check_augment(config.data.get("augment", None), image_shape)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if sequence is not None and (spec["hflip"] or spec["max_shift"]):
        raise ConfigError("data.augment: applies to images; it cannot be combined with data.sequence")
    num_classes = int(config.model.get("num_classes", 10))
    if num_classes < digits.num_classes:
        raise ConfigError(f"model.num_classes={num_classes}: the data have {digits.num_classes} classes")
    if len(digits.train) < config.batch_size:
        raise ConfigError(f"batch_size={config.batch_size}: larger than the {len(digits.train)} training examples")
    source = _train_source(config, digits, sequence, spec)
    task = ClassificationTask(model=model, train_data=source, image_shape=image_shape,
                              num_classes=int(config.model.get("num_classes", 10)),
                              grad=config.model.get("grad", "custom"), normalize=normalization(config.data))
    for name, split, into in (("validation", digits.validation, task.evaluators), ("test", digits.test, task.final_evaluators)):
        if len(split) == 0:
            raise ConfigError(f"data: the {name} split of {digits.source} is empty")
        into[name] = SplitEvaluator(task, {"image": split.images, "label": split.labels}, int(config.eval_batch_size), mesh)
    return task
