"""The contract fits what comes next: a toy detection and a toy seq2seq task train through the
unchanged driver, with checkpoints and an exact resume."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from jaxnets.config import load_config
from jaxnets.train import read_metrics, train_and_evaluate

from _kill import run_killed  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = pathlib.Path(__file__).parents[1]
TASK_FILES = ["jaxnets/tasks/toy_boxes.py", "jaxnets/tasks/toy_reverse.py"]


def _train_killed_then_resumed(config, workdir, kill_step, monkeypatch):
    run_killed(monkeypatch, ("step", kill_step), lambda: train_and_evaluate(config, workdir, progress=False))
    return train_and_evaluate(config, workdir, resume=True, progress=False)


@pytest.mark.parametrize("name,metric,floor", [("boxes", "iou", 0.6), ("reverse", "exact_match", 0.4)])
def test_toy_task_learns_and_resumes_exactly(name, metric, floor, tmp_path, monkeypatch):
    config = load_config(ROOT / "experiments" / "toy" / f"{name}.py")
    straight = train_and_evaluate(config, tmp_path / "a", progress=False)
    value = straight["evaluations"]["validation"][metric]
    assert value >= floor, straight  # chance: IoU of a random box ~0.05, exact match of 4 digits 1e-4
    resumed = _train_killed_then_resumed(config, tmp_path / "b", 250, monkeypatch)
    assert resumed["evaluations"] == straight["evaluations"] and resumed["best_step"] == straight["best_step"]
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("walltime", "examples_per_sec")} for r in rs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "a" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "b" / "metrics.jsonl"))


def test_toy_tasks_are_small_and_the_driver_knows_no_task():
    for f in TASK_FILES:
        assert len((ROOT / f).read_text().splitlines()) <= 130  # data generator + model + ~80 lines of task
    hits = subprocess.run(["git", "grep", "-nE", "num_classes|accuracy|one_hot|argmax|cross_entropy", "jaxnets/train/"],
                          cwd=ROOT, capture_output=True, text=True)
    assert hits.stdout == "", hits.stdout
