"""``train_and_evaluate(config, workdir)``: the section-4 training protocol, used by every experiment.

Section 4.3: train with SGD + momentum for ``config.num_steps`` iterations (100 000), learning
rate 0.001 divided by 10 at 70 000 and 90 000; track train and validation loss (Figure 13);
save the weights every 5 000 iterations; report the test result of "the weights which performed
best on the validation set". Here:

* every ``log_every`` steps a ``train`` line (mean loss/accuracy of the window, examples/s) goes
  to ``metrics.jsonl`` and the progress bar; the losses of the window are checked on the host
  (one transfer per window) and a non-finite one raises :class:`TrainingDiverged`;
* every ``eval_every`` steps and at the last step the whole validation split is evaluated; a
  better validation loss replaces the ``best`` checkpoint;
* every ``checkpoint_every`` steps and at the last step the whole state goes to ``latest``
  (after checking the parameters are finite: no checkpoint is written after a divergence);
* at the end the best checkpoint is restored and evaluated on the test split; ``summary.json``
  and ``curves.png`` (Figure 13: (a) accuracy, (b) loss vs iterations) are written.

Workdir layout: ``config.json``, ``metrics.jsonl``, ``checkpoints/{latest,best}/<step>/``,
``curves.png``, ``summary.json``, and ``permutation.npy`` for Permuted MNIST.

Pixel-sequence tasks (section 6.3): when ``config.data.sequence`` is ``"sequential"`` or
``"permuted"``, the splits (loaded, or passed in as ``data``) first go through
:func:`jaxnets.data.sequence_task` (:class:`~jaxnets.data.SequenceTask`): the images become
(N, 1, S, S) arrays whose row-major flattening is the pixel sequence. The task -- with the
permutation itself -- is saved in every checkpoint's metadata (``meta["sequence"]``), and a
checkpoint whose task differs from the config's is refused on resume and before the final test
(:class:`~jaxnets.data.SequenceMismatch`).

Resuming: ``resume=True`` restores the latest checkpoint and continues; batches are a pure
function of ``(seed, step)`` so the run ends with the same parameters as an uninterrupted one.
Events and best checkpoints newer than the restored step (written before a crash) are dropped
and redone. A workdir that already has checkpoints is refused unless ``resume=True``
(:class:`WorkdirNotEmpty`); a workdir without checkpoints is treated as empty. Resuming with a
config that changes the trajectory (seed, model, data, batch size, optimizer, schedule) is
refused; ``num_steps`` and the logging/eval/checkpoint intervals may change.

For several hosts see :mod:`jaxnets.train.sharding`.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from jaxnets.train.checkpoint import Checkpoints
from jaxnets.train.metrics import FILENAME as METRICS_FILE
from jaxnets.train.metrics import MetricsWriter, read_metrics
from jaxnets.train.optim import make_optimizer
from jaxnets.train.plots import plot_metrics
from jaxnets.train.sharding import check_batch_size, make_mesh, replicated, shard_batch
from jaxnets.train.state import count_params, create_train_state, tree_all_finite
from jaxnets.train.augment import check_augment, make_augment
from jaxnets.train.step import evaluate, make_eval_step, make_train_step, normalization

#: Config fields that determine the sequence of parameters; a resume must not change them.
TRAJECTORY_KEYS = ("seed", "model", "batch_size", "optimizer", "schedule", "data")
_DATA_PATH_KEYS = ("data_dir", "idx_dir")  # where the data lives may change between machines


class TrainingDiverged(RuntimeError):
    """The loss or the parameters became NaN/inf. ``step``: the first step found non-finite;
    ``last_checkpoint``: the newest (finite) checkpoint on disk, or None."""

    def __init__(self, step: int, what: str, last_checkpoint: int | None, workdir):
        self.step, self.what, self.last_checkpoint = step, what, last_checkpoint
        where = (
            f"the last good checkpoint is step {last_checkpoint} in {workdir}/checkpoints/latest"
            if last_checkpoint is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"training diverged at step {step}: {what}. Training stopped; {where} "
            f"(nothing was saved after the divergence). Lower optimizer.learning_rate or check the data."
        )


class WorkdirNotEmpty(FileExistsError):
    """``workdir`` already holds checkpoints of a run and ``resume`` was not requested."""


# ---------------------------------------------------------------------------------- helpers
def _batch_fn():
    """``batch_at_step(split, batch_size, seed, step) -> (images, labels)`` of :mod:`jaxnets.data`."""
    from jaxnets.data import batch_at_step

    return batch_at_step


def _load_data(config):
    from jaxnets.data import load_digits

    d = config.data
    return load_digits(
        d.name,
        data_dir=d.data_dir,
        idx_dir=d.idx_dir,
        validation_size=d.validation_size,
        limit=d.limit,
        seed=config.seed,
    )


def _sequence_task(config):
    """The pixel-sequence task selected by ``config.data`` (None: the images as they are)."""
    from jaxnets.data.sequence import sequence_task

    return sequence_task(config.get("data", None), config.seed)


def _check_sequence(saved, task, where: str) -> None:
    from jaxnets.data.sequence import check_saved_sequence

    check_saved_sequence(saved, task, where)


def _build_model(config):
    from jaxnets.models import build_model

    return build_model(config.model)


def _config_dict(config) -> dict:
    if isinstance(config, ml_collections.ConfigDict):
        return json.loads(config.to_json_best_effort())
    return json.loads(json.dumps(dict(config), default=str))


def _trajectory(cfg: dict) -> dict:
    out = {k: cfg.get(k) for k in TRAJECTORY_KEYS}
    if isinstance(out["data"], dict):
        out["data"] = {k: v for k, v in out["data"].items() if k not in _DATA_PATH_KEYS}
    return out


def _check_resumable(saved: dict, current: dict) -> None:
    a, b = _trajectory(saved), _trajectory(current)
    changed = [k for k in TRAJECTORY_KEYS if a[k] != b[k]]
    if changed:
        details = "; ".join(f"{k}: checkpoint {a[k]!r}, now {b[k]!r}" for k in changed)
        raise ValueError(f"cannot resume: the config changes the training trajectory ({details})")


def _has_checkpoints(workdir: pathlib.Path) -> bool:
    if not (workdir / "checkpoints").exists():
        return False
    with Checkpoints(workdir, read_only=True, async_save=False) as ckpts:
        return ckpts.any()


def _train_loss_at(records: list[dict], step: int | None) -> float | None:
    """The last logged train loss at or before ``step`` (the last one if step is None)."""
    train = [r for r in records if r["split"] == "train" and (step is None or r["step"] <= step)]
    return train[-1]["loss"] if train else None


# ------------------------------------------------------------------------------------- loop
def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir,
    *,
    resume: bool = False,
    model=None,
    data=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``config``'s model on its data, keep the best-on-validation weights, test them.

    ``model`` (a Flax module) and ``data`` (``.train/.validation/.test`` splits with ``.images``
    uint8 (N, C, H, W) and ``.labels`` int (N,), and ``.source``) default to
    ``jaxnets.models.build_model(config.model)`` and ``jaxnets.data.load_digits(...)``; a
    pixel-sequence task of ``config.data.sequence`` is applied to either (pass raw images).
    Returns the summary also written to ``workdir/summary.json``.
    Raises :class:`WorkdirNotEmpty`, :class:`TrainingDiverged`.
    """
    workdir = pathlib.Path(workdir).expanduser().resolve()  # orbax needs absolute paths
    main = jax.process_index() == 0
    if not resume and _has_checkpoints(workdir):
        raise WorkdirNotEmpty(
            f"{workdir} already holds checkpoints of a run; pass resume=True to continue it, "
            f"or choose a new workdir (nothing was overwritten)"
        )
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    cfg_dict = _config_dict(config)
    model = _build_model(config) if model is None else model
    data = _load_data(config) if data is None else data
    task = _sequence_task(config)  # None unless config.data.sequence is set
    if task is not None:
        data = task.apply(data)
    batch_at_step = _batch_fn()
    grad = config.model.get("grad", "custom")
    num_classes = int(config.model.get("num_classes", 10))
    num_steps = int(config.num_steps)

    tx, schedule = make_optimizer(config)
    input_shape = tuple(data.train.images.shape[1:])  # (C, H, W)
    state = jax.jit(
        lambda: create_train_state(model, tx, config.seed, input_shape), out_shardings=replicated(mesh)
    )()
    norm = normalization(config)  # config.data.normalize: (mean, std) or None
    augment_spec = config.get("data", {}).get("augment", None) if hasattr(config, "get") else None
    check_augment(augment_spec, input_shape, sequence=task is not None)
    train_step = make_train_step(
        model, tx, schedule, mesh, grad=grad, num_classes=num_classes, normalize=norm, augment=make_augment(augment_spec)
    )
    eval_step = make_eval_step(model, mesh, grad=grad, num_classes=num_classes, normalize=norm)

    workdir.mkdir(parents=True, exist_ok=True)
    metrics = MetricsWriter(workdir / METRICS_FILE, enabled=main)
    ckpts = Checkpoints(workdir, keep=int(config.keep_checkpoints))
    start_step, walltime0, best_loss, window = 0, 0.0, math.inf, []
    bar = None
    try:
        restored = ckpts.restore_latest(state) if resume else None
        if restored is not None:
            state, meta = restored
            _check_resumable(meta["config"], cfg_dict)
            _check_sequence(meta.get("sequence"), task, f"the checkpoint at step {meta['step']} in {workdir}")
            start_step, walltime0 = int(meta["step"]), float(meta["walltime"])
            window = [tuple(w) for w in meta.get("log_window", [])]
            ckpts.drop_after(start_step)
            metrics.truncate_after(start_step)
            best_meta = ckpts.read_best_meta()
            if best_meta is not None:
                best_loss = float(best_meta["validation"]["loss"])
        else:
            metrics.reset()
        if main:
            (workdir / "config.json").write_text(json.dumps(cfg_dict, indent=2) + "\n")
            if task is not None and task.permutation is not None:
                np.save(workdir / "permutation.npy", task.permutation)  # also in every checkpoint's meta

        bar = tqdm(
            total=num_steps, initial=start_step, unit="step", dynamic_ncols=True, disable=not (progress and main)
        )
        t0 = time.perf_counter()
        walltime = lambda: walltime0 + time.perf_counter() - t0  # noqa: E731
        pending: list[dict] = []  # device metrics of steps not yet checked on the host
        # `window`: host (loss, accuracy) of the current log window (restored on resume)
        # throughput: steps timed since window_start, minus eval/checkpoint time
        window_start, window_excluded, timed = time.perf_counter(), 0.0, 0

        def diverged(step: int, what: str):
            ckpts.wait()  # pending saves are of good states: let them land
            metrics.write(step, "train", loss=float("nan"), event="diverged", detail=what, walltime=walltime())
            return TrainingDiverged(step, what, ckpts.latest_step(), workdir)

        for step in range(start_step, num_steps):  # `step` updates done before this one
            images, labels = batch_at_step(data.train, config.batch_size, config.seed, step)
            state, m = train_step(state, *shard_batch((images, labels), mesh))
            done = step + 1
            pending.append(m)
            bar.update(1)
            timed += 1
            if step == start_step:  # keep the compilation out of the examples/s figure
                jax.block_until_ready(m)
                window_start, timed = time.perf_counter(), 0
            is_log = done % config.log_every == 0 or done == num_steps
            is_eval = done % config.eval_every == 0 or done == num_steps
            is_ckpt = done % config.checkpoint_every == 0 or done == num_steps
            if not (is_log or is_eval or is_ckpt):
                continue

            host = jax.device_get({k: jnp.stack([p[k] for p in pending]) for k in ("loss", "accuracy")})
            bad = np.flatnonzero(~np.isfinite(host["loss"]))
            if bad.size:
                first = done - len(pending) + int(bad[0]) + 1
                raise diverged(first, f"training loss is {host['loss'][bad[0]]}")
            lr = float(f"{float(pending[-1]['lr']):.7g}")  # float32 -> shortest decimal
            window.extend(zip(host["loss"].tolist(), host["accuracy"].tolist()))
            pending.clear()

            if is_log:
                seconds = time.perf_counter() - window_start - window_excluded
                rate = timed * config.batch_size / seconds if timed and seconds > 0 else None
                loss = float(np.mean([w[0] for w in window]))
                acc = float(np.mean([w[1] for w in window]))
                metrics.write(
                    done, "train", loss=loss, accuracy=acc, lr=lr, examples_per_sec=rate, walltime=walltime()
                )
                bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{rate or 0:,.0f}", refresh=False)
                window, window_start, window_excluded, timed = [], time.perf_counter(), 0.0, 0

            t_side = time.perf_counter()
            validation = None
            if is_eval or is_ckpt:
                if not bool(tree_all_finite((state.params, state.batch_stats))):
                    raise diverged(done, "the parameters or batch-norm statistics are not finite")
            if is_eval:
                validation = evaluate(eval_step, state, data.validation, config.eval_batch_size, mesh)
                metrics.write(done, "validation", **validation, lr=lr, walltime=walltime())
                if not math.isfinite(validation["loss"]):
                    raise diverged(done, f"validation loss is {validation['loss']}")
            meta = {
                "step": done,
                "walltime": walltime(),
                "data_seed": config.seed,
                "validation": validation,
                "log_window": list(window),  # (loss, accuracy) since the last train line (a copy: saves are async)
                "config": cfg_dict,
                "sequence": task.describe() if task is not None else None,
            }
            if is_ckpt:
                ckpts.save_latest(done, state, meta)
            if validation is not None and validation["loss"] < best_loss:
                best_loss = validation["loss"]
                ckpts.save_best(done, state, meta, best_loss)
            window_excluded += time.perf_counter() - t_side
        bar.close()
        ckpts.wait()

        # ---- test the best-on-validation weights ------------------------------------------
        best = ckpts.restore_best(state)
        if best is not None:
            best_state, best_meta = best
            _check_sequence(best_meta.get("sequence"), task, f"the best checkpoint in {workdir}")
            best_step, best_validation = int(best_meta["step"]), best_meta["validation"]
        else:  # no validation ran (num_steps == 0): test the current weights
            best_state, best_step, best_validation = state, int(state.step), None
        test = evaluate(eval_step, best_state, data.test, config.eval_batch_size, mesh)
        total_walltime = walltime()
        metrics.write(best_step, "test", **test, walltime=total_walltime)
    finally:
        if bar is not None:
            bar.close()
        ckpts.close()

    records = read_metrics(workdir / METRICS_FILE) if main else []
    summary = {
        "paper": config.get("paper", ""),
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "best_step": best_step,
        "validation_loss": best_validation["loss"] if best_validation else None,
        "validation_accuracy": best_validation["accuracy"] if best_validation else None,
        "train_loss": _train_loss_at(records, best_step),  # last logged train loss at or before best_step
        "final_train_loss": _train_loss_at(records, None),
        "num_steps": num_steps,
        "walltime_s": total_walltime,
        "params": count_params(state.params),
        "data_source": str(getattr(data, "source", "")),
        "devices": jax.device_count(),
        "device_kind": jax.devices()[0].device_kind,
        "workdir": str(workdir),
    }
    if main:
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot_metrics(workdir / METRICS_FILE, title=config.get("paper", ""))
    return summary
