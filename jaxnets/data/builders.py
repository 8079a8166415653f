"""tensorflow-datasets builders that turn IDX digit files into array_record -- no TensorFlow.

Two builders, both :class:`tfds.core.GeneratorBasedBuilder`, both written as array_record
and read back with ``builder.as_data_source(split)`` (random access, numpy, no TensorFlow):

* :class:`IdxDigits` (``idx_digits/mnist``, ``idx_digits/fashion_mnist``): the official
  train (60,000) / test (10,000) IDX files of a directory, e.g. Debian's
  ``/usr/share/datasets/fashion-mnist``. The directory is a constructor argument
  (``idx_dir=``); the names and sha256 of the files it was prepared from are kept in the
  prepared dataset's ``metadata.json`` so a loader can tell stale data from current.
* :class:`MnistSample` (``mnist_sample``): the 10,000-image MNIST sample bundled in
  ``jaxnets/data/mnist_sample`` (which has no test split of its own), split by a fixed
  permutation -- ``np.random.default_rng(SAMPLE_SPLIT_SEED).permutation(10_000)`` -- into
  train = positions [0, 8000), validation = [8000, 9000), test = [9000, 10000) of that
  permutation. Each split is then stored in increasing order of sample index.

Features of every example::

    image  Tensor (28, 28, 1) uint8, stored as its 784 raw bytes -- H, W, C as tfds has images
    label  ClassLabel(10)   -- int64 when read
    index  Tensor () int32  -- position of the example in its source IDX file

Not ``tfds.features.Image``: it encodes numpy images with TensorFlow, and its PNGs cost a
PIL decode per image on every read (about 4x slower to load than raw bytes).

Records are written unshuffled (``disable_shuffling=True``), so record ``i`` of a split is
example ``i`` of its source: the i-th image of the IDX file, or the i-th smallest sample index.

Prepared data goes to ``<data_dir>/<name>/[<config>/]<version>/``, ``data_dir`` defaulting
to tfds' own default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import inspect
import logging
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils

from jaxnets.data.errors import DataError
from jaxnets.data.idx import find_idx_pair, read_idx, read_idx_pair

IMAGE_SHAPE = (28, 28, 1)  # (H, W, C)
NUM_CLASSES = 10
SAMPLE_SIZE = 10_000
SAMPLE_SPLIT_SEED = 0
SAMPLE_SPLIT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}
FASHION_MNIST_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILE_FORMAT = "array_record"

log = logging.getLogger(__name__)


def _features(label_names: tuple[str, ...] | None) -> tfds.features.FeaturesDict:
    if label_names:
        label = tfds.features.ClassLabel(names=list(label_names))
    else:
        label = tfds.features.ClassLabel(num_classes=NUM_CLASSES)
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=IMAGE_SHAPE, dtype=np.uint8, encoding="bytes"),
            "label": label,
            "index": tfds.features.Tensor(shape=(), dtype=np.int32),
        }
    )


def _fingerprint(paths: list[pathlib.Path]) -> list[dict]:
    """Name, size and sha256 of each source file: what a prepared dataset was built from."""
    return [
        {
            "name": p.name,
            "size": p.stat().st_size,
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        }
        for p in paths
    ]


def _examples(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, source: pathlib.Path):
    """Yield ``(key, example)`` for the given positions; images (N, H, W) must be 28x28."""
    if images.shape[1:] != IMAGE_SHAPE[:2]:
        raise DataError(f"{source}: images are {images.shape[1:]}, expected {IMAGE_SHAPE[:2]}")
    for i in indices:
        i = int(i)
        yield i, {"image": images[i, :, :, None], "label": int(labels[i]), "index": i}


class _LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of our builders: nothing to download; ``code_path`` without ``importlib_resources``.

    tfds' own ``code_path`` (where it looks for a ``checksums.tsv`` of download URLs) needs
    the optional ``importlib_resources`` package for classes inside a package; the file
    defining the class is the same answer without it.
    """

    def __init__(self, **kwargs):
        self._init_kwargs = dict(kwargs)
        super().__init__(**kwargs)

    def fresh(self):
        """A new builder with the same arguments (its info re-read from disk, if any)."""
        return type(self)(**self._init_kwargs)

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        return epath.Path(inspect.getfile(cls))


@dataclasses.dataclass(eq=False)
class IdxDigitsConfig(tfds.core.BuilderConfig):
    """One digit-like IDX dataset; ``label_names`` empty means plain 0-9 class ids."""

    label_names: tuple[str, ...] = ()


class IdxDigits(_LocalBuilder):
    """Official train/test IDX files of MNIST or Fashion-MNIST -> array_record.

    Usage (:func:`prepare` skips the work when it is already done from the same files)::

        b = IdxDigits(config="fashion_mnist", data_dir=d, idx_dir=FASHION_DIR)
        b = prepare(b)  # or b.download_and_prepare(file_format="array_record")
        train = b.as_data_source("train")  # train[i]: {"image", "label", "index"}

    ``idx_dir`` is needed only to prepare; reading a prepared dataset does not use it.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "IDX files to array_record; image, label, index features."}
    BUILDER_CONFIGS = [
        IdxDigitsConfig(name="mnist", description="MNIST handwritten digits from IDX files."),
        IdxDigitsConfig(
            name="fashion_mnist",
            description="Fashion-MNIST (Zalando) from IDX files.",
            label_names=FASHION_MNIST_LABELS,
        ),
    ]

    def __init__(self, *, idx_dir: str | pathlib.Path | None = None, **kwargs):
        self._idx_dir = pathlib.Path(idx_dir) if idx_dir else None
        super().__init__(**kwargs)
        self._init_kwargs["idx_dir"] = idx_dir

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=_features(self.builder_config.label_names),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def source_files(self) -> dict[str, tuple[pathlib.Path, pathlib.Path]]:
        """``{"train": (images, labels), "test": (images, labels)}`` found in ``idx_dir``."""
        if self._idx_dir is None:
            raise DataError(f"{self.name}/{self.builder_config.name}: preparing needs idx_dir")
        return {s: find_idx_pair(self._idx_dir, s) for s in ("train", "test")}

    def source_fingerprint(self) -> dict:
        files = self.source_files()
        return {
            "idx_dir": str(self._idx_dir.resolve()),
            "files": _fingerprint([p for pair in files.values() for p in pair]),
        }

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded
        self.info.metadata["source"] = self.source_fingerprint()
        for images_path, labels_path in self.source_files().values():  # tfds cannot write an empty split
            if len(read_idx(images_path, "images")) == 0:
                raise DataError(f"{images_path}: holds no images (an IDX file with a count of 0)")
        return {
            split: self._generate_examples(images_path, labels_path)
            for split, (images_path, labels_path) in self.source_files().items()
        }

    def _generate_examples(self, images_path: pathlib.Path, labels_path: pathlib.Path):
        images, labels = read_idx_pair(images_path, labels_path, NUM_CLASSES)
        yield from _examples(images, labels, np.arange(len(images)), images_path)


def sample_dir() -> pathlib.Path:
    """Directory of the bundled sample: ``images-idx3-ubyte.gz``, ``labels-idx1-ubyte.gz``."""
    return pathlib.Path(str(importlib.resources.files("jaxnets.data") / "mnist_sample"))


def sample_split_indices() -> dict[str, np.ndarray]:
    """Sample indices of each split of :class:`MnistSample`, each sorted increasingly.

    The fixed permutation ``np.random.default_rng(SAMPLE_SPLIT_SEED).permutation(10_000)`` is
    cut into 8,000 train, 1,000 validation, 1,000 test positions.
    """
    perm = np.random.default_rng(SAMPLE_SPLIT_SEED).permutation(SAMPLE_SIZE)
    out, start = {}, 0
    for split, size in SAMPLE_SPLIT_SIZES.items():
        out[split] = np.sort(perm[start : start + size])
        start += size
    return out


class MnistSample(_LocalBuilder):
    """The bundled 10k MNIST sample, split 8,000 / 1,000 / 1,000 by a fixed permutation.

    These are the first 10,000 images of the official MNIST *training* set (see
    ``jaxnets/data/mnist_sample/README.md``): never evaluate a model trained on them against
    the official training set.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Bundled sample; 8k/1k/1k split by default_rng(0).permutation."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "First 10,000 MNIST training images, split 8,000 train / 1,000 validation / "
                f"1,000 test by np.random.default_rng({SAMPLE_SPLIT_SEED}).permutation(10000)."
            ),
            features=_features(None),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    @staticmethod
    def source_files() -> tuple[pathlib.Path, pathlib.Path]:
        d = sample_dir()
        return d / "images-idx3-ubyte.gz", d / "labels-idx1-ubyte.gz"

    def source_fingerprint(self) -> dict:
        return {"files": _fingerprint(list(self.source_files())), "split_seed": SAMPLE_SPLIT_SEED}

    def _split_generators(self, dl_manager):
        del dl_manager
        self.info.metadata["source"] = self.source_fingerprint()
        images_path, labels_path = self.source_files()
        images, labels = read_idx_pair(images_path, labels_path, NUM_CLASSES)
        if len(images) != SAMPLE_SIZE:
            raise DataError(f"{images_path}: expected {SAMPLE_SIZE} images, found {len(images)}")
        return {
            split: _examples(images, labels, idx, images_path)
            for split, idx in sample_split_indices().items()
        }

    def _generate_examples(self):  # splits are generated in _split_generators
        raise NotImplementedError


def default_data_dir() -> str:
    """tfds' default data directory: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    default = os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
    return os.environ.get("TFDS_DATA_DIR") or default


def prepare(builder: IdxDigits | MnistSample) -> IdxDigits | MnistSample:
    """Prepare ``builder`` as array_record unless it already is, from the same source files.

    The source fingerprint (file names, sizes, sha256) recorded at preparation is compared
    with the current one; if they differ (another ``idx_dir``, changed files) the prepared
    version directory is deleted and built again. Returns a builder ready for
    ``as_data_source`` -- ``builder`` itself, or a fresh one after a rebuild.
    """
    current = builder.source_fingerprint()  # DataError here if the source files are missing
    if builder.is_prepared():
        if dict(builder.info.metadata).get("source") == current:
            return builder
        log.info("%s was prepared from other files; preparing it again", builder.data_dir)
        epath.Path(builder.data_dir).rmtree()
        builder = builder.fresh()
    try:
        builder.download_and_prepare(file_format=FILE_FORMAT)
    except OSError:
        # Another process (e.g. a parallel test worker) may have finished the same preparation
        # first: tfds writes to a temporary directory and its final rename then fails here.
        other = builder.fresh()
        if other.is_prepared() and dict(other.info.metadata).get("source") == current:
            return other
        raise
    return builder
