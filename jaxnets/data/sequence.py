"""Pixel-sequence tasks of section 6.3: Sequential MNIST (SeqMNIST) and Permuted MNIST (PMNIST).

SeqMNIST: "A model is sequentially given the pixels in the image, one by one, as a sequence of
size 784, and is then asked to predict what digit the image was of." PMNIST: "every pixel in the
image is randomly permuted. All images are randomly permuted the same way" -- one fixed
permutation, applied to the training, validation and test splits alike.

Representation. A task maps a :class:`~jaxnets.data.Digits` (images uint8 (N, 1, 28, 28)) to
another ``Digits`` whose images are uint8 (N, 1, S, S) with S = ``image_size``, such that the
**row-major flattening** of each image is the input sequence x (1, T), T = S²:

* ``"sequential"``: x[t] = pixel t of the image in row-major order (the image is unchanged);
* ``"permuted"``: x[t] = pixel ``permutation[t]`` -- the same indexing as Bai et al.'s
  ``data[:, :, permute]`` -- stored back in the (S, S) grid, so a permuted "image" looks like
  noise but flattens to the permuted sequence.

Keeping the (N, 1, S, S) shape means nothing downstream changes: the batch order
(:func:`~jaxnets.data.batch_at_step`), the uint8 → [0, 1] scaling of the train step, and the
TCN classifier, which flattens (R, 1, S, S) to the sequence (R, 1, T) and predicts from the
last timestep.

``image_size < 28`` (CPU-feasible runs only; the paper uses 28): each image is first shrunk by
averaging f×f blocks, f = 28 / S (rounded to the nearest integer, uint8), e.g. 14×14 = 196
steps. The permutation is drawn for the shortened length.

The permutation is a pure function of the config seed:
``np.random.default_rng((seed, T)).permutation(T)`` (:func:`pixel_permutation`). Because a
numpy release could in principle change what that call returns, the trainer also saves the
permutation itself with every checkpoint (:meth:`SequenceTask.describe`, in the checkpoint
metadata, and ``permutation.npy`` in the workdir) and refuses to resume or evaluate a
checkpoint whose permutation differs from the one the config produces
(:meth:`SequenceTask.check`, :class:`SequenceMismatch`).

Config fields (``config.data``): ``sequence`` = ``""`` (images, section 4) | ``"sequential"`` |
``"permuted"``; ``image_size`` = 28 (default) or a divisor of 28.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from jaxnets.data.sources import Digits, Split

KINDS = ("sequential", "permuted")
IMAGE_SIZE = 28  # MNIST side: 28 × 28 = 784 timesteps


class SequenceMismatch(ValueError):
    """A checkpoint was trained on a different pixel sequence (kind, length or permutation)."""


def pixel_permutation(seed: int, length: int) -> np.ndarray:
    """The fixed pixel order of Permuted MNIST: int32 (T,), a permutation of 0..T-1 from ``(seed, T)``."""
    return np.random.default_rng((int(seed), int(length))).permutation(int(length)).astype(np.int32)


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), the mean of each f×f block (f = H / size), rounded.

    ``size`` must divide H = W; ``size == H`` returns ``images`` unchanged.
    """
    n, c, h, w = images.shape
    if h != w or size < 1 or h % size:
        raise ValueError(f"image_size={size} must divide the image side {h} (images are {h}×{w})")
    if size == h:
        return images
    f = h // size
    blocks = images.reshape(n, c, size, f, size, f).astype(np.float32)
    return np.rint(blocks.mean(axis=(3, 5))).astype(np.uint8)


def _digest(permutation: np.ndarray | None) -> str | None:
    if permutation is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(permutation, np.int32).tobytes()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceTask:
    """One pixel-sequence task: ``kind`` ("sequential" | "permuted"), ``image_size`` S (T = S²) and,
    for "permuted", ``permutation`` int32 (T,): timestep t shows row-major pixel ``permutation[t]``."""

    kind: str
    image_size: int = IMAGE_SIZE
    permutation: np.ndarray | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"data.sequence={self.kind!r}: choose one of {KINDS} (or '' for images)")
        t = self.length
        if self.kind == "permuted":
            p = self.permutation
            if p is None or p.shape != (t,) or not np.array_equal(np.sort(p), np.arange(t)):
                raise ValueError(f"permuted task needs a permutation of 0..{t - 1}")
        elif self.permutation is not None:
            raise ValueError("a sequential task has no permutation")

    @property
    def length(self) -> int:
        """T, the number of timesteps (784 for the paper's 28×28 images)."""
        return self.image_size * self.image_size

    @property
    def name(self) -> str:
        return {"sequential": "Sequential", "permuted": "Permuted"}[self.kind]

    # ---- data -----------------------------------------------------------------------------
    def apply_images(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, 1, H, W) -> uint8 (N, 1, S, S) whose row-major flattening is the input sequence."""
        images = downsample(np.asarray(images), self.image_size)
        if self.permutation is None:
            return images
        n = images.shape[0]
        flat = images.reshape(n, self.length)[:, self.permutation]  # (N, T): x[t] = pixel perm[t]
        return np.ascontiguousarray(flat.reshape(images.shape))

    def apply_split(self, split: Split) -> Split:
        return dataclasses.replace(split, images=self.apply_images(split.images))

    def apply(self, data: Digits) -> Digits:
        """The same splits with every image turned into this task's sequence; ``source`` says how."""
        source = f"{getattr(data, 'source', '')}; {self.summary()}"
        return dataclasses.replace(
            data,
            train=self.apply_split(data.train),
            validation=self.apply_split(data.validation),
            test=self.apply_split(data.test),
            source=source,
        )

    # ---- saving and checking --------------------------------------------------------------
    def summary(self) -> str:
        """One line, e.g. "Permuted MNIST sequence: 784 steps (28×28), permutation sha256 1a2b..."."""
        text = f"{self.name} pixel sequence: {self.length} steps ({self.image_size}×{self.image_size})"
        if self.permutation is not None:
            text += f", permutation sha256 {_digest(self.permutation)}"
        return text

    def describe(self) -> dict:
        """JSON-able record saved with each checkpoint: kind, image_size, length, permutation, sha256."""
        perm = None if self.permutation is None else self.permutation.tolist()
        return {
            "kind": self.kind,
            "image_size": self.image_size,
            "length": self.length,
            "permutation": perm,
            "sha256": _digest(self.permutation),
        }

    @classmethod
    def from_description(cls, saved: dict) -> SequenceTask:
        """The task a checkpoint was trained on, from its :meth:`describe` record."""
        perm = saved.get("permutation")
        return cls(
            kind=saved["kind"],
            image_size=int(saved["image_size"]),
            permutation=None if perm is None else np.asarray(perm, np.int32),
        )

    def check(self, saved: dict | None, where: str = "the checkpoint") -> None:
        """Raise :class:`SequenceMismatch` unless ``saved`` (a :meth:`describe` record) is this task."""
        if saved is None:
            raise SequenceMismatch(
                f"{where} was not trained on a pixel sequence, but the config asks for {self.summary()}"
            )
        other = SequenceTask.from_description(saved)
        if (other.kind, other.image_size) != (self.kind, self.image_size):
            raise SequenceMismatch(
                f"{where} was trained on {other.summary()}; the config asks for {self.summary()}"
            )
        if self.permutation is not None and not np.array_equal(other.permutation, self.permutation):
            first = int(np.flatnonzero(other.permutation != self.permutation)[0])
            raise SequenceMismatch(
                f"{where} was trained on a different pixel permutation (sha256 {_digest(other.permutation)}) "
                f"than the one this config produces (sha256 {_digest(self.permutation)}; they first differ "
                f"at timestep {first}). Evaluating or continuing it on this permutation would be a different "
                "task; use the config (seed) it was trained with, or the same numpy version."
            )


def sequence_task(data_config, seed: int) -> SequenceTask | None:
    """The task selected by ``config.data`` (``sequence``, ``image_size``) and the config seed; None for images."""
    kind = data_config.get("sequence", "") if data_config is not None else ""
    if not kind:
        return None
    size = int(data_config.get("image_size", IMAGE_SIZE))
    if size < 1 or IMAGE_SIZE % size:
        raise ValueError(f"data.image_size={size} must divide {IMAGE_SIZE}")
    perm = pixel_permutation(seed, size * size) if kind == "permuted" else None
    return SequenceTask(kind=kind, image_size=size, permutation=perm)


def check_saved_sequence(saved: dict | None, task: SequenceTask | None, where: str = "the checkpoint") -> None:
    """Refuse a checkpoint whose pixel sequence (``meta["sequence"]``) is not the config's ``task``."""
    if task is not None:
        task.check(saved, where)
    elif saved is not None:
        other = SequenceTask.from_description(saved)
        raise SequenceMismatch(f"{where} was trained on {other.summary()}; the config asks for images")
