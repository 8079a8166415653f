"""WIDER FACE's own text files: read, check and write them.

The layout of a WIDER FACE root (the official ``wider_face_split.zip`` and ``WIDER_*.zip``)::

    wider_face_split/wider_face_train_bbx_gt.txt     faces of the training images
    wider_face_split/wider_face_val_bbx_gt.txt       faces of the validation images
    wider_face_split/wider_face_test_filelist.txt    names of the test images (no faces)
    WIDER_{train,val,test}/images/<event>/<name>.jpg

A ``*_bbx_gt.txt`` file is a sequence of records, one per image::

    0--Parade/0_Parade_marchingband_1_849.jpg        the image, relative to WIDER_<split>/images
    1                                                its number of faces K
    449 330 122 149 0 0 0 0 0 0                      K lines: x1 y1 w h blur expression
                                                     illumination invalid occlusion pose

(pixels; x1, y1 the top-left corner). An image with no faces still has one all-zero line after
its ``0``. Attribute values (the official readme): blur 0 clear / 1 normal / 2 heavy; expression
0 typical / 1 exaggerate; illumination 0 normal / 1 extreme; invalid 0 false / 1 true; occlusion
0 no / 1 partial / 2 heavy; pose 0 typical / 1 atypical. Invalid faces are kept, with their flag.

Every defect is reported as one :class:`WiderFormatError` ``"<path>:<line>: <what>"``:
a count that is not a non-negative integer or disagrees with the face lines that follow, a
non-numeric or non-integer field, a negative width or height, an attribute out of its range,
a repeated image, a missing or unreadable image, a box outside its image.
"""

from __future__ import annotations

import dataclasses
import os
import re
import pathlib
from typing import Iterable

import numpy as np

from jaxnets.data.errors import DataError

FACE_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")
ATTRIBUTE_MAX = {"blur": 2, "expression": 1, "illumination": 1, "invalid": 1, "occlusion": 2, "pose": 1}
SPLITS = ("train", "val", "test")
INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only (int() would also take '١٠' or '1_0')
MAX_COORD = 10**9  # larger than any image side or face count; keeps every value inside int64


class WiderFormatError(DataError):
    """A WIDER FACE file is malformed; the message is ``"<path>:<line>: <what>"``."""


@dataclasses.dataclass(frozen=True)
class WiderImage:
    """One image's record.

    name:  ``"<event>/<stem>.jpg"``, relative to ``WIDER_<split>/images``
    faces: (K, 10) int64, columns :data:`FACE_FIELDS`; K = 0 for an image without faces
    line:  1-based line of ``name`` in the file it was read from (0 when made in memory)
    face_lines: the 1-based line of each face (empty when made in memory)
    """

    name: str
    faces: np.ndarray
    line: int = 0
    face_lines: tuple[int, ...] = ()

    @property
    def event(self) -> str:
        return self.name.split("/")[0]

    @property
    def stem(self) -> str:
        return os.path.splitext(self.name.split("/")[-1])[0]

    @property
    def boxes(self) -> np.ndarray:
        """(K, 4) int64: x1, y1, w, h in pixels."""
        return self.faces[:, :4]


def split_paths(root, split: str) -> tuple[pathlib.Path, pathlib.Path]:
    """(annotation txt, images dir) of ``split`` in ``train | val | test`` under a WIDER root."""
    if split not in SPLITS:
        raise DataError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    root = pathlib.Path(root)
    name = "wider_face_test_filelist.txt" if split == "test" else f"wider_face_{split}_bbx_gt.txt"
    return root / "wider_face_split" / name, root / f"WIDER_{split}" / "images"


def _lines(path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line."""
    try:
        text = pathlib.Path(path).read_bytes().decode("utf-8-sig")  # a leading BOM is dropped
    except FileNotFoundError:
        raise WiderFormatError(f"{path}: not found") from None
    except IsADirectoryError:
        raise WiderFormatError(f"{path}: is a directory, not an annotation file") from None
    except UnicodeDecodeError as e:
        line = text_line_of(pathlib.Path(path).read_bytes(), e.start)
        raise WiderFormatError(f"{path}:{line}: not UTF-8 text") from None
    except OSError as e:
        raise WiderFormatError(f"{path}: cannot read ({e.strerror})") from None
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


def text_line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _is_numeric_line(text: str) -> bool:
    try:
        [float(t) for t in text.split()]
    except ValueError:
        return False
    return True


def _parse_face(path, line: int, text: str, count_line: int, count: int) -> np.ndarray:
    tokens = text.split()
    if len(tokens) == 1 and not _is_numeric_line(text):
        raise WiderFormatError(f"{path}:{line}: expected a face line, found an image name {text!r}: "
                               f"the count on line {count_line} says {count} faces but fewer follow")
    if len(tokens) != len(FACE_FIELDS):
        raise WiderFormatError(f"{path}:{line}: a face line has {len(FACE_FIELDS)} fields "
                               f"({' '.join(FACE_FIELDS)}), found {len(tokens)}")
    values = []
    for field, tok in zip(FACE_FIELDS, tokens):
        if not INTEGER.fullmatch(tok):
            kind = "not an integer" if _is_numeric_line(tok) else "not a number"
            raise WiderFormatError(f"{path}:{line}: field {field} = {tok!r} is {kind}")
        if abs(int(tok)) > MAX_COORD:
            raise WiderFormatError(f"{path}:{line}: field {field} = {tok} is out of range (|value| > {MAX_COORD})")
        values.append(int(tok))
    face = np.asarray(values, np.int64)
    for field in ("w", "h"):
        if face[FACE_FIELDS.index(field)] < 0:
            raise WiderFormatError(f"{path}:{line}: negative size: {field} = {face[FACE_FIELDS.index(field)]}")
    for field, top in ATTRIBUTE_MAX.items():
        v = face[FACE_FIELDS.index(field)]
        if not 0 <= v <= top:
            raise WiderFormatError(f"{path}:{line}: field {field} = {v} is outside 0..{top}")
    return face


def _parse_name(path, line: int, text: str) -> str:
    if _is_numeric_line(text):
        raise WiderFormatError(f"{path}:{line}: expected an image name, found {text!r} "
                               "(the count of the record before it is too small?)")
    if " " in text or "\t" in text or "/" not in text:
        raise WiderFormatError(f"{path}:{line}: expected an image name '<event>/<name>.jpg', found {text!r}")
    parts = text.replace("\\", "/").split("/")
    if text.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or "" in parts:
        raise WiderFormatError(f"{path}:{line}: image name {text!r} must be a relative path inside the "
                               "images folder ('<event>/<name>.jpg', no '..')")
    return text


def _parse_count(path, lines, k: int, name_line: int) -> int:
    if k >= len(lines):
        raise WiderFormatError(f"{path}:{name_line}: the file ends before this image's face count")
    line, text = lines[k]
    if not INTEGER.fullmatch(text):
        raise WiderFormatError(f"{path}:{line}: face count {text!r} is not an integer")
    count = int(text)
    if count > MAX_COORD:
        raise WiderFormatError(f"{path}:{line}: face count {count} is out of range")
    if count < 0:
        raise WiderFormatError(f"{path}:{line}: face count {count} is negative")
    return count


def read_gt(path) -> list[WiderImage]:
    """Every record of a ``wider_face_{train,val}_bbx_gt.txt``, in file order.

    Raises WiderFormatError ``"<path>:<line>: ..."`` at the first defect."""
    lines, images, seen, k = _lines(path), [], {}, 0
    if not lines:
        raise WiderFormatError(f"{path}: empty: no image records")
    while k < len(lines):
        name_line, text = lines[k]
        name = _parse_name(path, name_line, text)
        if name in seen:
            raise WiderFormatError(f"{path}:{name_line}: image {name} is listed twice (first on line {seen[name]})")
        seen[name] = name_line
        count = _parse_count(path, lines, k + 1, name_line)
        count_line, k = lines[k + 1][0], k + 2
        faces, face_lines = [], []
        for _ in range(count):
            if k >= len(lines):
                raise WiderFormatError(f"{path}:{count_line}: the count says {count} faces but the file "
                                       f"ends after {len(faces)}")
            faces.append(_parse_face(path, lines[k][0], lines[k][1], count_line, count))
            face_lines.append(lines[k][0])
            k += 1
        if count == 0 and k < len(lines) and _is_numeric_line(lines[k][1]):
            zero = _parse_face(path, lines[k][0], lines[k][1], count_line, count)  # the all-zero line
            if zero.any():
                raise WiderFormatError(f"{path}:{lines[k][0]}: the count on line {count_line} is 0, "
                                       "but a non-zero face line follows")
            k += 1
        arr = np.asarray(faces, np.int64).reshape(-1, len(FACE_FIELDS))
        images.append(WiderImage(name, arr, name_line, tuple(face_lines)))
    return images


def write_gt(path, images: Iterable[WiderImage]) -> None:
    """Write records in the official layout (a zero-face image gets one all-zero line).

    Each face line ends with a space, as the official files' lines do."""
    out = []
    for im in images:
        faces = np.asarray(im.faces, np.int64).reshape(-1, len(FACE_FIELDS))
        out.append(im.name)
        out.append(str(len(faces)))
        rows = faces if len(faces) else np.zeros((1, len(FACE_FIELDS)), np.int64)
        out.extend(" ".join(str(int(v)) for v in row) + " " for row in rows)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")


def read_filelist_lines(path) -> list[tuple[int, str]]:
    """(1-based line, image name) of every entry of ``wider_face_test_filelist.txt``, in file order."""
    entries, seen = [], {}
    for line, text in _lines(path):
        name = _parse_name(path, line, text)
        if name in seen:
            raise WiderFormatError(f"{path}:{line}: image {name} is listed twice (first on line {seen[name]})")
        seen[name] = line
        entries.append((line, name))
    return entries


def read_filelist(path) -> list[str]:
    """Image names of ``wider_face_test_filelist.txt``, one per line."""
    return [name for _, name in read_filelist_lines(path)]


def write_filelist(path, names: Iterable[str]) -> None:
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")


def image_size(path, image_path: pathlib.Path, line: int) -> tuple[int, int]:
    """(H, W) of an image from its header; WiderFormatError naming the annotation line if absent."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image_path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise WiderFormatError(f"{path}:{line}: image not found: {image_path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise WiderFormatError(f"{path}:{line}: image {image_path} cannot be read ({type(e).__name__})") from None
    return h, w


def check_images(path, images: list[WiderImage], images_dir) -> list[tuple[int, int]]:
    """(H, W) of every image; a missing or unreadable image, or a face box reaching outside its
    image (x1 < 0, y1 < 0, x1 + w > W or y1 + h > H), is a WiderFormatError naming ``path``'s line."""
    images_dir, sizes = pathlib.Path(images_dir), []
    for im in images:
        h, w = image_size(path, images_dir / im.name, im.line)
        for j, (x1, y1, bw, bh) in enumerate(im.boxes.tolist()):
            if x1 < 0 or y1 < 0 or x1 + bw > w or y1 + bh > h:
                line = im.face_lines[j] if j < len(im.face_lines) else im.line
                raise WiderFormatError(f"{path}:{line}: box x1={x1} y1={y1} w={bw} h={bh} reaches outside "
                                       f"its image {im.name} ({w}x{h})")
        sizes.append((h, w))
    return sizes
