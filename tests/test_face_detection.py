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
from jaxnets.detection import preset
from jaxnets.registry import build_model, build_task
from jaxnets.train import train_and_evaluate
from jaxnets.train.sharding import make_mesh

ROOT = pathlib.Path(__file__).resolve().parents[1]
FACES = ROOT / "experiments" / "faces"
CONFIG = FACES / "cpu" / "v2_3.py"
TABLE_4 = ["v1_0", "v1_1", "v1_2", "v1_3", "v1_4", "v1_7", "v1_8", "v2_0", "v2_1", "v2_3", "v2_4",
           "v2_5_r50", "v2_5_r101", "v2_5_r152"]  # every row Table 4 prints (v2.5: the three depths)
TEXT_ONLY = ["v1_5", "v1_6", "v1_9", "v2_2"]  # rows §5.3 reports in its text only


@pytest.fixture(scope="module")
def faces(tiny_faces):
    return tiny_faces


def smoke(faces, *extra, config=CONFIG):
    root, data_dir = faces
    return apply_overrides(load_config(config, smoke=True), [f"data.root={root}", f"data.data_dir={data_dir}", *extra])


@pytest.mark.parametrize("form", ["paper", "cpu"])
def test_every_table_4_row_has_a_config_naming_its_paper_ap_and_command(form):
    names = sorted(p.stem for p in (FACES / form).glob("v*.py"))
    assert names == sorted(TABLE_4 + TEXT_ONLY)
    for name in names:
        path = FACES / form / f"{name}.py"
        doc, config = path.read_text(), load_config(path)
        version = name[1:4].replace("_", ".")
        assert config.paper.startswith(f"Table 4, FaceNet v{version}"), (name, config.paper)
        assert f"jaxnets train faces/{form}/{name} " in doc and "Measured" not in doc, name
        ap = config.paper.split(": ")[1].split(" mAP")[0]
        assert ap in doc, (name, ap)  # the docstring states the paper's AP the config names
        model = build_model(config.model)  # levels / anchors / heads agree for every row
        assert tuple(model.heads.levels) == tuple(preset(config.anchors).levels), name
        if form == "paper":
            assert (config.num_steps, config.optimizer.learning_rate, config.data.image_size) == (70_000, 1e-4, 512)
            assert config.schedule == [[50_000, 0.1], [60_000, 0.1]]
            assert config.batch_size == (4 if name.startswith("v2_5") else 8)


def test_256_crop_forms_keep_the_face_scale_of_the_128_forms():
    """experiments/faces/cpu256: the same rows on 256² crops of 0.4-0.9 of the short side, so a
    crop is resized by the same 0.59-1.33 as the 128² forms' 0.2-0.45 crops of a 480-pixel side."""
    assert sorted(p.stem for p in (FACES / "cpu256").glob("v*.py")) == ["v1_1", "v1_3", "v2_4"]
    for name in ("v1_1", "v1_3", "v2_4"):
        small, big = load_config(FACES / "cpu" / f"{name}.py"), load_config(FACES / "cpu256" / f"{name}.py")
        doc = (FACES / "cpu256" / f"{name}.py").read_text()
        assert f"jaxnets train faces/cpu256/{name} " in doc and "Measured" not in doc
        assert (small.data.image_size, big.data.image_size) == (128, 256)
        for a, b in ((small.data.augment.min_crop, big.data.augment.min_crop),
                     (small.data.augment.max_crop, big.data.augment.max_crop)):
            assert math.isclose(128 / a, 256 / b)
        differ = {k for k in small.to_dict() if small.to_dict()[k] != big.to_dict()[k]}
        steps = {"num_steps", "schedule", "eval_every", "checkpoint_every"}
        assert differ == ({"data", "paper"} | (steps if name == "v2_4" else set())), differ  # nothing else changes
        assert big.schedule == [[int(0.75 * big.num_steps), 0.1]] and big.num_steps == (1000 if name == "v2_4" else 2000)
        assert big.paper.startswith(small.paper) and big.paper.endswith("256² crops")


def test_rows_change_the_factor_table_4_says():
    rows = {n: load_config(FACES / "paper" / f"{n}.py") for n in TABLE_4 + TEXT_ONLY}
    assert [rows[n].loss.classification for n in ("v1_0", "v1_1", "v1_2", "v1_3", "v1_4")] == \
        ["softmax", "bce", "focal", "bce", "focal"]
    assert not any(rows[n].model.heads.use_fpn for n in ("v1_0", "v1_1", "v1_2"))
    assert all(rows[n].model.heads.use_fpn for n in ("v1_3", "v1_7", "v2_0", "v2_4"))
    assert (rows["v1_7"].loss.ohem, rows["v1_8"].loss.ohem, rows["v1_3"].loss.ohem) == ("image", "batch", "none")
    assert [rows[n].loss.normalize for n in ("v1_0", "v1_3", "v1_5", "v1_6")] == ["all", "pos", "level", "level"]
    assert [rows[n].data.augment.jitter for n in ("v2_1", "v2_3", "v2_4")] == [False, True, True]
    assert [rows[n].model.depth for n in ("v2_4", "v2_5_r50", "v2_5_r101", "v2_5_r152")] == [18, 50, 101, 152]
    assert rows["v2_1"].model.heads.head_upsample and not rows["v2_0"].model.heads.head_upsample


def test_smoke_run_end_to_end(face_smoke_run):
    run = face_smoke_run  # tests/conftest.py: the CPU v2.3 config's smoke form, trained once per session
    config, task, summary, workdir = run["config"], run["task"], run["summary"], run["workdir"]
    assert summary["num_steps"] == 3
    val = summary["evaluations"]["validation"]
    for k in ("ap_easy", "ap_medium", "ap_hard"):
        assert k in val and (math.isnan(val[k]) or 0.0 <= val[k] <= 1.0), val
    assert 0 < val["detections_per_image"] <= config.eval.max_detections  # decode + NMS + map back ran
    # evaluation ran on whole images letterboxed to eval.image_size, with that size's anchors
    assert config.eval.image_size > config.data.image_size
    assert len(task.eval_anchor_boxes) > len(task.anchor_boxes)
    written = json.loads((workdir / "summary.json").read_text())
    assert set(written["evaluations"]["validation"]) >= {"ap_easy", "ap_medium", "ap_hard"}
    lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
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
    with pytest.raises(ConfigError, match="eval.image_size"):
        build_task(smoke(faces, "eval.image_size=8"), make_mesh())
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


@pytest.mark.parametrize("per", ["image", "batch"])
def test_ohem_trains_on_the_top_k_losses_after_nms(faces, per):
    """v1.7 / v1.8 (§5.3.4): the classification sum runs over at most k anchors per image (per
    batch), each the largest loss among the NMS survivors, and the normaliser stays |N_pos|."""
    k = 5
    task = build_task(smoke(faces, f"loss.ohem={per}", f"loss.ohem_k={k}", "loss.normalize=pos"), make_mesh())
    batch = task.train_data.batch_at_step(0)
    r, a = len(batch["image"]), len(task.anchor_boxes)
    rng = np.random.default_rng(0)
    cls = jax.numpy.asarray(rng.exponential(size=(r, a)), jax.numpy.float32)
    offsets = jax.numpy.asarray(rng.normal(scale=0.1, size=(r, a, 4)), jax.numpy.float32)
    valid = np.ones((r, a), bool)
    valid[:, ::7] = False  # ignored anchors never take part
    chosen = np.asarray(jax.jit(task.hard_examples)(cls, offsets, valid))
    counts = chosen.sum(1) if per == "image" else np.array([chosen.sum()])
    assert np.all(counts == k), counts
    assert not np.any(chosen & ~valid)
    # every chosen anchor beats every unchosen NMS survivor of its image (batch): recompute NMS by hand
    from jaxnets.detection import decode
    from jaxnets.detection.nms import numpy_nms

    boxes = np.asarray(decode(offsets, jax.numpy.asarray(task.anchor_boxes)[None]))
    losses = np.asarray(cls)
    pool = []
    for i in range(r):
        cand = np.flatnonzero(valid[i])
        top = cand[np.argsort(-losses[i, cand], kind="stable")[:task.cfg.loss.ohem_pre_nms_top_k]]
        kept = top[numpy_nms(boxes[i, top], losses[i, top], task.cfg.loss.ohem_nms_iou)]
        if per == "image":
            assert set(np.flatnonzero(chosen[i])) == set(kept[:k].tolist()), i
        pool += [(losses[i, j], i, j) for j in kept[:k]]
    if per == "batch":
        best = sorted(pool, key=lambda t: -t[0])[:k]
        assert {(i, j) for _, i, j in best} == set(zip(*np.nonzero(chosen))), best
