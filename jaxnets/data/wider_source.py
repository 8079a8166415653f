"""WIDER FACE read by index: :func:`load_wider` -> :class:`WiderSplit`, ``read(indices)``.

Where the data comes from:

1. ``root``, when given: a WIDER FACE directory in the original layout (the real one, or the
   dense-face set of ``jaxnets make-faces``). It is prepared once into ``data_dir`` by
   :class:`~jaxnets.data.wider_builder.WiderFaceTxt` -- again, naming the changed file, when a
   txt or an image has changed since -- and read back as an array_record data source.
2. Otherwise tfds' own ``wider_face`` (the catalog builder, ``tfds build wider_face``) prepared
   in ``data_dir``: ``<data_dir>/wider_face/<version>/dataset_info.json``, newest version.
   Prepared as array_record it is read with ``as_data_source``; prepared as TFRecord (tfds'
   default) it cannot be read by index without TensorFlow, and :class:`DataError` says how to
   rebuild it (``tfds build wider_face --file_format=array_record``) or to pass ``root``.

Every record read is a dict (K faces)::

    image         uint8 (H, W, 3)  RGB, decoded with PIL (grey JPEGs converted to RGB); a
                                   read-only view of PIL's bytes: copy it to write in place
    boxes         float32 (K, 4)   x1, y1, x2, y2 in pixels, continuous coordinates:
                                   x2 = x1 + w, y2 = y1 + h for the txt's x1 y1 w h, so the box
                                   covers pixel columns x1 .. x2 - 1 (the convention of
                                   jaxnets.tasks.toy_boxes; the official evaluator's +1-pixel
                                   IoU works on x, y, w, h = x1, y1, x2 - x1, y2 - y1)
    blur, expression, illumination, occlusion, pose
                  uint8 (K,)       the WIDER attribute values (see jaxnets.data.wider_txt)
    invalid       bool (K,)        invalid faces are kept, flagged here
    name          str              "<event>/<name>.jpg", relative to WIDER_<split>/images

From tfds' ``wider_face`` the boxes are its normalised ``ymin, xmin, ymax, xmax`` times the
image size, rounded to whole pixels (tfds made them from the same integer pixels, clipped to
the image). Test images have no faces (``WiderSplit.annotated`` False): WIDER FACE never
released them -- except the dense-face set, whose extra ``wider_face_test_bbx_gt.txt`` is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from tensorflow_datasets.proto import tf_example_pb2

from jaxnets.data import builders
from jaxnets.data.errors import DataError
from jaxnets.data.sources import standard_builder
from jaxnets.data.wider_builder import TFDS_SPLITS, WiderFaceTxt, prepare_wider

ATTRIBUTES = ("blur", "expression", "illumination", "occlusion", "pose")
TFDS_NAME = "wider_face"


def decode_jpeg(data: bytes, where: str) -> np.ndarray:
    """JPEG (or any PIL-readable) bytes -> uint8 (H, W, 3) RGB; DataError naming ``where``."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as im:
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (PIL.UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{where}: image cannot be decoded ({type(e).__name__}: {e})") from None


def _image_size(data: bytes) -> tuple[int, int]:
    with PIL.Image.open(io.BytesIO(data)) as im:
        return im.height, im.width


def faces_record(faces: np.ndarray) -> dict[str, np.ndarray]:
    """The txt's face rows (K, 10) -> boxes float32 (K, 4) x1 y1 x2 y2, attributes, invalid."""
    f = np.asarray(faces, np.int64).reshape(-1, 10)
    x1, y1, w, h = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
    out = {"boxes": np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32)}
    columns = dict(zip(("blur", "expression", "illumination", "invalid", "occlusion", "pose"), f[:, 4:].T))
    out.update({k: columns[k].astype(np.uint8) for k in ATTRIBUTES})
    out["invalid"] = columns["invalid"].astype(bool)
    return out


def _ours(feature, where: str, decode: bool) -> dict:
    data = feature["image"].bytes_list.value[0]
    record = faces_record(np.asarray(feature["faces"].int64_list.value, np.int64))
    record["image"] = decode_jpeg(data, where) if decode else data
    record["name"] = feature["image/filename"].bytes_list.value[0].decode()
    return record


def _catalog(feature, where: str, decode: bool) -> dict:
    """tfds' wider_face: faces/bbox (K, 4) normalised ymin xmin ymax xmax; bools as int64."""
    data = feature["image"].bytes_list.value[0]
    image = decode_jpeg(data, where) if decode else data
    h, w = image.shape[:2] if decode else _image_size(data)
    yx = np.asarray(feature["faces/bbox"].float_list.value, np.float64).reshape(-1, 4) * [h, w, h, w]
    record = {"boxes": np.round(yx[:, [1, 0, 3, 2]]).astype(np.float32)}
    for k in (*ATTRIBUTES, "invalid"):
        record[k] = np.asarray(feature[f"faces/{k}"].int64_list.value, np.uint8)
    record["invalid"] = record["invalid"].astype(bool)
    record["image"], record["name"] = image, feature["image/filename"].bytes_list.value[0].decode()
    return record


class WiderSplit:
    """One split, read by index: ``read(indices)`` parses and decodes those records only.

    ``source`` says in words where it comes from; ``annotated`` is False for a test split whose
    faces are unknown (records then have K = 0)."""

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str, source: str, annotated: bool):
        self.builder, self.split, self.source, self.annotated = builder, split, source, annotated
        self.ours = isinstance(builder, WiderFaceTxt)
        self._records = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
        n = builder.info.splits[split].num_examples
        if len(self._records) != n:
            raise DataError(f"{builder.data_dir}: split {split} has {len(self._records)} records, "
                            f"dataset_info.json says {n}")

    def __len__(self) -> int:
        return len(self._records)

    def read(self, indices, decode: bool = True) -> list[dict]:
        """Records ``indices`` (ints in [0, len)) as dicts (see the module docstring); with
        ``decode=False`` ``image`` stays the JPEG bytes."""
        wanted = [int(i) for i in np.asarray(indices, np.int64).reshape(-1)]
        bad = [i for i in wanted if not 0 <= i < len(self)]
        if bad:
            raise DataError(f"{self.builder.data_dir} ({self.split}): index {bad[0]} outside [0, {len(self)})")
        parse = _ours if self.ours else _catalog
        out = []
        for i, raw in zip(wanted, self._records.__getitems__(wanted)):
            feature = tf_example_pb2.Example.FromString(raw).features.feature
            out.append(parse(feature, f"{self.builder.data_dir} ({self.split}) record {i}", decode))
        return out

    def describe(self) -> dict:
        """A JSON fingerprint: dataset, split, size and a digest of what it was built from;
        ``["summary"]`` is one line for people."""
        info = self.builder.info
        if self.ours:
            built_from = info.metadata.get("source", {})
        else:  # tfds' catalog set: its recorded shard sizes
            built_from = {"num_bytes": info.splits[self.split].num_bytes,
                          "shard_lengths": list(info.splits[self.split].shard_lengths)}
        digest = hashlib.sha256(json.dumps(built_from, sort_keys=True).encode()).hexdigest()[:16]
        return {"kind": "wider_face", "dataset": info.full_name, "split": self.split, "examples": len(self),
                "annotated": self.annotated, "source_sha256": digest,
                "summary": f"WIDER FACE {self.split}: {len(self):,} images from {self.source}"}


def _split_name(split: str) -> str:
    name = TFDS_SPLITS.get(split, split)
    if name not in TFDS_SPLITS.values():
        raise DataError(f"split {split!r}: expected one of train, validation (or val), test")
    return name


def _catalog_builder(data_dir: str) -> tfds.core.DatasetBuilder | None:
    """tfds' own wider_face prepared in data_dir (newest version), when it is readable by index."""
    builder = standard_builder(TFDS_NAME, data_dir)
    if builder is None:
        return None
    fmt = builder.info.file_format
    if fmt != tfds.core.FileFormat.ARRAY_RECORD:
        raise DataError(
            f"{builder.data_dir}: tfds wider_face is prepared as {fmt.value if fmt else 'tfrecord'}, which needs "
            "TensorFlow to read by index; rebuild it with `tfds build wider_face --file_format=array_record` "
            "(TensorFlow needed once) or pass the raw WIDER FACE directory (root= / --wider-dir)")
    if not {"image", "image/filename", "faces"} <= set(builder.info.features.keys()):
        raise DataError(f"{builder.data_dir}: not tfds' wider_face layout (features "
                        f"{sorted(builder.info.features.keys())})")
    return builder


def open_wider(root=None, data_dir: str = "") -> tuple[tfds.core.DatasetBuilder, str, str]:
    """(prepared builder, description of the source, note about a re-preparation or "")."""
    data_dir = os.path.expanduser(str(data_dir)) if data_dir else builders.default_data_dir()
    nearest = next((p for p in (pathlib.Path(data_dir), *pathlib.Path(data_dir).parents) if p.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise DataError(f"data dir {data_dir}: {nearest} is not a directory")
    if root:
        builder, note = prepare_wider(os.path.expanduser(str(root)), data_dir)
        return builder, f"WIDER files in {root} (prepared in {builder.data_dir})", note
    builder = _catalog_builder(data_dir)
    if builder is None:
        raise DataError(f"no WIDER FACE: no prepared tfds wider_face in {data_dir}; pass the WIDER FACE "
                        "directory (root= / --wider-dir: the one holding wider_face_split/ and WIDER_val/ ...)")
    return builder, f"tfds prepared wider_face {builder.info.version} in {data_dir} (array_record)", ""


def load_wider(root=None, split: str = "validation", data_dir: str = "") -> WiderSplit:
    """One WIDER FACE split, read by index.

    Args:
      root: a WIDER FACE directory in the original layout (prepared into ``data_dir`` once);
        None: use tfds' ``wider_face`` prepared in ``data_dir``.
      split: ``train``, ``validation`` (or ``val``), ``test``.
      data_dir: tfds data directory; "" = ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    Raises:
      DataError: a malformed or missing file (``"<txt>:<line>: ..."``), no data, a TFRecord
      tfds set, or a split the data lacks.
    """
    name = _split_name(split)
    builder, source, _ = open_wider(root, data_dir)
    if name not in builder.info.splits:
        raise DataError(f"{source}: no {name} split (it has {', '.join(builder.info.splits) or 'none'})")
    if isinstance(builder, WiderFaceTxt):
        annotated = name != "test" or bool(builder.info.metadata.get("test_annotated"))
    else:
        annotated = name != "test"
    return WiderSplit(builder, name, source, annotated)
