"""Data: IDX files, tfds builders and data sources (no TensorFlow), loaders, batch order."""

from __future__ import annotations

import gzip
import io
import pathlib
import struct

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from jaxnets import data
from jaxnets.data import DataError, builders, sources
from tests._tfds import to_tfrecord

FASHION = pathlib.Path(sources.FASHION_MNIST_SYSTEM_DIR)
needs_fashion = pytest.mark.skipif(
    not FASHION.is_dir(), reason=f"{FASHION} absent (apt-get install -y dataset-fashion-mnist)"
)


def tagged_images(start: int, n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 random images whose first two pixels spell their number start + i."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    numbers = np.arange(start, start + n)
    images[:, 0, 0], images[:, 0, 1] = numbers // 256, numbers % 256
    return images


def tags(images: np.ndarray) -> np.ndarray:
    """Numbers written by :func:`tagged_images`, from (N, 28, 28) or (N, 1, 28, 28) images."""
    images = images.reshape(len(images), 28, 28)
    return images[:, 0, 0].astype(int) * 256 + images[:, 0, 1]


def write_digits(directory: pathlib.Path, n_train: int = 30, n_test: int = 12, gz: bool = True):
    """Write a tiny IDX dataset (train .gz, test plain if gz) and return the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train": (tagged_images(0, n_train), rng.integers(0, 10, n_train, dtype=np.uint8)),
        "test": (tagged_images(1000, n_test), rng.integers(0, 10, n_test, dtype=np.uint8)),
    }
    ext = {"train": ".gz" if gz else "", "test": ""}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data.write_idx(directory / f"{prefix}-images-idx3-ubyte{ext[split]}", arrays[split][0])
        data.write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext[split]}", arrays[split][1])
    return arrays


# --------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip(tmp_path, suffix):
    images, labels = tagged_images(0, 7), np.arange(7, dtype=np.uint8)
    data.write_idx(tmp_path / f"im{suffix}", images)
    data.write_idx(tmp_path / f"lb{suffix}", labels)
    if suffix:
        assert (tmp_path / f"im{suffix}").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(data.read_idx(tmp_path / f"im{suffix}", expect="images"), images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / f"lb{suffix}"), labels)
    got_im, got_lb = data.read_idx_pair(tmp_path / f"im{suffix}", tmp_path / f"lb{suffix}")
    assert got_im.dtype == np.uint8 and got_im.shape == (7, 28, 28) and got_lb.shape == (7,)


def test_find_idx_pair(tmp_path):
    write_digits(tmp_path)
    im, lb = data.find_idx_pair(tmp_path, "train")
    assert (im.name, lb.name) == ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    im, lb = data.find_idx_pair(tmp_path, "test")
    assert (im.name, lb.name) == ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz") as e:
        data.find_idx_pair(tmp_path, "test")
    assert str(tmp_path) in str(e.value)


@needs_fashion
def test_find_idx_pair_debian_fashion_mnist():
    for split in ("train", "test"):
        images, labels = data.find_idx_pair(FASHION, split)
        assert images.parent == FASHION and images.name.endswith("-images-idx3-ubyte.gz")
        assert labels.name.endswith("-labels-idx1-ubyte.gz")


def _bad_inputs(tmp_path: pathlib.Path):
    """(what, callable, file names its DataError must mention, other text it must mention)."""
    images, labels = tagged_images(0, 5), np.arange(5, dtype=np.uint8)
    im, lb = tmp_path / "good-images.gz", tmp_path / "good-labels"
    data.write_idx(im, images)
    data.write_idx(lb, labels)
    short = tmp_path / "short-images"
    short.write_bytes((data.write_idx(tmp_path / "full", images)).read_bytes()[:-10])
    short_gz = tmp_path / "short-images.gz"
    short_gz.write_bytes(gzip.compress(short.read_bytes()))
    cut_gz = tmp_path / "cut-stream.gz"
    cut_gz.write_bytes(im.read_bytes()[:200])
    lb4 = data.write_idx(tmp_path / "four-labels", labels[:4])
    big = data.write_idx(tmp_path / "big-labels", np.array([0, 1, 12, 3, 4], np.uint8))
    junk = tmp_path / "junk-images"
    junk.write_bytes(struct.pack(">I", 1234) + bytes(100))
    read, pair = data.read_idx, data.read_idx_pair
    return [
        ("missing", lambda: read(tmp_path / "nope-images"), ["nope-images"], "not found"),
        ("labels as images", lambda: read(lb, expect="images"), ["good-labels"],
         "expected 2051 (images), found 2049"),
        ("junk magic", lambda: read(junk), ["junk-images"], "found 1234"),
        ("truncated", lambda: read(short), ["short-images"],
         "needs 3936 bytes (uncompressed), found 3926"),
        ("truncated gz", lambda: read(short_gz), ["short-images.gz"], "truncated"),
        ("cut gzip stream", lambda: read(cut_gz), ["cut-stream.gz"], "gzip"),
        ("count mismatch", lambda: pair(im, lb4), ["good-images.gz", "four-labels"],
         "5 images but"),
        ("label range", lambda: pair(im, big), ["big-labels"], "label 12 at index 2"),
        ("missing dir", lambda: data.find_idx_pair(tmp_path / "nodir", "train"), ["nodir"],
         "not found"),
    ]  # fmt: skip


def test_bad_inputs_raise_data_error_naming_the_file(tmp_path):
    for what, fn, names, text in _bad_inputs(tmp_path):
        with pytest.raises(DataError) as e:
            fn()
        message = str(e.value)
        for name in names:
            assert name in message, (what, message)
        assert text in message, (what, message)
        assert isinstance(e.value, ValueError)


def test_bad_idx_dir_fails_loudly(tmp_path):
    write_digits(tmp_path / "idx")
    (tmp_path / "idx" / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08\x01")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        data.load_digits("mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(tmp_path / "idx"))
    with pytest.raises(DataError, match="no train IDX file"):
        data.load_digits("mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(tmp_path))


# --------------------------------------------------------------------------- IDX builder


def test_idx_builder_roundtrip_through_data_source(tmp_path):
    arrays = write_digits(tmp_path / "idx")
    tfds_dir = str(tmp_path / "tfds")
    b = builders.IdxDigits(config="mnist", data_dir=tfds_dir, idx_dir=tmp_path / "idx")
    b = data.prepare(b)
    assert b.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
    assert pathlib.Path(b.data_dir) == tmp_path / "tfds" / "idx_digits" / "mnist" / "1.0.0"
    for split, (images, labels) in arrays.items():
        source = b.as_data_source(split)  # tfds' own decoding
        examples = source.__getitems__(list(range(len(source))))
        assert len(examples) == len(images)
        np.testing.assert_array_equal(np.stack([e["image"] for e in examples])[..., 0], images)
        np.testing.assert_array_equal([e["label"] for e in examples], labels)
        np.testing.assert_array_equal([e["index"] for e in examples], np.arange(len(images)))
        fast_images, fast_labels = data.read_split(b, split)  # our parser
        np.testing.assert_array_equal(fast_images[..., 0], images)
        np.testing.assert_array_equal(fast_labels, labels)
    # A fresh read-only builder on the same directory needs no idx_dir.
    again = builders.IdxDigits(config="mnist", data_dir=str(tmp_path / "tfds"))
    np.testing.assert_array_equal(data.read_split(again, "test")[0][..., 0], arrays["test"][0])


def test_prepare_is_skipped_then_redone_when_files_change(tmp_path, monkeypatch):
    idx, tfds_dir = tmp_path / "idx", str(tmp_path / "tfds")
    write_digits(idx, n_train=20)
    first = data.load_digits("mnist", data_dir=tfds_dir, idx_dir=str(idx), validation_size=4)
    assert len(first.train) == 16 and "IDX files in" in first.source

    def fail(*args, **kwargs):
        raise AssertionError("prepared again")

    with monkeypatch.context() as m:
        m.setattr(builders.IdxDigits, "_generate_examples", fail)
        again = data.load_digits("mnist", data_dir=tfds_dir, idx_dir=str(idx), validation_size=4)
    np.testing.assert_array_equal(again.train.images, first.train.images)

    write_digits(idx, n_train=26)  # same names, other content: must not read stale data
    changed = data.load_digits("mnist", data_dir=tfds_dir, idx_dir=str(idx), validation_size=4)
    assert len(changed.train) == 22


def test_load_digits_from_idx_dir(tmp_path):
    arrays = write_digits(tmp_path / "idx", n_train=30, n_test=12)
    kw = dict(data_dir=str(tmp_path / "tfds"), idx_dir=str(tmp_path / "idx"), validation_size=6)
    d = data.load_digits("fashion_mnist", seed=3, **kw)
    assert (len(d.train), len(d.validation), len(d.test)) == (24, 6, 12)
    assert d.num_classes == 10 and str(tmp_path / "idx") in d.source
    for split in (d.train, d.validation, d.test):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (1, 28, 28)
        assert split.images.flags.c_contiguous and split.labels.dtype == np.int32
    train_ids, val_ids = tags(d.train.images), tags(d.validation.images)
    assert not set(train_ids) & set(val_ids)
    assert sorted([*train_ids, *val_ids]) == list(range(30))
    assert np.all(np.diff(train_ids) > 0) and np.all(np.diff(val_ids) > 0)  # file order kept
    train_images, train_labels = arrays["train"]
    np.testing.assert_array_equal(d.train.images[:, 0], train_images[train_ids])
    np.testing.assert_array_equal(d.train.labels, train_labels[train_ids])
    np.testing.assert_array_equal(d.test.images[:, 0], arrays["test"][0])
    np.testing.assert_array_equal(d.test.labels, arrays["test"][1])

    same = data.load_digits("fashion_mnist", seed=3, **kw)
    np.testing.assert_array_equal(tags(same.validation.images), val_ids)
    other = data.load_digits("fashion_mnist", seed=4, **kw)
    assert set(tags(other.validation.images)) != set(val_ids)

    small = data.load_digits("fashion_mnist", seed=3, limit=5, **kw)
    assert (len(small.train), len(small.validation), len(small.test)) == (5, 5, 5)
    np.testing.assert_array_equal(small.train.images, d.train.images[:5])


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist"):
        data.load_digits("fashion_mnist", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match="kmnist"):
        data.load_digits("kmnist", data_dir=str(tmp_path / "tfds"))


# --------------------------------------------------------------------------- bundled sample


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory) -> str:
    d = str(tmp_path_factory.mktemp("tfds_sample"))
    data.prepare(builders.MnistSample(data_dir=d))
    return d


def test_bundled_sample_splits(sample_data_dir):
    d = data.load_digits("mnist", data_dir=sample_data_dir)
    assert (len(d.train), len(d.validation), len(d.test)) == (8000, 1000, 1000)
    assert d.source.startswith("bundled MNIST sample (10k)")
    again = data.load_digits("mnist", data_dir=sample_data_dir, validation_size=123, seed=9)
    for a, b in zip((d.train, d.validation, d.test), (again.train, again.validation, again.test)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)

    # Every split is exactly the documented rows of the bundled IDX files, and they partition it.
    b = builders.MnistSample(data_dir=sample_data_dir)
    images, labels = data.read_idx_pair(*builders.MnistSample.source_files())
    expected = builders.sample_split_indices()
    assert sorted(np.concatenate(list(expected.values())).tolist()) == list(range(10_000))
    for name, split in (("train", d.train), ("validation", d.validation), ("test", d.test)):
        source = b.as_data_source(name)
        index = np.array([e["index"] for e in source.__getitems__(list(range(len(source))))])
        np.testing.assert_array_equal(index, expected[name])
        np.testing.assert_array_equal(split.images[:, 0], images[index])
        np.testing.assert_array_equal(split.labels, labels[index])
        assert set(np.unique(split.labels)) == set(range(10))


def test_sample_split_is_the_documented_permutation():
    perm = np.random.default_rng(0).permutation(10_000)
    got = builders.sample_split_indices()
    np.testing.assert_array_equal(got["train"], np.sort(perm[:8000]))
    np.testing.assert_array_equal(got["validation"], np.sort(perm[8000:9000]))
    np.testing.assert_array_equal(got["test"], np.sort(perm[9000:]))


# --------------------------------------------------------------------------- standard tfds mnist


class _StandardMnistLayout(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes what tfds' own ``mnist`` 3.0.1 writes -- PNG ``Image`` + ``ClassLabel`` -- from
    small arrays, with PIL instead of TensorFlow encoding the PNGs."""

    name = "mnist"
    VERSION = tfds.core.Version("3.0.1")
    arrays: dict = {}

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {split: self._examples(*arrays) for split, arrays in self.arrays.items()}

    def _generate_examples(self):
        raise NotImplementedError

    def _examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            png = io.BytesIO()
            PIL.Image.fromarray(image).save(png, format="png")
            yield i, {"image": png.getvalue(), "label": int(label)}


def _sorted_by_tag(images, labels):
    order = np.argsort(tags(images))
    return images.reshape(len(images), 28, 28)[order], labels[order]


@pytest.mark.parametrize("file_format", ["array_record", "tfrecord"])
def test_standard_tfds_mnist_is_read_without_tensorflow(tmp_path, file_format):
    arrays = {"train": (tagged_images(0, 20), np.arange(20, dtype=np.uint8) % 10),
              "test": (tagged_images(500, 8), np.arange(8, dtype=np.uint8))}  # fmt: skip
    _StandardMnistLayout.arrays = arrays
    _StandardMnistLayout(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    version_dir = tmp_path / "mnist" / "3.0.1"
    standard = tfds.builder_from_directory(str(version_dir))
    reference = standard.as_data_source("train")  # tfds' own numpy decoding of the PNGs
    if file_format == "tfrecord":
        to_tfrecord(version_dir)

    d = data.load_digits("mnist", data_dir=str(tmp_path), validation_size=5, idx_dir="")
    assert d.source.startswith(f"tfds prepared mnist 3.0.1 in {tmp_path} ({file_format})")
    assert (len(d.train), len(d.validation), len(d.test)) == (15, 5, 8)
    got = _sorted_by_tag(
        np.concatenate([d.train.images, d.validation.images]),
        np.concatenate([d.train.labels, d.validation.labels]),
    )
    np.testing.assert_array_equal(got[0], arrays["train"][0])
    np.testing.assert_array_equal(got[1], arrays["train"][1])
    test_images, test_labels = _sorted_by_tag(d.test.images, d.test.labels)
    np.testing.assert_array_equal(test_images, arrays["test"][0])
    np.testing.assert_array_equal(test_labels, arrays["test"][1])
    if file_format == "array_record":  # our PIL path == tfds' decoder, record by record
        images, labels = data.read_split(standard, "train")
        examples = reference.__getitems__(list(range(len(reference))))
        np.testing.assert_array_equal(images, np.stack([e["image"] for e in examples]))
        np.testing.assert_array_equal(labels, [e["label"] for e in examples])
    else:
        shard = version_dir / "mnist-test.tfrecord-00000-of-00001"
        shard.write_bytes(shard.read_bytes()[:-3])
        with pytest.raises(DataError, match="mnist-test.tfrecord-00000-of-00001"):
            data.read_split(tfds.builder_from_directory(str(version_dir)), "test")


def test_explicit_idx_dir_wins_over_standard_tfds(tmp_path):
    tfds_dir, idx_dir = str(tmp_path / "tfds"), str(tmp_path / "idx")
    _StandardMnistLayout.arrays = {
        "train": (tagged_images(0, 10), np.zeros(10, np.uint8)),
        "test": (tagged_images(50, 4), np.zeros(4, np.uint8)),
    }
    _StandardMnistLayout(data_dir=tfds_dir).download_and_prepare(file_format="array_record")
    assert data.load_digits("mnist", data_dir=tfds_dir, validation_size=2).source.startswith("tfds")
    write_digits(tmp_path / "idx", n_train=12, n_test=3)
    d = data.load_digits("mnist", data_dir=tfds_dir, idx_dir=idx_dir, validation_size=2)
    assert d.source.startswith("IDX files in") and len(d.test) == 3


# --------------------------------------------------------------------------- full Fashion-MNIST


@pytest.fixture(scope="session")
def fashion_data_dir(tmp_path_factory) -> str:
    d = str(tmp_path_factory.mktemp("tfds_fashion"))
    data.prepare(builders.IdxDigits(config="fashion_mnist", data_dir=d, idx_dir=FASHION))
    return d


@needs_fashion
def test_fashion_mnist_from_debian_package(fashion_data_dir):
    d = data.load_digits("fashion_mnist", data_dir=fashion_data_dir, idx_dir=str(FASHION))
    assert (len(d.train), len(d.validation), len(d.test)) == (55_000, 5_000, 10_000)
    assert d.source.startswith(f"IDX files in {FASHION}")
    for split in (d.train, d.validation, d.test):
        assert split.images.shape[1:] == (1, 28, 28) and split.images.dtype == np.uint8
        assert split.labels.min() == 0 and split.labels.max() == 9
    assert np.bincount(d.test.labels).tolist() == [1000] * 10  # Fashion-MNIST's balanced test set
    test_images, test_labels = data.read_idx_pair(*data.find_idx_pair(FASHION, "test"))
    np.testing.assert_array_equal(d.test.images[:, 0], test_images)
    np.testing.assert_array_equal(d.test.labels, test_labels)
    # Found without idx_dir too (auto-detected system directory), same arrays.
    auto = data.load_digits("fashion_mnist", data_dir=fashion_data_dir, limit=100)
    assert auto.source.startswith(f"IDX files in {FASHION}")
    np.testing.assert_array_equal(auto.validation.images, d.validation.images[:100])


# --------------------------------------------------------------------------- batch order


# the batch order (ArraySource, IndexedSource): tests/test_streaming.py
