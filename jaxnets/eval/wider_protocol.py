"""The official WIDER FACE evaluation protocol (``eval_tools`` of the WIDER FACE site, MATLAB), in numpy.

Each rule below is one function, named after the MATLAB file it transcribes; the rules are
explained in ``docs/wider_protocol.md``.

==========================  ==========================  ========================================
rule                        MATLAB                      here
==========================  ==========================  ========================================
sort each image's boxes     read_pred.m                 :func:`sort_by_score`
one global min-max of       norm_score.m                :func:`normalise_scores`
all scores
IoU, +1-pixel convention    boxoverlap.m                :func:`iou_plus_one`
match, ignore faces,        image_evaluation.m          :func:`best_faces`, :func:`match_image`
duplicates
subsets, skipped images     evaluation.m                :func:`evaluate`
1,000 score thresholds      image_pr_info.m             :func:`image_pr_counts`
precision / recall          dataset_pr_info.m           :func:`evaluate`
VOC AP with sentinels       VOCap.m                     :func:`voc_ap`
==========================  ==========================  ========================================

Shapes: N predictions of one image, K faces of one image, k faces of one image in a subset,
T thresholds. Boxes are ``x, y, w, h`` in pixels; a prediction row is ``x, y, w, h, score``.

Ground truth is a :class:`jaxnets.data.wider_mat.WiderGroundTruth`; an image is named
``"<event>/<stem>"`` (no ``.jpg``), as its prediction file ``<event>/<stem>.txt`` is.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from jaxnets.data.errors import DataError

OFFICIAL_SUBSETS = ("easy", "medium", "hard")
ALL_VALID = "all"
# Face-height bins (pixels, [low, high)) of the WIDER FACE paper's scale analysis (small 10-50,
# medium 50-300, large >= 300) plus the faces below 10 px; used only when no subset files exist.
HEIGHT_BINS = (("height<10", 0.0, 10.0), ("height10-50", 10.0, 50.0),
               ("height50-300", 50.0, 300.0), ("height>=300", 300.0, np.inf))


@dataclasses.dataclass(frozen=True)
class WiderResult:
    """What :func:`evaluate` measured, per subset (``easy``/``medium``/``hard``, or the fallback
    ``all`` and height bins when ``official`` is False).

    ap:         subset -> average precision; NaN when the subset has no faces at all
    precision:  subset -> (T,) float64; NaN at thresholds where no prediction counts as a proposal
    recall:     subset -> (T,) float64; NaN everywhere when the subset has no faces
    proposals:  subset -> (T,) int64, predictions at or above each threshold (ignore-face matches
                excluded) summed over images
    hits:       subset -> (T,) int64, faces of the subset recalled at each threshold
    faces:      subset -> number of faces in the subset (count_face)
    thresholds: (T,) float64, ``1 - t / T`` for t = 1..T (descending, ends at 0)
    official:   True when the subsets are the ground truth's own (wider_{easy,medium,hard}_val.mat)
    missing:    ground-truth images (``event/stem``) with no entry in the predictions
    extra:      prediction names not in the ground truth (ignored)
    """

    ap: dict[str, float]
    precision: dict[str, np.ndarray]
    recall: dict[str, np.ndarray]
    proposals: dict[str, np.ndarray]
    hits: dict[str, np.ndarray]
    faces: dict[str, int]
    thresholds: np.ndarray
    official: bool
    source: str
    num_images: int
    num_predictions: int
    iou_threshold: float
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def subsets(self) -> tuple[str, ...]:
        return tuple(self.ap)


def image_names(gt) -> list[str]:
    """``"<event>/<stem>"`` of every ground-truth image, event by event in file order."""
    return [name for _, _, name in gt.names()]


def sort_by_score(pred: np.ndarray) -> np.ndarray:
    """(N, 5) -> (N, 5) rows by score, descending; ties keep their file order (read_pred.m:
    MATLAB's ``sort(..., 'descend')`` is stable)."""
    return pred[np.argsort(-pred[:, 4], kind="stable")]


def normalise_scores(preds: Sequence[np.ndarray]) -> list[np.ndarray]:
    """norm_score.m: one min-max normalisation over the scores of all images.

    preds: per image (N_i, 5). Returns copies with score ``(s - min) / (max - min)``, min and max
    over every score of every image; every score is 1 when max == min. (The official code seeds
    the running max with 0 and the min with 1: it differs only when all scores lie above 1 or
    all below 0; the true extremes make AP invariant to any affine rescaling of the scores.)
    """
    scores = [p[:, 4] for p in preds if len(p)]
    out = [np.array(p, dtype=np.float64, copy=True) for p in preds]
    if not scores:
        return out
    lo = min(float(s.min()) for s in scores)
    hi = max(float(s.max()) for s in scores)
    for p in out:
        p[:, 4] = 1.0 if hi == lo else (p[:, 4] - lo) / (hi - lo)
    return out


def iou_plus_one(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """boxoverlap.m: (N, 4) x,y,w,h predictions vs (K, 4) x,y,w,h faces -> (N, K) IoU.

    Corners are ``x2 = x + w`` (not ``x + w - 1``) and every width and height then gets the
    pixel-inclusive +1: ``inter_w = min(x2) - max(x1) + 1``, ``area = (x2 - x1 + 1)(y2 - y1 + 1)``;
    0 where ``inter_w <= 0`` or ``inter_h <= 0``. The arithmetic is in boxoverlap.m's order
    (``inter / (area_gt + area_pred - inter)``) so a ratio of exactly 0.5 comes out as 0.5.
    """
    p = pred[:, None, :4].astype(np.float64)  # (N, 1, 4)
    g = gt[None, :, :4].astype(np.float64)  # (1, K, 4)
    px2, py2 = p[..., 0] + p[..., 2], p[..., 1] + p[..., 3]
    gx2, gy2 = g[..., 0] + g[..., 2], g[..., 1] + g[..., 3]
    iw = np.minimum(gx2, px2) - np.maximum(g[..., 0], p[..., 0]) + 1  # (N, K)
    ih = np.minimum(gy2, py2) - np.maximum(g[..., 1], p[..., 1]) + 1
    inter = iw * ih
    area_g = (gx2 - g[..., 0] + 1) * (gy2 - g[..., 1] + 1)
    area_p = (px2 - p[..., 0] + 1) * (py2 - p[..., 1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_g + area_p - inter)
    return np.where((iw <= 0) | (ih <= 0), 0.0, iou)


def best_faces(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each prediction's best face: (N,) index of the first maximum IoU, (N,) that IoU.

    Independent of the subset, so :func:`evaluate` computes it once per image."""
    iou = iou_plus_one(pred, gt)  # (N, K)
    idx = np.argmax(iou, axis=1)
    return idx, iou[np.arange(len(idx)), idx]


def match_image(best_idx: np.ndarray, best_iou: np.ndarray, keep: np.ndarray, num_faces: int,
                iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """image_evaluation.m for one image and one subset, predictions in sorted order.

    best_idx, best_iou: (N,) from :func:`best_faces`; keep: (k,) 1-based indices of the faces
    in the subset (gt_list); every other face is an *ignore* face.
    Returns pred_recall (N,) int64, the number of subset faces recalled by predictions 0..h, and
    proposal (N,) int8: -1 for a prediction whose best face (IoU >= threshold) is an ignore
    face (neither hit nor false positive), else 1. A face is recalled by the first prediction
    that matches it; a later prediction on the same face stays a proposal (a false positive).
    """
    in_subset = np.zeros(num_faces, dtype=bool)
    in_subset[np.asarray(keep, dtype=np.int64) - 1] = True
    matched = best_iou >= iou_threshold
    on_ignore = matched & ~in_subset[best_idx]
    on_subset = np.flatnonzero(matched & in_subset[best_idx])
    _, first = np.unique(best_idx[on_subset], return_index=True)
    hit = np.zeros(len(best_idx), dtype=np.int64)
    hit[on_subset[first]] = 1
    proposal = np.where(on_ignore, -1, 1).astype(np.int8)
    return np.cumsum(hit), proposal


def image_pr_counts(scores: np.ndarray, proposal: np.ndarray, pred_recall: np.ndarray,
                    thresholds: np.ndarray) -> np.ndarray:
    """image_pr_info.m: (T, 2) int64 of (proposals, recalled faces) at each threshold.

    scores: (N,) normalised, descending. For each threshold, r = the last prediction with
    score >= threshold (the scores are sorted, so those form a prefix); proposals = number of
    ``proposal == 1`` in 0..r, recalled = pred_recall[r]; (0, 0) when no score reaches it.
    """
    n_above = np.searchsorted(-scores, -thresholds, side="right")  # (T,) count of score >= thr
    cum_prop = np.concatenate([[0], np.cumsum(proposal == 1)])
    cum_recall = np.concatenate([[0], pred_recall])
    return np.stack([cum_prop[n_above], cum_recall[n_above]], axis=1).astype(np.int64)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOCap.m: area under the precision envelope, with sentinels (0, 0) and (1, 0).

    NaN precisions (thresholds with no proposals) are treated as missing, as MATLAB's ``max``
    does: the envelope uses ``np.fmax``, so no NaN reaches the sum.
    """
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def height_bin_subsets(gt) -> dict[str, list[list[np.ndarray]]]:
    """Stand-in subsets for a ground truth without wider_{easy,medium,hard}_val.mat.

    ``all``: every valid face (``gt.invalid`` False); one subset per :data:`HEIGHT_BINS` bin: the
    valid faces whose height h (pixels) lies in [low, high). A face flagged invalid is an ignore
    face in every subset. Returns subset -> per event, per image (k,) int64 1-based indices, like
    ``gt.subsets``. These are NOT the official easy / medium / hard subsets.
    """
    out: dict[str, list[list[np.ndarray]]] = {ALL_VALID: []}
    out.update({name: [] for name, _, _ in HEIGHT_BINS})
    for boxes, invalid in zip(gt.boxes, gt.invalid):
        for lst in out.values():
            lst.append([])
        for b, flags in zip(boxes, invalid):
            valid = ~np.asarray(flags, bool).reshape(-1)
            h = np.asarray(b, np.float64).reshape(-1, 4)[:, 3]
            out[ALL_VALID][-1].append(np.flatnonzero(valid) + 1)
            for name, lo, hi in HEIGHT_BINS:
                out[name][-1].append(np.flatnonzero(valid & (h >= lo) & (h < hi)) + 1)
    return out


def prediction_array(name: str, pred) -> np.ndarray:
    """One image's predictions, (N, >=5) array-like or None -> (N, 5) float64 x, y, w, h, score.

    DataError naming the image when the shape is wrong, a value is not finite or a w or h is
    negative."""
    p = np.zeros((0, 5)) if pred is None else np.asarray(pred, dtype=np.float64)
    if p.size == 0:
        return np.zeros((0, 5))
    if p.ndim != 2 or p.shape[1] < 5:
        raise DataError(f"predictions[{name!r}]: expected an (N, 5) array of x, y, w, h, score, got shape {p.shape}")
    p = p[:, :5]
    bad = ~np.isfinite(p).all(1) | (p[:, 2:4] < 0).any(1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"predictions[{name!r}]: row {row} {p[row].tolist()} is not finite or has a negative w or h")
    return p


def _flat_subsets(gt, subsets) -> dict[str, list[np.ndarray]]:
    """subset -> per image (in :func:`image_names` order) (k,) int64 1-based, each checked."""
    sizes = [len(b) for ev in gt.boxes for b in ev]
    out = {}
    for name, per_event in subsets.items():
        flat = [np.asarray(k, dtype=np.int64).ravel() for ev in per_event for k in ev]
        if len(flat) != len(sizes) or [len(ev) for ev in per_event] != [len(f) for f in gt.files]:
            raise DataError(f"{gt.source}: subset {name!r} lists {len(flat)} images in {len(per_event)} events; "
                            f"the ground truth has {len(sizes)} images in {len(gt.files)} events")
        for img, (keep, k) in enumerate(zip(flat, sizes)):
            if keep.size and (keep.min() < 1 or keep.max() > k):
                raise DataError(f"{gt.source}: subset {name!r}, image {image_names(gt)[img]}: "
                                f"gt_list index {int(keep.max() if keep.max() > k else keep.min())} "
                                f"is outside 1..{k}")
        out[name] = flat
    return out


def _accumulate(preds, faces, subsets, thresholds, iou_threshold) -> dict[str, np.ndarray]:
    """evaluation.m's loop: (T, 2) (proposals, recalled) per subset, summed over the images that
    have both faces and predictions (the others are skipped)."""
    counts = {s: np.zeros((len(thresholds), 2), np.int64) for s in subsets}
    for i, (pred, boxes) in enumerate(zip(preds, faces)):
        if len(boxes) == 0 or len(pred) == 0:
            continue
        idx, iou = best_faces(pred, boxes)
        for s, keeps in subsets.items():
            pred_recall, proposal = match_image(idx, iou, keeps[i], len(boxes), iou_threshold)
            counts[s] += image_pr_counts(pred[:, 4], proposal, pred_recall, thresholds)
    return counts


def evaluate(gt, predictions: Mapping[str, np.ndarray], *, subsets: Mapping | None = None,
             iou_threshold: float = 0.5, num_thresholds: int = 1000) -> WiderResult:
    """Score predictions against WIDER FACE ground truth with the official protocol.

    gt: a :class:`~jaxnets.data.wider_mat.WiderGroundTruth`. predictions: ``"event/stem"`` ->
    (N, 5) x, y, w, h, score (any order; extra columns ignored); an image without an entry has
    no predictions (recorded in ``missing``); names not in ``gt`` are ignored (``extra``).
    subsets: subset -> per event, per image 1-based face indices; default ``gt.subsets``, or
    :func:`height_bin_subsets` when the ground truth has none (``gt.official`` False).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise DataError(f"iou_threshold {iou_threshold}: expected a value in (0, 1]")
    if int(num_thresholds) < 1:
        raise DataError(f"num_thresholds {num_thresholds}: expected at least 1")
    official = subsets is None and bool(gt.subsets) and bool(gt.official)
    if subsets is None:
        subsets = gt.subsets or height_bin_subsets(gt)
    names = image_names(gt)
    flat = _flat_subsets(gt, subsets)
    faces = [np.asarray(b, np.float64).reshape(-1, 4) for ev in gt.boxes for b in ev]
    preds = normalise_scores([sort_by_score(prediction_array(n, predictions.get(n))) for n in names])
    thresholds = 1.0 - np.arange(1, int(num_thresholds) + 1) / int(num_thresholds)  # (T,)
    counts = _accumulate(preds, faces, flat, thresholds, iou_threshold)
    known = set(names)
    res = dict(ap={}, precision={}, recall={}, proposals={}, hits={}, faces={})
    for s, c in counts.items():
        n_faces = int(sum(len(k) for k in flat[s]))
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = c[:, 1] / c[:, 0]
            recall = c[:, 1] / n_faces if n_faces else np.full(len(thresholds), np.nan)
        res["ap"][s] = voc_ap(recall, precision) if n_faces else float("nan")
        res["precision"][s], res["recall"][s] = precision, recall
        res["proposals"][s], res["hits"][s], res["faces"][s] = c[:, 0], c[:, 1], n_faces
    return WiderResult(**res, thresholds=thresholds, official=official, source=gt.source,
                       num_images=len(names), num_predictions=int(sum(len(p) for p in preds)),
                       iou_threshold=float(iou_threshold),
                       missing=tuple(n for n in names if n not in predictions),
                       extra=tuple(sorted(n for n in predictions if n not in known)))
