"""Prediction folders in the official WIDER FACE submission format, and the ground truth they are
scored against.

A prediction folder holds one text file per image, ``PRED_DIR/<event>/<stem>.txt``::

    0_Parade_marchingband_1_5        line 1: the image name (not checked, as read_pred.m does not)
    2                                line 2: N, the number of boxes
    449.0 330.0 122.0 149.0 0.998    N lines: x y w h score (pixels; extra columns are ignored)
    31.5 20.0 12.0 14.0 0.41

A 0-byte (or blank) file means no predictions, as does ``N = 0``; blank lines are skipped, as
MATLAB's ``textscan`` skips them. Anything else that is malformed -- a missing or non-integer
count, fewer box lines than N, fewer than five values, a non-numeric, NaN or infinite value, a
negative width or height -- is a :class:`DataError` ``"<file>:<line>: <what>"``.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable, Mapping

import numpy as np

from jaxnets.data.errors import DataError
from jaxnets.eval.wider_protocol import evaluate, image_names, prediction_array

FIELDS = ("x", "y", "w", "h", "score")


def find_prediction_files(pred_dir) -> dict[str, pathlib.Path]:
    """``"event/stem"`` -> path of every ``PRED_DIR/<event>/<stem>.txt`` (sorted by name)."""
    pred_dir = pathlib.Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(f"{pred_dir}: no such prediction directory")
    return {f"{f.parent.name}/{f.stem}": f for f in sorted(pred_dir.glob("*/*.txt")) if f.is_file()}


def _parse_box(path, line: int, text: str) -> list[float]:
    """One ``x y w h score`` line -> 5 floats; DataError naming the line and field."""
    tokens = text.split()
    if len(tokens) < 5:
        raise DataError(f"{path}:{line}: expected 5 values x y w h score, found {len(tokens)}: {text.strip()!r}")
    row = []
    for field, tok in zip(FIELDS, tokens):
        try:
            v = float(tok)
        except ValueError:
            raise DataError(f"{path}:{line}: {field} {tok!r} is not a number") from None
        if not np.isfinite(v):
            raise DataError(f"{path}:{line}: {field} is {tok}, not a finite number")
        if field in ("w", "h") and v < 0:
            raise DataError(f"{path}:{line}: negative {field} {tok}")
        row.append(v)
    return row


def _parse_count(path, lines: list[tuple[int, str]]) -> int:
    if len(lines) < 2:
        line = lines[0][0] + 1 if lines else 2
        raise DataError(f"{path}:{line}: missing the number of boxes (line 1 is the image name, line 2 the count)")
    line, tok = lines[1]
    try:
        n = float(tok)
    except ValueError:
        n = -1.0
    if not (np.isfinite(n) and n >= 0 and n == int(n)):
        raise DataError(f"{path}:{line}: the number of boxes {tok.strip()!r} is not a non-negative integer "
                        "(line 1 is the image name, line 2 the count)")
    return int(n)


def read_prediction_file(path) -> np.ndarray:
    """(N, 5) float64 x, y, w, h, score in file order; (0, 5) for an empty file or N = 0."""
    path = pathlib.Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    lines = [(i, s) for i, s in enumerate(text.splitlines(), 1) if s.strip()]
    if not lines:
        return np.zeros((0, 5))
    n = _parse_count(path, lines)
    boxes = lines[2:2 + n]
    if len(boxes) < n:
        raise DataError(f"{path}:{lines[-1][0] + 1}: the count on line {lines[1][0]} says {n} boxes, "
                        f"only {len(boxes)} box lines follow")
    if n == 0:
        return np.zeros((0, 5))
    tokens = [s.split()[:5] for _, s in boxes]
    try:  # fast path: every line well-formed
        if min(len(t) for t in tokens) == 5:
            arr = np.array(tokens, dtype=np.float64)
            if np.isfinite(arr).all() and (arr[:, 2:4] >= 0).all():
                return arr
    except ValueError:
        pass
    rows = [_parse_box(path, line, s) for line, s in boxes]  # raises, naming the first bad line
    return np.array(rows, dtype=np.float64)


def read_predictions(pred_dir, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """``"event/stem"`` -> (N, 5) of the prediction files in ``pred_dir``; only those of ``names``
    (when given; names without a file are left out)."""
    files = find_prediction_files(pred_dir)
    if names is not None:
        files = {n: files[n] for n in names if n in files}
    return {n: read_prediction_file(p) for n, p in files.items()}


def write_predictions(pred_dir, predictions: Mapping[str, np.ndarray]) -> None:
    """Write ``PRED_DIR/<event>/<stem>.txt`` for every ``"event/stem"`` -> (N, 5) x, y, w, h, score.

    Rows are written by score, descending (ties in the given order), so evaluators that do not
    sort -- the popular Python port of the official code -- score them as the official code does.
    Values are written with Python's shortest round-trip repr, so reading them back gives the
    same float64 array rows. Other files in ``pred_dir`` are left as they are."""
    from jaxnets.eval.wider_protocol import sort_by_score

    pred_dir = pathlib.Path(pred_dir)
    for name, pred in predictions.items():
        parts = name.split("/")
        if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
            raise DataError(f"prediction name {name!r}: expected 'event/stem' (no '.jpg', one '/')")
        rows = [" ".join(repr(float(v)) for v in row) for row in sort_by_score(prediction_array(name, pred))]
        (pred_dir / parts[0]).mkdir(parents=True, exist_ok=True)
        text = "\n".join([parts[1], str(len(rows)), *rows]) + "\n"
        (pred_dir / parts[0] / f"{parts[1]}.txt").write_text(text)


def load_ground_truth(path):
    """WiderGroundTruth from ``path``: the folder with the four official .mat files, or a WIDER root
    holding them under ``eval_tools/ground_truth`` (or ``ground_truth``, ``eval_tools``); else the
    val annotation txt -- ``path`` itself or ``path/wider_face_split/wider_face_val_bbx_gt.txt`` --
    without subsets (``official`` False)."""
    from jaxnets.data.wider_mat import find_val_mats, ground_truth_from_images, read_val_mats
    from jaxnets.data.wider_txt import read_gt, split_paths

    path = pathlib.Path(path)
    if path.is_file() and path.suffix == ".mat":
        path = path.parent
    if path.is_file():
        return ground_truth_from_images(read_gt(path), str(path))
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    mats = find_val_mats(path)
    if mats is not None:
        return read_val_mats(mats)
    val_txt = split_paths(path, "val")[0]
    for txt in (val_txt, path / val_txt.name):
        if txt.is_file():
            return ground_truth_from_images(read_gt(txt), str(txt))
    raise DataError(f"{path}: neither the official .mat files (wider_face_val.mat, wider_{{easy,medium,hard}}_val.mat "
                    "here or under eval_tools/ground_truth) nor wider_face_split/wider_face_val_bbx_gt.txt")


def evaluate_dir(pred_dir, gt, iou_threshold: float = 0.5, num_thresholds: int = 1000):
    """:func:`~jaxnets.eval.wider_protocol.evaluate` of a prediction folder; ``gt`` a
    WiderGroundTruth or a path for :func:`load_ground_truth`. Only the files of ground-truth
    images are read; the names of the others are in the result's ``extra``."""
    if not hasattr(gt, "boxes"):
        gt = load_ground_truth(gt)
    names = image_names(gt)
    files = find_prediction_files(pred_dir)
    known = set(names)
    preds = {n: read_prediction_file(files[n]) for n in names if n in files}
    result = evaluate(gt, preds, iou_threshold=iou_threshold, num_thresholds=num_thresholds)
    return dataclasses.replace(result, extra=tuple(n for n in files if n not in known))
