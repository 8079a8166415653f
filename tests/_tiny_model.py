"""A tiny NCHW model and random digit-like data for the training-stack tests (not part of the package)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class TinyNet(nn.Module):
    """x (R, 1, H, W) in [0, 1] -> logits (R, num_classes): conv 3×3/2 -> BN -> ReLU -> dense."""

    num_classes: int = 10
    channels: int = 4
    poison: bool = False  # if True, a batch whose pixels are all 255 gives NaN logits

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = jnp.transpose(x, (0, 2, 3, 1))  # (R, H, W, C)
        h = nn.Conv(self.channels, (3, 3), strides=(2, 2), padding="VALID")(h)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        h = nn.relu(h)
        logits = nn.Dense(self.num_classes)(h.reshape(h.shape[0], -1))  # (R, num_classes)
        if self.poison:
            logits = logits * jnp.where(jnp.all(x == 1.0), jnp.nan, 1.0)
        return logits


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, 1, H, W)
    labels: np.ndarray  # int32 (N,)


@dataclasses.dataclass(frozen=True)
class Digits:
    train: Split
    validation: Split
    test: Split
    source: str = "random test data"


def random_digits(n_train: int = 96, n_val: int = 40, n_test: int = 40, size: int = 8, seed: int = 0) -> Digits:
    """Learnable random data: the label is the brightest of 10 fixed pixel groups."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.int32)
        images = rng.integers(0, 100, (n, 1, size, size)).astype(np.uint8)
        flat = images.reshape(n, -1)
        flat[np.arange(n), labels * (size * size // 10)] = 255
        return Split(flat.reshape(n, 1, size, size), labels)

    return Digits(split(n_train), split(n_val), split(n_test))


def make_task(config, mesh, data: Digits | None = None, poison: bool = False, transform=None):
    """The classification task of jaxnets on TinyNet and random digits (sources as the real one builds them)."""
    from jaxnets.data import ArraySource
    from jaxnets.data.transforms import check_augment, make_augment
    from jaxnets.tasks.classification import ClassificationTask, SplitEvaluator

    data = random_digits() if data is None else data
    spec = check_augment(config.data.get("augment", None))
    source = ArraySource({"image": data.train.images, "label": data.train.labels}, config.batch_size, config.seed,
                         summary=data.source, device_transform=make_augment(spec), transform_description=spec)
    if transform is not None:  # e.g. a poisoned batch stream
        source.batch_at_step = transform(source.batch_at_step)
    task = ClassificationTask(model=TinyNet(poison=poison), train_data=source, image_shape=data.train.images.shape[1:])
    task.evaluators["validation"] = SplitEvaluator(task, {"image": data.validation.images, "label": data.validation.labels},
                                                   config.eval_batch_size, mesh)
    task.final_evaluators["test"] = SplitEvaluator(task, {"image": data.test.images, "label": data.test.labels},
                                                   config.eval_batch_size, mesh)
    return task
