"""The benchmark scripts stay runnable: each imports against the current API, and the train-step
benchmark runs one tiny step (numbers are not checked: benchmarks measure, tests do not time)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).parents[1] / "bench"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("torch_")))
def test_bench_script_imports(name):
    assert callable(_module(name).main)


def test_train_step_benchmark_runs_a_step():
    seconds = _module("mnist_step_custom_vs_autodiff_vs_torch").time_jax_train_step("mnist_ffn", "custom", 8, 1, warmup=1)
    assert seconds > 0


# ---------------------------------------------------------------- FaceNet (bench/face_detector.py)
def _face_variables(model, size: int, seed: int = 0):
    """Random parameters and BN statistics (the detector's final convs start at zero, which would
    make any two networks agree): normal(0, 0.3) everywhere, running variances in [0.5, 1.5)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    shapes = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(seed),
                            jax.ShapeDtypeStruct((1, 3, size, size), jnp.float32))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map_with_path(
        lambda path, v: (rng.uniform(0.5, 1.5, v.shape) if path[-1].key == "var" else rng.normal(0, 0.3, v.shape))
        .astype(np.float32), shapes)


@pytest.mark.parametrize("row", ["v2_3", "v2_4"])
def test_torch_face_detector_has_the_parameters_of_the_jax_model(row):
    """The paper's setting (ResNet-18 full width, 256-wide FPN and heads): the torch twin takes
    every JAX parameter and BN statistic, name for name and shape for shape, and the counts agree."""
    pytest.importorskip("torchvision")
    import jax
    import jax.numpy as jnp

    from jaxnets.nn.modules import count_params
    from jaxnets.registry import build_model

    bench, twin = _module("face_detector"), _module("torch_face_detector")
    config = bench.face_config("paper", row)
    model = build_model(config.model)
    shapes = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 3, 64, 64), jnp.float32))
    torch_model = twin.TorchFaceDetector(config.model)
    twin.load_jax_variables(torch_model, shapes)  # raises unless the two match one to one
    assert twin.count_params(torch_model) == count_params(shapes["params"]) > 20_000_000


@pytest.mark.parametrize("overrides", [
    [], pytest.param(["model.heads.fpn_upsample=bilinear", "model.heads.head_norm=batch"], marks=pytest.mark.slow)],
    ids=["v2_4", "bilinear_fpn_batch_norm_heads"])
def test_torch_face_detector_computes_what_the_jax_model_computes(overrides):
    """The benchmark's two timed calls on v2.4's smoke form (conv2-conv7, heads with ×2
    upsampling) at 80² (odd level sizes 5, 3, 2, 1), random weights loaded into the torch twin:
    the same logits and offsets."""
    pytest.importorskip("torchvision")
    import numpy as np

    from jaxnets.registry import build_model

    bench = _module("face_detector")
    config = bench.face_config("cpu", "v2_4", smoke=True, overrides=overrides)
    random_variables = _face_variables(build_model(config.model), 64)
    variables, jax_call, image = bench.jax_forward(config.model, 80, variables=random_variables)
    _, torch_call = bench.torch_forward(config.model, variables, image)
    ours, theirs = jax_call(), torch_call()
    for key in ("logits", "offsets"):
        assert tuple(theirs[key].shape) == ours[key].shape
        scale = float(np.abs(ours[key]).max())
        assert scale > 1.0  # not the trivial all-prior output of fresh zero-initialised final convs
        np.testing.assert_allclose(theirs[key].cpu().numpy(), np.asarray(ours[key]), atol=1e-5 * scale, rtol=0)
    seconds = bench.interleaved_medians({"jax": jax_call, "torch": torch_call}, repeats=1, warmup=0)
    assert seconds["jax"] > 0 and seconds["torch"] > 0


@pytest.mark.slow
def test_face_detector_benchmark_runs(tiny_faces, tmp_path):
    """The whole benchmark at smoke size: forward in JAX and torch, one custom and one autodiff
    train step (compiles the whole step twice: slow)."""
    pytest.importorskip("torchvision")
    import json

    root, data_dir = tiny_faces
    out = tmp_path / "faces.json"
    rc = _module("face_detector").main([
        "--smoke", "--size", "64", "--repeats", "1", "--rows", "v2_3", "--forms", "cpu", "--torch-threads", "1",
        "--train-steps", "1", "--set", f"data.root={root}", "--set", f"data.data_dir={data_dir}", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    (row,) = res["forward"]
    assert (row["row"], row["form"], row["size"]) == ("v2_3", "cpu", 64)
    assert row["jax_ms"] > 0 and row["torch_ms"] > 0 and row["params"] > 0
    step = res["train_step"]
    assert step["batch"] == 2 and step["custom_ms"] > 0 and step["autodiff_ms"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--size", "100"], "multiple of 32"),
    (["--rows", "v9_9"], "--rows"),
    (["--forms", "gpu"], "--forms"),
    (["--json", "/no/such/dir/x.json", "--skip-torch"], "no such directory"),
    (["--skip-torch", "--set", "data.root=/no/such/faces"], "data.root=/no/such/faces"),
    (["--skip-torch", "--set", "data.rot=x"], "data.rot"),
])
def test_face_detector_benchmark_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        rc = _module("face_detector").main(argv)
        raise SystemExit(rc)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- bench/face_level_stats.py
def test_face_level_stats_reports_every_side_and_level(face_smoke_run, capsys):
    """The script that shows the deep levels' statistics at the training and the test side: one
    row per side, an RMS per backbone output, a hot-anchor count per anchor level, the max score."""
    stats = _module("face_level_stats")
    run, root = face_smoke_run["workdir"], face_smoke_run["root"]
    assert stats.main([str(run), "--sizes", "64,96", "--faces", str(root), "--limit", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    levels = face_smoke_run["config"].model.heads.levels
    assert [r.split(" | ")[0] for r in rows] == ["| side", "| 64", "| 96"]
    for r in rows[1:]:
        cells = r.strip("| ").split(" | ")
        assert len(cells) == 1 + 6 + len(levels) + 1
        assert all(float(c) > 0 for c in cells[1:7])  # conv2 ... conv7 all computed
        assert 0.0 <= float(cells[-1]) <= 1.0


def test_face_level_stats_direct_comparison_with_the_runner(face_smoke_run):
    """The hot counts and max score are those of the runner's own scores for the same letterbox."""
    import numpy as np

    from jaxnets.data.detection_augment import letterbox
    from jaxnets.detection.inference import FaceDetectorRunner
    from jaxnets.tasks.face_detection import face_scores, pixels

    stats = _module("face_level_stats")
    runner = FaceDetectorRunner.from_workdir(face_smoke_run["workdir"])
    images = stats.val_images(face_smoke_run["root"], 2)
    got = stats.level_stats(runner, images, 96)
    scores = [np.asarray(face_scores(runner.model.apply(runner.variables, pixels(
        letterbox(im, np.zeros((0, 4)), 96)[0].transpose(2, 0, 1)[None]), train=False)["logits"]))
        for im in images]
    assert np.isclose(got["max"], max(float(s.max()) for s in scores), atol=1e-6)
    assert np.isclose(got["hot"].sum(), np.mean([(s > 0.9).sum() for s in scores]))
    assert set(got["rms"]) == {"conv2", "conv3", "conv4", "conv5", "conv6", "conv7"}


@pytest.mark.parametrize("argv, message", [
    (["/nonexistent/run"], "/nonexistent/run"),
    (["RUN", "--sizes", "100"], "multiples of 32"),
    (["RUN", "--limit", "0"], "--limit 0"),
])
def test_face_level_stats_refuses_bad_arguments(face_smoke_run, argv, message, capsys):
    stats = _module("face_level_stats")
    argv = [str(face_smoke_run["workdir"]) if a == "RUN" else a for a in argv]
    try:
        code = stats.main(argv + ["--faces", str(face_smoke_run["root"])])
    except SystemExit as e:  # argparse errors
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)


# ---------------------------------------------------------------- bench/face_table.py
def test_face_table_rows_for_both_crop_forms(face_smoke_run, tmp_path, capsys):
    """A README row per finished run: the 128² form's yardstick entry is facenet_<row>, the 256²
    form's facenet_<row>_256; a run that is not finished is one line and exit 2."""
    import json
    import shutil

    table = _module("face_table")
    runs = []
    for name in ("faces_cpu_v2_3", "faces_cpu256_v2_3"):
        runs.append(tmp_path / name)
        shutil.copytree(face_smoke_run["workdir"], runs[-1], ignore=shutil.ignore_patterns("checkpoints"))
    photos = {p: {"hits": int(p == "camera")} for p in ("astronaut", "camera", "grace_hopper")}
    (tmp_path / "y.json").write_text(json.dumps({"facenet_v2_3": {"dense": {"images_per_s": 1.5}, "photos": photos}}))
    (tmp_path / "z.json").write_text(json.dumps({"facenet_v2_3_256": {"dense": {"images_per_s": 0.25},
                                                                      "photos": photos}}))
    yards = ["--yardstick", str(tmp_path / "y.json"), "--yardstick", str(tmp_path / "z.json")]
    assert table.main([*map(str, runs), *yards]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| v2.3")]
    assert rows[0].startswith("| v2.3 | 92.2 / 90.3 / 70.1 |") and "| 1.50 | miss / hit / miss |" in rows[0]
    assert rows[1].startswith("| v2.3, 256² crops |") and "| 0.25 |" in rows[1]
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert table.main([str(runs[0]), "--yardstick", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: expected the JSON object" in capsys.readouterr().err
    (runs[1] / "summary.json").unlink()
    assert table.main([str(runs[1])]) == 2
    assert "faces_cpu256_v2_3: not a finished face_detection run" in capsys.readouterr().err
