"""Toy detection: one bright square (or none) on noise; a small conv net regresses its box and a score.

Proof that a detector fits the driver unchanged: batches ``{"image": uint8 (R, 1, S, S), "box":
float32 (R, 4) (x1, y1, x2, y2) pixels, "present": float32 (R,)}``; the training source flips
images *and* boxes (:mod:`jaxnets.data.transforms`); selection by validation mean IoU.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxnets.data.batches import ArraySource, eval_batches
from jaxnets.data.transforms import make_augment
from jaxnets.nn import Conv2d, Dense, relu
from jaxnets.registry import TASKS
from jaxnets.train import schema
from jaxnets.train.state import variables_of
from jaxnets.train.step import make_sum_step, sum_over_batches


def make_squares(n: int, size: int, seed: int, split: int) -> dict[str, np.ndarray]:
    """n noise images, 3/4 with one square of side 3..size/2 at value 200..255; its box, presence."""
    rng = np.random.default_rng((seed, split))
    image = rng.integers(0, 60, (n, 1, size, size)).astype(np.uint8)
    side = rng.integers(3, size // 2 + 1, n)
    x1, y1 = (rng.integers(0, size - side + 1) for _ in range(2))
    present = rng.random(n) < 0.75
    for i in np.flatnonzero(present):
        image[i, 0, y1[i] : y1[i] + side[i], x1[i] : x1[i] + side[i]] = rng.integers(200, 256)
    box = np.stack([x1, y1, x1 + side, y1 + side], 1).astype(np.float32) * present[:, None]
    return {"image": image, "box": box, "present": present.astype(np.float32)}


class BoxNet(nn.Module):
    """x (R, 1, S, S) in [0, 1] -> (score logit (R,), box (R, 4) in pixels): 2 convs, a dense layer."""

    size: int = 16

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = relu(Conv2d(8, 3, padding=1)(x))  # (R, 8, S, S)
        h = relu(Conv2d(16, 3, stride=2, padding=1)(h))  # (R, 16, S/2, S/2)
        out = Dense(5)(h.reshape(h.shape[0], -1))  # (R, 5)
        return out[:, 0], jax.nn.sigmoid(out[:, 1:]) * self.size


def pixels(image) -> jax.Array:
    """uint8 (R, 1, S, S) -> float32 in [0, 1]."""
    return jnp.asarray(image, jnp.float32) / 255.0


def iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """IoU of boxes (..., 4) (x1, y1, x2, y2), continuous coordinates."""
    w = jnp.clip(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    h = jnp.clip(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])  # noqa: E731
    return w * h / jnp.maximum(area(a) + area(b) - w * h, 1e-6)


@dataclasses.dataclass(eq=False)
class ToyBoxes:
    model: Any
    train_data: ArraySource
    val: dict
    mesh: Any
    selection = ("validation/iou", "max")
    final_evaluators = {}

    def __post_init__(self):
        self.evaluators, self._sums = {"validation": self}, make_sum_step(self.sums, self.mesh)

    def example_batch(self):
        return {k: v[:1] for k, v in self.val.items()}

    def init(self, rngs, batch):
        return self.model.init(rngs, pixels(batch["image"]))

    def loss_fn(self, params, model_state, batch, rng, train):
        score, box = self.model.apply({"params": params}, pixels(batch["image"]))
        p = batch["present"]
        bce = jnp.mean(jnp.logaddexp(0.0, score) - p * score)  # logistic loss on presence
        err = jnp.abs(box - batch["box"]) / self.model.size  # (R, 4), image widths
        l1 = jnp.where(err < 0.1, 0.5 * err**2 / 0.1, err - 0.05).sum(-1)  # smooth L1
        box_loss = jnp.sum(l1 * p) / jnp.maximum(jnp.sum(p), 1.0)
        return bce + box_loss, {"box_loss": box_loss}, model_state

    def sums(self, state, batch):
        score, box = self.model.apply(variables_of(state), pixels(batch["image"]))
        pos, m = batch["present"] * batch["mask"], batch["mask"]
        overlap = iou(box, batch["box"])
        return {"iou": jnp.sum(overlap * pos), "hit": jnp.sum((overlap >= 0.5) * (score > 0) * pos),
                "correct": jnp.sum(((score > 0) == (batch["present"] > 0)) * m), "pos": jnp.sum(pos), "n": jnp.sum(m)}

    def run(self, state):
        s = sum_over_batches(self._sums, state, eval_batches(self.val, 64), self.mesh)
        return {"iou": s["iou"] / s["pos"], "hit_rate": s["hit"] / s["pos"], "presence_accuracy": s["correct"] / s["n"]}


SCHEMA = [schema.Field("data.train_size", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("data.validation_size", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("data.image_size", "int", lambda v: 8 <= v <= 256, "in [8, 256]"),
          schema.Field("data.hflip", "bool")]


@TASKS.register("toy_boxes")
def make_toy_boxes(config, mesh) -> ToyBoxes:
    schema.check(config, SCHEMA)
    d = config.data
    train = make_squares(d.train_size, d.image_size, config.seed, 0)
    spec = {"hflip": bool(d.hflip), "max_shift": 0}
    source = ArraySource(train, config.batch_size, config.seed, summary=f"{d.train_size} toy squares",
                         device_transform=make_augment(spec), transform_description=spec)
    val = make_squares(d.validation_size, d.image_size, config.seed, 1)
    return ToyBoxes(BoxNet(size=d.image_size), source, val, mesh)
