"""Anchors, assignment and box coding (jaxnets.detection) and ``jaxnets anchors-report``.

Hand cases are worked in the comments; the rest compares against brute force (full IoU matrix).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxnets.cli import main
from jaxnets.data.wider_txt import WiderImage, write_gt
from jaxnets.detection import (
    BBOX_CLIP,
    AnchorConfig,
    anchors,
    assign,
    best_anchor_iou,
    decode,
    encode,
    flatten_level,
    flatten_levels,
    grid_sizes,
    iou_matrix,
    pad_faces,
    preset,
)

K3 = 2.0 ** (1.0 / 3.0)


def np_iou(a, b):
    """(N, 4), (M, 4) -> (N, M) continuous IoU in float64 numpy: the brute-force reference."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = np.prod(a[..., 2:] - a[..., :2], -1) + np.prod(b[..., 2:] - b[..., :2], -1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


# --- anchors ---------------------------------------------------------------------------------------


def test_presets_follow_table_4():
    v13, v24 = preset("v1.3"), preset("2.4")
    # 16 * 2^(k/3), k = 0..14: 16 ... 406.4 (5.2.1's "[16, 406]"), 3 scales on conv2..conv6
    np.testing.assert_allclose(v13.all_sizes(), 16 * 2.0 ** (np.arange(15) / 3), rtol=1e-12)
    assert v13.levels == ("conv2", "conv3", "conv4", "conv5", "conv6") and v13.iou_threshold == 0.55
    assert round(v13.all_sizes()[-1]) == 406
    # v2.4: 8, 10.08, 12.70 ("8, 10, 13") added below, conv2..conv7, grid halved by the x2 heads
    np.testing.assert_allclose(v24.all_sizes()[:4], [8, 8 * K3, 8 * K3 * K3, 16], rtol=1e-12)
    assert len(v24.all_sizes()) == 18 and v24.strides == (2, 4, 8, 16, 32, 64)
    assert preset("v2.0").strides == (8, 16, 32, 64, 128) and preset("v2.1").strides == (4, 8, 16, 32, 64)
    assert preset("v1.8").ratios == (1.0, 2.0) and preset("v1.9").ratios == (1.0, 1.5)
    assert preset("v2.2").iou_threshold == 0.55 and preset("v2.3").iou_threshold == 0.65


def test_grid_sizes_round_up_and_upsample():
    c = AnchorConfig(("conv3", "conv5"), (16.0, 64.0), upsample=1)
    assert grid_sizes(c, (100, 60)) == [(13, 8), (4, 2)]  # ceil(100/8), ceil(60/8); ceil(100/32), ...
    assert grid_sizes(c.replace(upsample=2), (100, 60)) == [(26, 16), (8, 4)]


def test_anchor_layout_and_order():
    c = AnchorConfig(("conv2", "conv3"), (16.0, 32.0), ratios=(1.0, 1.5), upsample=1)
    boxes, level = anchors(c, (16, 24))  # grids (4, 6) and (2, 3), 6 anchors per position
    assert boxes.shape == ((4 * 6 + 2 * 3) * 6, 4) and boxes.dtype == np.float32
    np.testing.assert_array_equal(level, np.repeat([0, 1], [4 * 6 * 6, 2 * 3 * 6]))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    # first position: centre (2, 2); anchor a = scale * 2 + ratio: a=0 16x16, a=1 16/sqrt1.5 x 16sqrt1.5
    np.testing.assert_allclose(cx[:6], 2) and np.testing.assert_allclose(cy[:6], 2)
    np.testing.assert_allclose(w[:2], [16, 16 / math.sqrt(1.5)], rtol=1e-6)
    np.testing.assert_allclose(h[:2], [16, 16 * math.sqrt(1.5)], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(w * h)[:6], 16 * np.repeat([1, K3, K3 * K3], 2), rtol=1e-6)
    np.testing.assert_allclose([cx[6], cy[6]], [6, 2])  # next x first (row-major over (y, x))
    np.testing.assert_allclose([cx[6 * 6], cy[6 * 6]], [2, 6])  # then the next row
    np.testing.assert_allclose([cx[144], cy[144], w[144]], [4, 4, 32])  # conv3 starts at (4, 4), 32 px


def test_flatten_level_matches_anchor_order():
    c = AnchorConfig(("conv4", "conv5"), (64.0, 128.0), ratios=(1.0, 2.0), upsample=2)
    boxes, _ = anchors(c, (64, 48))
    heads, start = [], 0
    for gh, gw in grid_sizes(c, (64, 48)):  # a head output whose channel a*4+d holds anchor a's coord d
        n = gh * gw * 6
        grid = boxes[start:start + n].reshape(gh, gw, 6, 4).transpose(2, 3, 0, 1)  # (A, 4, H, W)
        heads.append(jnp.asarray(grid.reshape(1, 24, gh, gw)))
        start += n
    np.testing.assert_array_equal(np.asarray(flatten_levels(heads, 4))[0], boxes)
    assert flatten_level(np.zeros((2, 6, 3, 5)), 1).shape == (2, 90, 1)


@pytest.mark.parametrize("name,size", [("v1.3", (96, 128)), ("v2.0", (80, 72)), ("v2.4", (64, 96))])
def test_best_anchor_iou_is_the_brute_force_maximum(name, size):
    rng = np.random.default_rng(0)
    c = preset(name)
    xy = rng.uniform(-4, [size[1], size[0]], (60, 2))  # some faces reach past the border
    wh = rng.uniform(3, 70, (60, 2))
    faces = np.concatenate([xy, xy + wh], 1)
    boxes, _ = anchors(c, size)
    brute = np_iou(boxes, faces).max(0)
    np.testing.assert_allclose(best_anchor_iou(c, size, faces), brute, atol=1e-6)


@pytest.mark.parametrize("change,needle", [
    ({"levels": ("conv2", "conv9")}, "levels: unknown level 'conv9'"),
    ({"sizes": (16.0,)}, "sizes: expected one base size per level"),
    ({"ratios": (1.0, -2.0)}, "ratios: expected positive"),
    ({"upsample": 0}, "upsample"),
    ({"iou_threshold": 1.5}, "iou_threshold"),
])
def test_bad_config_is_one_line_naming_the_field(change, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        preset("v1.3").replace(**change)
    with pytest.raises(ValueError, match="config 'v3.0': unknown"):
        preset("v3.0")


# --- IoU and box coding ------------------------------------------------------------------------------


def test_iou_hand_cases():
    a = jnp.array([[0, 0, 2, 2], [0, 0, 0, 5]], jnp.float32)
    b = jnp.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], jnp.float32)
    # overlap 1x1 of two 2x2 boxes: 1 / (4 + 4 - 1) = 1/7; identical 1; disjoint 0; zero-area box 0
    np.testing.assert_allclose(np.asarray(jax.jit(iou_matrix)(a, b)), [[1 / 7, 1, 0], [0, 0, 0]], rtol=1e-6)


def test_encode_hand_case_and_round_trip():
    anchor = jnp.array([0.0, 0.0, 10.0, 20.0])  # centre (5, 10), 10 x 20
    box = jnp.array([2.0, 4.0, 22.0, 14.0])  # centre (12, 9), 20 x 10
    np.testing.assert_allclose(np.asarray(encode(box, anchor)), [0.7, -0.05, math.log(2), math.log(0.5)], rtol=1e-6)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 500, (200, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 300, (200, 2))], 1)
    anch = np.concatenate([xy + 7, xy + 7 + rng.uniform(4, 400, (200, 2))], 1)
    for var in [(1.0, 1.0, 1.0, 1.0), (0.1, 0.1, 0.2, 0.2)]:
        t = encode(jnp.asarray(boxes), jnp.asarray(anch), var)
        np.testing.assert_allclose(np.asarray(decode(t, jnp.asarray(anch), var)), boxes, rtol=1e-4, atol=1e-3)


def test_decode_clamps_the_size_offsets():
    anchor = jnp.array([0.0, 0.0, 16.0, 16.0])
    out = np.asarray(decode(jnp.array([0.0, 0.0, 50.0, 50.0]), anchor))
    np.testing.assert_allclose(out[2] - out[0], 1000.0, rtol=1e-5)  # 16 * exp(log(1000/16))
    assert np.isfinite(np.asarray(decode(jnp.array([0, 0, 1e4, -1e4]), anchor))).all() and BBOX_CLIP > 4


# --- assignment ----------------------------------------------------------------------------------------

# Anchors of the hand cases (x1, y1, x2, y2):
ANCH = jnp.array([
    [0, 0, 10, 10],     # 0: = face 0 (IoU 1)
    [0, 0, 10, 12],     # 1: face 0 inside: IoU 100/120 = 0.833
    [0, 0, 20, 10],     # 2: IoU 100/200 = 0.5 with face 0
    [30, 30, 40, 40],   # 3: IoU with face 1 [30,30,50,50] = 100/400 = 0.25: face 1's best anchor
    [60, 60, 70, 70],   # 4: = invalid face 2
    [62, 60, 72, 70],   # 5: overlaps the invalid face a little (IoU 80/120)
    [100, 100, 110, 110],  # 6: touches nothing
], jnp.float32)
GT = jnp.array([[0, 0, 10, 10], [30, 30, 50, 50], [60, 60, 70, 70], [0, 0, 0, 0]], jnp.float32)
VALID = jnp.array([True, True, True, False])
INVALID = jnp.array([False, False, True, False])


def test_assign_paper_rule():
    r = assign(ANCH, GT, VALID, INVALID, iou_threshold=0.5)
    # >= threshold is positive (anchor 2 sits exactly at 0.5); face 1 reaches 0.25: no anchor;
    # anchors 4, 5 overlap the invalid face: ignored; the padded row never matches
    np.testing.assert_array_equal(np.asarray(r.labels), [1, 1, 1, 0, -1, -1, 0])
    np.testing.assert_array_equal(np.asarray(r.matched), [0, 0, 0, -1, -1, -1, -1])
    np.testing.assert_allclose(np.asarray(r.max_iou), [1, 100 / 120, 0.5, 0.25, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(r.targets)[:3], np.asarray(encode(GT[jnp.array([0, 0, 0])], ANCH[:3])),
                               atol=1e-6)
    assert not np.asarray(r.targets)[3:].any()


def test_assign_match_best_ignore_band_and_chunks():
    r = assign(ANCH, GT, VALID, INVALID, iou_threshold=0.55, match_best=True)
    np.testing.assert_array_equal(np.asarray(r.labels), [1, 1, 0, 1, -1, -1, 0])  # anchor 3 claimed by face 1
    np.testing.assert_array_equal(np.asarray(r.matched)[[0, 3]], [0, 1])
    band = assign(ANCH, GT, VALID, INVALID, iou_threshold=0.55, neg_threshold=0.2)
    np.testing.assert_array_equal(np.asarray(band.labels), [1, 1, -1, -1, -1, -1, 0])  # 0.5, 0.25 in the band
    # two faces whose best anchor is the same: the higher IoU wins it, the other gets nothing
    gt2 = jnp.array([[100, 100, 108, 108], [100, 100, 104, 104]], jnp.float32)  # IoU 0.64, 0.16 w/ anchor 6
    r2 = assign(ANCH, gt2, jnp.array([True, True]), iou_threshold=0.9, match_best=True, chunk=3)
    assert np.asarray(r2.labels).tolist() == [0, 0, 0, 0, 0, 0, 1] and int(r2.matched[6]) == 0
    chunked = assign(ANCH, GT, VALID, INVALID, iou_threshold=0.55, match_best=True, chunk=2)
    for x, y in zip(chunked, r):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_assign_batched_on_real_anchors_agrees_with_brute_force():
    c = preset("v1.3")
    boxes, _ = anchors(c, (64, 64))
    rng = np.random.default_rng(3)
    faces = [rng.uniform(0, 40, (k, 2)) for k in (5, 0, 9)]
    faces = [np.concatenate([f, f + rng.uniform(8, 24, f.shape)], 1) for f in faces]
    padded = [pad_faces(f, max_faces=12) for f in faces]
    gt, valid, inv = (jnp.asarray(np.stack(x)) for x in zip(*padded))
    batch = jax.vmap(lambda g, v, i: assign(jnp.asarray(boxes), g, v, i, iou_threshold=0.55, chunk=1000))
    r = batch(gt, valid, inv)
    assert r.labels.shape == (3, len(boxes)) and r.targets.shape == (3, len(boxes), 4)
    for k, f in enumerate(faces):
        iou = np_iou(boxes, f).reshape(len(boxes), -1)
        pos = iou.max(1, initial=-1) >= 0.55
        np.testing.assert_array_equal(np.asarray(r.labels[k]), pos.astype(int))
        np.testing.assert_array_equal(np.asarray(r.matched[k])[pos], iou.argmax(1)[pos] if pos.any() else [])
        assert np.isfinite(np.asarray(r.targets)).all()
    assert int((r.labels[0] == 1).sum()) > 0 and int((r.labels[1] == 1).sum()) == 0
    with pytest.raises(ValueError, match="max_faces"):
        pad_faces(np.zeros((3, 4)), max_faces=2)


# --- jaxnets anchors-report ------------------------------------------------------------------------


def _tiny_wider(root):
    """One 512x512 image (scale 1 at input 512): an 8x8 face centred on a stride-2 grid centre
    (101, 101): v2.4's 8-px anchor matches it exactly (IoU 1); v1.3's smallest anchor is 16 px, IoU
    <= 64/256 = 0.25. A 40x40 face both cover; an invalid face that is left out."""
    faces = np.array([[97, 97, 8, 8, 0, 0, 0, 0, 0, 0], [300, 300, 40, 40, 0, 0, 0, 0, 0, 0],
                      [10, 400, 30, 30, 0, 0, 0, 1, 0, 0]], np.int64)
    write_gt(root / "wider_face_split" / "wider_face_val_bbx_gt.txt", [WiderImage("0--A/a.jpg", faces)])
    (root / "WIDER_val" / "images" / "0--A").mkdir(parents=True)
    Image.new("RGB", (512, 512)).save(root / "WIDER_val" / "images" / "0--A" / "a.jpg")


def test_anchors_report_counts_uncovered_faces(tmp_path, capsys):
    _tiny_wider(tmp_path / "d")
    rows = {}
    for config in ("v1.3", "v2.4"):
        plot, js = tmp_path / f"{config}.png", tmp_path / f"{config}.json"
        assert main(["anchors-report", str(tmp_path / "d"), "--split", "val", "--config", config,
                     "--plot", str(plot), "--json", str(js)]) == 0
        out = capsys.readouterr().out
        assert "2 valid faces (1 invalid or empty left out)" in out and plot.stat().st_size > 1000
        rows[config] = {(b["lo"], b["faces"], b["uncovered"]) for b in json.loads(js.read_text())["bins"]}
    assert rows["v1.3"] == {(8, 1, 1), (32, 1, 0)} and rows["v2.4"] == {(8, 1, 0), (32, 1, 0)}
    # the flags override the preset: two levels of 8 and 16 px on a 2-px grid cover the small face
    assert main(["anchors-report", str(tmp_path / "d"), "--split", "val", "--config", "v1.3", "--upsample", "2",
                 "--levels", "conv2,conv3", "--sizes", "8,16", "--ratios", "1:1",
                 "--plot", str(tmp_path / "x.png"), "--json", str(tmp_path / "x.json")]) == 0
    assert "(modified)" in capsys.readouterr().out
    # ... and, its largest anchor being 16 * 2^(2/3) = 25.4 px, loses the 40-px face (IoU 645/1600)
    bins = json.loads((tmp_path / "x.json").read_text())["bins"]
    assert {(b["lo"], b["uncovered"]) for b in bins} == {(8, 0), (32, 1)}


@pytest.mark.parametrize("args,needle", [
    (["nowhere"], "nowhere"),
    (["{d}", "--config", "v9"], "config 'v9': unknown"),
    (["{d}", "--ratios", "1:x"], "--ratios"),
    (["{d}", "--levels", "conv2,conv3"], "--levels: 2 levels"),
    (["{d}", "--levels", "conv2,convX", "--sizes", "8,16"], "levels: unknown level 'convX'"),
    (["{d}", "--crop", "1.5"], "--crop"),
    (["{d}", "--split", "train"], "wider_face_train_bbx_gt.txt: not found"),
])
def test_anchors_report_bad_input_is_one_line(args, needle, tmp_path, capsys):
    _tiny_wider(tmp_path / "d")
    args = [a.format(d=tmp_path / "d") for a in args]
    split = [] if "--split" in args else ["--split", "val"]
    assert main(["anchors-report", *args, *split, "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxnets anchors-report: ") and needle in err[0]
