"""Test helper shared by the loaders' tests: turn a prepared array_record tfds dataset into the
TFRecord layout tfds writes by default (which random access cannot read without TensorFlow)."""

from __future__ import annotations

import json
import pathlib
import struct

import tensorflow_datasets as tfds


def to_tfrecord(version_dir: pathlib.Path) -> None:
    """Rewrite an array_record tfds dataset as TFRecord (tfds' default format), CRCs zeroed."""
    b = tfds.builder_from_directory(str(version_dir))
    for split in b.info.splits:
        source = b.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
        with open(version_dir / f"{b.info.name}-{split}.tfrecord-00000-of-00001", "wb") as f:
            for r in source.__getitems__(list(range(len(source)))):
                f.write(struct.pack("<Q", len(r)) + bytes(4) + r + bytes(4))
    for p in version_dir.glob("*.array_record-*"):
        p.unlink()
    info = json.loads((version_dir / "dataset_info.json").read_text())
    info["fileFormat"] = "tfrecord"
    (version_dir / "dataset_info.json").write_text(json.dumps(info))
