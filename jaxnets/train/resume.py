"""Resuming: which checkpoint to continue from, and whether the config still describes its run.

A run resumes from the newest *intact* checkpoint. Before any state is read, its metadata is
checked against the current config and data (:class:`ResumeMismatch`, one line naming every
changed field): a resume must not change the trajectory. What may change: ``num_steps``, the
logging / evaluation / checkpoint intervals, ``keep_checkpoints``, ``eval_batch_size``, the
descriptive ``paper`` / ``expected`` fields, and any field named ``*_dir`` (where data lives;
its content is compared through the data fingerprint instead). A checkpoint that cannot be
read or fails its checksum is reported, moved to ``checkpoints-corrupt/`` once an older one has
been restored, and the run goes on from that older one.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxnets.train.checkpoint import Checkpoints, CorruptCheckpoint
from jaxnets.train.state import TrainState

FREE_KEYS = {"num_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "eval_batch_size",
             "paper", "expected", "smoke"}


class ResumeMismatch(ValueError):
    """The config or the data differ from those the checkpoint was trained with."""


class NoIntactCheckpoint(RuntimeError):
    """Every checkpoint of the workdir is corrupt."""


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
    changed = trajectory_changes(meta.get("config", {}), config)
    if changed:
        raise ResumeMismatch(f"cannot resume from {where}: the config changes the training trajectory ({'; '.join(changed)})")
    changed = trajectory_changes(meta.get("data", {}), fingerprint)
    if changed:
        raise ResumeMismatch(f"cannot resume from {where}: the training data differ ({'; '.join(changed)})")


def restore_newest_intact(
    ckpts: Checkpoints, target: TrainState, config: dict, fingerprint: dict, notify: Callable[[str], None]
) -> tuple[TrainState, dict] | None:
    """``(state, meta)`` of the newest intact checkpoint that is this run's, or None if there is none.

    Corrupt ones are skipped with a ``notify`` line each, then moved aside (not deleted).
    """
    steps = ckpts.steps()
    corrupt: list[int] = []
    for step in reversed(steps):
        try:
            meta = ckpts.read_meta(step)
            check_resumable(meta, config, fingerprint)  # before any state is read
            state, meta = ckpts.restore(step, target)
        except CorruptCheckpoint as e:
            corrupt.append(step)
            notify(f"{e}; trying an older one")
            continue
        for s in corrupt:
            notify(f"checkpoint step {s} moved to {ckpts.quarantine(s)}; resuming from step {step}")
        return state, meta
    if corrupt:
        raise NoIntactCheckpoint(
            f"no intact checkpoint in {ckpts.directory}: steps {sorted(corrupt)} are all corrupt; "
            "move the workdir away to start again"
        )
    return None
