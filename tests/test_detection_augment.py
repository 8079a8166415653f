"""The detector's training augmentation and fixed-size batches (jaxnets/data/detection_augment.py,
detection_batches.py; section 5.2.2, v2.3's colour jitter).

Boxes move with pixels: a bright rectangle drawn at a face box is found, after crop + resize +
flip, where the transformed box says (1 px); the cut-face rule on hand cases; the batch of a
step is a function of (seed, step) only -- a fresh source gives the same bytes, an example's crop
does not depend on its batch-mates; the evaluation letterbox maps boxes back to original pixels;
padding and the max_faces rule; the colour jitter keeps uint8 (no wrap-around) and turns the hue
by its drawn angle. The end-to-end source reads a small dense-face set (``jaxnets make-faces``)
through the WIDER loader.
"""

from __future__ import annotations

import colorsys
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import cli
from jaxnets.data.detection_augment import (AugmentSpec, color_jitter, crop_boxes, draw_crop, example_rng,
                                            jitter_params, letterbox, make_color_jitter, random_crop, resize_region,
                                            unletterbox_boxes)
from jaxnets.data.detection_batches import DetectionReader, DetectionSource, detection_eval_batches, pad_faces
from jaxnets.data.wider_source import load_wider


def _canvas(h: int, w: int, box) -> np.ndarray:
    """uint8 (H, W, 3): black, with the integer box (x1, y1, x2, y2) filled at 255."""
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    img[y1:y2, x1:x2] = 255
    return img


def _bright_extent(img: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) of the pixels above half brightness, continuous coordinates."""
    ys, xs = np.nonzero(img[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


class FakeSplit:
    """A WiderSplit stand-in: records of varying image sizes, face i at a known place."""

    def __init__(self, n: int = 6, faces_per_image: int = 3):
        rng = np.random.default_rng(1)
        self.records = []
        for i in range(n):
            h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            k = faces_per_image if i else 0  # record 0 has no faces
            x1, y1 = rng.integers(0, w // 2, k), rng.integers(0, h // 2, k)
            boxes = np.stack([x1, y1, x1 + rng.integers(4, w // 2, k), y1 + rng.integers(4, h // 2, k)], 1)
            self.records.append({"image": img, "boxes": boxes.astype(np.float32).reshape(-1, 4),
                                 "invalid": (np.arange(k) % 2).astype(bool), "name": f"fake/{i}.jpg"})

    def __len__(self):
        return len(self.records)

    def read(self, indices):
        return [self.records[int(i)] for i in np.asarray(indices).reshape(-1)]

    def describe(self):
        return {"kind": "fake", "examples": len(self), "summary": "fake faces"}


# ------------------------------------------------------------------ boxes move with pixels

@pytest.mark.parametrize("crop, size", [((10, 5, 60), 60),    # scale 1
                                        ((10, 5, 60), 150),   # up 2.5
                                        ((0, 20, 70), 32),    # down ~0.46
                                        ((37, 0, 51), 17)])   # down 1/3, face cut by the crop
def test_crop_resize_moves_boxes_with_pixels(crop, size):
    box = (30, 25, 62, 52)
    img = _canvas(90, 120, box)
    x0, y0, c = crop
    out = resize_region(img, (x0, y0, x0 + c, y0 + c), size, size)
    kept, keep = crop_boxes(np.array([box], np.float32), x0, y0, c, size)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8 and keep.tolist() == [True]
    np.testing.assert_allclose(_bright_extent(out), kept[0], atol=1.0)


def test_random_crops_and_flips_move_boxes_with_pixels():
    box = (40, 30, 75, 66)
    img = _canvas(100, 130, box)
    spec = AugmentSpec(size=48)
    kept_any = flipped_any = 0
    for step in range(30):
        rng = example_rng(0, step, 3)
        out, kept, keep = random_crop(rng, img, np.array([box], np.float32), spec)
        assert out.shape == (48, 48, 3)
        if keep[0]:
            kept_any += 1
            np.testing.assert_allclose(_bright_extent(out), kept[0], atol=1.0)
            x0, y0, c, flip = draw_crop(example_rng(0, step, 3), 100, 130, spec)
            flipped_any += flip
            assert 0.33 * 100 - 1 <= c <= 0.95 * 100 + 1
    assert kept_any >= 5 and 0 < flipped_any < kept_any  # both flips seen among the kept faces


def test_flip_mirrors_pixels_and_boxes():
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    boxes = np.array([[10, 12, 30, 40]], np.float32)
    a = random_crop(example_rng(5, 1, 2), img, boxes, AugmentSpec(size=24, hflip=0.0))
    b = random_crop(example_rng(5, 1, 2), img, boxes, AugmentSpec(size=24, hflip=1.0))
    np.testing.assert_array_equal(b[0], a[0][:, ::-1])
    np.testing.assert_allclose(b[1][:, [0, 2]], 24 - a[1][:, [2, 0]])
    np.testing.assert_array_equal(b[1][:, [1, 3]], a[1][:, [1, 3]])


# ------------------------------------------------------------------ the cut-face rule

def test_cut_face_rule_hand_cases():
    faces = np.array([[12, 12, 18, 18],   # inside                                -> kept
                      [5, 12, 17, 18],    # centre x 11 inside, left part cut     -> kept, clipped
                      [0, 12, 18, 18],    # centre x 9, outside                   -> dropped
                      [8, 12, 12, 18],    # centre x 10 = x0: inside (closed)     -> kept
                      [28, 12, 32, 18],   # centre x 30 = x0 + c: outside (open)  -> dropped
                      [15, 15, 15, 20],   # zero width                            -> dropped
                      [20, 25, 40, 45]],  # centre (30, 35): outside in x         -> dropped
                     np.float32)  # fmt: skip
    kept, keep = crop_boxes(faces, 10, 10, 20, 20)  # crop [10, 30) x [10, 30), scale 1
    assert keep.tolist() == [True, True, False, True, False, False, False]
    np.testing.assert_array_equal(kept, [[2, 2, 8, 8], [0, 2, 7, 8], [0, 2, 2, 8]])
    kept2, _ = crop_boxes(faces, 10, 10, 20, 40)  # resized to 40: scale 2
    np.testing.assert_array_equal(kept2, 2 * kept)
    # a face larger than the crop, centred in it, keeps the whole crop; off-centre, it is dropped
    np.testing.assert_array_equal(crop_boxes(np.array([[5, 5, 35, 35]]), 10, 10, 20, 20)[0], [[0, 0, 20, 20]])
    assert crop_boxes(np.array([[0, 0, 100, 100]]), 10, 10, 20, 20)[1].tolist() == [False]


# ------------------------------------------------------------------ determinism

def test_batches_are_a_function_of_seed_and_step_only():
    spec = AugmentSpec(size=24)
    a = DetectionSource(FakeSplit(), 3, seed=7, spec=spec, max_faces=4)
    b = DetectionSource(FakeSplit(), 3, seed=7, spec=spec, max_faces=4)  # "resumed": a fresh source
    for step in (0, 5, 2):  # any order
        x, y = a.batch_at_step(step), b.batch_at_step(step)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
    assert json.dumps(a.describe(), sort_keys=True) == json.dumps(b.describe(), sort_keys=True)
    assert not np.array_equal(a.batch_at_step(0)["image"], a.batch_at_step(1)["image"])
    c = DetectionSource(FakeSplit(), 3, seed=8, spec=spec, max_faces=4)
    assert not np.array_equal(a.batch_at_step(0)["image"], c.batch_at_step(0)["image"])
    # the same examples at another step get other crops
    reader = a.reader
    assert not np.array_equal(reader.train_batch([1, 2], 3)["image"], reader.train_batch([1, 2], 4)["image"])


def test_crop_does_not_depend_on_the_batch():
    reader = DetectionReader(FakeSplit(), AugmentSpec(size=20), max_faces=5, seed=3)
    alone = reader.train_batch([4], 9)
    for batch, row in ((reader.train_batch([2, 4], 9), 1), (reader.train_batch([4, 0, 5], 9), 0)):
        for k in alone:
            np.testing.assert_array_equal(batch[k][row], alone[k][0], err_msg=k)


# ------------------------------------------------------------------ evaluation letterbox

@pytest.mark.parametrize("h, w, size", [(60, 90, 64), (90, 61, 64), (50, 50, 32), (30, 17, 100)])
def test_letterbox_round_trip_and_pixels(h, w, size):
    box = (w // 4, h // 3, w // 4 + w // 3, h // 3 + h // 3)
    img = _canvas(h, w, box)
    boxes = np.random.default_rng(h).uniform(0, min(h, w), (5, 4)).astype(np.float32)
    boxes = np.concatenate([np.array([box], np.float32), np.sort(boxes.reshape(5, 2, 2), 1).reshape(5, 4)])
    out, lb, scale, offset = letterbox(img, boxes, size)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(unletterbox_boxes(lb, scale, offset), boxes, atol=1e-4)
    np.testing.assert_allclose(_bright_extent(out), lb[0], atol=1.0)
    # the image fills the long side; the padding is black
    ox, oy = offset.astype(int)
    assert (ox == 0 or oy == 0) and np.all(out[:oy] == 0) and np.all(out[:, :ox] == 0)


def test_eval_batches_map_back_to_original_pixels():
    split = FakeSplit(n=5)
    batches = list(detection_eval_batches(split, size=32, batch_size=2, max_faces=4))
    assert len(batches) == 3 and batches[-1]["mask"].tolist() == [1.0, 0.0]
    assert batches[-1]["index"].tolist() == [4, -1] and batches[-1]["scale"][1] == 1.0
    for batch in batches:
        back = unletterbox_boxes(batch["boxes"], batch["scale"], batch["offset"])  # (R, M, 4)
        for r, i in enumerate(batch["index"]):
            if i < 0:
                assert not batch["box_mask"][r].any()
                continue
            rec = split.records[i]
            np.testing.assert_allclose(back[r][batch["box_mask"][r]], rec["boxes"], atol=1e-4)
            assert batch["image_size"][r].tolist() == list(rec["image"].shape[:2])
            assert batch["invalid"][r][batch["box_mask"][r]].tolist() == rec["invalid"].tolist()


# ------------------------------------------------------------------ padding and max_faces

def test_padding_with_no_faces_and_too_many():
    b, mask, inv, dropped = pad_faces(np.zeros((0, 4)), np.zeros(0, bool), 3)
    assert b.shape == (3, 4) and not b.any() and not mask.any() and not inv.any() and dropped == 0
    side = np.array([5, 9, 2, 7, 9, 1], np.float32)  # areas 25 81 4 49 81 1
    faces = np.stack([np.zeros(6), np.zeros(6), side, side], 1)
    invalid = np.array([0, 1, 0, 1, 0, 0], bool)
    b, mask, inv, dropped = pad_faces(faces, invalid, 3)
    np.testing.assert_array_equal(b[:, 2], [9, 7, 9])  # the three largest, in file order
    assert mask.all() and inv.tolist() == [True, True, False] and dropped == 3
    b, mask, inv, dropped = pad_faces(faces[:2], invalid[:2], 4)
    assert mask.tolist() == [True, True, False, False] and dropped == 0 and not b[2:].any()
    # through the reader: a record with no faces, records with more faces than max_faces
    reader = DetectionReader(FakeSplit(faces_per_image=7), AugmentSpec(size=16, min_crop=0.95), max_faces=2)
    ev = reader.eval_batch([0, 1])
    assert ev["boxes"].shape == (2, 2, 4) and not ev["box_mask"][0].any() and ev["box_mask"][1].all()
    assert ev["dropped"].tolist() == [0, 5]
    tr = reader.train_batch([0, 1, 2], 0)
    assert tr["image"].shape == (3, 3, 16, 16) and tr["box_mask"].shape == (3, 2)
    assert not tr["box_mask"][0].any() and np.all(tr["boxes"][~tr["box_mask"]] == 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="min_crop"):
        AugmentSpec(min_crop=0.0)
    with pytest.raises(ValueError, match="hflip"):
        AugmentSpec(hflip=1.5)
    with pytest.raises(ValueError, match="size"):
        AugmentSpec(size=0)
    with pytest.raises(ValueError, match="max_faces"):
        DetectionReader(FakeSplit(), AugmentSpec(), max_faces=0)
    with pytest.raises(ValueError, match="batch_size"):
        next(detection_eval_batches(FakeSplit(), 16, 0, 4))


# ------------------------------------------------------------------ colour jitter

@pytest.fixture(scope="module")
def jitter():
    return jax.jit(color_jitter)  # max_hue, noise_std traced: one compile for both tests


def test_color_jitter_turns_the_hue(jitter):
    rng = np.random.default_rng(0)
    hsv = np.stack([rng.random(64), rng.uniform(0.5, 1, 64), rng.uniform(0.5, 1, 64)], 1)
    rgb = np.array([colorsys.hsv_to_rgb(*p) for p in hsv]) * 255  # (64, 3) saturated colours
    images = np.round(rgb.T.reshape(1, 3, 8, 8)).astype(np.uint8).repeat(2, 0)  # (2, 3, 8, 8)
    key, index = jax.random.key(4), jnp.array([3, 11])
    out = np.asarray(jitter(key, jnp.asarray(images), index, 0.25, 0.0))
    delta, _ = jitter_params(key, index, 0.25, 0.0)
    assert out.dtype == np.uint8 and np.all(np.abs(np.asarray(delta)) > 0.01)
    for r in range(2):
        before = [colorsys.rgb_to_hsv(*(p / 255)) for p in images[r].reshape(3, -1).T]
        after = [colorsys.rgb_to_hsv(*(p / 255)) for p in out[r].reshape(3, -1).T]
        turn = np.array([(a[0] - b[0] - float(delta[r]) + 0.5) % 1 - 0.5 for a, b in zip(after, before)])
        assert np.abs(turn).max() < 0.01  # the hue moved by the drawn angle
        np.testing.assert_allclose([a[2] for a in after], [b[2] for b in before], atol=1 / 255)  # value kept


def test_color_jitter_noise_stays_in_uint8_and_is_per_example(jitter):
    images = np.zeros((2, 3, 8, 8), np.uint8)
    images[0] = 255  # white: noise must saturate at 255, not wrap to small values
    out = np.asarray(jitter(jax.random.key(1), jnp.asarray(images), jnp.array([0, 1]), 0.0, 40.0))
    assert out.dtype == np.uint8
    assert out[0].min() > 100 and (out[0] < 255).any()  # white: down only
    assert out[1].max() < 155 and (out[1] > 0).any()    # black: up only
    # an example's jitter depends on its index, not on the batch around it
    other = np.asarray(jitter(jax.random.key(1), jnp.asarray(images), jnp.array([5, 1]), 0.0, 40.0))
    np.testing.assert_array_equal(other[1], out[1])
    assert make_color_jitter(AugmentSpec(jitter=False)) is None


# ------------------------------------------------------------------ a real dense-face set

@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root, data_dir = tmp_path_factory.mktemp("faces"), tmp_path_factory.mktemp("tfds")
    assert cli.main(["make-faces", str(root / "d6faces"), "--train", "8", "--val", "4", "--seed", "0",
                     "--size", "160x120", "--workers", "1", "--no-progress"]) == 0
    return (load_wider(root=root / "d6faces", split="train", data_dir=str(data_dir)),
            load_wider(root=root / "d6faces", split="val", data_dir=str(data_dir)))


def test_dense_face_source_end_to_end(faces):
    train, val = faces
    spec = AugmentSpec(size=64, jitter=True)
    source = DetectionSource(train, 4, seed=0, spec=spec, max_faces=32)
    batch = source.batch_at_step(3)
    assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == np.uint8
    assert batch["boxes"].shape == (4, 32, 4) and batch["boxes"].dtype == np.float32
    assert batch["box_mask"].dtype == bool and batch["invalid"].shape == (4, 32)
    real = batch["boxes"][batch["box_mask"]]
    assert len(real) > 0 and real.min() >= 0 and real.max() <= 64
    assert np.all(real[:, 2] > real[:, 0]) and np.all(real[:, 3] > real[:, 1])
    again = DetectionSource(train, 4, seed=0, spec=spec, max_faces=32).batch_at_step(3)
    for k in batch:
        np.testing.assert_array_equal(batch[k], again[k], err_msg=k)
    d = json.loads(json.dumps(source.describe()))
    assert d["transform"]["augment"]["min_crop"] == 0.33 and d["transform"]["augment"]["jitter"] is True
    assert d["transform"]["max_faces"] == 32 and d["identity"]["split"] == "train"
    jittered = jax.jit(source.device_transform)(jax.random.key(0), batch)
    assert jittered["image"].dtype == jnp.uint8 and not np.array_equal(np.asarray(jittered["image"]), batch["image"])
    for ev in detection_eval_batches(val, 64, 3, max_faces=256):
        back = unletterbox_boxes(ev["boxes"], ev["scale"], ev["offset"])
        for r, i in enumerate(ev["index"]):
            if i >= 0:
                rec = val.read([i])[0]
                np.testing.assert_allclose(back[r][ev["box_mask"][r]], rec["boxes"], atol=1e-4)
                assert ev["dropped"][r] == 0
