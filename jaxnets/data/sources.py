"""Digit datasets for section 4 (MNIST, Fashion-MNIST) as numpy arrays, and the batch order.

:func:`load_digits` returns a :class:`Digits`: train / validation / test :class:`Split` s
with images uint8 (N, 1, 28, 28) -- NCHW, C = 1 -- and labels int32 (N,). No TensorFlow is
imported at any point: everything is read through tfds *data sources* (random access to
array_record files) or, for TFRecord files, a small reader here, and decoded with numpy/PIL.

Where the data comes from -- the first source found wins:

1. ``idx_dir``, when given: a directory of the official IDX files (``train-images-idx3-ubyte``
   ..., plain or .gz). It is prepared once into ``data_dir`` by
   :class:`~jaxnets.data.builders.IdxDigits` (again only if the files change) and read back
   as a data source. An explicit ``idx_dir`` that lacks the files is an error, not skipped.
2. A standard tfds ``mnist`` / ``fashion_mnist`` already prepared in ``data_dir``
   (``<data_dir>/<name>/<version>/``, newest version). Its images are PNG-encoded
   ``tfds.features.Image``, decoded here with PIL (as tfds' own numpy decoder does, checked
   equal in the tests). Prepared as array_record it is read with ``as_data_source``; prepared
   as TFRecord (tfds' default with TensorFlow) its shards are read by
   :func:`_tfrecord_records` (record lengths are checked, CRCs are not). Examples come in
   the order tfds stored them (tfds shuffles when preparing), not the IDX order. If it
   cannot be read, a warning is logged and the next source is tried.
3. ``fashion_mnist`` only: ``/usr/share/datasets/fashion-mnist`` (Debian package
   ``dataset-fashion-mnist``), through the same IDX builder as 1.
4. ``mnist`` only: the 10,000-image sample bundled in ``jaxnets/data/mnist_sample``, through
   :class:`~jaxnets.data.builders.MnistSample`, which splits it 8,000 train / 1,000 validation
   / 1,000 test by a fixed permutation. Its validation split is that fixed one:
   ``validation_size`` and ``seed`` do not apply to it.

Otherwise :class:`DataError` says how to get the data. ``name="mnist_sample"`` always takes the
bundled sample (source 4), whatever else is installed: the offline default of the demo and
the sample rows of the results table.

Validation (sources 1-3): ``validation_size`` examples held out of the official training
split, as in the paper (5,000 of 60,000), chosen by ``np.random.default_rng(seed)
.permutation``; both parts keep file order. ``limit > 0`` then keeps the first ``limit``
examples of each split (smoke runs).

Batch order: :mod:`jaxnets.data.batches` (the batch at global step ``t`` is a pure function of
``(seed, t)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import pathlib
import re
import struct
from typing import Any

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.proto import tf_example_pb2

from jaxnets.data import builders
from jaxnets.data.errors import DataError

log = logging.getLogger(__name__)

NAMES = ("mnist", "fashion_mnist", "mnist_sample")
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian: dataset-fashion-mnist
_VERSION_DIR = re.compile(r"^\d+\.\d+\.\d+$")


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split: ``images`` uint8 (N, 1, 28, 28) NCHW, ``labels`` int32 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Digits:
    """A digit-like dataset; ``source`` says in words where it was read from."""

    train: Split | StreamedSplit
    validation: Split
    test: Split
    source: str
    num_classes: int = 10


# --------------------------------------------------------------------------- reading splits


def _tfrecord_records(path: epath.Path) -> list[bytes]:
    """The records of one TFRecord file: each is ``u64 length, u32 crc, data, u32 crc``.

    Lengths are checked (a truncated file raises :class:`DataError` naming it); the masked
    CRC32-C checksums are not verified, which would need a crc32c implementation.
    """
    data = path.read_bytes()
    records, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise DataError(f"{path}: truncated TFRecord file (partial header at byte {pos})")
        (length,) = struct.unpack_from("<Q", data, pos)
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise DataError(
                f"{path}: truncated TFRecord file: record at byte {pos} needs {end + 4} bytes, "
                f"found {len(data)}"
            )
        records.append(data[start:end])
        pos = end + 4
    return records


def _open_records(builder: tfds.core.DatasetBuilder, split: str):
    """The serialized ``tf.train.Example`` s of ``split`` as a random-access sequence, in stored
    order: an array_record data source (nothing read yet), or for TFRecord files -- which have no
    index -- the list of all records, read once."""
    info = builder.info
    n = info.splits[split].num_examples
    if info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
        source = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
        if len(source) != n:
            raise DataError(f"{builder.data_dir}: split {split} has {len(source)} records, dataset_info says {n}")
        return source
    if info.file_format in (None, tfds.core.FileFormat.TFRECORD):
        records = [r for p in info.splits[split].filepaths for r in _tfrecord_records(epath.Path(p))]
        if len(records) != n:
            raise DataError(f"{builder.data_dir}: split {split} has {len(records)} records, dataset_info says {n}")
        return records
    raise DataError(f"{builder.data_dir}: cannot read {info.file_format} without TensorFlow")


def _decode_png(png: bytes, where: str) -> np.ndarray:
    """A grayscale PNG -> uint8 (H, W), by PIL (what tfds' own numpy decoder uses too)."""
    with PIL.Image.open(io.BytesIO(png)) as image:
        if image.mode != "L":
            raise DataError(f"{where}: expected 8-bit grayscale PNGs, found mode {image.mode}")
        return np.asarray(image)


class SplitReader:
    """Random access to one prepared split of a digit builder: ``read(indices)`` decodes those
    examples only. ``len`` is the split's size."""

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
        self.builder, self.split = builder, split
        self._records = None  # opened on the first read, then reused (a streamed split reads every step)
        self.where = f"{builder.data_dir} ({split})"
        image_feature = builder.info.features["image"]
        self.ours = isinstance(builder, (builders.IdxDigits, builders.MnistSample))
        if not self.ours and not isinstance(image_feature, tfds.features.Image):
            raise DataError(f"{self.where}: unexpected image feature {type(image_feature).__name__}")

    def __len__(self) -> int:
        return int(self.builder.info.splits[self.split].num_examples)

    def read(self, indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """images uint8 (N, 28, 28, 1) NHWC and labels int32 (N,) of ``indices`` (default: all)."""
        if self._records is None:
            self._records = _open_records(self.builder, self.split)
        wanted = list(range(len(self._records))) if indices is None else [int(i) for i in indices]
        getitems = getattr(self._records, "__getitems__", None)  # one batched read from array_record
        records = getitems(wanted) if getitems else [self._records[i] for i in wanted]
        n = len(records)
        images, labels = np.empty((n, *builders.IMAGE_SHAPE), np.uint8), np.empty(n, np.int32)
        for i, record in enumerate(records):
            feature = tf_example_pb2.Example.FromString(record).features.feature
            data = feature["image"].bytes_list.value[0]
            if self.ours:
                images[i] = np.frombuffer(data, np.uint8).reshape(builders.IMAGE_SHAPE)
            else:
                image = _decode_png(data, self.where)
                if image.shape != builders.IMAGE_SHAPE[:2]:
                    raise DataError(f"{self.where}: images are {image.shape}, expected (28, 28)")
                images[i, :, :, 0] = image
            labels[i] = feature["label"].int64_list.value[0]
        if n and not 0 <= labels.min() <= labels.max() < builders.NUM_CLASSES:
            raise DataError(f"{self.where}: labels outside [0, {builders.NUM_CLASSES})")
        return images, labels


def read_split(builder: tfds.core.DatasetBuilder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a prepared split whole: images uint8 (N, 28, 28, 1) NHWC and labels int32 (N,).

    Each serialized ``tf.train.Example`` is parsed with tfds' bundled protobuf classes. Our
    builders store the image as its 784 raw bytes; tfds' own ``mnist`` / ``fashion_mnist``
    store a PNG (``tfds.features.Image``), decoded here with PIL -- tfds'
    ``deserialize_example_np`` gives the same arrays, without TensorFlow too, but about 1.5x
    slower (its per-example feature machinery).
    """
    return SplitReader(builder, split).read()


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedSplit:
    """A split left on disk: examples ``indices`` of ``reader``'s split, read a batch at a time."""

    reader: SplitReader
    indices: np.ndarray  # int (N,), positions in the stored split

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """``{"image": uint8 (R, 1, 28, 28), "label": int32 (R,)}`` of split positions ``positions``."""
        images, labels = self.reader.read(self.indices[np.asarray(positions)])
        return {"image": np.ascontiguousarray(images.transpose(0, 3, 1, 2)), "label": labels}

    def identity(self) -> dict:
        info = self.reader.builder.info
        digest = hashlib.sha256(np.ascontiguousarray(self.indices, np.int64).tobytes()).hexdigest()[:16]
        return {"dataset": info.full_name, "split": self.reader.split, "stored_examples": len(self.reader),
                "indices_sha256": digest}


# --------------------------------------------------------------------------- finding sources


def standard_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder | None:
    """Read-only builder of a standard tfds ``name`` prepared in ``data_dir``, newest version."""
    root = pathlib.Path(data_dir) / name
    if not root.is_dir():
        return None
    versions = [
        d
        for d in root.iterdir()
        if _VERSION_DIR.match(d.name) and (d / "dataset_info.json").is_file()
    ]
    if not versions:
        return None
    newest = max(versions, key=lambda d: tuple(int(x) for x in d.name.split(".")))
    return tfds.builder_from_directory(str(newest))


def _read_all(builder: tfds.core.DatasetBuilder) -> dict[str, SplitReader]:
    """A reader per split (nothing is read yet)."""
    return {split: SplitReader(builder, split) for split in builder.info.splits}


def _from_idx(name: str, data_dir: str, idx_dir: str) -> tuple[dict[str, Any], str]:
    b = builders.prepare(builders.IdxDigits(config=name, data_dir=data_dir, idx_dir=idx_dir))
    return _read_all(b), f"IDX files in {idx_dir} (prepared in {b.data_dir})"


def _find(name: str, data_dir: str, idx_dir: str) -> tuple[dict[str, Any], str]:
    """Splits ``{split: (images NHWC, labels)}`` of the first source found, and its description."""
    if name == "mnist_sample":  # the bundled sample, whatever else is installed
        return _sample(data_dir)
    if idx_dir:
        return _from_idx(name, data_dir, idx_dir)

    standard = standard_builder(name, data_dir)
    if standard is not None:
        where = standard.data_dir
        try:
            splits = _read_all(standard)
            for reader in splits.values():
                reader.read(np.arange(min(1, len(reader))))  # readable without TensorFlow?
        except Exception as e:  # an unreadable standard dataset must not hide the other sources
            log.warning("skipping tfds %s in %s: unreadable without TensorFlow: %s", name, where, e)
        else:
            if {"train", "test"} <= splits.keys():
                info = standard.info
                fmt = info.file_format.value if info.file_format else "tfrecord"
                return splits, f"tfds prepared {name} {info.version} in {data_dir} ({fmt})"
            log.warning("skipping tfds %s in %s: it lacks a train or test split", name, where)

    if name == "fashion_mnist":
        if pathlib.Path(FASHION_MNIST_SYSTEM_DIR).is_dir():
            return _from_idx(name, data_dir, FASHION_MNIST_SYSTEM_DIR)
        raise DataError(
            f"no Fashion-MNIST found: no prepared tfds fashion_mnist in {data_dir} and no "
            f"{FASHION_MNIST_SYSTEM_DIR}. Get it with `apt-get install -y dataset-fashion-mnist` "
            f"(found automatically afterwards, or pass idx_dir={FASHION_MNIST_SYSTEM_DIR}), pass "
            "idx_dir=<directory with train-images-idx3-ubyte.gz ...>, or prepare tfds "
            "fashion_mnist into data_dir."
        )

    return _sample(data_dir)


def _sample(data_dir: str) -> tuple[dict[str, Any], str]:
    b = builders.prepare(builders.MnistSample(data_dir=data_dir))
    sizes = "/".join(f"{n:,}" for n in builders.SAMPLE_SPLIT_SIZES.values())
    source = f"bundled MNIST sample (10k), split {sizes} train/validation/test"
    return _read_all(b), f"{source} (prepared in {b.data_dir})"


def _nchw(images: np.ndarray, labels: np.ndarray, limit: int) -> Split:
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # (N, H, W, 1) -> (N, 1, H, W)
    return Split(images=images, labels=np.asarray(labels, np.int32))


def load_digits(
    name: str,
    *,
    data_dir: str = "",
    idx_dir: str = "",
    validation_size: int = 5000,
    limit: int = 0,
    seed: int = 0,
    stream_train: bool = False,
) -> Digits:
    """Load MNIST or Fashion-MNIST as numpy train / validation / test splits.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"`` or ``"mnist_sample"`` (the bundled sample only).
      data_dir: where tfds datasets are (and ours get prepared); "" = ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``.
      idx_dir: a directory of IDX files to use (wins over every other source).
      validation_size: examples held out of the official train split (not used for the
        bundled sample, which has a fixed 1,000-example validation split).
      limit: if > 0, keep only the first ``limit`` examples of each split.
      seed: chooses the validation examples.
      stream_train: leave the training split on disk: ``train`` is a :class:`StreamedSplit`
        read a batch at a time (its labels are checked as they are read).

    Returns:
      :class:`Digits`; each split's images are uint8 (N, 1, 28, 28), labels int32 (N,). See
      the module docstring for the order in which sources are tried.

    Raises:
      DataError: bad or missing files (the message names them), or no Fashion-MNIST anywhere.
    """
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, not {name!r}")
    data_dir = os.path.expanduser(str(data_dir)) if data_dir else builders.default_data_dir()
    idx_dir = os.path.expanduser(str(idx_dir)) if idx_dir else ""
    splits, source = _find(name, data_dir, idx_dir)
    train_reader = splits["train"]
    if "validation" in splits:
        kept, validation = np.arange(len(train_reader)), splits["validation"].read()
    else:
        n = len(train_reader)
        if n == 0:
            raise DataError(f"{source}: the training split has no examples")
        if not 0 <= validation_size < n:
            raise DataError(
                f"data.validation_size={validation_size}: must be in [0, {n}) (the training examples of {source})"
            )
        perm = np.random.default_rng(seed).permutation(n)
        held, kept = np.sort(perm[:validation_size]), np.sort(perm[validation_size:])
        validation = train_reader.read(held)
        source += f"; validation: {validation_size:,} of {n:,} train examples, seed {seed}"
    if limit > 0:
        kept = kept[:limit]
    train = StreamedSplit(train_reader, kept) if stream_train else _nchw(*train_reader.read(kept), 0)
    digits = Digits(
        train=train,
        validation=_nchw(*validation, limit),
        test=_nchw(*splits["test"].read(), limit),
        source=source,
        num_classes=builders.NUM_CLASSES,
    )
    log.info(
        "%s: %d train, %d validation, %d test from %s",
        name, len(digits.train), len(digits.validation), len(digits.test), source,
    )  # fmt: skip
    return digits
