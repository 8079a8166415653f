"""A hostile tester's cases: kills at any instant, corrupt checkpoints, Ctrl-C, a full disk.

Every case ends the same way: ``--resume`` finishes with the final state, metrics, best step and
figures of an uninterrupted run (``test_train.same_run``), or the run stops with one line.
"""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import jaxnets.train.loop as loop
from jaxnets.train import Checkpoints, Interrupted, StorageError, make_mesh, read_metrics, train_and_evaluate

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _tiny_model as tiny  # noqa: E402
from _kill import Killed, run_killed  # noqa: E402
from test_train import _config, baseline, run, same_run  # noqa: E402,F401  (baseline: a shared fixture)


def kill_points(monkeypatch, workdir) -> list[tuple[str, int]]:
    """Every instant the driver marks, in order, for one uninterrupted run."""
    seen = []
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: seen.append((where, step)))
    run(_config(), workdir)
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: None)
    return seen


def killed_then_resumed(monkeypatch, workdir, k: int):
    calls = []

    def crash(where, step):
        calls.append((where, step))
        if len(calls) == k + 1:
            raise Killed

    monkeypatch.setattr(loop, "_crash_point", crash)
    with pytest.raises(Killed):
        run(_config(), workdir)
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: None)
    return run(_config(), workdir, resume=True)


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        return kill_points(mp, tmp_path_factory.mktemp("count"))


def test_the_driver_marks_every_kind_of_instant(points):
    kinds = {w for w, _ in points}
    assert kinds == {"step", "metrics", "save", "saved"}
    assert points[-1] == ("metrics", points[-1][1])  # the test line of the final evaluation is the last


# The instants a review found broken: after the first save, right after a save whose best
# replaced an older one, inside a log window, during the final evaluation.
NAMED = ["first saved", "saved 6", "metrics 4", "last metrics"]


def _index(points, name):
    if name == "first saved":
        return next(i for i, p in enumerate(points) if p[0] == "saved")
    if name == "last metrics":
        return len(points) - 1
    where, step = name.split()
    return points.index((where, int(step)))


@pytest.mark.parametrize("name", NAMED)
def test_kill_at_named_instants_then_resume_equals_uninterrupted(name, points, baseline, tmp_path, monkeypatch):
    summary = killed_then_resumed(monkeypatch, tmp_path, _index(points, name))
    same_run(tmp_path, baseline[0], summary, baseline[1])


@pytest.mark.slow
def test_kill_at_every_instant_then_resume_equals_uninterrupted(points, baseline, tmp_path, monkeypatch):
    for k in range(len(points)):
        workdir = tmp_path / str(k)
        summary = killed_then_resumed(monkeypatch, workdir, k)
        same_run(workdir, baseline[0], summary, baseline[1])


def test_resuming_a_finished_run_redoes_only_the_final_evaluation(baseline, tmp_path):
    shutil.copytree(baseline[0], tmp_path / "run")
    summary = run(_config(), tmp_path / "run", resume=True)
    summary = run(_config(), tmp_path / "run", resume=True)
    tests = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["split"] == "test"]
    assert len(tests) == 1
    same_run(tmp_path / "run", baseline[0], summary, baseline[1])


def test_real_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """A real ``kill -9`` of ``jaxnets train`` once the first checkpoint exists, then --resume."""
    args = [sys.executable, "-m", "jaxnets.cli", "train", "experiments/toy/boxes.py", "--no-progress",
            "--set", "num_steps=300", "--set", "checkpoint_every=20", "--set", "eval_every=50"]
    root = pathlib.Path(__file__).parents[1]
    straight = subprocess.run([*args, "--workdir", str(tmp_path / "a")], cwd=root, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]
    proc = subprocess.Popen([*args, "--workdir", str(tmp_path / "b")], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "b" / "checkpoints"
    while proc.poll() is None and not (ckpts.is_dir() and any(p.name.isdigit() and int(p.name) >= 60 for p in ckpts.iterdir())):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*args, "--workdir", str(tmp_path / "b"), "--resume"], cwd=root, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (read_metrics(tmp_path / w / "metrics.jsonl") for w in "ab")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("walltime", "examples_per_sec")} for r in rs]  # noqa: E731
    assert strip(a) == strip(b)


# ---- corrupt checkpoints ----------------------------------------------------------------------
def _killed_at_step(monkeypatch, workdir, step: int) -> None:
    run_killed(monkeypatch, ("step", step), lambda: run(_config(), workdir))


def _flip_one_bit(step_dir: pathlib.Path) -> None:
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file()]
    biggest = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0x10
    biggest.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip a bit", "delete the state", "garble the metadata", "edit the metadata"])
def test_corrupt_newest_checkpoint_falls_back_to_an_intact_one(damage, baseline, tmp_path, monkeypatch, capsys):
    _killed_at_step(monkeypatch, tmp_path, 7)
    with Checkpoints(tmp_path, read_only=True) as ckpts:
        newest = ckpts.steps()[-1]
    step_dir = tmp_path / "checkpoints" / str(newest)
    if damage == "flip a bit":
        _flip_one_bit(step_dir)
    elif damage == "delete the state":
        shutil.rmtree(step_dir / "state")
    elif damage == "garble the metadata":
        for p in (step_dir / "meta").rglob("*"):
            if p.is_file():
                p.write_text("{not json")
    else:  # valid JSON, one number changed: the metadata checksum catches it
        (meta_file,) = [p for p in (step_dir / "meta").rglob("*") if p.is_file() and '"walltime"' in p.read_text()]
        text = meta_file.read_text()
        meta_file.write_text(text.replace('"walltime": ', '"walltime": 1', 1))
    summary = run(_config(), tmp_path, resume=True)
    err = capsys.readouterr().err
    assert f"checkpoint step {newest} is corrupt" in err and "Traceback" not in err
    assert (tmp_path / "checkpoints-corrupt" / str(newest)).is_dir()  # kept aside, not deleted
    same_run(tmp_path, baseline[0], summary, baseline[1])


def test_every_checkpoint_corrupt_restarts_from_step_0_and_ends_the_same(baseline, tmp_path, monkeypatch, capsys):
    _killed_at_step(monkeypatch, tmp_path, 7)
    for step_dir in (tmp_path / "checkpoints").iterdir():
        if step_dir.name.isdigit():
            _flip_one_bit(step_dir)
    summary = run(_config(), tmp_path, resume=True)
    assert "resuming from step 0" in capsys.readouterr().err
    same_run(tmp_path, baseline[0], summary, baseline[1])


def test_corrupt_best_checkpoint_is_not_a_dead_end(tmp_path, monkeypatch, capsys):
    """The newest checkpoints are intact but the best one they name is not: go back further
    (here to step 0), and still end as the uninterrupted run does."""
    config = _config()  # a learning rate at which validation loss turns up after step 4
    config.optimizer.learning_rate, config.eval_every, config.checkpoint_every, config.keep_checkpoints = 0.5, 1, 1, 1
    straight = run(config, tmp_path / "straight")
    assert straight["best_step"] == 4

    run_killed(monkeypatch, ("step", 7), lambda: run(config, tmp_path / "run"))
    with Checkpoints(tmp_path / "run", read_only=True) as ckpts:
        assert ckpts.steps()[0] == 4 and ckpts.steps()[-1] == 6 and ckpts.read_meta(6)["best"]["step"] == 4
    _flip_one_bit(tmp_path / "run" / "checkpoints" / "4")
    summary = run(config, tmp_path / "run", resume=True)
    err = capsys.readouterr().err
    assert "checkpoint step 4 is corrupt" in err and "resuming from step 0" in err
    same_run(tmp_path / "run", tmp_path / "straight", summary, straight)


def test_resume_past_num_steps_is_refused(baseline, tmp_path):
    from jaxnets.train import ResumeMismatch

    shutil.copytree(baseline[0], tmp_path / "run")
    config = _config()
    config.num_steps = 5
    with pytest.raises(ResumeMismatch, match="past num_steps=5"):
        run(config, tmp_path / "run", resume=True)


# ---- Ctrl-C -----------------------------------------------------------------------------------
def test_ctrl_c_stops_at_a_step_with_a_checkpoint_and_resumes_exactly(baseline, tmp_path, monkeypatch):
    def ctrl_c(where, step):
        if (where, step) == ("step", 5):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop, "_crash_point", ctrl_c)
    with pytest.raises(Interrupted, match="--resume") as info:
        run(_config(), tmp_path)
    assert info.value.step == 5 and info.value.signame == "SIGINT"
    with Checkpoints(tmp_path, read_only=True) as ckpts:
        assert ckpts.steps()[-1] == 5
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: None)
    summary = run(_config(), tmp_path, resume=True)
    same_run(tmp_path, baseline[0], summary, baseline[1])


# ---- a full disk ------------------------------------------------------------------------------
def _mount_tmpfs(path: pathlib.Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0


def test_full_disk_is_one_line_and_leaves_checkpoints_intact(tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    if _mount_tmpfs(disk, "250k"):  # a real full disk: the first checkpoints fit, later ones do not
        try:
            with pytest.raises(StorageError, match="No space left on device") as info:
                run(_config(), disk / "run")
            _all_intact(disk / "run")
        finally:
            subprocess.run(["umount", str(disk)], check=True)
    else:  # no mount here: the same error raised where orbax writes the second checkpoint
        real, count = Checkpoints.save, []

        def save(self, *a, **kw):
            count.append(1)
            if len(count) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, *a, **kw)

        monkeypatch.setattr(Checkpoints, "save", save)
        with pytest.raises(StorageError, match="No space left on device") as info:
            run(_config(), disk / "run")
        _all_intact(disk / "run")
    assert "\n" not in str(info.value) and "intact" in str(info.value)


def _all_intact(workdir: pathlib.Path) -> None:
    from test_train import _good_target

    with Checkpoints(workdir, read_only=True) as ckpts:
        assert ckpts.steps(), "no checkpoint was written before the disk filled"
        for step in ckpts.steps():
            state, meta = ckpts.restore(step, _good_target(_config()))  # checksum verified
            assert int(state.step) == step and np.isfinite(meta["walltime"])


def test_cli_ctrl_c_and_full_disk_are_one_line_with_their_exit_codes(tmp_path, monkeypatch, capsys):
    from jaxnets import cli

    args = ["train", "experiments/toy/boxes.py", "--smoke", "--no-progress", "--workdir", str(tmp_path / "w")]

    def ctrl_c(where, step):
        if (where, step) == ("step", 2):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop, "_crash_point", ctrl_c)
    assert cli.main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped by SIGINT after step 2" in err[0] and "--resume" in err[0]

    def disk_full(where, step):
        if where == "save":
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "_crash_point", disk_full)
    assert cli.main([*args, "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "intact" in err[0]
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: None)
    assert cli.main([*args, "--resume"]) == 0  # space freed: the run finishes


def test_a_changed_state_structure_is_a_mismatch_not_corruption(baseline, tmp_path):
    """Code that builds another parameter tree for the same config: refused, nothing moved aside."""
    from jaxnets.train import ResumeMismatch

    shutil.copytree(baseline[0], tmp_path / "run")
    config = _config()
    task = tiny.make_task(config, make_mesh())
    task.model = tiny.TinyNet(channels=5)  # the config does not say: only the code changed
    with pytest.raises(ResumeMismatch, match="another structure"):
        train_and_evaluate(config, tmp_path / "run", task=task, resume=True, progress=False)
    assert not (tmp_path / "run" / "checkpoints-corrupt").exists()


def test_quarantine_keeps_earlier_quarantined_copies(baseline, tmp_path):
    shutil.copytree(baseline[0], tmp_path / "run")
    with Checkpoints(tmp_path / "run") as ckpts:
        a = ckpts.quarantine(ckpts.steps()[-1])
    shutil.copytree(a, tmp_path / "run" / "checkpoints" / a.name)
    with Checkpoints(tmp_path / "run") as ckpts:
        b = ckpts.quarantine(ckpts.steps()[-1])
    assert a != b and a.is_dir() and b.is_dir()
