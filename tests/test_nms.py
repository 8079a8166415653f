"""Batched, jittable greedy NMS (jaxnets.detection.nms) against the plain greedy rule in numpy and
against torchvision.ops.nms."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.detection import batched_nms, numpy_nms

R, N = 3, 120


def random_boxes(seed: int, r: int = R, n: int = N):
    """Clustered boxes (centres in a 60x60 square, sides 5..30) so suppression happens a lot."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 60, (r, n, 2))
    wh = rng.uniform(5, 30, (r, n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], -1).astype(np.float32)
    return boxes, rng.random((r, n)).astype(np.float32)


def kept(idx, keep) -> list[list[int]]:
    idx, keep = np.asarray(idx), np.asarray(keep)
    return [idx[k][keep[k]].tolist() for k in range(len(idx))]


@pytest.mark.parametrize("seed,thr", [(0, 0.3), (1, 0.5), (2, 0.7)])
def test_matches_numpy_greedy_exactly(seed, thr):
    boxes, scores = random_boxes(seed)
    idx, keep = batched_nms(jnp.asarray(boxes), jnp.asarray(scores), thr, max_out=N, pre_nms_top_k=N)
    assert idx.shape == (R, N) and keep.dtype == jnp.bool_
    for k, got in enumerate(kept(idx, keep)):
        want = numpy_nms(boxes[k], scores[k], thr).tolist()
        assert got == want  # same boxes, same (decreasing score) order
        assert 1 < len(want) < N  # the case suppresses some, not all
    assert not np.asarray(idx)[~np.asarray(keep)].any()  # padding slots hold index 0


def test_matches_torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    boxes, scores = random_boxes(5)
    idx, keep = batched_nms(jnp.asarray(boxes), jnp.asarray(scores), 0.3, max_out=N, pre_nms_top_k=N)
    for k, got in enumerate(kept(idx, keep)):
        want = ops.nms(torch.from_numpy(boxes[k]), torch.from_numpy(scores[k]), 0.3).tolist()
        assert got == want


def test_max_out_top_k_score_threshold_and_valid_mask():
    boxes, scores = random_boxes(7)
    b, s, every = jnp.asarray(boxes), jnp.asarray(scores), jnp.ones((R, N), bool)
    full = [numpy_nms(boxes[k], scores[k], 0.3).tolist() for k in range(R)]
    compiled = batched_nms._cache_size()
    idx, keep = batched_nms(b, s, 0.3, -np.inf, every, max_out=4, pre_nms_top_k=N)  # the first 4 kept
    assert kept(idx, keep) == [f[:4] for f in full]
    idx, keep = batched_nms(b, s, 0.3, 0.5, every, max_out=4, pre_nms_top_k=N)  # traced: no recompile
    for k, got in enumerate(kept(idx, keep)):
        top = np.flatnonzero(scores[k] >= 0.5)
        assert got == top[numpy_nms(boxes[k][top], scores[k][top], 0.3)].tolist()[:4]
    valid = np.ones((R, N), bool)
    valid[:, ::2] = False  # only odd boxes take part
    idx, keep = batched_nms(b, s, 0.3, -np.inf, jnp.asarray(valid), max_out=4, pre_nms_top_k=N)
    for k, got in enumerate(kept(idx, keep)):
        odd = np.arange(1, N, 2)
        assert got == odd[numpy_nms(boxes[k][odd], scores[k][odd], 0.3)].tolist()[:4]
    assert batched_nms._cache_size() == compiled + 1  # traced thresholds and masks: one compile
    # pre-NMS top-K: only the 10 best boxes compete
    idx, keep = batched_nms(b, s, 0.3, -np.inf, every, max_out=12, pre_nms_top_k=10)
    for k, got in enumerate(kept(idx, keep)):
        top = np.argsort(-scores[k])[:10]
        assert got == top[numpy_nms(boxes[k][top], scores[k][top], 0.3)].tolist()


def test_hand_case_threshold_is_strict():
    # A = [0,0,4,2], B = [2,0,6,2] overlap 2x2 = 4; union 8 + 8 - 4 = 12: IoU 1/3
    boxes = jnp.array([[[0, 0, 4, 2], [2, 0, 6, 2], [10, 10, 11, 11]]], jnp.float32)
    scores = jnp.array([[0.9, 0.8, 0.1]])
    for thr, want in [(0.34, [0, 1, 2]), (0.33, [0, 2])]:  # suppressed only when IoU > threshold
        idx, keep = batched_nms(boxes, scores, thr, max_out=5, pre_nms_top_k=3)
        assert kept(idx, keep) == [want] and idx.shape == (1, 5)
