"""The dense-face set (``jaxnets make-faces``): byte-identical from the seed, held-out identities,
the easy ⊂ medium ⊂ hard rule, boxes inside their images, WIDER files that the real readers read
back consistently, and a command that refuses bad arguments and folders it may not write.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxnets.cli import main
from jaxnets.data.dense_faces import difficulty, render, scenes, writer
from jaxnets.data.dense_faces.library import BACKGROUNDS, FORBIDDEN, HELD_OUT_IDENTITIES, TRAIN_IDENTITIES
from jaxnets.data.wider_mat import read_val_mats
from jaxnets.data.wider_txt import check_images, read_filelist, read_gt, split_paths

COUNTS = {"train": 3, "val": 3, "test": 2}
SIZE = (320, 240)


def all_files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("df") / "set"
    writer.write_set(out, COUNTS, seed=0, size=SIZE, workers=1)
    return out


def test_same_seed_gives_identical_files_any_worker_count(made, tmp_path):
    again = tmp_path / "again"
    writer.write_set(again, COUNTS, seed=0, size=SIZE, workers=2)  # other processes, other order
    first, second = all_files(made), all_files(again)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert sum(k.endswith(".jpg") for k in first) == sum(COUNTS.values())
    assert {"eval_tools/ground_truth/wider_face_val.mat", "contact_sheet.png", "dense_faces.json"} <= set(first)


def test_other_seed_differs_and_image_does_not_depend_on_count(made, tmp_path):
    other = tmp_path / "other"
    writer.write_set(other, {"val": 1}, seed=1, size=SIZE, workers=1)
    jpg = lambda root: next((root / "WIDER_val/images").rglob("*_val_0.jpg")).read_bytes()  # noqa: E731
    assert jpg(made) != jpg(other)
    # image 0 of seed 0 made alone is image 0 of the 3-image set
    first = next(im for im in read_gt(made / "wider_face_split/wider_face_val_bbx_gt.txt") if im.stem.endswith("_val_0"))
    alone = scenes.make_scene(0, "val", 0, SIZE)
    assert np.array_equal(alone.faces, first.faces)


def test_val_and_test_use_only_held_out_identities(made):
    for split, allowed in (("train", TRAIN_IDENTITIES), ("val", HELD_OUT_IDENTITIES), ("test", HELD_OUT_IDENTITIES)):
        ids = json.loads((made / f"wider_face_split/identities_{split}.json").read_text())
        gt = {im.name: im for im in read_gt(made / f"wider_face_split/wider_face_{split}_bbx_gt.txt")}
        assert set(ids) == set(gt)
        for name, faces in ids.items():
            assert len(faces) == len(gt[name].faces)
            assert set(faces) <= set(allowed), (split, name)
    assert set(TRAIN_IDENTITIES).isdisjoint(HELD_OUT_IDENTITIES)


def test_boxes_inside_images_and_sizes(made):
    for split in ("train", "val"):
        txt, images_dir = split_paths(made, split)
        images = read_gt(txt)
        assert len(images) == COUNTS[split]
        assert check_images(txt, images, images_dir) == [(SIZE[1], SIZE[0])] * COUNTS[split]
        for im in images:
            assert (im.faces[:, 2] >= 1).all() and (im.faces[:, 3] >= 1).all()
    test_txt, test_dir = split_paths(made, "test")
    names = read_filelist(test_txt)
    test_gt = read_gt(made / "wider_face_split/wider_face_test_bbx_gt.txt")
    assert names == [im.name for im in test_gt]
    check_images(test_txt, test_gt, test_dir)


def test_val_mats_agree_with_txt_and_rule(made):
    images = {im.name[:-4]: im for im in read_gt(made / "wider_face_split/wider_face_val_bbx_gt.txt")}
    gt = read_val_mats(made / "eval_tools/ground_truth")
    assert gt.official and gt.num_images == len(images)
    for i, j, name in gt.names():
        faces = images[name].faces
        np.testing.assert_array_equal(gt.boxes[i][j], faces[:, :4].astype(np.float64))
        np.testing.assert_array_equal(np.asarray(gt.invalid[i][j], bool), faces[:, 7] == 1)
        expected = difficulty.subset_indices(faces)
        for s in ("easy", "medium", "hard"):
            np.testing.assert_array_equal(np.asarray(gt.subsets[s][i][j]).ravel(), expected[s])
        easy, medium, hard = (set(np.asarray(gt.subsets[s][i][j]).ravel().tolist()) for s in ("easy", "medium", "hard"))
        assert easy <= medium <= hard


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 200), st.integers(0, 2), st.integers(0, 1), st.integers(0, 1),
                          st.integers(0, 1), st.integers(0, 2), st.integers(0, 1)), max_size=20))
def test_subsets_nested_for_any_attributes(rows):
    faces = np.asarray([[0, 0, 10, h, b, e, il, inv, oc, po] for h, b, e, il, inv, oc, po in rows], np.int64)
    m = difficulty.subset_masks(faces.reshape(-1, 10))
    assert not (m["easy"] & ~m["medium"]).any() and not (m["medium"] & ~m["hard"]).any()
    assert not (m["hard"] & (faces.reshape(-1, 10)[:, 7] == 1)).any()


def test_subset_rule_by_hand():
    #           x  y  w   h  blur expr illum inv occl pose
    faces = [[0, 0, 40, 40, 1, 1, 0, 0, 0, 0],   # easy (normal blur and expression allowed)
             [0, 0, 40, 31, 0, 0, 0, 0, 0, 0],   # medium: under 32 px
             [0, 0, 40, 40, 0, 0, 0, 0, 1, 0],   # medium: partly occluded
             [0, 0, 40, 40, 0, 0, 0, 0, 0, 1],   # medium: atypical pose
             [0, 0, 40, 40, 2, 0, 0, 0, 0, 0],   # hard: heavy blur
             [0, 0, 15, 15, 0, 0, 0, 0, 0, 0],   # hard: under 16 px
             [0, 0, 40, 40, 0, 0, 0, 0, 2, 0],   # hard: heavy occlusion
             [0, 0, 7, 7, 0, 0, 0, 0, 0, 0],     # ignore: under 8 px
             [0, 0, 40, 40, 0, 0, 0, 1, 2, 0]]   # ignore: invalid
    idx = difficulty.subset_indices(np.asarray(faces))
    assert idx["easy"].tolist() == [1]
    assert idx["medium"].tolist() == [1, 2, 3, 4]
    assert idx["hard"].tolist() == [1, 2, 3, 4, 5, 6, 7]


def test_attributes_follow_rendering():
    base = dict(identity=85, height=40.0, blur_px=0.5, light_ratio=1.2, gain=1.0, angle=3.0, squeeze=0.95, covered=0.0)
    attrs = lambda **kw: difficulty.attributes(difficulty.Drawn(**{**base, **kw}))  # noqa: E731
    assert attrs() == (0, 0, 0, 0, 0, 0)
    assert attrs(blur_px=render.total_blur(render.Look(height=100.0)))[0] == 1  # upscaled 4x: normal blur
    assert attrs(blur_px=4.0)[0] == 2
    assert attrs(identity=96)[1] == 1
    assert attrs(light_ratio=3.0)[2] == 1 and attrs(gain=0.3)[2] == 1
    assert attrs(covered=0.2)[3:5] == (0, 1) and attrs(covered=0.4)[3:5] == (0, 2) and attrs(covered=0.6)[3:5] == (1, 2)
    assert attrs(angle=25.0)[5] == 1 and attrs(squeeze=0.7)[5] == 1


def test_face_box_follows_inset_rotation_and_squeeze():
    l, t, r, b = render.BOX_INSET
    x1, y1, x2, y2 = render.face_box(render.Look(height=50.0))
    assert (x1, y1, x2, y2) == pytest.approx((-25 + 50 * l, -25 + 50 * t, 25 - 50 * r, 25 - 50 * b))
    x1, y1, x2, y2 = render.face_box(render.Look(height=50.0, squeeze=0.8, angle=90.0))
    assert (x2 - x1, y2 - y1) == pytest.approx((50.0 * (1 - t - b), 40.0 * (1 - l - r)))
    x1, y1, x2, y2 = render.face_box(render.Look(height=50.0, squeeze=0.8, angle=20.0))
    assert 40 * (1 - l - r) < x2 - x1 < 50 * (1 - t - b) and 40 * (1 - l - r) < y2 - y1 < 50 * (1 - t - b)
    # mirrored: the left and right insets swap
    m = render.face_box(render.Look(height=50.0, mirror=True))
    assert (m[0], m[2]) == pytest.approx((-25 + 50 * r, 25 - 50 * l))


def test_scenes_span_sizes_and_counts():
    counts, heights = [], []
    for i in range(12):
        s = scenes.make_scene(7, "train", i)
        counts.append(len(s.faces))
        ok = s.faces[:, 7] == 0
        heights.extend(s.faces[ok, 3].tolist())
        assert s.image.shape == (480, 640, 3) and s.image.dtype == np.uint8
        assert set(s.identities.tolist()) <= set(TRAIN_IDENTITIES)
    assert min(counts) >= 1 and max(counts) >= 100
    assert max(heights) <= 480 / 3 * 1.15 and min(heights) < 16
    assert not set(FORBIDDEN) & set(BACKGROUNDS)


@pytest.mark.parametrize("size", [(64, 64), (64, 200), (300, 64)])
def test_small_and_odd_sizes(size):
    W, H = size
    for i in range(25):
        s = scenes.make_scene(3, "val", i, size)
        assert s.image.shape == (H, W, 3)
        x, y, w, h = s.faces[:, :4].T
        assert (x >= 0).all() and (y >= 0).all() and (x + w <= W).all() and (y + h <= H).all()


@pytest.mark.parametrize("argv", [
    ["--val", "-3"], ["--train", "abc"], ["--size", "640"], ["--size", "10x10"], ["--val", "0"],
    ["--val", "1", "--seed", "-1"], ["--val", "1", "--workers", "0"]])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv):
    assert main(["make-faces", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxnets make-faces: ")
    assert not (tmp_path / "out").exists()


def test_refuses_foreign_folder_and_replaces_own_set(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["make-faces", str(out), "--val", "1", "--size", "160x120", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0]
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    own = tmp_path / "own"
    for n in (2, 1):  # a complete set is replaced by the new one
        assert main(["make-faces", str(own), "--val", str(n), "--size", "160x120", "--no-progress", "--workers", "1"]) == 0
    assert len(list((own / "WIDER_val/images").rglob("*.jpg"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "own"]


def test_killed_run_leaves_nothing_complete_and_rerun_cleans_up(tmp_path):
    out = tmp_path / "set"
    cmd = [sys.executable, "-m", "jaxnets.cli", "make-faces", str(out), "--val", "200", "--no-progress", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = writer.partial_path(out)
    deadline = time.time() + 60
    while not list(partial.rglob("*.jpg")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and (partial / writer.PARTIAL_MARK).is_file()
    writer.write_set(out, {"val": 1}, seed=0, size=(160, 120))
    assert not partial.exists() and writer.is_complete_set(out) and not (out / writer.PARTIAL_MARK).exists()
    foreign = writer.partial_path(tmp_path / "x")
    foreign.mkdir()
    with pytest.raises(ValueError, match="not left by make-faces"):
        writer.write_set(tmp_path / "x", {"val": 1}, seed=0, size=(160, 120))


@pytest.mark.parametrize("argv, words", [
    (["--train", "99999999999", "--val", "2"], "at most 1,000,000"),
    (["--val", "\u0661"], "expected a whole number"),
])
def test_huge_or_non_ascii_counts_are_refused_before_any_work(tmp_path, capsys, argv, words):
    assert main(["make-faces", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_output_under_a_file_is_bad_input(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["make-faces", str(tmp_path / "afile" / "sub"), "--val", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]


@pytest.mark.parametrize("instant", ["after_moving_the_old_set_aside", "after_renaming_before_unmarking"])
def test_kill_while_publishing_then_rerun(made, tmp_path, instant):
    """The two instants inside ``publish`` where a kill leaves a state between old and new: the
    rerun accepts it and writes the same files as an uninterrupted run."""
    import shutil

    out, partial, old = tmp_path / "set", writer.partial_path(tmp_path / "set"), writer.old_path(tmp_path / "set")
    shutil.copytree(made, partial)
    (partial / writer.PARTIAL_MARK).write_text("x")
    if instant == "after_moving_the_old_set_aside":
        shutil.copytree(made, old)          # the previous set, moved aside; out is gone
    else:
        partial.rename(out)                 # the new set is in place with its mark still inside
    writer.write_set(out, COUNTS, seed=0, size=SIZE, workers=1)
    assert all_files(out) == all_files(made)
    assert not partial.exists() and not old.exists()
