"""The official evaluation ground truth: ``eval_tools/ground_truth/*.mat`` (MATLAB v5, via scipy).

``wider_face_val.mat`` holds, each a cell array with one row per event::

    event_list        {E x 1}  event folder name, e.g. '0--Parade'
    file_list         {E x 1}  each {M x 1} image stems (no '.jpg')
    face_bbx_list     {E x 1}  each {M x 1} (K x 4) double boxes x, y, w, h (pixels)
    blur_label_list, expression_label_list, illumination_label_list,
    invalid_label_list, occlusion_label_list, pose_label_list
                      {E x 1}  each {M x 1} (K x 1) labels, as in the txt

``wider_{easy,medium,hard}_val.mat`` repeat event_list, file_list, face_bbx_list and add::

    gt_list           {E x 1}  each {M x 1} (k x 1) 1-based indices of the faces of that image
                      that belong to the subset; the image's other faces are *ignore* faces

With scipy's ``loadmat`` a cell is an object array of shape (n, 1), so the boxes of image j of
event i are ``m['face_bbx_list'][i][0][j][0]`` -- the nesting this module writes and reads.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from jaxnets.data.errors import DataError
from jaxnets.data.wider_txt import FACE_FIELDS, WiderImage

SUBSETS = ("easy", "medium", "hard")
FACE_MAT = "wider_face_val.mat"
SUBSET_MAT = {s: f"wider_{s}_val.mat" for s in SUBSETS}
LABELS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclasses.dataclass(frozen=True)
class WiderGroundTruth:
    """Validation ground truth grouped as the official files group it.

    events:  E event folder names, in file order
    files:   per event, the M image stems
    boxes:   per event, per image: (K, 4) float64 x, y, w, h
    invalid: per event, per image: (K,) bool, the invalid flags
    subsets: subset name -> per event, per image: (k,) int64 1-based face indices (gt_list);
             {} when there are no subset files
    source:  what it was read from, for messages
    official: True when the subsets came from ``wider_{easy,medium,hard}_val.mat``
    """

    events: list[str]
    files: list[list[str]]
    boxes: list[list[np.ndarray]]
    invalid: list[list[np.ndarray]]
    subsets: dict[str, list[list[np.ndarray]]]
    source: str
    official: bool

    def names(self):
        """Yield (event index, image index, 'event/stem') over every image."""
        for i, event in enumerate(self.events):
            for j, stem in enumerate(self.files[i]):
                yield i, j, f"{event}/{stem}"

    @property
    def num_images(self) -> int:
        return sum(len(f) for f in self.files)


def _cell(items) -> np.ndarray:
    out = np.empty((len(items), 1), dtype=object)
    for i, x in enumerate(items):
        out[i, 0] = x
    return out


def _group(images: list[WiderImage]) -> dict[str, list[WiderImage]]:
    groups: dict[str, list[WiderImage]] = {}
    for im in images:
        groups.setdefault(im.event, []).append(im)
    return groups


def _common(groups) -> dict[str, np.ndarray]:
    faces = lambda im: np.asarray(im.faces, np.int64).reshape(-1, len(FACE_FIELDS))  # noqa: E731
    return {
        "event_list": _cell(list(groups)),
        "file_list": _cell([_cell([im.stem for im in ims]) for ims in groups.values()]),
        "face_bbx_list": _cell([_cell([faces(im)[:, :4].astype(np.float64) for im in ims])
                                for ims in groups.values()]),
    }


MAT_HEADER = b"MATLAB 5.0 MAT-file, written by jaxnets (jaxnets.data.wider_mat)"


def _savemat(path: pathlib.Path, variables: dict) -> None:
    """scipy's savemat, with a fixed 116-byte description in place of the one holding the time
    of writing, so the same content gives byte-identical files."""
    import io

    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    path.write_bytes(bytes(data))


def write_val_mats(out_dir, images: list[WiderImage], subsets: dict[str, dict[str, np.ndarray]]) -> None:
    """Write ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` into ``out_dir``.

    subsets: subset name -> {image name 'event/stem.jpg': 1-based face indices}; an image not in
    a subset's dict has no face in that subset."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = _group(images)
    common = _common(groups)
    labels = {f"{name}_label_list": _cell([_cell([
        np.asarray(im.faces, np.int64).reshape(-1, len(FACE_FIELDS))[:, [FACE_FIELDS.index(name)]].astype(np.float64)
        for im in ims]) for ims in groups.values()]) for name in LABELS}
    _savemat(out_dir / FACE_MAT, {**common, **labels})
    for s in SUBSETS:
        keep = subsets.get(s, {})
        gt_list = _cell([_cell([np.asarray(keep.get(im.name, []), np.int32).reshape(-1, 1) for im in ims])
                         for ims in groups.values()])
        _savemat(out_dir / SUBSET_MAT[s], {**common, "gt_list": gt_list})


def find_val_mats(path) -> pathlib.Path | None:
    """The directory holding the four official .mat files: ``path`` itself, or
    ``path/eval_tools/ground_truth``, ``path/ground_truth``, ``path/eval_tools``. None when no
    candidate holds any of them; DataError when one holds only some."""
    path = pathlib.Path(path)
    names = [FACE_MAT, *SUBSET_MAT.values()]
    for d in (path, path / "eval_tools" / "ground_truth", path / "ground_truth", path / "eval_tools"):
        present = [n for n in names if (d / n).is_file()]
        if len(present) == len(names):
            return d
        if present:
            missing = ", ".join(n for n in names if n not in present)
            raise DataError(f"{d}: has {', '.join(present)} but not {missing}")
    return None


def _load(path: pathlib.Path, keys: tuple[str, ...]) -> dict:
    from scipy.io import loadmat

    try:
        m = loadmat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except Exception as e:  # scipy raises ValueError / TypeError / MatReadError on damaged files
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {str(e)[:80]})") from None
    for k in keys:
        if k not in m:
            raise DataError(f"{path}: has no variable {k!r}")
    return m


def _cells(path, m, key: str, shape_of=None) -> list:
    """A cell {E x 1} of cells {M x 1} as nested python lists of the leaf arrays."""
    try:
        outer = [m[key][i][0] for i in range(len(m[key]))]
        return [[inner[j][0] for j in range(len(inner))] for inner in outer]
    except (IndexError, TypeError, KeyError):
        raise DataError(f"{path}: {key} is not a cell of cells (E x 1 of M x 1)") from None


def _strings(path, m, key) -> list:
    try:
        return [str(np.asarray(x).reshape(-1)[0]) for x in (m[key][i][0] for i in range(len(m[key])))]
    except (IndexError, TypeError):
        raise DataError(f"{path}: {key} is not a cell of strings") from None


def _boxes(path, m) -> tuple[list[str], list[list[str]], list[list[np.ndarray]]]:
    events = _strings(path, m, "event_list")
    files = [[str(np.asarray(s).reshape(-1)[0]) for s in row] for row in _cells(path, m, "file_list")]
    boxes = []
    for i, row in enumerate(_cells(path, m, "face_bbx_list")):
        out = []
        for j, b in enumerate(row):
            try:
                b = np.asarray(b, np.float64)
            except (ValueError, TypeError):
                raise DataError(f"{path}: face_bbx_list[{i}][{j}] is not numeric") from None
            if b.size == 0:
                b = b.reshape(0, 4)
            if b.ndim != 2 or b.shape[1] != 4 or not np.isfinite(b).all():
                raise DataError(f"{path}: face_bbx_list[{i}][{j}] is not a finite K x 4 array (shape {b.shape})")
            if (b[:, 2:] < 0).any():
                raise DataError(f"{path}: face_bbx_list[{i}][{j}] has a negative width or height")
            out.append(b)
        boxes.append(out)
    if not (len(events) == len(files) == len(boxes)) or any(len(f) != len(b) for f, b in zip(files, boxes)):
        raise DataError(f"{path}: event_list, file_list and face_bbx_list disagree in length")
    return events, files, boxes


def _subset(path, m, files, boxes) -> list[list[np.ndarray]]:
    rows = _cells(path, m, "gt_list")
    if len(rows) != len(files) or any(len(r) != len(f) for r, f in zip(rows, files)):
        raise DataError(f"{path}: gt_list does not have one entry per image of file_list")
    out = []
    for i, row in enumerate(rows):
        keep_row = []
        for j, keep in enumerate(row):
            try:
                k = np.asarray(keep, np.float64).reshape(-1)
            except (ValueError, TypeError):
                raise DataError(f"{path}: gt_list[{i}][{j}] is not numeric") from None
            if k.size and (not np.all(np.equal(np.mod(k, 1), 0)) or k.min() < 1 or k.max() > len(boxes[i][j])):
                raise DataError(f"{path}: gt_list[{i}][{j}] holds {[int(v) if float(v).is_integer() else v for v in k[:5]]}, not 1-based indices "
                                f"into that image's {len(boxes[i][j])} faces")
            keep_row.append(k.astype(np.int64))
        out.append(keep_row)
    return out


def read_val_mats(gt_dir) -> WiderGroundTruth:
    """The four official files of ``gt_dir`` (see :func:`find_val_mats`)."""
    gt_dir = pathlib.Path(gt_dir)
    face = _load(gt_dir / FACE_MAT, ("event_list", "file_list", "face_bbx_list"))
    events, files, boxes = _boxes(gt_dir / FACE_MAT, face)
    if "invalid_label_list" in face:
        invalid = [[np.asarray(v).reshape(-1).astype(bool) for v in row]
                   for row in _cells(gt_dir / FACE_MAT, face, "invalid_label_list")]
    else:
        invalid = [[np.zeros(len(b), bool) for b in row] for row in boxes]
    subsets = {}
    for s in SUBSETS:
        path = gt_dir / SUBSET_MAT[s]
        m = _load(path, ("event_list", "file_list", "gt_list"))
        if _strings(path, m, "event_list") != events:
            raise DataError(f"{path}: event_list differs from {FACE_MAT}'s")
        try:
            same_files = [[str(np.asarray(x).reshape(-1)[0]) for x in row]
                          for row in _cells(path, m, "file_list")] == files
        except IndexError:
            same_files = False
        if not same_files:
            raise DataError(f"{path}: file_list differs from {FACE_MAT}'s")
        subsets[s] = _subset(path, m, files, boxes)
    return WiderGroundTruth(events, files, boxes, invalid, subsets, str(gt_dir), official=True)


def ground_truth_from_images(images: list[WiderImage], source: str) -> WiderGroundTruth:
    """Ground truth grouped by event from txt records (no subsets: ``official`` is False)."""
    groups = _group(images)
    faces = lambda im: np.asarray(im.faces, np.int64).reshape(-1, len(FACE_FIELDS))  # noqa: E731
    return WiderGroundTruth(
        events=list(groups),
        files=[[im.stem for im in ims] for ims in groups.values()],
        boxes=[[faces(im)[:, :4].astype(np.float64) for im in ims] for ims in groups.values()],
        invalid=[[faces(im)[:, FACE_FIELDS.index("invalid")].astype(bool) for im in ims] for ims in groups.values()],
        subsets={}, source=source, official=False)
