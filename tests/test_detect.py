"""The inference path (jaxnets/detection/inference.py) and ``jaxnets detect`` on the shared smoke run.

The 3-step model's scores sit near the prior (~0.01), so the runs here use ``--score 0``: the
boxes are then whatever NMS keeps, which is enough to check the bookkeeping -- letterbox, decode
on the anchors of the input's size, map back, clip, file formats -- against the task's own
evaluation path and against the merge rule of multi-scale testing.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import cv2
import jax
import numpy as np
import PIL.Image
import pytest

from jaxnets import cli
from jaxnets.data.detection_augment import unletterbox_boxes
from jaxnets.data.detection_batches import detection_eval_batches
from jaxnets.detection import iou_matrix
from jaxnets.detection.inference import Detections, FaceDetectorRunner, letterbox_side
from jaxnets.eval.wider_predictions import find_prediction_files, read_prediction_file
from jaxnets.train.state import TrainState

SETTINGS = ["--score", "0", "--nms", "0.3", "--max-detections", "20", "--no-progress"]  # the smoke config's eval


@pytest.fixture(scope="module")
def runner(face_smoke_run):
    return FaceDetectorRunner.from_workdir(face_smoke_run["workdir"])


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    """A real photo (scikit-image's astronaut, 512 × 512) as a JPEG, and its decoded pixels."""
    import skimage.data

    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    PIL.Image.fromarray(skimage.data.astronaut()).save(path, quality=95)
    return path, np.asarray(PIL.Image.open(path).convert("RGB"))


def detect(argv, capsys) -> tuple[int, str, str]:
    rc = cli.main(["detect", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_from_workdir_restores_the_best_checkpoint(face_smoke_run, runner):
    summary = face_smoke_run["summary"]
    assert runner.step == summary["best_step"]
    assert runner.size == face_smoke_run["config"].eval.image_size
    assert letterbox_side(96, 0.5) == 64 and letterbox_side(96, 0.1) == 32 and letterbox_side(100, 1) == 96


def test_cli_wider_files_match_the_tasks_own_evaluation(face_smoke_run, runner, capsys, tmp_path):
    """``jaxnets detect`` over the val images folder writes, per image, the boxes the task's evaluator
    computes for it (its predict on letterboxed batches, unletterboxed and clipped as in task.run)."""
    task, root = face_smoke_run["task"], face_smoke_run["root"]
    rc, out, err = detect([root / "WIDER_val" / "images", "--workdir", face_smoke_run["workdir"],
                           "--wider", tmp_path / "pred", *SETTINGS], capsys)
    assert rc == 0, err
    assert "2 images" in out and "images/s" in out
    files = find_prediction_files(tmp_path / "pred")
    names = [r["name"].rsplit(".", 1)[0] for r in task.val_split.read(np.arange(len(task.val_split)), decode=False)]
    assert sorted(files) == sorted(names)

    state = TrainState(step=0, params=runner.variables["params"],
                       model_state={k: v for k, v in runner.variables.items() if k != "params"}, opt_state=None, rng=None)
    predict = jax.jit(task.predict)
    checked = 0
    for batch in detection_eval_batches(task.val_split, task.eval_size, task.eval_batch_size, task.max_faces):
        got = jax.device_get(predict(state, {"image": batch["image"]}))
        boxes = unletterbox_boxes(got["boxes"], batch["scale"], batch["offset"])
        for r in np.flatnonzero(batch["mask"] > 0):
            h, w = batch["image_size"][r]
            b = boxes[r][got["keep"][r]]
            b[:, 0::2], b[:, 1::2] = np.clip(b[:, 0::2], 0, w), np.clip(b[:, 1::2], 0, h)
            s = got["scores"][r][got["keep"][r]]
            inside = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])  # boxes wholly in the padding are dropped
            want = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2], s[:, None]], 1)[inside]
            rows = read_prediction_file(files[names[batch["index"][r]]])
            assert len(want) > 0 and rows.shape == want.shape, (rows.shape, want.shape)
            np.testing.assert_allclose(rows, want, atol=2e-3)
            checked += 1
    assert checked == 2
    assert cli.main(["wider-eval", str(tmp_path / "pred"), "--gt", str(root), "--plot", str(tmp_path / "pr.png")]) == 0
    assert "hard" in capsys.readouterr().out  # the folder is one `jaxnets wider-eval` scores


def test_multi_scale_merge_follows_the_nms_rule(runner, astronaut):
    _, image = astronaut
    kw = dict(score_threshold=0.0, nms_iou=0.3, max_detections=20)
    full, half = runner.detect(image, **kw), runner.detect(image, size=64, **kw)
    merged = runner.detect(image, scales=(1.0, 0.5), **kw)
    pool_boxes, pool_scores = np.concatenate([full.boxes, half.boxes]), np.concatenate([full.scores, half.scores])
    assert 0 < len(merged) <= 20 and np.all(np.diff(merged.scores) <= 0)
    # every merged box is one of the scales' boxes ...
    match = np.all(np.isclose(merged.boxes[:, None], pool_boxes[None], atol=1e-4), -1)  # (D, P)
    assert match.any(1).all()
    # ... no two overlap beyond the IoU, and every pooled box left out is suppressed by a kept box
    # scoring at least as high (or, when the cap of 20 is reached, scores no higher than the last kept)
    iou = np.asarray(iou_matrix(merged.boxes, merged.boxes)) - np.eye(len(merged))
    assert iou.max() <= 0.3 + 1e-6
    left_out = ~match.any(0)
    assert left_out.any()  # the two scales do overlap: the merge had something to suppress
    cross = np.asarray(iou_matrix(pool_boxes[left_out], merged.boxes))  # (L, D)
    suppressed = ((cross > 0.3) & (merged.scores[None] >= pool_scores[left_out][:, None])).any(1)
    if len(merged) == 20:
        suppressed |= pool_scores[left_out] <= merged.scores[-1]
    assert suppressed.all()


def test_detect_many_equals_detect_one_by_one(runner, astronaut):
    _, image = astronaut
    small = image[100:300, 50:450]  # 200 × 400: another aspect ratio, letterboxed to the same side
    kw = dict(score_threshold=0.0, max_detections=20)
    many = runner.detect_many([image, small], batch_size=2, **kw)
    for im, got in zip([image, small], many):
        one = runner.detect(im, **kw)
        np.testing.assert_allclose(got.boxes, one.boxes, atol=1e-3)
        assert got.image_size == im.shape[:2]
        assert np.all((got.boxes[:, 2] <= im.shape[1]) & (got.boxes[:, 3] <= im.shape[0]) & (got.boxes >= 0).all(1))


def test_detect_a_real_photo(face_smoke_run, runner, astronaut, capsys, tmp_path):
    path, image = astronaut
    rc, out, err = detect([path, "--workdir", face_smoke_run["workdir"], "--out", tmp_path / "out",
                           "--wider", tmp_path / "pred", *SETTINGS], capsys)
    assert rc == 0, err
    annotated = np.asarray(PIL.Image.open(tmp_path / "out" / "astronaut.jpg").convert("RGB"))
    assert annotated.shape == image.shape
    rows = read_prediction_file(tmp_path / "pred" / "photo0" / "astronaut.txt")  # <parent folder>/<stem>.txt
    dets = runner.detect(image, score_threshold=0.0, max_detections=20)
    assert len(rows) == len(dets) > 0 and f"{len(dets)} faces" in out
    np.testing.assert_allclose(rows, dets.wider_rows(), atol=1e-3)
    x1, y1, x2, y2 = np.round(dets.boxes[0]).astype(int)  # the best box's outline is drawn in red
    edge = annotated[min(y1, 511), x1 + 2 : max(x1 + 3, x2 - 2)].astype(int)
    assert np.mean(edge[:, 0] - edge[:, 1:].mean(1)) > 80, edge[:5]


def test_detect_a_folder(face_smoke_run, astronaut, capsys, tmp_path):
    _, image = astronaut
    (tmp_path / "in" / "sub").mkdir(parents=True)
    PIL.Image.fromarray(image[:300]).save(tmp_path / "in" / "a.png")
    PIL.Image.fromarray(image[:, :200]).save(tmp_path / "in" / "sub" / "b.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not an image")  # other files are not inputs
    rc, out, err = detect([tmp_path / "in", "--workdir", face_smoke_run["workdir"], "--out", tmp_path / "out",
                           "--wider", tmp_path / "pred", *SETTINGS], capsys)
    assert rc == 0, err
    assert "2 images" in out
    assert PIL.Image.open(tmp_path / "out" / "a.png").size == (512, 300)
    assert PIL.Image.open(tmp_path / "out" / "sub" / "b.jpg").size == (200, 512)
    assert sorted(find_prediction_files(tmp_path / "pred")) == ["in/a", "sub/b"]


def _write_video(path: pathlib.Path, frames: list[np.ndarray], fourcc: str) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    for f in frames:
        writer.write(f[:, :, ::-1].copy())
    writer.release()


def _count_frames(path: pathlib.Path) -> tuple[int, tuple[int, int], float]:
    """(frames decoded, (H, W), frames per second) of a video file."""
    cap = cv2.VideoCapture(str(path))
    n, shape, fps = 0, None, cap.get(cv2.CAP_PROP_FPS)
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, shape = n + 1, f.shape[:2]
    cap.release()
    return n, shape, fps


@pytest.mark.parametrize("name, fourcc", [("clip.mp4", "mp4v"), pytest.param("clip.avi", "MJPG", marks=pytest.mark.slow)])
def test_detect_a_video(face_smoke_run, astronaut, capsys, tmp_path, name, fourcc):
    _, image = astronaut
    frames = [np.roll(image[::4, ::4], 8 * i, axis=1) for i in range(5)]  # 128 × 128, moving
    _write_video(tmp_path / name, frames, fourcc)
    rc, out, err = detect([tmp_path / name, "--workdir", face_smoke_run["workdir"], "--out", tmp_path / "out",
                           "--wider", tmp_path / "pred", "--batch-size", "2", *SETTINGS], capsys)
    assert rc == 0, err
    assert "5 frames" in out and "frames/s" in out
    assert _count_frames(tmp_path / "out" / name) == (5, (128, 128), 10.0)  # every frame, same size and rate
    assert sorted(find_prediction_files(tmp_path / "pred")) == [f"clip/clip_{i:06d}" for i in range(5)]


def _one_line(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxnets detect: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_bad_input_is_one_line_exit_2(face_smoke_run, astronaut, capsys, tmp_path):
    photo, _ = astronaut
    run = face_smoke_run["workdir"]
    ok = ["--workdir", run, "--no-progress"]
    _one_line(*detect([tmp_path / "missing.jpg", *ok], capsys)[::2], "missing.jpg", "no such file")
    (tmp_path / "notes.txt").write_text("hello")
    _one_line(*detect([tmp_path / "notes.txt", *ok], capsys)[::2], "notes.txt", "unsupported extension")
    (tmp_path / "empty").mkdir()
    _one_line(*detect([tmp_path / "empty", *ok], capsys)[::2], "empty", "no images")
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a JPEG")
    _one_line(*detect([tmp_path / "garbage.jpg", *ok], capsys)[::2], "garbage.jpg", "cannot be read as an image")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.jpg").write_bytes(photo.read_bytes())
    (tmp_path / "mixed" / "b.jpg").write_bytes(b"GIF89a nonsense")
    rc, _, err = detect([tmp_path / "mixed", *ok, "--out", tmp_path / "mixed_out"], capsys)
    _one_line(rc, err, "b.jpg", "cannot be read as an image")
    assert not (tmp_path / "mixed_out").exists()  # every header is checked before any work
    data = photo.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])  # a valid header, the rest missing
    _one_line(*detect([tmp_path / "cut.jpg", *ok], capsys)[::2], "cut.jpg", "cannot be read as an image")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    _one_line(*detect([tmp_path / "broken.mp4", *ok], capsys)[::2], "broken.mp4", "cannot be read as a video")
    for scales in ("0", "1,a", "", "-1", "nan"):
        _one_line(*detect([photo, *ok, "--scales", scales], capsys)[::2], "--scales")
    _one_line(*detect([photo, *ok, "--size", "100"], capsys)[::2], "--size 100")
    _one_line(*detect([photo, *ok, "--score", "1.5"], capsys)[::2], "--score")
    _one_line(*detect([photo, *ok, "--out", photo.parent], capsys)[::2], "would overwrite")


def test_bad_workdirs_are_one_line_exit_2(face_smoke_run, astronaut, capsys, tmp_path):
    photo, _ = astronaut
    args = lambda w: [photo, "--workdir", w, "--no-progress"]  # noqa: E731
    _one_line(*detect(args(tmp_path / "nope"), capsys)[::2], "nope", "no such run directory")
    (tmp_path / "bare").mkdir()
    _one_line(*detect(args(tmp_path / "bare"), capsys)[::2], "config.json", "missing")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "config.json").write_text(json.dumps({"task": "classification"}))
    _one_line(*detect(args(tmp_path / "mnist"), capsys)[::2], "config.json", "not 'face_detection'")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    _one_line(*detect(args(tmp_path / "bad"), capsys)[::2], "config.json", "JSON")
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "config.json").write_text((face_smoke_run["workdir"] / "config.json").read_text())
    _one_line(*detect(args(tmp_path / "untrained"), capsys)[::2], "untrained", "no checkpoint")
    _one_line(*detect([*args(face_smoke_run["workdir"]), "--step", "99"], capsys)[::2], "no checkpoint of step 99")
    shutil.copytree(face_smoke_run["workdir"], tmp_path / "edited")
    config = json.loads((tmp_path / "edited" / "config.json").read_text())
    config["model"]["heads"]["channels"] *= 2  # weights of another shape than the checkpoint's
    (tmp_path / "edited" / "config.json").write_text(json.dumps(config))
    _one_line(*detect(args(tmp_path / "edited"), capsys)[::2], "edited", "checkpoint step")
    del config["model"]
    (tmp_path / "edited" / "config.json").write_text(json.dumps(config))
    _one_line(*detect(args(tmp_path / "edited"), capsys)[::2], "edited/config.json")
    with pytest.raises(Exception, match="no such run directory"):
        FaceDetectorRunner.from_workdir(tmp_path / "nope")


def test_detections_rows():
    d = Detections(np.array([[1, 2, 4, 8]], np.float32), np.array([0.5], np.float32), (10, 10))
    np.testing.assert_array_equal(d.wider_rows(), [[1, 2, 3, 6, 0.5]])


def test_our_detector_in_the_yardstick_returns_the_runners_boxes(face_smoke_run, runner, astronaut):
    """jaxnets/baselines/facenet.py: the run behind the baselines' interface (x, y, w, h, score rows
    of the run's own eval threshold), so bench/face_baselines.py measures it as it measures MTCNN."""
    from jaxnets.baselines import make_detector

    _, image = astronaut
    det = make_detector("facenet", workdir=str(face_smoke_run["workdir"]), scales="1,0.5")
    ev = face_smoke_run["config"].eval
    rows = det(image)
    want = runner.detect(image, None, (1.0, 0.5), ev.score_threshold, ev.nms_iou, ev.max_detections)
    assert rows.shape == (len(want), 5) and len(want) > 0
    np.testing.assert_allclose(rows, want.wider_rows(), rtol=1e-6, atol=1e-4)
    assert det.default_threshold == 0.5 and "scales (1.0, 0.5)" in det.settings


def test_yardstick_measures_our_detector_at_a_chosen_side(face_smoke_run, tmp_path, capsys):
    """bench/face_baselines.py --facenet-size S letterboxes the run's images to S² (not its
    eval.image_size), and refuses a side under 32 with one line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_face_baselines", pathlib.Path(__file__).parents[1] / "bench" / "face_baselines.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run, root = str(face_smoke_run["workdir"]), str(face_smoke_run["root"])
    argv = ["--faces", root, "--detectors", "", "--facenet", f"s={run}", "--out", str(tmp_path), "--limit", "1"]
    assert bench.main(argv + ["--facenet-size", "64", "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())["facenet_s"]
    assert "letterbox 64²" in r["settings"] and r["dense"]["num_images"] == 1
    with pytest.raises(SystemExit) as e:
        bench.main(argv + ["--facenet-size", "16"])
    assert e.value.code == 2 and "--facenet-size 16: expected a side of at least 32" in capsys.readouterr().err
