"""Resuming: which checkpoint to continue from, and whether the config still describes its run.

A run resumes from the newest *intact* checkpoint. Before any state is read, its metadata is
checked against the current config and data (:class:`ResumeMismatch`, one line naming every
changed field): a resume must not change the trajectory, nor start beyond ``num_steps``. What may change: ``num_steps``, the
logging / evaluation / checkpoint intervals, ``keep_checkpoints``, ``eval_batch_size``, the
descriptive ``paper`` / ``expected`` fields, and any field named ``*_dir`` (where data lives;
its content is compared through the data fingerprint instead). A checkpoint that cannot be
read or fails its checksum is reported and moved to ``checkpoints-corrupt/``, and the run goes on
from the newest checkpoint that is intact and whose best step is intact too -- or from step 0
if none is: batches, dropout and augmentation are functions of the seed and the step, so the
run still ends with the result an uninterrupted one gives.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxnets.train.checkpoint import Checkpoints, CorruptCheckpoint
from jaxnets.train.state import TrainState, tree_signature

FREE_KEYS = {"num_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "eval_batch_size",
             "paper", "expected", "smoke"}


class ResumeMismatch(ValueError):
    """The config or the data differ from those the checkpoint was trained with."""


def _flatten(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _is_free(key: str) -> bool:
    return key.split(".")[0] in FREE_KEYS or key.split(".")[-1].endswith("_dir")


def trajectory_changes(saved: dict, current: dict) -> list[str]:
    """``"field: checkpoint X, now Y"`` for every trajectory field that differs."""
    a, b = _flatten(saved), _flatten(current)
    keys = sorted(k for k in set(a) | set(b) if not _is_free(k))
    return [f"{k}: checkpoint {a.get(k, '(absent)')!r}, now {b.get(k, '(absent)')!r}" for k in keys if a.get(k) != b.get(k)]


def check_resumable(meta: dict, config: dict, fingerprint: dict) -> None:
    """Raise :class:`ResumeMismatch` if ``meta`` (of a checkpoint) is not this config's run."""
    where = f"checkpoint step {meta.get('step')}"
    if int(meta.get("step", 0)) > int(config.get("num_steps", 0)):
        raise ResumeMismatch(f"cannot resume from {where}: it is past num_steps={config.get('num_steps')}; "
                             f"set num_steps >= {meta.get('step')} (or use a new workdir)")
    changed = trajectory_changes(meta.get("config", {}), config)
    if changed:
        raise ResumeMismatch(f"cannot resume from {where}: the config changes the training trajectory ({'; '.join(changed)})")
    changed = trajectory_changes(meta.get("data", {}), fingerprint)
    if changed:
        raise ResumeMismatch(f"cannot resume from {where}: the training data differ ({'; '.join(changed)})")


def _usable(ckpts: Checkpoints, step: int, target: TrainState, config: dict, fingerprint: dict, corrupt: set):
    """``(state, meta)`` of ``step`` if it and the best step it names are intact; None if that best
    step is already known corrupt; raises CorruptCheckpoint for the first damaged one it reads."""
    meta = ckpts.read_meta(step)
    check_resumable(meta, config, fingerprint)  # before any state is read
    if meta.get("state_signature") != tree_signature(target):
        raise ResumeMismatch(f"cannot resume from checkpoint step {step}: its state has another structure than this "
                             "code builds for the config (parameter names, shapes or dtypes changed); use a new workdir")
    best = (meta.get("best") or {}).get("step")
    if best in corrupt:
        return None  # its best step is gone: not a resume point
    state, meta = ckpts.restore(step, target)
    if best is not None and best != step:
        ckpts.restore(int(best), target)  # the final evaluation will need it: check it now
    return state, meta


def restore_newest_intact(
    ckpts: Checkpoints, target: TrainState, config: dict, fingerprint: dict, notify: Callable[[str], None]
) -> tuple[TrainState, dict] | None:
    """``(state, meta)`` of the newest checkpoint that is intact, is this run's and whose best
    step is intact too; None if there is none (the run starts again from step 0, which gives the
    same result: everything is a function of the seed and the step).

    Corrupt checkpoints are reported with a ``notify`` line each, then moved aside (not deleted).
    """
    corrupt: set[int] = set()
    chosen = None
    for step in reversed(ckpts.steps()):
        if step in corrupt:
            continue
        try:
            chosen = _usable(ckpts, step, target, config, fingerprint, corrupt)
        except CorruptCheckpoint as e:
            notify(str(e))
            corrupt.add(e.step)
            continue
        if chosen is not None:
            break
    where = f"step {chosen[1]['step']}" if chosen else "step 0 (no usable checkpoint is left)"
    for s in sorted(corrupt):
        if s in ckpts.steps():
            notify(f"checkpoint step {s} moved to {ckpts.quarantine(s)}; resuming from {where}")
    if chosen is None and ckpts.steps():
        notify(f"the checkpoints of {ckpts.directory} name a corrupt best step; starting again from step 0")
    return chosen
