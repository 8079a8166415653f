"""The baseline face detectors (jaxnets.baselines), the three real photos with hand-drawn boxes,
``jaxnets baselines`` / ``jaxnets real-photos`` and ``bench/face_baselines.py``.

The LBP (scikit-image) and Haar (OpenCV) cascades run here; the MTCNN tests need facenet-pytorch
and torch and are skipped without them."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

from jaxnets.baselines import (MissingPackage, corners_to_rows, load_rgb, make_detector, restrict_ground_truth,
                               run_detector)
from jaxnets.baselines.hits import face_hits
from jaxnets.cli import main as cli
from jaxnets.data.real_photos import PHOTOS, real_photos_gt, write_real_photos
from jaxnets.data.wider_mat import read_val_mats
from jaxnets.data.wider_txt import check_images, read_gt, split_paths
from jaxnets.eval import evaluate, evaluate_dir, load_ground_truth, read_predictions

BENCH = pathlib.Path(__file__).parents[1] / "bench" / "face_baselines.py"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("photos")
    write_real_photos(root)
    return root


@pytest.fixture(scope="module")
def cascade_runs(photos) -> dict:
    """detector name -> (predictions, stats) on the three photos, run once for the module."""
    return {name: run_detector(make_detector(name), photos) for name in ("lbp", "haar")}


def _hits(name: str, predictions: dict, min_score: float) -> dict[str, tuple[bool, float]]:
    out = {}
    for im in real_photos_gt():
        hit, best = face_hits(predictions[f"{im.event}/{im.stem}"], im.boxes, min_score)
        out[im.stem] = (bool(hit[0]), float(best[0]))
    return out


# --- the real photos --------------------------------------------------------------------------


def test_real_photos_are_a_wider_root_with_every_face_in_every_subset(photos):
    txt, images_dir = split_paths(photos, "val")
    images = read_gt(txt)
    assert [im.stem for im in images] == list(PHOTOS)
    assert [im.name for im in images] == [im.name for im in real_photos_gt()]
    assert check_images(txt, images, images_dir) == [(512, 512), (512, 512), (600, 512)]  # boxes inside
    gt = read_val_mats(photos / "eval_tools" / "ground_truth")
    assert gt.official and gt.files == [list(PHOTOS)]
    for subset in ("easy", "medium", "hard"):
        assert [k.tolist() for k in gt.subsets[subset][0]] == [[1], [1], [1]]
    camera = load_rgb(images_dir / "0--Real_Photos" / "camera.jpg")
    assert camera.shape == (512, 512, 3)
    assert np.abs(camera.astype(int) - camera[..., :1]).max() <= 2  # grey written as 3 (near-)equal channels


def test_real_photos_are_byte_identical_when_written_twice(photos, tmp_path):
    write_real_photos(tmp_path)
    jpegs = [f"WIDER_val/images/0--Real_Photos/{s}.jpg" for s in PHOTOS]
    for rel in ["wider_face_split/wider_face_val_bbx_gt.txt", *jpegs]:
        assert (tmp_path / rel).read_bytes() == (photos / rel).read_bytes(), rel


def test_real_photos_command(tmp_path, capsys):
    assert cli(["real-photos", str(tmp_path / "p")]) == 0
    assert "0--Real_Photos/grace_hopper.jpg: 1 face(s) x y w h = 179 134 167 197" in capsys.readouterr().out
    assert cli(["real-photos", " "]) == 2
    assert capsys.readouterr().err.strip() == "jaxnets real-photos: OUT: empty; give a folder"


# --- detector contract, hits, ground-truth cutting ----------------------------------------------


@pytest.mark.parametrize("name", ["lbp", "haar"])
def test_cascade_output_rows_and_blank_image(name, cascade_runs):
    predictions, stats = cascade_runs[name]
    assert stats.num_images == 3 and stats.seconds > 0 and stats.image_size.startswith("512x512")
    for rows in predictions.values():
        assert rows.dtype == np.float64 and rows.ndim == 2 and rows.shape[1] == 5
        assert (rows[:, 2:4] > 0).all()
    assert make_detector(name)(np.full((120, 160, 3), 128, np.uint8)).shape == (0, 5)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        make_detector(name)(np.zeros((50, 50), np.uint8))


def test_cascades_find_the_two_frontal_faces_and_miss_the_profile(cascade_runs):
    for name in ("lbp", "haar"):
        hits = _hits(name, cascade_runs[name][0], -np.inf)
        assert hits["astronaut"][0] and hits["grace_hopper"][0], (name, hits)
        assert not hits["camera"][0], (name, hits)  # frontal-face cascades, a face in profile


def test_corner_rows_and_face_hits_by_hand():
    rows = corners_to_rows(np.array([[10.0, 20.0, 50.0, 80.0]]), np.array([0.9]))
    np.testing.assert_array_equal(rows, [[10.0, 20.0, 40.0, 60.0, 0.9]])
    face = np.array([[10.0, 20.0, 40.0, 60.0]])
    hit, best = face_hits(rows, face)
    assert hit.tolist() == [True] and best[0] == pytest.approx(1.0)
    assert face_hits(rows, face, min_score=0.95)[0].tolist() == [False]  # below the detector's threshold
    shifted = rows + [[20.0, 0, 0, 0, 0]]  # half the width off: IoU (21*61)/(2*41*61 - 21*61) = 21/61
    hit, best = face_hits(shifted, face)
    assert hit.tolist() == [False] and best[0] == pytest.approx(21 / 61)
    assert face_hits(np.zeros((0, 5)), face)[1].tolist() == [0.0]


def test_restrict_ground_truth_keeps_subsets_aligned(photos):
    gt = load_ground_truth(photos)
    cut = restrict_ground_truth(gt, ["0--Real_Photos/camera", "0--Real_Photos/grace_hopper"])
    assert cut.files == [["camera", "grace_hopper"]]
    np.testing.assert_array_equal(cut.boxes[0][1], [[179, 134, 167, 197]])
    assert [len(k) for k in cut.subsets["hard"][0]] == [1, 1] and cut.official


# --- jaxnets baselines --------------------------------------------------------------------------


def test_baselines_command_writes_files_the_evaluator_scores(photos, tmp_path, capsys):
    pred = tmp_path / "haar"
    assert cli(["baselines", "haar", str(photos), str(pred)]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "AP over all 3 images (official subsets)" in out
    assert sorted(read_predictions(pred)) == [f"0--Real_Photos/{s}" for s in sorted(PHOTOS)]
    result = evaluate_dir(pred, photos)
    assert result.ap["easy"] == pytest.approx(2 / 3)  # two of three faces at precision 1


def test_baselines_limit_scores_only_the_images_run(photos, tmp_path, capsys):
    assert cli(["baselines", "haar", str(photos), str(tmp_path / "p"), "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "AP over the first 1 images" in out and "easy             1.0000        1 faces" in out
    assert list(read_predictions(tmp_path / "p")) == ["0--Real_Photos/astronaut"]


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "jaxnets baselines: --limit 0: expected a positive number of images"),
    (["--split", "train"], "wider_face_train_bbx_gt.txt: not found"),
])
def test_baselines_bad_input_is_one_line(photos, tmp_path, capsys, argv, message):
    assert cli(["baselines", "lbp", str(photos), str(tmp_path / "p"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("jaxnets baselines: ")


def test_missing_mtcnn_package_names_the_install_command(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import facenet_pytorch -> ImportError
    assert cli(["baselines", "mtcnn", str(photos), str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("jaxnets baselines: mtcnn needs facenet-pytorch and torch")
    assert err.endswith("pip install --no-deps facenet-pytorch==2.6.0")


def test_opencv_without_cascade_classifier_names_the_install_command(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "CascadeClassifier")  # as in opencv-python-headless 5.0
    with pytest.raises(MissingPackage, match=r"removed in 5.0\): pip install 'opencv-python-headless>=4.8,<5'"):
        make_detector("haar")


# --- the bench script ---------------------------------------------------------------------------


def test_bench_table_on_the_photos(photos, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_face_baselines", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--faces", str(photos), "--detectors", "haar,yolo", "--out", str(tmp_path),
            "--json", str(tmp_path / "r.json")]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped yolo: detector 'yolo': expected one of mtcnn, lbp, haar" in out
    assert "| haar | 0.667 | 0.667 | 0.667 |" in out and "| miss (IoU 0.00) |" in out
    r = json.loads((tmp_path / "r.json").read_text())["haar"]
    assert r["photos"]["camera"]["hits"] == 0 and r["photos"]["astronaut"]["hits"] == 1
    assert (tmp_path / "baselines_pr.png").stat().st_size > 0


# --- MTCNN (facenet-pytorch; optional) ----------------------------------------------------------


def test_mtcnn_finds_all_three_hand_labelled_faces(photos):
    pytest.importorskip("facenet_pytorch")
    detector = make_detector("mtcnn")
    predictions, _ = run_detector(detector, photos)
    assert all((p[:, 4] >= detector.default_threshold).all() for p in predictions.values())
    hits = _hits("mtcnn", predictions, detector.default_threshold)
    assert all(hit and iou >= 0.7 for hit, iou in hits.values()), hits
    result = evaluate(load_ground_truth(photos), predictions)
    assert result.ap["easy"] == pytest.approx(1.0)
