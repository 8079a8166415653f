"""The driver: exact resume, data parallelism, divergence, best checkpoint, metrics, atomicity, schedule.

Runs use a tiny conv+BN model on random 8×8 "digits" (tests/_tiny_model.py) through the real
classification task and data source; every run here is a call of the one driver.
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

from experiments.mnist.common import mnist_base, smoke_config
from jaxnets.train import (
    Checkpoints,
    ResumeMismatch,
    TrainingDiverged,
    WorkdirNotEmpty,
    make_mesh,
    make_optimizer,
    make_schedule,
    read_metrics,
    restore_best,
    restore_step,
    train_and_evaluate,
    tree_all_finite,
)

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _tiny_model as tiny  # noqa: E402
from _kill import run_killed  # noqa: E402

NUM_STEPS = 8  # checkpoints at 3, 6, 8 and at every new best; validation at 2, 4, 6, 8; LR halves at 4


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


def run(config, workdir, **kw):
    task = tiny.make_task(config, make_mesh(), **{k: kw.pop(k) for k in ("poison", "transform") if k in kw})
    return train_and_evaluate(config, workdir, task=task, progress=False, **kw)


def _target(workdir):
    with Checkpoints(workdir, read_only=True) as ckpts:
        step = ckpts.steps()[-1]
        import orbax.checkpoint as ocp

        return ckpts.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"], step


def leaves(workdir):
    state, _ = _target(workdir)
    return jax.tree_util.tree_leaves((state["params"], state["model_state"], state["opt_state"]))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """One uninterrupted run, shared by the tests that only read its workdir."""
    workdir = tmp_path_factory.mktemp("baseline")
    return workdir, run(_config(), workdir)


def strip(records):
    return [{k: v for k, v in r.items() if k not in ("walltime", "examples_per_sec")} for r in records]


def same_run(a: pathlib.Path, b: pathlib.Path, summary_a: dict, summary_b: dict) -> None:
    """Two workdirs ended identically: final state, metrics (times aside), best step, figures."""
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert strip(read_metrics(a / "metrics.jsonl")) == strip(read_metrics(b / "metrics.jsonl"))
    for key in ("best_step", "evaluations", "train_loss", "final_train_loss"):
        assert summary_a[key] == summary_b[key], key


# (1) -------------------------------------------------------------------------------------------
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, baseline, monkeypatch):
    # killed after step 5: the newest checkpoint is a best or the step-3 one; events at 4 written
    run_killed(monkeypatch, ("step", 5), lambda: run(_config(), tmp_path))
    assert max(r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")) == 4
    with pytest.raises(WorkdirNotEmpty):  # never silently overwrite a run
        run(_config(), tmp_path)
    summary = run(_config(), tmp_path, resume=True)
    same_run(tmp_path, baseline[0], summary, baseline[1])


def test_resume_refuses_a_changed_config_before_reading_the_state(tmp_path, baseline):
    shutil.copytree(baseline[0], tmp_path / "run")
    config = _config()
    config.optimizer.momentum = 0.5
    with pytest.raises(ResumeMismatch, match=r"optimizer\.momentum: checkpoint 0\.9, now 0\.5"):
        run(config, tmp_path / "run", resume=True)
    config = _config()
    config.model.name = "mnist_ffn"  # another model: the config check runs before orbax sees the shapes
    with pytest.raises(ResumeMismatch, match="model.name"):
        run(config, tmp_path / "run", resume=True)
    config = _config()
    config.num_steps, config.eval_every = NUM_STEPS, 4  # free to change
    run(config, tmp_path / "run", resume=True)


# (2) -------------------------------------------------------------------------------------------
DATA_PARALLEL = textwrap.dedent(
    """
    import jax, numpy as np
    assert jax.device_count() == 4, jax.devices()
    import _tiny_model as tiny
    from experiments.mnist.common import mnist_base, smoke_config
    from jaxnets.train import initial_state, make_mesh, make_optimizer, make_train_step, shard_batch, check_config

    config = smoke_config(mnist_base())
    config.optimizer.learning_rate = 0.05
    config.data.augment.hflip, config.data.augment.max_shift = True, 2
    tx, schedule = make_optimizer(config)
    results = []
    for mesh in (make_mesh(), make_mesh(jax.devices()[:1])):
        task = tiny.make_task(config, mesh)
        state = initial_state(task, tx, 0, mesh)
        step = make_train_step(task, tx, mesh, schedule=schedule)
        for t in range(5):
            state, metrics = step(state, shard_batch(task.train_data.batch_at_step(t), mesh))
        if mesh.devices.size == 4:
            assert len(state.params["Dense_0"]["kernel"].sharding.device_set) == 4
        ev = task.evaluators["validation"].run(state)
        results.append((jax.device_get((state.params, state.model_state)), float(metrics["loss"]), ev))
    (p4, l4, e4), (p1, l1, e1) = results
    for a, b in zip(jax.tree_util.tree_leaves(p4), jax.tree_util.tree_leaves(p1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(l4, l1, rtol=1e-6)
    np.testing.assert_allclose(e4["loss"], e1["loss"], rtol=1e-6)
    assert e4["accuracy"] == e1["accuracy"]
    config.batch_size = 6
    try:
        check_config(config, make_mesh())
    except ValueError as e:
        assert "not divisible by the 4 devices" in str(e)
    else:
        raise AssertionError("batch 6 on 4 devices accepted")
    print("DATA-PARALLEL OK")
    """
)


def test_data_parallel_four_devices_equal_one_device_per_step():
    """Per step, to float32 rounding (the reduction order differs); not over whole runs (README)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = pathlib.Path(__file__).parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "tests"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", DATA_PARALLEL], cwd=root / "tests", env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "DATA-PARALLEL OK" in out.stdout


# (3) -------------------------------------------------------------------------------------------
def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path):
    config = _config()
    config.data.augment.max_shift = 0  # a zero-filled shift would un-poison the all-255 batch

    def poison(batch_at_step):
        def at(step):
            batch = batch_at_step(step)
            return {**batch, "image": np.full_like(batch["image"], 255)} if step >= 6 else batch  # 7th update: NaN

        return at

    with pytest.raises(TrainingDiverged, match="step 7") as info:
        run(config, tmp_path, poison=True, transform=poison)
    assert info.value.step == 7 and info.value.last_checkpoint == 6
    with Checkpoints(tmp_path, read_only=True) as ckpts:
        assert max(ckpts.steps()) == 6  # nothing written after the NaN
        state, meta = ckpts.restore(6, _good_target(config))
    assert meta["step"] == 6 and int(state.step) == 6
    assert bool(tree_all_finite((state.params, state.model_state, state.opt_state)))
    last = read_metrics(tmp_path / "metrics.jsonl")[-1]
    assert last["event"] == "diverged" and last["step"] == 7
    assert not (tmp_path / "summary.json").exists()


def _good_target(config):
    from jaxnets.train import initial_state

    mesh = make_mesh()
    return initial_state(tiny.make_task(config, mesh), make_optimizer(config)[0], config.seed, mesh)


def test_tree_all_finite():
    assert bool(tree_all_finite({"a": jnp.ones(3), "n": jnp.arange(3)}))
    assert not bool(tree_all_finite({"a": jnp.array([1.0, jnp.inf])}))


# (4) -------------------------------------------------------------------------------------------
def test_best_checkpoint_has_lowest_validation_loss(baseline):
    workdir, summary = baseline
    val = [r for r in read_metrics(workdir / "metrics.jsonl") if r["split"] == "validation"]
    assert [r["step"] for r in val] == [2, 4, 6, 8]
    best = min(val, key=lambda r: r["loss"])  # first of equals, as strict "<" keeps the earliest
    assert summary["best_step"] == best["step"]
    assert summary["evaluations"]["validation"]["loss"] == best["loss"]
    state, meta = restore_best(workdir, _good_target(_config()))
    assert int(state.step) == best["step"] == meta["step"]
    task = tiny.make_task(_config(), make_mesh())
    assert task.evaluators["validation"].run(state)["loss"] == pytest.approx(best["loss"], rel=1e-6)
    test = [r for r in read_metrics(workdir / "metrics.jsonl") if r["split"] == "test"]
    assert len(test) == 1 and test[0]["step"] == best["step"]
    with Checkpoints(workdir, read_only=True) as ckpts:  # keep_checkpoints=2 most recent, and the best
        assert ckpts.steps() == sorted({6, 8, best["step"]})


# (5) -------------------------------------------------------------------------------------------
def test_metrics_jsonl_summary_and_plot(baseline):
    workdir, summary = baseline
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8]
    for r in train:
        assert {"loss", "accuracy", "lr", "examples_per_sec", "walltime"} <= set(r)
        assert np.isfinite(r["loss"]) and r["examples_per_sec"] > 0
    assert [r["lr"] for r in train] == [0.05, 0.05, 0.025, 0.025]  # lr of each window's last update
    assert json.loads((workdir / "summary.json").read_text()) == summary
    assert summary["params"] > 0 and summary["data"] == "random test data"
    assert summary["selection"] == {"metric": "validation/loss", "mode": "min"}
    assert json.loads((workdir / "config.json").read_text())["num_steps"] == NUM_STEPS
    png = (workdir / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# (6) -------------------------------------------------------------------------------------------
def test_partial_checkpoint_directories_are_ignored(tmp_path, baseline):
    workdir = tmp_path / "run"
    shutil.copytree(baseline[0], workdir)
    root = workdir / "checkpoints"
    leftovers = [root / "9.orbax-checkpoint-tmp", root / "99.orbax-checkpoint-tmp-1700000000"]
    for leftover in leftovers:  # what a save killed half-way leaves (this and older orbax naming)
        (leftover / "state").mkdir(parents=True)
        (leftover / "state" / "garbage").write_bytes(b"\0" * 10)
    state, meta = restore_step(workdir, _good_target(_config()))
    assert meta["step"] == NUM_STEPS == int(state.step)
    assert all(p.exists() for p in leftovers)  # reading never deletes
    with Checkpoints(workdir) as ckpts:  # opening for writing removes the debris
        assert ckpts.steps()[-1] == NUM_STEPS
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
