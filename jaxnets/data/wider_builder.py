"""A tfds builder for WIDER FACE in its original layout -> array_record, no TensorFlow.

:class:`WiderFaceTxt` (tfds name ``wider_face_txt``) reads a WIDER FACE root (see
:mod:`jaxnets.data.wider_txt` for the layout and the txt format)::

    wider_face_split/wider_face_{train,val}_bbx_gt.txt, wider_face_test_filelist.txt
    WIDER_{train,val,test}/images/<event>/<name>.jpg

into the splits ``train``, ``validation`` and ``test``. A split is prepared when its images
directory ``WIDER_<split>/images`` exists (many users download only train and val, or only
val); its txt is then required. Test images come without faces -- WIDER FACE never released
them -- unless the root also holds ``wider_face_split/wider_face_test_bbx_gt.txt`` (the
dense-face set that ``jaxnets make-faces`` writes has one): then that file gives the test faces.

Every record (one per image, in the order of its txt: ``disable_shuffling=True``, so record
``i`` of a split is the ``i``-th image of its file)::

    image           Tensor () bytes  -- the JPEG file's bytes, unchanged (decode with PIL)
    image/filename  Text             -- "<event>/<name>.jpg", relative to WIDER_<split>/images
    height, width   Tensor () int32  -- image size in pixels, read from the JPEG header
    faces           Tensor (K, 10) int32 -- the txt's face lines, columns
                    wider_txt.FACE_FIELDS = x1 y1 w h blur expression illumination invalid
                    occlusion pose; invalid faces are kept (invalid = 1); K = 0 without faces

Not ``tfds.features.Image``: the bytes would be the same, but our reader decodes them itself.

Before anything is written every annotation is parsed (:func:`wider_txt.read_gt`) and checked
against its image (:func:`wider_txt.check_images`), so a malformed file fails with one
``"<txt>:<line>: ..."`` error and leaves nothing on disk. tfds then writes into a temporary
``<version>.incomplete.*`` directory and renames it when done: a preparation killed midway
leaves no ``dataset_info.json`` at the version directory, i.e. nothing that looks prepared.

Each root gets its own builder config (``<root name>_<8 hex of its absolute path>``), so a
data dir can hold the real WIDER FACE and a dense-face set side by side:
``<data_dir>/wider_face_txt/<config>/1.0.0/``. The prepared set's ``metadata.json`` records
what it was built from (see :func:`source_fingerprint`); :func:`prepare_wider` compares that
with the files now on disk and prepares again, naming the first changed file, when they
differ -- the convention of :func:`jaxnets.data.builders.prepare`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pathlib
import re

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxnets.data.builders import FILE_FORMAT, _LocalBuilder
from jaxnets.data.errors import DataError
from jaxnets.data.wider_txt import FACE_FIELDS, WiderImage, check_images, read_filelist_lines, read_gt, split_paths

log = logging.getLogger(__name__)


class _NoCustomConfigNote(logging.Filter):
    """Drops tfds' "Using custom data configuration" warning: every root has its own config."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Using custom data configuration")


logging.getLogger("absl").addFilter(_NoCustomConfigNote())

TFDS_SPLITS = {"train": "train", "val": "validation", "test": "test"}  # WIDER's name -> tfds' name
TEST_GT = "wider_face_test_bbx_gt.txt"  # the dense-face set's extra file: faces of the test images


@dataclasses.dataclass(frozen=True, eq=False)
class SplitScan:
    """One split of a root, parsed and checked: ``images`` in file order, ``sizes`` (H, W) each."""

    split: str  # "train" | "val" | "test" (WIDER's names)
    txt: pathlib.Path
    images_dir: pathlib.Path
    images: list[WiderImage]
    sizes: list[tuple[int, int]]
    annotated: bool  # False for a test split read from the file list: faces unknown, not absent


def _filelist_images(path: pathlib.Path) -> list[WiderImage]:
    """The test file list as face-less WiderImages that keep their line numbers."""
    return [WiderImage(n, np.zeros((0, len(FACE_FIELDS)), np.int64), line) for line, n in read_filelist_lines(path)]


def scan_split(root: pathlib.Path, split: str) -> SplitScan:
    """Parse and check one split; WiderFormatError ``"<txt>:<line>: ..."`` at the first defect."""
    txt, images_dir = split_paths(root, split)
    annotated = True
    if split == "test":
        if (root / "wider_face_split" / TEST_GT).is_file():
            txt = root / "wider_face_split" / TEST_GT
        else:
            annotated = False
    images = read_gt(txt) if annotated else _filelist_images(txt)
    return SplitScan(split, txt, images_dir, images, check_images(txt, images, images_dir), annotated)


def present_splits(root: pathlib.Path) -> list[str]:
    """WIDER split names whose ``WIDER_<split>/images`` directory exists under ``root``."""
    return [s for s in TFDS_SPLITS if split_paths(root, s)[1].is_dir()]


def scan_root(root) -> dict[str, SplitScan]:
    """Every present split of a WIDER root, parsed and checked (nothing written)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory (expected a WIDER FACE root holding wider_face_split/ "
                        "and WIDER_train/, WIDER_val/, WIDER_test/)")
    splits = present_splits(root)
    if not splits:
        raise DataError(f"{root}: none of WIDER_train/images, WIDER_val/images, WIDER_test/images exists")
    return {s: scan_split(root, s) for s in splits}


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_fingerprint(root, scans: dict[str, SplitScan]) -> dict:
    """What a prepared set is built from, paths relative to ``root``::

        {"root": absolute root, "splits": ["train", ...],
         "txt": {path: sha256}, "images": {path: [size, mtime_ns, sha256]}}
    """
    root = pathlib.Path(os.path.abspath(root))
    txt, images = {}, {}
    for scan in scans.values():
        txt[os.path.relpath(scan.txt, root)] = _sha256(scan.txt)
        for im in scan.images:
            p = scan.images_dir / im.name
            st = p.stat()
            images[os.path.relpath(p, root)] = [st.st_size, st.st_mtime_ns, _sha256(p)]
    return {"root": str(root), "splits": sorted(scans), "txt": txt, "images": images}


def changed_file(recorded: dict, root) -> str | None:
    """The first source file that differs from ``recorded`` (a :func:`source_fingerprint`), with
    what changed, or None. Images are compared by size and mtime, and by sha256 only when those
    differ, so the check costs one ``stat`` per image."""
    root = pathlib.Path(os.path.abspath(root))
    if sorted(present_splits(root)) != recorded.get("splits"):
        return f"{root}: the WIDER_*/images directories present ({', '.join(present_splits(root))})"
    for rel, digest in recorded["txt"].items():
        p = root / rel
        if not p.is_file() or _sha256(p) != digest:
            return f"{p} ({'missing' if not p.is_file() else 'contents changed'})"
    for rel, (size, mtime_ns, digest) in recorded["images"].items():
        p = root / rel
        try:
            st = p.stat()
        except OSError:
            return f"{p} (missing)"
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) and _sha256(p) != digest:
            return f"{p} (contents changed)"
    return None


def root_config(root) -> tfds.core.BuilderConfig:
    """The builder config of one WIDER root: ``<root name>_<sha256 of its absolute path, 8 hex>``."""
    path = str(pathlib.Path(root).resolve())
    slug = re.sub(r"[^a-z0-9]+", "_", pathlib.Path(path).name.lower()).strip("_")[:40] or "root"
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return tfds.core.BuilderConfig(name=f"{slug}_{digest}", description=f"WIDER FACE files under {path}")


class WiderFaceTxt(_LocalBuilder):
    """WIDER FACE txt + JPEG files of one root -> array_record (see the module docstring).

    Usage (:func:`prepare_wider` skips the work when it is already done from the same files)::

        b, note = prepare_wider(root, data_dir)
        val = b.as_data_source("validation")   # or jaxnets.data.wider_source.load_wider
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "WIDER FACE txt + JPEG bytes; faces (K, 10) as in the txt; height, width."}

    def __init__(self, *, root, **kwargs):
        self._root = pathlib.Path(root)
        self._scans: dict[str, SplitScan] | None = None
        kwargs.setdefault("config", root_config(root))
        super().__init__(**kwargs)
        self._init_kwargs["root"] = root

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="WIDER FACE from its original txt and JPEG files; images stay JPEG-encoded.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(), dtype=np.object_),
                "image/filename": tfds.features.Text(),
                "height": tfds.features.Tensor(shape=(), dtype=np.int32),
                "width": tfds.features.Tensor(shape=(), dtype=np.int32),
                "faces": tfds.features.Tensor(shape=(None, len(FACE_FIELDS)), dtype=np.int32),
            }),
            disable_shuffling=True,
            homepage="http://shuoyang1213.me/WIDERFACE/",
            metadata=tfds.core.MetadataDict(),
        )

    @property
    def root(self) -> pathlib.Path:
        return self._root

    def scan(self) -> dict[str, SplitScan]:
        """Parse and check every present split (once); raises before anything is written."""
        if self._scans is None:
            self._scans = scan_root(self._root)
        return self._scans

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded
        scans = self.scan()
        self.info.metadata["source"] = source_fingerprint(self._root, scans)
        self.info.metadata["test_annotated"] = bool("test" in scans and scans["test"].annotated)
        return {TFDS_SPLITS[s]: self._generate_examples(scan) for s, scan in scans.items() if scan.images}

    def _generate_examples(self, scan: SplitScan):
        for i, (im, (h, w)) in enumerate(zip(scan.images, scan.sizes)):
            yield i, {
                "image": (scan.images_dir / im.name).read_bytes(),
                "image/filename": im.name,
                "height": h,
                "width": w,
                "faces": np.asarray(im.faces, np.int32).reshape(-1, len(FACE_FIELDS)),
            }


def _prepared_source(builder: WiderFaceTxt) -> dict | None:
    return dict(builder.info.metadata).get("source") if builder.is_prepared() else None


def prepare_wider(root, data_dir: str) -> tuple[WiderFaceTxt, str]:
    """Prepare the WIDER root as array_record in ``data_dir`` unless it already is, from the same
    files. Returns ``(builder ready for as_data_source, note)``; ``note`` is "" or says which file
    changed since the last preparation (the stale set is deleted and prepared again).

    Raises DataError / WiderFormatError naming the file and line of the first defect.
    """
    builder, note = WiderFaceTxt(root=root, data_dir=data_dir), ""
    recorded = _prepared_source(builder)
    if recorded is not None:
        changed = changed_file(recorded, root)
        if changed is None:
            return builder, ""
        note = f"{builder.data_dir} is stale: {changed} since it was prepared; preparing it again"
        log.warning(note)
    builder.scan()  # every defect is reported here, before anything is deleted or written
    if recorded is not None:
        epath.Path(builder.data_dir).rmtree()
        scans, builder = builder.scan(), builder.fresh()
        builder._scans = scans
    try:
        builder.download_and_prepare(file_format=FILE_FORMAT)
    except OSError:
        # Another process may have finished the same preparation first: tfds writes to a
        # temporary directory and its final rename then fails here.
        other = builder.fresh()
        if other.is_prepared() and changed_file(_prepared_source(other), root) is None:
            return other, note
        raise
    return builder, note
