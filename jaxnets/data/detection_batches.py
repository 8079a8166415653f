"""Fixed-size batches for the face detector, read by index from a WIDER FACE split
(:func:`~jaxnets.data.wider_source.load_wider`).

Every image has its own size and face count; the jitted step needs one shape. So each batch is::

    image     uint8   (R, 3, S, S)  NCHW (the layout of jaxnets.nn)
    boxes     float32 (R, M, 4)     x1, y1, x2, y2 in the S × S image's pixels; zeros past the faces
    box_mask  bool    (R, M)        True on the real faces
    invalid   bool    (R, M)        WIDER's "invalid" flag of each face (kept; the loss may ignore it)
    index     int32   (R,)          each example's index in the split
    dropped   int32   (R,)          faces lost to the M = max_faces limit (see below)

Training batches (:class:`DetectionSource`, the driver's data-source contract) are section
5.2.2's crops (:mod:`jaxnets.data.detection_augment`): the square crop, resize to S and flip of
each example drawn from ``(seed, step, index)``, so the batch of global step ``t`` is a pure
function of ``(seed, t)`` -- bit-identical on resume -- and an example's crop does not depend on
the other examples of its batch. The colour jitter (v2.3) is the source's ``device_transform``,
run inside the jitted step on ``image`` with per-example keys from ``index``.

Evaluation batches (:func:`detection_eval_batches`) have no augmentation: the whole image is
letterboxed (resized keeping its aspect ratio, centred, zero-padded) to S × S, and the batch
also holds ``scale`` float32 (R,), ``offset`` float32 (R, 2) = (ox, oy) -- a prediction maps back
to original pixels as ``(b - offset) / scale``
(:func:`~jaxnets.data.detection_augment.unletterbox_boxes`) -- ``image_size`` int32 (R, 2) =
(H, W) of the original image, and ``mask`` float32 (R,) (0 on the padding of the last batch).

**More than M faces** (after the crop rule): the M largest by box area are kept (ties: the
earlier face in the file); the rest are counted in ``dropped``, and the training loss should
report its mean so a too-small M shows up. Face order in a batch row is the file's order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from jaxnets.data.batches import Batch, IndexedSource, batch_indices
from jaxnets.data.detection_augment import AugmentSpec, example_rng, letterbox, make_color_jitter, random_crop
from jaxnets.detection.assign import pad_faces as pad_to  # the zero padding once the faces fit


def pad_faces(boxes: np.ndarray, invalid: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Faces (K, 4), invalid (K,) -> (boxes float32 (M, 4), box_mask bool (M,), invalid bool (M,),
    dropped): the M = max_faces largest by area kept in file order, zero padding."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    inv = np.asarray(invalid, bool).reshape(-1)
    k = len(b)
    if k > max_faces:
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        keep = np.sort(np.argsort(-area, kind="stable")[:max_faces])
        b, inv = b[keep], inv[keep]
    return (*pad_to(b, inv, max_faces), k - len(b))


def _stack(rows: list[dict]) -> Batch:
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


class DetectionReader:
    """Turns records of a WIDER split (anything with ``read(indices) -> list of records`` and
    ``describe()``, e.g. :class:`~jaxnets.data.wider_source.WiderSplit`) into fixed-size batches.

    ``train_batch(indices, step)``: augmented (crop from ``(seed, step, index)``); ``eval_batch(indices)``:
    letterboxed. Both described in the module docstring.
    """

    def __init__(self, split, spec: AugmentSpec, max_faces: int, seed: int = 0):
        if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)) or max_faces < 1:
            raise ValueError(f"max_faces={max_faces!r}: expected an integer >= 1")
        self.split, self.spec, self.max_faces, self.seed = split, spec, int(max_faces), int(seed)

    def __len__(self) -> int:
        return len(self.split)

    def _row(self, image, boxes, invalid, index) -> dict:
        b, mask, inv, dropped = pad_faces(boxes, invalid, self.max_faces)
        return {"image": np.ascontiguousarray(np.transpose(image, (2, 0, 1))), "boxes": b, "box_mask": mask,
                "invalid": inv, "index": np.int32(index), "dropped": np.int32(dropped)}

    def train_batch(self, indices, step: int) -> Batch:
        """The augmented examples ``indices`` (R,) at global step ``step``: the batch of the module docstring."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        rows = []
        for i, rec in zip(indices, self.split.read(indices)):
            image, boxes, keep = random_crop(example_rng(self.seed, step, i), rec["image"], rec["boxes"], self.spec)
            rows.append(self._row(image, boxes, np.asarray(rec["invalid"], bool)[keep], i))
        return _stack(rows)

    def eval_batch(self, indices) -> Batch:
        """The letterboxed examples ``indices`` (R,), plus ``scale``, ``offset``, ``image_size``."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        rows = []
        for i, rec in zip(indices, self.split.read(indices)):
            image, boxes, scale, offset = letterbox(rec["image"], rec["boxes"], self.spec.size)
            row = self._row(image, boxes, rec["invalid"], i)
            row.update(scale=np.float32(scale), offset=offset, image_size=np.array(rec["image"].shape[:2], np.int32))
            rows.append(row)
        return _stack(rows)

    def describe(self) -> dict:
        return {"augment": self.spec.describe(), "max_faces": self.max_faces,
                "over_max_faces": "keep the largest by area; count the rest in 'dropped'",
                "crop_seed": "np.random.default_rng((seed, CROP_STREAM, step, index))"}


class DetectionSource(IndexedSource):
    """The detector's training data for the driver: ``batch_at_step(step)`` is
    ``reader.train_batch(batch_indices(N, R, seed, step), step)``.

    :class:`IndexedSource` hands ``read`` only the indices, and the crop needs the step too, so
    this subclass passes it: ``read(indices, step)`` is :meth:`DetectionReader.train_batch`.
    ``device_transform`` is the colour jitter (None when ``spec.jitter`` is off); ``describe()``
    holds the split's fingerprint, the augmentation parameters and ``max_faces``.
    """

    kind = "detection"

    def __init__(self, split, batch_size: int, seed: int, spec: AugmentSpec, max_faces: int):
        self.reader = DetectionReader(split, spec, max_faces, seed)
        described = split.describe()
        identity = {k: v for k, v in described.items() if k != "summary"}
        summary = f"{described.get('summary', 'detection data')}; {spec.size}² crops, <= {max_faces} faces"
        super().__init__(self.reader.train_batch, len(split), batch_size, seed, identity=identity, summary=summary,
                         device_transform=make_color_jitter(spec), transform_description=self.reader.describe())

    def batch_at_step(self, step: int) -> Batch:
        return self.read(batch_indices(self.num_examples, self.batch_size, self.seed, step), step)


def detection_eval_batches(split, size: int, batch_size: int, max_faces: int) -> Iterator[Batch]:
    """A whole split in order, ``batch_size`` letterboxed S × S images at a time (S = ``size``),
    plus ``mask`` float32 (R,); the last batch is padded with empty rows (mask 0, scale 1,
    offset 0, index -1), so every batch has one shape and the evaluation compiles once."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected an integer >= 1")
    n = len(split)
    if n == 0:
        raise ValueError("cannot evaluate on an empty split")
    reader = DetectionReader(split, AugmentSpec(size=size), max_faces)
    for start in range(0, n, batch_size):
        batch = reader.eval_batch(np.arange(start, min(n, start + batch_size)))
        real = len(batch["index"])
        pad = batch_size - real
        if pad:
            fill = {"scale": 1.0, "index": -1}
            batch = {k: np.concatenate([v, np.full((pad, *v.shape[1:]), fill.get(k, 0), v.dtype)])
                     for k, v in batch.items()}
        batch["mask"] = (np.arange(batch_size) < real).astype(np.float32)
        yield batch
