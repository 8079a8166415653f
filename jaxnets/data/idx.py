"""Read and write the IDX files MNIST and Fashion-MNIST are distributed in.

IDX layout (big-endian): a 4-byte magic number ``0x0000 TT DD`` where ``TT`` is the element
type (``0x08`` = uint8, the only one used here) and ``DD`` the number of dimensions, then
``DD`` int32 sizes, then the elements in C order. Hence the two magic numbers that matter:

* 2051 = ``0x00000803``: images, uint8, shape (N, H, W) -- (N, 28, 28) for MNIST;
* 2049 = ``0x00000801``: labels, uint8, shape (N,).

Files may be plain or gzip-compressed (detected from the content, not the name). Every
problem -- missing file, wrong magic number, truncated or over-long file, image/label count
mismatch, label out of range -- raises :class:`DataError` whose message names the file.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
import zlib
from typing import Literal

import numpy as np

from jaxnets.data.errors import DataError

IMAGES_MAGIC = 2051  # uint8, 3 dimensions
LABELS_MAGIC = 2049  # uint8, 1 dimension
_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

# File-name stems of the official distributions (MNIST, Fashion-MNIST and the Debian
# package dataset-fashion-mnist all use these), tried with and without ".gz". The
# "train-images.idx3-ubyte" spelling is how some mirrors (e.g. Kaggle) rename them.
_STEMS = {
    "train": (
        ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
        ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
        ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
    ),
}

PathLike = str | os.PathLike


def _read_bytes(path: pathlib.Path) -> bytes:
    """The file's content, gunzipped if it is gzip-compressed."""
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip stream ({e})") from e


def read_idx(path: PathLike, expect: Literal["images", "labels"] | None = None) -> np.ndarray:
    """Read one uint8 IDX file (plain or gzip).

    Args:
      path: the file.
      expect: ``"images"`` requires magic 2051 (result (N, H, W)); ``"labels"`` requires magic
        2049 (result (N,)); ``None`` accepts either.

    Returns:
      uint8 array, (N, H, W) for images or (N,) for labels.

    Raises:
      DataError: naming ``path``, if the file is missing, has the wrong magic number, or its
        size disagrees with its header.
    """
    path = pathlib.Path(path)
    data = _read_bytes(path)
    allowed = {
        "images": (IMAGES_MAGIC,),
        "labels": (LABELS_MAGIC,),
        None: (IMAGES_MAGIC, LABELS_MAGIC),
    }
    if expect not in allowed:
        raise ValueError(f"expect must be 'images', 'labels' or None, not {expect!r}")
    want = allowed[expect]
    want_text = " or ".join(f"{m} ({'images' if m == IMAGES_MAGIC else 'labels'})" for m in want)
    if len(data) < 4:
        raise DataError(
            f"{path}: truncated IDX file: expected at least 4 bytes of header, found {len(data)}"
        )
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in want:
        raise DataError(f"{path}: wrong IDX magic number: expected {want_text}, found {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file: expected at least {header} bytes of header, "
            f"found {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated IDX file" if len(data) < expected else "IDX file longer than its header"
        raise DataError(
            f"{path}: {what}: header shape {tuple(shape)} needs {expected} bytes "
            f"(uncompressed), found {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: PathLike, array: np.ndarray) -> pathlib.Path:
    """Write a uint8 array of 1 to 3 dimensions as IDX; gzip-compressed if ``path`` ends in ``.gz``.

    (N,) arrays get magic 2049 (labels) and (N, H, W) arrays magic 2051 (images). The gzip
    header carries no timestamp, so equal arrays give byte-identical files.
    """
    path = pathlib.Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 3:
        raise ValueError(f"write_idx writes arrays of 1 to 3 dimensions, got shape {array.shape}")
    header = struct.pack(f">I{array.ndim}I", (_UINT8 << 8) | array.ndim, *array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def find_idx_pair(
    directory: PathLike, split: Literal["train", "test"]
) -> tuple[pathlib.Path, pathlib.Path]:
    """Locate the (images, labels) IDX files of ``split`` in ``directory``.

    Looks for the official names ``train-{images-idx3,labels-idx1}-ubyte`` (split "train") and
    ``t10k-{images-idx3,labels-idx1}-ubyte`` (split "test"), each plain or ``.gz`` -- the names
    used by MNIST, Fashion-MNIST and Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/``). A plain file wins over its ``.gz``.

    Raises:
      DataError: naming the directory and the names tried, if either file is absent.
    """
    directory = pathlib.Path(directory)
    if split not in _STEMS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if not directory.is_dir():
        raise DataError(f"IDX directory not found: {directory}")
    found = []
    for stems in _STEMS[split]:
        names = [stem + ext for stem in stems for ext in ("", ".gz")]
        hit = next((directory / n for n in names if (directory / n).is_file()), None)
        if hit is None:
            raise DataError(f"no {split} IDX file in {directory}: tried {', '.join(names)}")
        found.append(hit)
    return found[0], found[1]


def read_idx_pair(
    images_path: PathLike, labels_path: PathLike, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files and check they agree.

    Returns:
      images uint8 (N, H, W) and labels uint8 (N,).

    Raises:
      DataError: from :func:`read_idx`, or naming both files if the counts differ, or naming
        the labels file if a label is outside ``[0, num_classes)``.
    """
    images = read_idx(images_path, expect="images")
    labels = read_idx(labels_path, expect="labels")
    if len(images) != len(labels):
        raise DataError(
            f"image/label count mismatch: {images_path} has {len(images)} images but "
            f"{labels_path} has {len(labels)} labels"
        )
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is out of range "
            f"[0, {num_classes})"
        )
    return images, labels
