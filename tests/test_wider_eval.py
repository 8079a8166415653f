"""The WIDER FACE protocol (jaxnets.eval), its prediction files and ``jaxnets wider-eval``.

Every expected AP below is worked out by hand in the comments, from the rules of the official
eval_tools (docs/wider_protocol.md), not by calling the code. Reading a comment's table: "t" is
the threshold index (threshold = 1 - t/1000), "prop" the proposals counted at that threshold,
"hit" the faces recalled, P = hit/prop, R = hit/faces. AP = sum over the recall steps of
(step width) x (the highest precision at that recall or beyond).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxnets.cli import main
from jaxnets.data.errors import DataError
from jaxnets.data.wider_mat import WiderGroundTruth, ground_truth_from_images, read_val_mats, write_val_mats
from jaxnets.data.wider_txt import FACE_FIELDS, WiderImage, write_gt
from jaxnets.eval import (
    evaluate,
    evaluate_dir,
    iou_plus_one,
    normalise_scores,
    read_prediction_file,
    read_predictions,
    voc_ap,
    write_predictions,
)

A, B, C = [10, 10, 40, 40], [100, 10, 40, 40], [200, 10, 12, 12]
FAR = [500, 500, 30, 30]  # overlaps no face: a false positive


def make_gt(images: dict[str, list], subsets: dict[str, dict[str, list[int]]], official=True) -> WiderGroundTruth:
    """images: "event/stem" -> list of x, y, w, h faces; subsets: name -> {"event/stem": 1-based}."""
    events: dict[str, list[str]] = {}
    for name in images:
        events.setdefault(name.split("/")[0], []).append(name)
    box = lambda name: np.asarray(images[name], np.float64).reshape(-1, 4)  # noqa: E731
    return WiderGroundTruth(
        events=list(events), files=[[n.split("/")[1] for n in names] for names in events.values()],
        boxes=[[box(n) for n in names] for names in events.values()],
        invalid=[[np.zeros(len(box(n)), bool) for n in names] for names in events.values()],
        subsets={s: [[np.asarray(keep.get(n, []), np.int64) for n in names] for names in events.values()]
                 for s, keep in subsets.items()},
        source="test", official=official)


def preds(*rows) -> np.ndarray:
    """Rows of (box, score) -> (N, 5)."""
    return np.array([[*box, score] for box, score in rows], np.float64).reshape(-1, 5)


# --- hand-worked cases ---------------------------------------------------------------------------

def test_duplicate_detection_is_a_false_positive():
    # Faces A, B. Scores 3 (on A), 2 (on A again), 1 (on B) normalise to 1, 0.5, 0.
    #   t 1..499:   A           prop 1 hit 1  P 1    R 1/2
    #   t 500..999: A, A-dup    prop 2 hit 1  P 1/2  R 1/2   (the duplicate recalls nothing)
    #   t 1000:     all three   prop 3 hit 2  P 2/3  R 1
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. (Were the duplicate not a false positive: AP = 1.)
    gt = make_gt({"e/i": [A, B]}, {"hard": {"e/i": [1, 2]}})
    r = evaluate(gt, {"e/i": preds((A, 3), (A, 2), (B, 1))})
    assert r.ap["hard"] == pytest.approx(5 / 6, abs=1e-12)
    assert r.proposals["hard"][[0, 498, 499, 999]].tolist() == [1, 1, 2, 3]
    assert r.hits["hard"][[0, 499, 999]].tolist() == [1, 1, 2]
    # The boxes are sorted by score before anything else (read_pred.m), so the file order does
    # not matter. (Unsorted, "the last box above the threshold" would be A-dup at index 2 for
    # t < 500, counting B as well: P 1 R 1 there, AP 1.)
    assert evaluate(gt, {"e/i": preds((B, 1), (A, 3), (A, 2))}).ap["hard"] == pytest.approx(5 / 6, abs=1e-12)


def test_detection_on_an_ignore_face_is_neither_hit_nor_false_positive():
    # Faces A (easy and hard), B (hard only: an ignore face for easy). Scores 2 (on B), 1 (on A)
    # normalise to 1, 0.
    # easy (1 face):  t 1..999: B only -> ignore: prop 0 hit 0 (P = 0/0, left out)  R 0
    #                 t 1000:   + A             prop 1 hit 1  P 1  R 1        AP = 1
    #                 (were the match on B a false positive: P = 1/2 at R = 1, AP = 1/2)
    # hard (2 faces): t 1..999: prop 1 hit 1  P 1  R 1/2;  t 1000: prop 2 hit 2  P 1  R 1.  AP = 1
    gt = make_gt({"e/i": [A, B]}, {"easy": {"e/i": [1]}, "hard": {"e/i": [1, 2]}})
    r = evaluate(gt, {"e/i": preds((B, 2), (A, 1))})
    assert r.ap == pytest.approx({"easy": 1.0, "hard": 1.0}, abs=1e-12)
    assert r.faces == {"easy": 1, "hard": 2}
    assert r.proposals["easy"][[0, 998, 999]].tolist() == [0, 0, 1]
    assert np.isnan(r.precision["easy"][:999]).all() and r.precision["easy"][999] == 1.0
    # a second prediction on the ignore face is not a false positive either: still AP 1
    r2 = evaluate(gt, {"e/i": preds((B, 3), (B, 2), (A, 1))})
    assert r2.ap["easy"] == pytest.approx(1.0, abs=1e-12)


def test_score_ties_and_file_order():
    # Faces A, B. FAR (a false positive) and A tie at score 1, B has 0: normalised 1, 1, 0.
    # A tie passes every threshold together:
    #   t 1..999: FAR, A  prop 2 hit 1  P 1/2  R 1/2
    #   t 1000:   + B     prop 3 hit 2  P 2/3  R 1
    # AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3, whichever of the tied pair comes first in the file, and
    # in any file order (the boxes are sorted by score first, as read_pred.m does).
    gt = make_gt({"e/i": [A, B]}, {"hard": {"e/i": [1, 2]}})
    for rows in [((FAR, 1), (A, 1), (B, 0)), ((A, 1), (FAR, 1), (B, 0)), ((B, 0), (FAR, 1), (A, 1))]:
        assert evaluate(gt, {"e/i": preds(*rows)}).ap["hard"] == pytest.approx(2 / 3, abs=1e-12)
    # All three tied: max == min, every normalised score is 1: prop 3 hit 2 at every threshold,
    # P 2/3 R 1, AP = 1 * 2/3.
    r = evaluate(gt, {"e/i": preds((FAR, 5), (A, 5), (B, 5))})
    assert r.ap["hard"] == pytest.approx(2 / 3, abs=1e-12)
    assert r.proposals["hard"][0] == 3


def test_image_without_predictions_missing_file_or_count_zero(tmp_path):
    # Two images, one face each (A in i1, B in i2); only i1 has a prediction (on A).
    # count_face = 2 (i2's face counts although i2 is skipped): every threshold prop 1 hit 1,
    # P 1 R 1/2. AP = 1/2 * 1 = 1/2.
    gt = make_gt({"e/i1": [A], "e/i2": [B]}, {"hard": {"e/i1": [1], "e/i2": [1]}})
    write_predictions(tmp_path / "p", {"e/i1": preds((A, 0.7))})
    r = evaluate_dir(tmp_path / "p", gt)
    assert r.ap["hard"] == pytest.approx(0.5, abs=1e-12) and r.faces["hard"] == 2
    assert r.missing == ("e/i2",)
    write_predictions(tmp_path / "p", {"e/i2": np.zeros((0, 5))})  # "i2\n0\n"
    assert (tmp_path / "p/e/i2.txt").read_text() == "i2\n0\n"
    r = evaluate_dir(tmp_path / "p", gt)
    assert r.ap["hard"] == pytest.approx(0.5, abs=1e-12) and r.missing == ()


def test_empty_prediction_file(tmp_path):
    # Same two images as above; i2's file is 0 bytes = no predictions, as the official catch
    # branch treats it. AP = 1/2 (see above), and i2 is not "missing".
    gt = make_gt({"e/i1": [A], "e/i2": [B]}, {"hard": {"e/i1": [1], "e/i2": [1]}})
    write_predictions(tmp_path, {"e/i1": preds((A, 0.7))})
    (tmp_path / "e/i2.txt").write_bytes(b"")
    assert read_prediction_file(tmp_path / "e/i2.txt").shape == (0, 5)
    r = evaluate_dir(tmp_path, gt)
    assert r.ap["hard"] == pytest.approx(0.5, abs=1e-12) and r.missing == ()


def test_iou_plus_one_pixel_convention():
    # Face x=0 w=3 (x2 = 3), prediction x=1 w=4 (x2 = 5), both y=0 h=9 (y2 = 9).
    # +1 convention: inter w = min(3,5) - max(0,1) + 1 = 3, h = 9 - 0 + 1 = 10: inter 30;
    # areas 4*10 = 40 and 5*10 = 50: IoU = 30 / (40 + 50 - 30) = 0.5 exactly -> a hit (>=).
    # Continuous boxes would give 2*9 / (27 + 36 - 18) = 0.4; x2 = x+w-1 gives 2 / (3+4-2) = 0.4.
    face, pred = [0, 0, 3, 9], [1, 0, 4, 9]
    assert iou_plus_one(np.array([pred], float), np.array([face], float))[0, 0] == 0.5
    gt = make_gt({"e/i": [face]}, {"hard": {"e/i": [1]}})
    # one prediction, one face, a hit: P 1 R 1 at every threshold, AP 1
    assert evaluate(gt, {"e/i": preds((pred, 1))}).ap["hard"] == 1.0
    # the prediction one pixel wider (w=5, x2 = 6): inter still 30, its area 6*10 = 60:
    # IoU = 30 / (40 + 60 - 30) = 3/7 < 0.5: a false positive, P 0 R 0, AP 0
    assert evaluate(gt, {"e/i": preds(([1, 0, 5, 9], 1))}).ap["hard"] == 0.0
    # touching boxes: inter w = 3 - 3 + 1 = 1 > 0 still overlaps under +1; x=4 does not
    ious = iou_plus_one(np.array([[3, 0, 4, 9], [4, 0, 4, 9]], float), np.array([face], float))[:, 0]
    assert ious[0] == pytest.approx(10 / (40 + 50 - 10)) and ious[1] == 0.0


def test_equal_iou_with_two_faces_goes_to_the_first():
    # Faces F1 x=0..9, F2 x=4..13, prediction x=2..11, all y=0..9 (height 10): the prediction
    # overlaps each face by 8 x 10 = 80 of 100: IoU 80 / (100 + 100 - 80) = 2/3 with both.
    # image_evaluation.m takes MATLAB's max, the first face: F1.
    # F1 in the subset: a hit, P 1 R 1, AP 1.  Both in the subset: F1 hit, F2 never: P 1 R 1/2,
    # AP 1/2.  Only F2 in the subset: the match on F1 is an ignore match, no proposals, R 0: AP 0.
    f1, f2, pred = [0, 0, 9, 9], [4, 0, 9, 9], [2, 0, 9, 9]
    gt = make_gt({"e/i": [f1, f2]}, {"f1": {"e/i": [1]}, "both": {"e/i": [1, 2]}, "f2": {"e/i": [2]}})
    r = evaluate(gt, {"e/i": preds((pred, 1))})
    assert r.ap == pytest.approx({"f1": 1.0, "both": 0.5, "f2": 0.0}, abs=1e-12)


def test_voc_ap_ignores_nan_precision_like_matlab_max():
    # recall (0.5, 1), precision (NaN, 0.5): mrec 0 .5 1 1, mpre 0 NaN .5 0; the envelope from the
    # end with MATLAB's max (NaN ignored) is .5 .5 .5 0, so AP = .5 * .5 + .5 * .5 = 0.5
    # (np.maximum would carry the NaN into the sum). Recall steps 0 -> 0.25 -> 1 at precisions
    # 1 and 0.4 give 0.25 * 1 + 0.75 * 0.4 = 0.55.
    assert voc_ap(np.array([0.5, 1.0]), np.array([np.nan, 0.5])) == 0.5
    assert voc_ap(np.array([0.25, 1.0]), np.array([1.0, 0.4])) == pytest.approx(0.55, abs=1e-15)


def test_predictions_on_an_image_without_faces_are_skipped():
    # i1 has face A and a prediction on it (score 1); i2 has no faces and a prediction of score 2.
    # Scores normalise to 0 and 1; i2 is skipped (evaluation.m: isempty(gt_bbx) -> continue), so
    # its prediction is no false positive: t 1000: prop 1 hit 1, P 1 R 1; AP = 1.
    gt = make_gt({"e/i1": [A], "e/i2": []}, {"hard": {"e/i1": [1]}})
    assert evaluate(gt, {"e/i1": preds((A, 1)), "e/i2": preds((FAR, 2))}).ap["hard"] == 1.0


def test_global_normalisation():
    # true min and max over all images: 3 -> 0, 5 -> 1, 4 -> 0.5 (the official code, whose min
    # starts at 1, would map 3 to (3-1)/(5-1) = 0.5 here); max == min -> every score 1
    a, b = normalise_scores([preds((A, 5), (A, 3)), preds((A, 4))])
    assert a[:, 4].tolist() == [1.0, 0.0] and b[:, 4].tolist() == [0.5]
    assert normalise_scores([preds((A, 7)), preds((B, 7))])[1][:, 4].tolist() == [1.0]


def test_fallback_all_valid_faces_and_height_bins():
    # txt ground truth (no .mat subsets): faces F1 h=5, F2 h=20, F3 h=100, F4 h=20 but invalid.
    # Predictions: on F2 score 4, on F4 score 3, FAR score 2, on F3 score 1 -> 1, 2/3, 1/3, 0,
    # passing from t = 1, 334, 667 and 1000 on.
    # all (F1 F2 F3; F4 ignore), 3 faces:
    #   t 1..666: prop 1 hit 1  P 1    R 1/3   (the F4 match is neither hit nor FP)
    #   t 667..999: prop 2 hit 1  P 1/2  R 1/3
    #   t 1000:   prop 3 hit 2  P 2/3  R 2/3      AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
    # height<10 (F1): nothing ever hits F1: AP 0.   height10-50 (F2): hit at t 1: AP 1.
    # height50-300 (F3): t 667..999 prop 1 (FAR) hit 0; t 1000 prop 2 hit 1, P 1/2 R 1: AP 1/2.
    # height>=300: no faces: AP NaN.
    faces = [[0, 0, 5, 5], [50, 0, 20, 20], [100, 0, 100, 100], [300, 0, 20, 20]]
    rows = np.zeros((4, len(FACE_FIELDS)), np.int64)
    rows[:, :4] = faces
    rows[3, FACE_FIELDS.index("invalid")] = 1
    gt = ground_truth_from_images([WiderImage("0--Parade/p.jpg", rows)], "mem.txt")
    r = evaluate(gt, {"0--Parade/p": preds((faces[1], 4), (faces[3], 3), (FAR, 2), (faces[2], 1))})
    assert not r.official
    assert r.faces == {"all": 3, "height<10": 1, "height10-50": 1, "height50-300": 1, "height>=300": 0}
    expected = {"all": 5 / 9, "height<10": 0.0, "height10-50": 1.0, "height50-300": 0.5}
    assert {k: r.ap[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    assert math.isnan(r.ap["height>=300"])


# --- prediction files ----------------------------------------------------------------------------

def test_prediction_files_round_trip(tmp_path):
    p = np.array([[1.5, 2.0, 30.25, 40.0, 0.123456789012345], [0, 0, 0, 0, -3.0]])
    write_predictions(tmp_path, {"0--Parade/x": p, "1--Handshaking/y": np.zeros((0, 5))})
    back = read_predictions(tmp_path)
    assert set(back) == {"0--Parade/x", "1--Handshaking/y"}
    assert np.array_equal(back["0--Parade/x"], p) and back["1--Handshaking/y"].shape == (0, 5)
    (tmp_path / "0--Parade/z.txt").write_text("z\n1\n1 2 3 4 0.5 extra 7\n\n")  # extra columns ignored
    assert read_prediction_file(tmp_path / "0--Parade/z.txt").tolist() == [[1, 2, 3, 4, 0.5]]


@pytest.mark.parametrize("text, line, what", [
    ("img\n", 2, "missing the number of boxes"),
    ("img\nthree\n", 2, "not a non-negative integer"),
    ("img\n-1\n", 2, "not a non-negative integer"),
    ("img\n3\n1 2 3 4 0.9\n5 6 7 8 0.8\n", 5, "says 3 boxes, only 2"),
    ("img\n2\n1 2 3 4 0.9\n5 6 7 eight 0.8\n", 4, "h 'eight' is not a number"),
    ("img\n1\n1 2 3 4\n", 3, "expected 5 values"),
    ("img\n1\n1 2 -3 4 0.9\n", 3, "negative w"),
    ("img\n1\n1 2 3 4 nan\n", 3, "score is nan"),
    ("img\n1\n1 inf 3 4 0.5\n", 3, "y is inf"),
])
def test_malformed_prediction_file_names_file_and_line(tmp_path, text, line, what):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(DataError) as e:
        read_prediction_file(f)
    assert str(e.value).startswith(f"{f}:{line}: ") and what in str(e.value)


def test_bad_prediction_arrays_and_names_are_refused(tmp_path):
    gt = make_gt({"e/i": [A]}, {"hard": {"e/i": [1]}})
    for bad, what in [(np.ones((2, 4)), "shape (2, 4)"), (preds((A, np.nan)), "row 0"),
                      (preds((A, 1), ([0, 0, -1, 5], 1)), "row 1")]:
        with pytest.raises(DataError, match=r"predictions\['e/i'\]: .*" + re.escape(what)):
            evaluate(gt, {"e/i": bad})
        with pytest.raises(DataError, match=re.escape(what)):
            write_predictions(tmp_path, {"e/i": bad})
    for name in ("noevent", "a/b/c", "../x", "e/"):
        with pytest.raises(DataError, match="expected 'event/stem'"):
            write_predictions(tmp_path, {name: preds((A, 1))})
    with pytest.raises(DataError, match="iou_threshold 0"):
        evaluate(gt, {}, iou_threshold=0)


# --- properties ----------------------------------------------------------------------------------

BOX = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(0, 30), st.integers(0, 30))


@st.composite
def scenes(draw, score=st.integers(-3, 3)):
    """(gt with nested easy/medium/hard, predictions): 1-4 images of 0-6 overlapping faces; the
    predictions mix jittered copies of faces (hits, duplicates, ignore-face matches) and random
    boxes, with scores from ``score`` (small integers: many ties)."""
    images, subsets, predictions = {}, {"easy": {}, "medium": {}, "hard": {}}, {}
    for i in range(draw(st.integers(1, 4))):
        name = f"e{i % 2}/i{i}"
        faces = draw(st.lists(BOX, max_size=6, unique=True))
        level = draw(st.lists(st.integers(0, 3), min_size=len(faces), max_size=len(faces)))
        images[name] = [list(f) for f in faces]
        for s, lo in (("easy", 3), ("medium", 2), ("hard", 1)):
            subsets[s][name] = [j + 1 for j, v in enumerate(level) if v >= lo]
        rows = []
        if faces:
            for j, dx, dy in draw(st.lists(st.tuples(st.integers(0, len(faces) - 1), st.integers(-3, 3),
                                                     st.integers(-3, 3)), max_size=8)):
                x, y, w, h = faces[j]
                rows.append((x + dx, y + dy, w, h, draw(score)))
        rows += [(*b, draw(score)) for b in draw(st.lists(BOX, max_size=4))]
        predictions[name] = np.array(rows, np.float64).reshape(-1, 5)
    return make_gt(images, subsets), predictions


@settings(max_examples=40, deadline=None, derandomize=True)
@given(scenes(), st.data())
def test_ground_truth_as_predictions_has_ap_one(scene, data):
    # Every face predicted exactly (any scores): each prediction's best face is its own (IoU 1;
    # the faces of an image are distinct), so every proposal is a hit or an ignore match, P = 1
    # wherever defined, and at threshold 0 every face of every subset is recalled: AP = 1.
    gt, _ = scene
    predictions = {}
    for event, stems, per_image in zip(gt.events, gt.files, gt.boxes):
        for stem, boxes in zip(stems, per_image):
            scores = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(boxes), max_size=len(boxes)))
            predictions[f"{event}/{stem}"] = np.column_stack([boxes, np.array(scores).reshape(-1, 1)])
    r = evaluate(gt, predictions)
    for s in ("easy", "medium", "hard"):
        if r.faces[s]:
            assert r.ap[s] == pytest.approx(1.0, abs=1e-12)
        else:
            assert math.isnan(r.ap[s])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(scenes(score=st.integers(-1000, 1000)), st.integers(-4, 4), st.integers(-1000, 1000))
def test_ap_invariant_to_affine_rescaling_of_scores(scene, log2_a, b):
    # s -> a*s + b with a = 2**k > 0 and integer b leaves every normalised score bit-identical:
    # a*s + b is exact in float64 (|s| <= 1000, at most 4 fractional bits); so is the difference
    # (a*s + b) - (a*min + b) = a*(s - min), and dividing a*(s - min) by a*(max - min) rounds to
    # the same double as (s - min) / (max - min) since a power of two cancels exactly. Hence AP
    # and the curves are equal exactly. This is invariance to affine maps only: a nonlinear
    # monotone map (say s**3) keeps the order but moves scores across the 1,000 fixed
    # thresholds, which changes the counted (precision, recall) points and so the AP.
    gt, predictions = scene
    a = 2.0 ** log2_a
    moved = {n: np.column_stack([p[:, :4], a * p[:, 4] + b]) for n, p in predictions.items()}
    r0, r1 = evaluate(gt, predictions), evaluate(gt, moved)
    for s in r0.subsets:
        assert (r0.ap[s] == r1.ap[s]) or (math.isnan(r0.ap[s]) and math.isnan(r1.ap[s]))
        assert np.array_equal(r0.proposals[s], r1.proposals[s]) and np.array_equal(r0.hits[s], r1.hits[s])


# --- an independent, loop-by-loop transcription of the rules, compared on random cases -------------

def _mmax(a: float, b: float) -> float:
    """MATLAB's max of two numbers: a NaN argument is ignored."""
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def _overlap(g, p) -> float:
    gx2, gy2, px2, py2 = g[0] + g[2], g[1] + g[3], p[0] + p[2], p[1] + p[3]
    w = min(gx2, px2) - max(g[0], p[0]) + 1
    h = min(gy2, py2) - max(g[1], p[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((gx2 - g[0] + 1) * (gy2 - g[1] + 1) + (px2 - p[0] + 1) * (py2 - p[1] + 1) - inter)


def _reference_image(faces, pred, keep, T=1000):
    """image_evaluation.m + image_pr_info.m, one prediction and one threshold at a time."""
    recall_list, proposal, pred_recall = [0] * len(faces), [1] * len(pred), [0] * len(pred)
    for h, p in enumerate(pred):
        overlaps = [_overlap(f, p) for f in faces]
        idx = overlaps.index(max(overlaps))
        if overlaps[idx] >= 0.5:
            if idx + 1 not in keep:
                recall_list[idx], proposal[h] = -1, -1
            elif recall_list[idx] == 0:
                recall_list[idx] = 1
        pred_recall[h] = recall_list.count(1)
    info = []
    for t in range(1, T + 1):
        r = None
        for h, p in enumerate(pred):
            if p[4] >= 1 - t / T:
                r = h
        info.append((0, 0) if r is None else (proposal[: r + 1].count(1), pred_recall[r]))
    return info


def reference_ap(images, keeps, predictions, T=1000) -> float:
    """images: list of face lists; keeps: per image 1-based lists; predictions: per image rows."""
    scores = [p[4] for rows in predictions for p in rows]
    lo, hi = min(scores, default=0), max(scores, default=0)
    curve, count_face = [[0, 0] for _ in range(T)], 0
    for faces, keep, rows in zip(images, keeps, predictions):
        count_face += len(keep)
        if not faces or not rows:
            continue
        pred = sorted(rows, key=lambda p: -p[4])  # stable
        pred = [list(p[:4]) + [1.0 if hi == lo else (p[4] - lo) / (hi - lo)] for p in pred]
        for t, (n_prop, n_hit) in enumerate(_reference_image(faces, pred, keep, T)):
            curve[t][0] += n_prop
            curve[t][1] += n_hit
    prec = [c[1] / c[0] if c[0] else math.nan for c in curve]
    rec = [c[1] / count_face for c in curve]
    mrec, mpre = [0.0] + rec + [1.0], [0.0] + prec + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = _mmax(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


@settings(max_examples=80, deadline=None, derandomize=True)
@given(scenes(score=st.one_of(st.integers(-3, 3), st.floats(-2, 2))))
def test_matches_a_loop_by_loop_reference(scene):
    gt, predictions = scene
    r = evaluate(gt, predictions)
    names = [n for _, _, n in gt.names()]
    flat = lambda nested: [x for row in nested for x in row]  # noqa: E731
    images = [b.astype(int).tolist() for b in flat(gt.boxes)]
    rows = [predictions[n].tolist() for n in names]
    for s in ("easy", "medium", "hard"):
        keeps = [k.tolist() for k in flat(gt.subsets[s])]
        if r.faces[s] == 0:
            assert math.isnan(r.ap[s])
            continue
        assert r.ap[s] == pytest.approx(reference_ap(images, keeps, rows), abs=1e-12)


# --- the command line ------------------------------------------------------------------------------

def _face_rows(boxes) -> np.ndarray:
    rows = np.zeros((len(boxes), len(FACE_FIELDS)), np.int64)
    rows[:, :4] = boxes
    return rows


ROUND_TRIP_IMAGES = [WiderImage("0--Parade/0_Parade_1.jpg", _face_rows([A, B, C])),
                     WiderImage("1--Handshaking/1_Handshaking_2.jpg", _face_rows([[30, 30, 50, 50]]))]
ROUND_TRIP_SUBSETS = {"easy": {"0--Parade/0_Parade_1.jpg": [1]},
                      "medium": {"0--Parade/0_Parade_1.jpg": [1, 2], "1--Handshaking/1_Handshaking_2.jpg": [1]},
                      "hard": {"0--Parade/0_Parade_1.jpg": [1, 2, 3], "1--Handshaking/1_Handshaking_2.jpg": [1]}}
# Scores: A 5, A again 4, B 3, C 2 (image 1), D 1 (image 2) -> 1, .75, .5, .25, 0, passing from
# t = 1, 250, 500, 750, 1000 on.
# easy {A}, 1 face: t 1..249 prop 1 hit 1 P 1 R 1; later the duplicate is a FP, B C D ignore.
#   AP = 1.
# medium {A, B, D}, 3 faces (C ignore):
#   t 1..249 P 1 R 1/3; 250..499 prop 2 hit 1 P 1/2; 500..999 prop 3 hit 2 P 2/3 R 2/3;
#   1000 prop 4 hit 3 P 3/4 R 1.   AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6 = 0.8333
# hard {A, B, C, D}, 4 faces:
#   t 1..249 P 1 R 1/4; 250..499 P 1/2 R 1/4; 500..749 P 2/3 R 1/2; 750..999 P 3/4 R 3/4;
#   1000 P 4/5 R 1.   AP = 1/4 * 1 + 3/4 * 4/5 = 17/20 = 0.85
ROUND_TRIP_PREDICTIONS = {"0--Parade/0_Parade_1": preds((A, 5), (A, 4), (B, 3), (C, 2)),
                          "1--Handshaking/1_Handshaking_2": preds(([30, 30, 50, 50], 1))}


def test_cli_mat_round_trip(tmp_path, capsys):
    write_val_mats(tmp_path / "root/eval_tools/ground_truth", ROUND_TRIP_IMAGES, ROUND_TRIP_SUBSETS)
    write_predictions(tmp_path / "preds", ROUND_TRIP_PREDICTIONS)
    out_json = tmp_path / "ap.json"
    assert main(["wider-eval", str(tmp_path / "preds"), "--gt", str(tmp_path / "root"), "--json", str(out_json)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and not out.startswith("note")
    table = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.split()[:1] in (["easy"], ["medium"], ["hard"])}
    assert table == {"easy": ["1.0000", "1"], "medium": ["0.8333", "3"], "hard": ["0.8500", "4"]}
    png = tmp_path / "preds_pr.png"
    assert f"PR curves: {png}" in out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(out_json.read_text())
    assert saved["official"] and saved["subsets"]["hard"]["ap"] == pytest.approx(0.85, abs=1e-12)
    assert len(saved["subsets"]["easy"]["precision"]) == 1000
    gt = read_val_mats(tmp_path / "root/eval_tools/ground_truth")
    assert evaluate(gt, ROUND_TRIP_PREDICTIONS).ap == pytest.approx({"easy": 1.0, "medium": 5 / 6, "hard": 0.85})


def test_cli_bad_prediction_line_exits_2_naming_file_and_line(tmp_path, capsys):
    write_val_mats(tmp_path / "gt", ROUND_TRIP_IMAGES, ROUND_TRIP_SUBSETS)
    write_predictions(tmp_path / "preds", ROUND_TRIP_PREDICTIONS)
    bad = tmp_path / "preds/0--Parade/0_Parade_1.txt"
    bad.write_text("0_Parade_1\n2\n10 10 40 40 0.9\n10 10 forty 40 0.8\n")
    assert main(["wider-eval", str(tmp_path / "preds"), "--gt", str(tmp_path / "gt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"jaxnets wider-eval: {bad}:4: w 'forty' is not a number")


def test_cli_warnings_fallback_and_bad_arguments(tmp_path, capsys):
    (tmp_path / "root/wider_face_split").mkdir(parents=True)
    write_gt(tmp_path / "root/wider_face_split/wider_face_val_bbx_gt.txt", ROUND_TRIP_IMAGES)
    write_predictions(tmp_path / "preds", {"0--Parade/0_Parade_1": ROUND_TRIP_PREDICTIONS["0--Parade/0_Parade_1"],
                                           "9--Other/not_in_gt": preds((A, 1))})
    plot = tmp_path / "out/pr.png"
    assert main(["wider-eval", str(tmp_path / "preds"), "--gt", str(tmp_path / "root"), "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("note: ") and "NOT the official" in out.splitlines()[0]
    assert "all " in out and "height10-50" in out and "no faces" in out and plot.is_file()
    warnings = err.splitlines()
    assert len(warnings) == 2
    assert "no prediction file for 1 of 2 images" in warnings[0] and "1--Handshaking/1_Handshaking_2" in warnings[0]
    assert "1 prediction files for images not in the ground truth" in warnings[1]
    assert "9--Other/not_in_gt" in warnings[1]
    for argv, what in [(["--gt", str(tmp_path / "nowhere")], "no such file or directory"),
                       (["--gt", str(tmp_path / "preds")], "neither the official .mat files"),
                       (["--gt", str(tmp_path / "root"), "--iou", "1.5"], "--iou 1.5"),
                       (["--gt", str(tmp_path / "root"), "--plot", str(tmp_path / "x.jpg")], "expected a .png")]:
        assert main(["wider-eval", str(tmp_path / "preds"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and what in err
    assert main(["wider-eval", str(tmp_path / "nopreds"), "--gt", str(tmp_path / "root")]) == 2
    assert "no such prediction directory" in capsys.readouterr().err


def test_prediction_files_are_written_by_descending_score(tmp_path):
    """So evaluators that do not sort (the popular Python port) read them as the official code does."""
    from jaxnets.eval.wider_predictions import write_predictions

    pred = np.array([[0, 0, 5, 5, 0.2], [1, 1, 5, 5, 0.9], [2, 2, 5, 5, 0.5], [3, 3, 5, 5, 0.9]])
    write_predictions(tmp_path, {"0--A/a": pred})
    lines = (tmp_path / "0--A" / "a.txt").read_text().splitlines()
    assert [float(line.split()[4]) for line in lines[2:]] == [0.9, 0.9, 0.5, 0.2]
    assert [float(line.split()[0]) for line in lines[2:]] == [1.0, 3.0, 2.0, 0.0]  # ties keep their order
