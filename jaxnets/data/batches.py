"""Data sources for the driver: the batch of any step, a pure function of ``(seed, step)``.

The contract (:class:`DataSource`) the training driver reads:

``batch_at_step(step) -> dict``
    host arrays with the batch axis first (e.g. ``{"image": uint8 (R, C, H, W), "label": int32
    (R,)}``). Step ``t`` is batch ``t % S`` of epoch ``t // S`` (``S = len // batch_size``),
    each epoch a permutation drawn from ``np.random.default_rng((seed, epoch))``; the last
    incomplete batch of an epoch is dropped. No iterator state exists, so a run resumed at step
    ``t`` reads exactly the batches it would have read.
``describe() -> dict``
    a JSON fingerprint (sizes, content digest, seed, batch size, transforms); saved with every
    checkpoint and compared on resume. ``describe()["summary"]`` is one line for people.
``device_transform(key, batch) -> batch`` (optional)
    a jittable transform run inside the train step, e.g. augmentation that moves boxes with
    pixels (:mod:`jaxnets.data.transforms`).

Two implementations: :class:`ArraySource` (arrays in memory: the digit sets) and
:class:`IndexedSource` (examples read by index from a random-access store -- a tfds
array_record data source -- and decoded per batch, so a data set of large images never has to
fit in memory; ``data.streaming=True`` trains the digit sets this way, with the same batches). :func:`eval_batches` walks any split in order with a padding mask.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np

Batch = dict[str, np.ndarray]


class DataSource(Protocol):
    def batch_at_step(self, step: int) -> Batch: ...

    def describe(self) -> dict: ...


@functools.lru_cache(maxsize=4)
def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Example indices of every batch of one epoch: int (num_examples // batch_size, batch_size).

    The epoch is ``np.random.default_rng((seed, epoch)).permutation(num_examples)`` cut into
    batches; the incomplete last batch is dropped. Cached (the result is read-only).
    """
    if batch_size < 1 or num_examples < batch_size:
        raise ValueError(f"need 1 <= batch_size <= num_examples, got {batch_size}, {num_examples}")
    steps = num_examples // batch_size
    perm = np.random.default_rng((seed, epoch)).permutation(num_examples)
    batches = perm[: steps * batch_size].reshape(steps, batch_size)
    batches.flags.writeable = False
    return batches


def batch_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The example indices of global step ``step``: int (batch_size,)."""
    steps_per_epoch = num_examples // batch_size if batch_size >= 1 else 0
    if steps_per_epoch == 0:
        raise ValueError(f"need 1 <= batch_size <= {num_examples}, got {batch_size}")
    epoch, i = divmod(step, steps_per_epoch)
    return epoch_batches(num_examples, batch_size, seed, epoch)[i]


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 (16 hex digits) of every field's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


class IndexedSource:
    """Batches read by index: ``read(indices) -> Batch`` decodes examples ``indices`` (int array)
    of a random-access store -- e.g. records of a tfds array_record split via
    ``builder.as_data_source`` -- so only the examples of the current batch are ever in memory.

    ``identity`` describes the stored data (name, version, split, which examples); the content
    is not digested (that would read it all). ``host_transform(batch) -> batch`` runs on each
    batch after decoding (e.g. the pixel-sequence transform).
    """

    kind = "indexed"

    def __init__(self, read: Callable[[np.ndarray], Batch], num_examples: int, batch_size: int, seed: int, *,
                 identity: dict, summary: str = "", host_transform=None, device_transform=None,
                 transform_description: Any = None):
        self.read, self.num_examples = read, int(num_examples)
        self.batch_size, self.seed = int(batch_size), int(seed)
        if not 1 <= self.batch_size <= self.num_examples:
            raise ValueError(f"batch_size={batch_size}: must be in [1, {self.num_examples}] (the examples of the split)")
        self.identity, self.summary = identity, summary
        self.host_transform = host_transform
        self.device_transform = device_transform
        self.transform_description = transform_description

    def __len__(self) -> int:
        return self.num_examples

    def batch_at_step(self, step: int) -> Batch:
        batch = self.read(batch_indices(self.num_examples, self.batch_size, self.seed, step))
        return batch if self.host_transform is None else self.host_transform(batch)

    def _identity_fields(self) -> dict:
        return {"identity": self.identity}

    def describe(self) -> dict:
        return {"kind": self.kind, "examples": self.num_examples, **self._identity_fields(),
                "batch_size": self.batch_size, "seed": self.seed, "transform": self.transform_description,
                "summary": self.summary}


class ArraySource(IndexedSource):
    """Batches of in-memory arrays ``{field: (N, ...)}`` (all fields the same N): an
    :class:`IndexedSource` whose store is the arrays and whose identity is their content digest."""

    kind = "arrays"

    def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, seed: int, *,
                 summary: str = "", device_transform=None, transform_description: Any = None):
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"fields of different lengths: {sizes}")
        self.arrays = dict(arrays)
        identity = {"fields": {k: [str(v.dtype), list(v.shape[1:])] for k, v in self.arrays.items()},
                    "sha256": arrays_digest(self.arrays)}
        super().__init__(lambda idx: {k: v[idx] for k, v in self.arrays.items()}, next(iter(sizes.values())),
                         batch_size, seed, identity=identity, summary=summary, device_transform=device_transform,
                         transform_description=transform_description)

    def _identity_fields(self) -> dict:
        return self.identity  # "fields" and "sha256" at the top level of the fingerprint


def eval_batches(arrays: Mapping[str, np.ndarray], batch_size: int) -> Iterator[Batch]:
    """A whole split in order, ``batch_size`` rows at a time, plus ``"mask"`` float32 (R,).

    The last batch is zero-padded to ``batch_size`` (mask 0 on the padding), so every batch has
    one shape and the evaluation compiles once.
    """
    n = len(next(iter(arrays.values())))
    if n == 0:
        raise ValueError("cannot evaluate on an empty split")
    for start in range(0, n, batch_size):
        batch = {k: np.asarray(v[start : start + batch_size]) for k, v in arrays.items()}
        real = len(next(iter(batch.values())))
        mask = np.zeros(batch_size, np.float32)
        mask[:real] = 1.0
        if real < batch_size:
            batch = {k: np.concatenate([v, np.zeros((batch_size - real, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}
        batch["mask"] = mask
        yield batch
