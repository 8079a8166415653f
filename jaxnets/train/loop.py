"""``train_and_evaluate(config, workdir)``: the one training driver, for any :mod:`task <jaxnets.train.task>`.

The loop's shape (section 4.3's protocol, made task-agnostic)::

    for step in range(start, num_steps):
        batch = task.train_data.batch_at_step(step)          # pure function of (seed, step)
        state, metrics = train_step(state, shard(batch))      # jitted, sharded, donated
        every log_every:        a "train" line: window means of loss and the task's metrics,
                                lr, examples/s; non-finite loss -> TrainingDiverged
        every eval_every, last: each of task.evaluators -> a line; the selection metric
                                (task.selection) decides whether this step is the new best
        every checkpoint_every, the last step, and every new best: a checkpoint
        on Ctrl-C / SIGTERM:    a checkpoint, then Interrupted
    restore the best step; run task.final_evaluators on it; summary.json; curves.png

Workdir: ``config.json``, ``metrics.jsonl``, ``checkpoints/<step>/``, ``summary.json``,
``curves.png``. Resume (``resume=True``) continues from the newest intact checkpoint; batches,
dropout and augmentation are functions of ``(seed, step)``, so it ends with the same
parameters, best step and final figures as an uninterrupted run, whatever instant the first run
was killed at (tests/test_crash_safety.py). For several hosts see :mod:`jaxnets.train.sharding`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxnets.config import ConfigError
from jaxnets.nn.modules import count_params
from jaxnets.train import schema
from jaxnets.train.checkpoint import Checkpoints, CorruptCheckpoint
from jaxnets.train.interrupt import Interrupted, stop_requests
from jaxnets.train.metrics import FILENAME as METRICS_FILE
from jaxnets.train.metrics import MetricsWriter, read_metrics
from jaxnets.train.optim import make_optimizer, peak_learning_rate
from jaxnets.train.plots import plot_metrics
from jaxnets.train.resume import restore_newest_intact
from jaxnets.train.sharding import check_batch_size, make_mesh, shard_batch
from jaxnets.train.state import initial_state, tree_all_finite
from jaxnets.train.step import make_train_step
from jaxnets.train.task import check_task
from jaxnets.train.workdir import WorkdirError, WorkdirLock, prepare_workdir, storage_error, write_json_atomic


class TrainingDiverged(RuntimeError):
    """The loss, an evaluation or the parameters became NaN/inf at ``step``; ``last_checkpoint``:
    the newest (finite) checkpoint on disk, or None."""

    def __init__(self, step: int, what: str, last_checkpoint: int | None, workdir):
        self.step, self.what, self.last_checkpoint = step, what, last_checkpoint
        where = (f"the last good checkpoint is step {last_checkpoint} in {workdir}/checkpoints"
                 if last_checkpoint is not None else "no checkpoint had been written yet")
        super().__init__(f"training diverged at step {step}: {what}. Training stopped; {where} "
                         "(nothing was saved after the divergence). Lower optimizer.learning_rate or check the data.")


class StorageError(RuntimeError):
    """The disk is full or read-only; the checkpoints already written are intact."""


def _crash_point(where: str, step: int) -> None:
    """No-op marking an instant a kill may hit; tests/test_crash_safety.py replaces it."""


def _notify(message: str) -> None:
    print(f"jaxnets: {message}", file=sys.stderr, flush=True)


def config_dict(config) -> dict:
    if isinstance(config, ml_collections.ConfigDict):
        return json.loads(config.to_json_best_effort())
    return json.loads(json.dumps(dict(config), default=str))


def check_config(config, mesh) -> None:
    """The driver's fields against :data:`~jaxnets.train.schema.DRIVER_SCHEMA`, and the batch split."""
    schema.check(config, schema.DRIVER_SCHEMA)
    peak = peak_learning_rate(config)
    if not math.isfinite(peak):
        raise ConfigError(f"schedule={config.schedule!r}: the learning rate overflows float32 (beyond float32)")
    for field in ("batch_size", "eval_batch_size"):
        try:
            check_batch_size(int(config[field]), mesh, field)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def train_and_evaluate(config, workdir, *, resume: bool = False, task=None, progress: bool = True) -> dict[str, Any]:
    """Train ``config.task`` (or ``task``), keep the best checkpoint by its rule, evaluate it.

    Returns the summary also written to ``workdir/summary.json``. Raises ConfigError,
    WorkdirError / WorkdirNotEmpty, ResumeMismatch, CorruptCheckpoint,
    TrainingDiverged, Interrupted, StorageError -- each with a one-line message.
    """
    mesh = make_mesh()
    check_config(config, mesh)
    workdir = prepare_workdir(workdir, resume)
    with WorkdirLock(workdir):
        if task is None:
            from jaxnets.registry import build_task

            task = build_task(config, mesh)
        check_task(task)
        return _run(config, workdir, task, mesh, resume, progress)


def _run(config, workdir, task, mesh, resume: bool, progress: bool) -> dict[str, Any]:
    run = _Run(config, workdir, task, mesh, progress)
    try:
        with stop_requests() as stop:
            run.begin(resume)
            run.train(stop)
            return run.finish()
    except Exception as e:
        full = storage_error(e)
        if full is None:
            if isinstance(e, OSError) and str(workdir) in str(getattr(e, "filename", "") or ""):
                raise WorkdirError(f"cannot use {e.filename}: {e.strerror or e}") from None
            raise
        raise StorageError(f"cannot write to {workdir}: {full.strerror or full}; training stopped, the checkpoints "
                           f"written before ({run.newest_step()}) are intact; free space and resume") from None
    finally:
        run.close()


class _Run:
    """The state of one call of :func:`train_and_evaluate` (each method one part of the loop)."""

    def __init__(self, config, workdir, task, mesh, progress: bool):
        self.config, self.workdir, self.task, self.mesh = config, workdir, task, mesh
        self.cfg, self.fingerprint = config_dict(config), task.train_data.describe()
        self.tx, self.schedule = make_optimizer(config)
        self.main = jax.process_index() == 0
        self.metrics = MetricsWriter(workdir / METRICS_FILE, enabled=self.main)
        self.ckpts = Checkpoints(workdir, keep=int(config.keep_checkpoints))
        self.num_steps, self.batch_size = int(config.num_steps), int(config.batch_size)
        self.progress = progress and self.main
        self.best: dict | None = None  # {"step", "metric", "value", "evaluations"}
        self.window: dict[str, list[float]] = {}  # train metrics since the last train line
        self.step0, self.walltime0, self.lr, self.bar = 0, 0.0, None, None

    # ---- start ---------------------------------------------------------------------------------
    def begin(self, resume: bool) -> None:
        self.state = initial_state(self.task, self.tx, int(self.config.seed), self.mesh)
        restored = (restore_newest_intact(self.ckpts, self.state, self.cfg, self.fingerprint, _notify)
                    if resume else None)
        if restored is None:  # a fresh run, or no usable checkpoint left: everything is redone
            self.ckpts.drop_after(0)
            self.metrics.reset()
        else:
            self._continue_from(*restored)
        if self.main:
            write_json_atomic(self.workdir / "config.json", self.cfg)
        self.train_step = make_train_step(self.task, self.tx, self.mesh, schedule=self.schedule)
        self.t0 = time.perf_counter()

    def _continue_from(self, state, meta: dict) -> None:
        self.state, self.step0 = state, int(meta["step"])
        self.walltime0 = float(meta["walltime"])
        self.window = {k: list(v) for k, v in meta.get("log_window", {}).items()}
        self.best = meta.get("best")
        self.ckpts.drop_after(self.step0)
        dropped = self.metrics.truncate_after(self.step0, drop_splits=tuple(self.task.final_evaluators))
        if dropped:
            _notify(f"{self.metrics.path}: {dropped} unreadable line(s) dropped (not JSON events)")
        if not self.metrics.path.exists() and self.step0:
            _notify(f"{self.metrics.path} is missing: the events before step {self.step0} are lost, later ones are logged")
        if self.progress:
            _notify(f"resuming {self.workdir} from step {self.step0}")

    def walltime(self) -> float:
        return self.walltime0 + time.perf_counter() - self.t0

    def newest_step(self) -> str:
        steps = self.ckpts.steps_on_disk()
        return f"newest: step {steps[-1]}" if steps else "none yet"

    # ---- the loop ------------------------------------------------------------------------------
    def train(self, stop) -> None:
        self.bar = tqdm(total=self.num_steps, initial=self.step0, unit="step", dynamic_ncols=True,
                        disable=not self.progress)
        pending, self.timer = [], _Throughput(self.batch_size)
        for step in range(self.step0, self.num_steps):
            batch = shard_batch(self.task.train_data.batch_at_step(step), self.mesh)
            self.state, m = self.train_step(self.state, batch)
            done = step + 1
            pending.append(m)
            self.bar.update(1)
            self.timer.tick(m, first=step == self.step0)
            _crash_point("step", done)
            due = self._due(done)
            if due or stop:
                self._absorb(pending, done)
            if "log" in due:
                self._log(done)
            if due - {"log"}:
                self._evaluate_and_save(done, due)
            if stop:
                self._stop(done, stop.signame)
        self.bar.close()

    def _due(self, done: int) -> set[str]:
        c, last = self.config, done == self.num_steps
        return {name for name, every in (("log", c.log_every), ("eval", c.eval_every), ("ckpt", c.checkpoint_every))
                if last or done % int(every) == 0}

    def _absorb(self, pending: list, done: int) -> None:
        """Move the device metrics of the steps since the last check to the host; NaN -> diverged."""
        if not pending:
            return
        keys = [k for k in pending[0] if k != "lr"]
        host = jax.device_get({k: jnp.stack([p[k] for p in pending]) for k in keys})
        bad = np.flatnonzero(~np.isfinite(host["loss"]))
        if bad.size:
            raise self._diverged(done - len(pending) + int(bad[0]) + 1, f"training loss is {host['loss'][bad[0]]}")
        if "lr" in pending[-1]:
            self.lr = float(f"{float(pending[-1]['lr']):.7g}")  # float32 -> shortest decimal
        for k in keys:
            self.window.setdefault(k, []).extend(host[k].tolist())
        pending.clear()

    def _write(self, step: int, split: str, **values) -> None:
        self.metrics.write(step, split, **values)
        _crash_point("metrics", step)

    def _log(self, done: int) -> None:
        means = {k: float(np.mean(v)) for k, v in self.window.items()}
        rate = self.timer.rate()
        extra = {"lr": self.lr} if self.lr is not None else {}
        self._write(done, "train", **means, **extra, examples_per_sec=rate, walltime=self.walltime())
        self.bar.set_postfix(loss=f"{means.get('loss', float('nan')):.4f}", ex_s=f"{rate or 0:,.0f}", refresh=False)
        self.window = {}

    def _evaluate_and_save(self, done: int, due: set[str]) -> None:
        t = time.perf_counter()
        if not bool(tree_all_finite((self.state.params, self.state.model_state))):
            raise self._diverged(done, "the parameters or model state are not finite")
        evaluations = self._evaluate(done) if "eval" in due else {}
        improved = self._select(done, evaluations)
        if "ckpt" in due or improved:
            self._save(done, evaluations)
        self.timer.exclude(time.perf_counter() - t)

    def _evaluate(self, done: int) -> dict[str, dict]:
        out = {}
        for name, evaluator in self.task.evaluators.items():
            values = {k: float(v) for k, v in evaluator.run(self.state).items()}
            extra = {"lr": self.lr} if self.lr is not None else {}
            self._write(done, name, **values, **extra, walltime=self.walltime())
            out[name] = values
        name, key = self.task.selection[0].split("/", 1)
        value = out.get(name, {}).get(key)
        if value is not None and not math.isfinite(value):
            raise self._diverged(done, f"{self.task.selection[0]} is {value}")
        return out

    def _select(self, done: int, evaluations: dict) -> bool:
        """Make ``done`` the best step if it beats the best so far (strictly: ties keep the earliest)."""
        metric, mode = self.task.selection
        name, key = metric.split("/", 1)
        if key not in evaluations.get(name, {}):
            return False
        value = evaluations[name][key]
        if self.best is not None and not (value < self.best["value"] if mode == "min" else value > self.best["value"]):
            return False
        self.best = {"step": done, "metric": metric, "value": value, "evaluations": evaluations}
        return True

    def _save(self, done: int, evaluations: dict) -> None:
        meta = {"step": done, "walltime": self.walltime(), "config": self.cfg, "data": self.fingerprint,
                "evaluations": evaluations, "best": self.best, "log_window": {k: list(v) for k, v in self.window.items()}}
        _crash_point("save", done)
        self.ckpts.save(done, self.state, meta)
        _crash_point("saved", done)

    def _stop(self, done: int, signame: str) -> None:
        steps = self.ckpts.steps()
        if not steps or steps[-1] != done:
            self._save(done, {})
        self.ckpts.wait()
        self.bar.close()
        raise Interrupted(done, self.workdir, signame)

    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        self.ckpts.wait()  # pending saves are of good states: let them land
        self._write(step, "train", loss=float("nan"), event="diverged", detail=what, walltime=self.walltime())
        steps = self.ckpts.steps()
        return TrainingDiverged(step, what, steps[-1] if steps else None, self.workdir)

    # ---- the end -------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        self.ckpts.wait()
        self.ckpts.collect()
        best = self.best
        state = self._selected_state()
        evaluations = dict(best["evaluations"]) if best else {}
        for name, evaluator in self.task.final_evaluators.items():
            evaluations[name] = {k: float(v) for k, v in evaluator.run(state).items()}
            self._write(best["step"] if best else self.num_steps, name, **evaluations[name], walltime=self.walltime())
        summary = self._summary(evaluations)
        if self.main:
            write_json_atomic(self.workdir / "summary.json", summary)
            plot_metrics(self.workdir / METRICS_FILE, title=self.config.get("paper", ""))
        return summary

    def _selected_state(self):
        if self.best is None or self.best["step"] == int(self.state.step):
            return self.state
        try:
            return self.ckpts.restore(int(self.best["step"]), self.state)[0]
        except CorruptCheckpoint as e:
            raise CorruptCheckpoint(e.step, f"{e.reason}; it is the selected (best) checkpoint, so the final "
                                    "evaluation cannot run") from None

    def _summary(self, evaluations: dict) -> dict[str, Any]:
        records = read_metrics(self.workdir / METRICS_FILE) if self.main else []
        best_step = self.best["step"] if self.best else self.num_steps
        return {
            "paper": self.config.get("paper", ""),
            "task": self.config.get("task", type(self.task).__name__),
            "selection": {"metric": self.task.selection[0], "mode": self.task.selection[1]},
            "best_step": best_step,
            "evaluations": evaluations,
            "train_loss": _train_loss_at(records, best_step),  # last logged train loss at or before best_step
            "final_train_loss": _train_loss_at(records, None),
            "num_steps": self.num_steps,
            "walltime_s": self.walltime(),
            "params": count_params(self.state.params),
            "data": self.fingerprint.get("summary", ""),
            "devices": jax.device_count(),
            "device_kind": jax.devices()[0].device_kind,
            "workdir": str(self.workdir),
        }

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        try:
            self.ckpts.close()
        except Exception as e:  # a failing async save was already reported by the exception in flight
            if storage_error(e) is None:
                raise


def _train_loss_at(records: list[dict], step: int | None) -> float | None:
    """The last logged train loss at or before ``step`` (the last one if step is None)."""
    train = [r for r in records if r["split"] == "train" and "event" not in r and (step is None or r["step"] <= step)]
    return train[-1]["loss"] if train else None


class _Throughput:
    """Examples/s of the steps since the last train line, excluding compilation and evaluation."""

    def __init__(self, batch_size: int):
        self.batch_size, self.start, self.excluded, self.steps = batch_size, time.perf_counter(), 0.0, 0

    def tick(self, metrics, first: bool) -> None:
        self.steps += 1
        if first:  # keep the compilation out of the figure
            jax.block_until_ready(metrics)
            self.start, self.steps = time.perf_counter(), 0

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def rate(self) -> float | None:
        seconds = time.perf_counter() - self.start - self.excluded
        rate = self.steps * self.batch_size / seconds if self.steps and seconds > 0 else None
        self.start, self.excluded, self.steps = time.perf_counter(), 0.0, 0
        return rate
