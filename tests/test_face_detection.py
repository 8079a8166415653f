"""The section-5 detector wired into the driver: FaceNet v2.3's CPU config in its smoke form trains
end to end on a tiny dense-face set (data -> crops -> anchors/assignment -> loss -> steps ->
letterboxed eval -> decode/NMS -> WIDER AP -> summary.json)."""

from __future__ import annotations

import json
import math
import pathlib

import jax
import numpy as np
import pytest

from jaxnets.config import ConfigError, apply_overrides, load_config
from jaxnets.data.dense_faces.writer import write_set
from jaxnets.registry import build_model, build_task
from jaxnets.train import train_and_evaluate
from jaxnets.train.sharding import make_mesh

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "faces" / "v2_3_cpu.py"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A tiny WIDER-layout set (4 train, 2 val images of 160×120) and a tfds dir to prepare it in."""
    d = tmp_path_factory.mktemp("faces")
    write_set(d / "set", {"train": 4, "val": 2}, seed=0, size=(160, 120), workers=1)
    return d / "set", d / "tfds"


def smoke(faces, *extra):
    root, data_dir = faces
    return apply_overrides(load_config(CONFIG, smoke=True), [f"data.root={root}", f"data.data_dir={data_dir}", *extra])


def test_config_names_its_row_and_command():
    doc = CONFIG.read_text()
    assert load_config(CONFIG).paper.startswith("Table 4, FaceNet v2.3")
    assert "jaxnets train experiments/faces/v2_3_cpu.py" in doc and "Expected" in doc and "Measured" not in doc


def test_smoke_run_end_to_end(faces, tmp_path):
    config = smoke(faces)
    task = build_task(config, make_mesh())
    summary = train_and_evaluate(config, tmp_path / "run", task=task, progress=False)
    assert summary["num_steps"] == 3
    val = summary["evaluations"]["validation"]
    for k in ("ap_easy", "ap_medium", "ap_hard"):
        assert k in val and (math.isnan(val[k]) or 0.0 <= val[k] <= 1.0), val
    assert val["detections_per_image"] == config.eval.max_detections  # decode + NMS + map back ran on real boxes
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(written["evaluations"]["validation"]) >= {"ap_easy", "ap_medium", "ap_hard"}
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    assert train and all(np.isfinite(l["loss"]) and l["num_pos"] >= 0 for l in train), train
    assert any(l["num_pos"] > 0 for l in train), "no anchor was ever positive: the anchors/assignment are off"
    # step 0 runs on the initial parameters, whose zero final convs give every anchor the prior π:
    # eq 60's classification term is (n_neg·(-log(1 - π)) + n_pos·(-log π)) / max(1, n_pos)
    first = train[0]
    assert first["step"] == 1, first
    labels = np.asarray(jax.jit(task.targets)(task.train_data.batch_at_step(0))[0])  # (R, A)
    n_pos, n_neg = np.sum(labels == 1), np.sum(labels == 0)
    assert np.isclose(first["num_pos"], n_pos / len(labels))
    want = (n_neg * -np.log(1 - 0.001) + n_pos * -np.log(0.001)) / max(1, n_pos)
    assert np.isclose(first["cls_loss"], want, rtol=1e-4), (first, want)
    assert np.isclose(first["loss"], first["cls_loss"] + first["reg_loss"], rtol=1e-5)


@pytest.mark.slow  # ~30 s: compiles the model's init and loss apart from the driver's
def test_loss_matches_its_parts_and_predictions_line_up_with_anchors(faces):
    """The task's loss is cls + reg of detection_loss; one prediction per anchor; the zero-initialised
    final convs give every anchor the prior and zero offsets, so decoding returns the anchors."""
    config = smoke(faces, "loss.normalize=all")
    task = build_task(config, make_mesh())
    batch = task.train_data.batch_at_step(0)
    variables = jax.jit(task.init)({"params": jax.random.key(0)}, batch)  # jitted: eager init takes ~30 s
    params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    loss, metrics = jax.jit(lambda p, s, b: task.loss_fn(p, s, b, jax.random.key(1), True)[:2])(params, state, batch)
    assert np.isclose(loss, metrics["cls_loss"] + metrics["reg_loss"], rtol=1e-6)
    assert float(metrics["reg_loss"]) > 0 and float(metrics["num_pos"]) > 0
    # zero final convs: every anchor's probability is the prior π, so eq 58's classification term is
    # (n_neg·(-log(1 - π)) + n_pos·(-log π)) / (n_neg + n_pos), ignored anchors left out
    labels = np.asarray(task.targets(batch)[0])
    n_pos, n_neg = np.sum(labels == 1), np.sum(labels == 0)
    assert n_pos == float(metrics["num_pos"]) * len(labels)
    want = (n_neg * -np.log(1 - 0.001) + n_pos * -np.log(0.001)) / (n_neg + n_pos)
    assert np.isclose(float(metrics["cls_loss"]), want, rtol=1e-4)
    out = jax.eval_shape(lambda v: task.model.apply(v, np.zeros((1, 3, 64, 64), np.float32)), variables)
    assert out["logits"].shape == (1, len(task.anchor_boxes), 1) and out["offsets"].shape == (1, len(task.anchor_boxes), 4)


def test_bad_settings_are_config_errors(faces):
    with pytest.raises(ConfigError, match="loss.ohem"):
        build_task(smoke(faces, "loss.ohem=True"), make_mesh())
    with pytest.raises(ConfigError, match="loss.classification"):
        build_task(smoke(faces, "loss.classification=hinge"), make_mesh())
    with pytest.raises(ConfigError, match="levels"):
        build_task(smoke(faces, "anchors=v2.4"), make_mesh())
    assert build_model(load_config(CONFIG, smoke=True).model).heads.levels[0] == "conv3"


def test_validation_scores_perfect_detections_as_ap_1(faces):
    """The evaluator's bookkeeping -- letterbox map-back, image names, x, y, w, h rows, the WIDER
    protocol -- checked with an oracle in place of the network: the letterboxed ground truth of
    each eval batch, score 1, must come back as the original faces, AP 1 on every subset."""
    task = build_task(smoke(faces, "data.max_faces=1000"), make_mesh())
    task.detections = lambda state, b: {"boxes": b["boxes"], "scores": b["box_mask"].astype(np.float32),
                                        "keep": b["box_mask"]}
    got = task.run(None)
    aps = [got[k] for k in ("ap_easy", "ap_medium", "ap_hard") if not math.isnan(got[k])]
    assert aps and np.allclose(aps, 1.0), got
