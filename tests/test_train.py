"""Training stack: exact resume, data parallelism, divergence, best-on-validation, metrics, atomicity, schedule.

All runs use a tiny conv+BN model on random 8×8 "digits" (tests/_tiny_model.py), so they do
not depend on the real data pipeline; batches come from the same pure ``(seed, step)`` contract.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets.train.loop as loop
from jaxnets.config import mnist_base, smoke_config
from jaxnets.train import (
    Checkpoints,
    TrainingDiverged,
    WorkdirNotEmpty,
    create_train_state,
    make_optimizer,
    make_schedule,
    read_metrics,
    restore_best,
    restore_latest,
    train_and_evaluate,
    tree_all_finite,
)

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _tiny_model as tiny  # noqa: E402

NUM_STEPS = 8  # checkpoints at 3, 6, 8; validation at 2, 4, 6, 8; LR halves at step 4


def _config():
    c = smoke_config(mnist_base())
    c.num_steps = NUM_STEPS
    c.batch_size = 8
    c.eval_batch_size = 16  # 40 validation examples: the last batch is padded
    c.log_every = 2
    c.eval_every = 2
    c.checkpoint_every = 3
    c.keep_checkpoints = 2
    c.optimizer.learning_rate = 0.05
    # augmentation on, so the exact-resume test also covers its (seed, step) random stream
    c.data.augment.hflip = True
    c.data.augment.max_shift = 1
    return c


@pytest.fixture(scope="module")
def data():
    return tiny.random_digits()


@pytest.fixture(autouse=True)
def _tiny_batches(monkeypatch):
    monkeypatch.setattr(loop, "_batch_fn", lambda: tiny.batch_at_step)


def _target(config, model, data):
    tx, _ = make_optimizer(config)
    return create_train_state(model, tx, config.seed, data.train.images.shape[1:])


def _leaves(state):
    return jax.tree_util.tree_leaves((state.params, state.batch_stats, state.opt_state))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, data):
    """One uninterrupted run, shared by the tests that only read its workdir."""
    workdir = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "_batch_fn", lambda: tiny.batch_at_step)
        summary = train_and_evaluate(_config(), workdir, model=tiny.TinyNet(), data=data, progress=False)
    return workdir, summary


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("walltime", "examples_per_sec")} for r in records]


# (1) -------------------------------------------------------------------------------------------
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, baseline, data, monkeypatch):
    base_dir, base_summary = baseline
    config, model = _config(), tiny.TinyNet()

    class Interrupted(Exception):
        pass

    def crashing_batches(split, batch_size, seed, step):
        if step == 5:  # after 5 updates: latest checkpoint is step 3, events at 4 were written
            raise Interrupted
        return tiny.batch_at_step(split, batch_size, seed, step)

    monkeypatch.setattr(loop, "_batch_fn", lambda: crashing_batches)
    with pytest.raises(Interrupted):
        train_and_evaluate(config, tmp_path, model=model, data=data, progress=False)
    assert restore_latest(tmp_path, _target(config, model, data))[1]["step"] == 3
    assert max(r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")) == 4

    with pytest.raises(WorkdirNotEmpty):  # never silently overwrite a run
        train_and_evaluate(config, tmp_path, model=model, data=data, progress=False)

    monkeypatch.setattr(loop, "_batch_fn", lambda: tiny.batch_at_step)
    summary = train_and_evaluate(config, tmp_path, resume=True, model=model, data=data, progress=False)

    target = _target(config, model, data)
    resumed, meta = restore_latest(tmp_path, target)
    straight, _ = restore_latest(base_dir, target)
    assert meta["step"] == NUM_STEPS and int(resumed.step) == NUM_STEPS
    for a, b in zip(_leaves(resumed), _leaves(straight), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the events of the crashed run after step 3 were dropped and redone identically
    assert _strip(read_metrics(tmp_path / "metrics.jsonl")) == _strip(read_metrics(base_dir / "metrics.jsonl"))
    for key in ("test_accuracy", "test_loss", "best_step", "validation_loss", "train_loss"):
        assert summary[key] == base_summary[key], key


def test_resume_refuses_a_config_that_changes_the_trajectory(tmp_path, baseline, data):
    shutil.copytree(baseline[0], tmp_path / "run")
    config = _config()
    config.optimizer.momentum = 0.5
    with pytest.raises(ValueError, match="optimizer"):
        train_and_evaluate(config, tmp_path / "run", resume=True, model=tiny.TinyNet(), data=data, progress=False)


# (2) -------------------------------------------------------------------------------------------
DATA_PARALLEL = textwrap.dedent(
    """
    import jax, numpy as np
    assert jax.device_count() == 4, jax.devices()
    import _tiny_model as tiny
    from jaxnets.config import mnist_base, smoke_config
    from jaxnets.train import (create_train_state, evaluate, make_eval_step, make_mesh, make_optimizer,
                               make_train_step, shard_batch, check_batch_size)

    config = smoke_config(mnist_base())
    config.optimizer.learning_rate = 0.05
    model, data = tiny.TinyNet(), tiny.random_digits()
    tx, schedule = make_optimizer(config)
    results = []
    for mesh in (make_mesh(), make_mesh(jax.devices()[:1])):
        state = create_train_state(model, tx, 0, (1, 8, 8))
        step = make_train_step(model, tx, schedule, mesh)
        for t in range(3):
            images, labels = tiny.batch_at_step(data.train, 8, 0, t)
            state, metrics = step(state, *shard_batch((images, labels), mesh))
        if mesh.devices.size == 4:
            assert len(state.params["Dense_0"]["kernel"].sharding.device_set) == 4
        ev = evaluate(make_eval_step(model, mesh), state, data.validation, 16, mesh)
        results.append((jax.device_get((state.params, state.batch_stats)), float(metrics["loss"]), ev))
    (p4, l4, e4), (p1, l1, e1) = results
    for a, b in zip(jax.tree_util.tree_leaves(p4), jax.tree_util.tree_leaves(p1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(l4, l1, rtol=1e-5)
    np.testing.assert_allclose(e4["loss"], e1["loss"], rtol=1e-5)
    assert e4["accuracy"] == e1["accuracy"]

    # augmentation draws the same flips and shifts whatever the sharding of the batch
    from jaxnets.train.augment import make_augment
    aug = make_augment({"hflip": True, "max_shift": 2})
    images, labels = tiny.batch_at_step(data.train, 8, 0, 0)
    outs = []
    for mesh in (make_mesh(), make_mesh(jax.devices()[:1])):
        step = make_train_step(model, tx, schedule, mesh, augment=aug, donate=False)
        state = create_train_state(model, tx, 0, (1, 8, 8))
        outs.append(jax.device_get(step(state, *shard_batch((images, labels), mesh))))
    for a, b in zip(jax.tree_util.tree_leaves(outs[0]), jax.tree_util.tree_leaves(outs[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    try:
        check_batch_size(6, make_mesh())
    except ValueError as e:
        assert "not divisible by the 4 devices" in str(e)
    else:
        raise AssertionError("batch 6 on 4 devices accepted")
    print("DATA-PARALLEL OK")
    """
)


def test_data_parallel_four_devices_equal_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL],
        cwd=pathlib.Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "DATA-PARALLEL OK" in out.stdout


# (3) -------------------------------------------------------------------------------------------
def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path, data, monkeypatch):
    config, model = _config(), tiny.TinyNet(poison=True)
    config.data.augment.max_shift = 0  # a zero-filled shift would un-poison the all-255 batch

    def poisoned_batches(split, batch_size, seed, step):
        images, labels = tiny.batch_at_step(split, batch_size, seed, step)
        return (np.full_like(images, 255) if step >= 6 else images), labels  # the 7th update sees NaN

    monkeypatch.setattr(loop, "_batch_fn", lambda: poisoned_batches)
    with pytest.raises(TrainingDiverged, match="step 7") as info:
        train_and_evaluate(config, tmp_path, model=model, data=data, progress=False)
    assert info.value.step == 7 and info.value.last_checkpoint == 6
    with Checkpoints(tmp_path, read_only=True) as ckpts:
        assert ckpts.latest.all_steps() == [3, 6]  # nothing written after the NaN
    state, meta = restore_latest(tmp_path, _target(config, model, data))
    assert meta["step"] == 6 and int(state.step) == 6
    assert bool(tree_all_finite((state.params, state.batch_stats, state.opt_state)))
    last = read_metrics(tmp_path / "metrics.jsonl")[-1]
    assert last["event"] == "diverged" and last["step"] == 7
    assert not (tmp_path / "summary.json").exists()


def test_tree_all_finite():
    assert bool(tree_all_finite({"a": jnp.ones(3), "n": jnp.arange(3)}))
    assert not bool(tree_all_finite({"a": jnp.array([1.0, jnp.inf])}))


# (4) -------------------------------------------------------------------------------------------
def test_best_checkpoint_has_lowest_validation_loss(baseline, data):
    workdir, summary = baseline
    val = [r for r in read_metrics(workdir / "metrics.jsonl") if r["split"] == "validation"]
    assert [r["step"] for r in val] == [2, 4, 6, 8]
    best = min(val, key=lambda r: r["loss"])  # first of equals, as strict "<" keeps the earliest
    assert sorted(int(p.name) for p in (workdir / "checkpoints" / "best").iterdir()) == [best["step"]]
    assert summary["best_step"] == best["step"] and summary["validation_loss"] == pytest.approx(best["loss"])

    config, model = _config(), tiny.TinyNet()
    state, meta = restore_best(workdir, _target(config, model, data))
    assert int(state.step) == best["step"] == meta["step"]
    from jaxnets.train import evaluate, make_eval_step, make_mesh

    mesh = make_mesh(jax.devices()[:1])
    again = evaluate(make_eval_step(model, mesh), state, data.validation, 16, mesh)
    assert again["loss"] == pytest.approx(best["loss"], rel=1e-6)
    test = [r for r in read_metrics(workdir / "metrics.jsonl") if r["split"] == "test"]
    assert len(test) == 1 and test[0]["step"] == best["step"]
    # keep_checkpoints=2 most recent, besides the best
    assert sorted(int(p.name) for p in (workdir / "checkpoints" / "latest").iterdir()) == [6, 8]


# (5) -------------------------------------------------------------------------------------------
def test_metrics_jsonl_summary_and_plot(baseline):
    workdir, summary = baseline
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8]
    for r in train:
        assert {"loss", "accuracy", "lr", "examples_per_sec", "walltime"} <= set(r)
        assert np.isfinite(r["loss"]) and r["examples_per_sec"] > 0
    assert [r["lr"] for r in train] == [0.05, 0.05, 0.025, 0.025]  # lr of each window's last update
    assert json.loads((workdir / "summary.json").read_text()) == summary
    assert summary["params"] > 0 and summary["data_source"] == "random test data"
    assert json.loads((workdir / "config.json").read_text())["num_steps"] == NUM_STEPS
    png = (workdir / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# (6) -------------------------------------------------------------------------------------------
def test_partial_checkpoint_directories_are_ignored(tmp_path, baseline, data):
    workdir = tmp_path / "run"
    shutil.copytree(baseline[0], workdir)
    latest = workdir / "checkpoints" / "latest"
    leftovers = [latest / "9.orbax-checkpoint-tmp", latest / "99.orbax-checkpoint-tmp-1700000000"]
    for leftover in leftovers:  # what a save killed half-way leaves (this and older orbax naming)
        (leftover / "state").mkdir(parents=True)
        (leftover / "state" / "garbage").write_bytes(b"\0" * 10)

    config, model = _config(), tiny.TinyNet()
    state, meta = restore_latest(workdir, _target(config, model, data))
    assert meta["step"] == NUM_STEPS == int(state.step)
    assert all(p.exists() for p in leftovers)  # reading never deletes
    with Checkpoints(workdir) as ckpts:  # opening for writing removes the debris
        assert ckpts.latest_step() == NUM_STEPS and ckpts.latest.all_steps() == [6, 8]
    assert not any(p.exists() for p in leftovers)


# (7) -------------------------------------------------------------------------------------------
def test_paper_schedule_boundaries():
    c = mnist_base()  # lr 0.001, / 10 at 70k and 90k
    lr = make_schedule(c)
    for step, want in [(0, 1e-3), (69_999, 1e-3), (70_000, 1e-4), (89_999, 1e-4), (90_000, 1e-5), (99_999, 1e-5)]:
        assert float(lr(step)) == pytest.approx(want, rel=1e-6), step
    reference = optax.piecewise_constant_schedule(1e-3, {70_000: 0.1, 90_000: 0.1})
    for step in (0, 69_999, 70_000, 70_001, 90_000, 100_000):
        assert float(lr(step)) == float(reference(step)), step
    c.schedule = [[5, 0.5], [5, 0.5]]  # two factors at one step multiply
    assert float(make_schedule(c)(5)) == pytest.approx(2.5e-4, rel=1e-6)


def test_sgd_momentum_matches_pytorch_convention():
    c = mnist_base()
    c.optimizer.learning_rate, c.optimizer.momentum, c.optimizer.weight_decay = 0.1, 0.9, 0.01
    tx, _ = make_optimizer(c)
    w = jnp.array([1.0])
    opt = tx.init(w)
    v, w_ref = 0.0, 1.0
    for g in (0.5, -0.25):
        updates, opt = tx.update(jnp.array([g]), opt, w)
        w = optax.apply_updates(w, updates)
        v = 0.9 * v + (g + 0.01 * w_ref)  # torch.optim.SGD: d_p = g + wd*p; buf = mu*buf + d_p
        w_ref -= 0.1 * v
    assert float(w[0]) == pytest.approx(w_ref, rel=1e-6)
    c.optimizer.name = "adam"
    make_optimizer(c)
    c.optimizer.name = "rmsprop"
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(c)
