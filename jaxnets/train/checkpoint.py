"""Orbax checkpoints: the most recent ones, and the best on validation (section 4.3).

Layout under ``workdir/checkpoints``::

    latest/<step>/state   the whole TrainState, saved every config.checkpoint_every steps and at the
                          last step; the config.keep_checkpoints most recent are kept
    latest/<step>/meta    JSON: step, config, data seed, walltime, validation metrics if any
    best/<step>/...       the same two items for the step with the lowest validation loss so far
                          (one kept) -- "the weights which performed best on the validation set
                          were picked and used to compute the final results on the test set"

The data position needs no saving: batches are a pure function of ``(seed, step)``.

Atomicity: every save goes to ``<step>.orbax-checkpoint-tmp-*`` and is renamed to ``<step>``
only when complete (``AtomicityMode.ATOMIC_RENAME``, forced on local/POSIX paths; on object stores
orbax's commit-file protocol is used instead). The managers list only finalised step
directories, so a save interrupted half-way is never restored; leftover temporary directories
are deleted when a manager is opened for writing.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import orbax.checkpoint as ocp
from etils import epath

from jaxnets.train.state import TrainState

STATE, META = "state", "meta"


def _is_object_store(path: str) -> bool:
    return "://" in str(path)


def _manager(directory, *, max_to_keep: int, best: bool, async_save: bool, read_only: bool) -> ocp.CheckpointManager:
    mode = ocp.options.AtomicityMode.AUTO if _is_object_store(directory) else ocp.options.AtomicityMode.ATOMIC_RENAME
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else max_to_keep,
        save_interval_steps=0 if read_only else 1,
        best_fn=(lambda m: m["validation_loss"]) if best else None,
        best_mode="min",
        keep_checkpoints_without_metrics=False if best else True,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=async_save,
        atomicity_options=ocp.options.AtomicityOptions(mode=mode),
    )
    return ocp.CheckpointManager(epath.Path(directory), options=options, item_names=(STATE, META))


class Checkpoints:
    """The two managers of a run: ``latest`` (most recent ``keep``) and ``best`` (lowest validation loss)."""

    def __init__(self, workdir, *, keep: int = 2, async_save: bool = True, read_only: bool = False):
        root = epath.Path(os.path.abspath(os.path.expanduser(str(workdir)))) / "checkpoints"  # orbax: absolute
        self.directory = root
        common = dict(async_save=async_save, read_only=read_only)
        self.latest = _manager(root / "latest", max_to_keep=max(1, keep), best=False, **common)
        self.best = _manager(root / "best", max_to_keep=1, best=True, **common)

    # ---- queries -------------------------------------------------------------------------------
    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def best_step(self) -> int | None:
        return self.best.best_step()

    def any(self) -> bool:
        return bool(self.latest.all_steps() or self.best.all_steps())

    # ---- saving --------------------------------------------------------------------------------
    def save_latest(self, step: int, state: TrainState, meta: dict[str, Any]) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.latest.save(step, args=args, force=True)

    def save_best(self, step: int, state: TrainState, meta: dict[str, Any], validation_loss: float) -> None:
        self.best.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics={"validation_loss": float(validation_loss)},
            force=True,
        )

    def drop_after(self, step: int) -> None:
        """Delete checkpoints newer than ``step`` (best ones a crashed run saved after its last latest)."""
        for s in self.best.all_steps():
            if s > step:
                self.best.delete(s)
        for s in self.latest.all_steps():
            if s > step:
                self.latest.delete(s)

    # ---- restoring -----------------------------------------------------------------------------
    @staticmethod
    def _restore(manager: ocp.CheckpointManager, step: int, target: TrainState) -> tuple[TrainState, dict]:
        restored = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
        )
        return restored[STATE], dict(restored[META])

    def restore_latest(self, target: TrainState) -> tuple[TrainState, dict] | None:
        """The newest complete checkpoint as ``(state, meta)`` shaped and sharded like ``target``; None if none."""
        step = self.latest.latest_step()
        return None if step is None else self._restore(self.latest, step, target)

    def restore_best(self, target: TrainState) -> tuple[TrainState, dict] | None:
        """The best-on-validation checkpoint as ``(state, meta)``; None if no validation ran."""
        step = self.best.best_step()
        return None if step is None else self._restore(self.best, step, target)

    def read_best_meta(self) -> dict | None:
        step = self.best.best_step()
        if step is None:
            return None
        return dict(self.best.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[META])

    def wait(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def restore_latest(workdir, target: TrainState) -> tuple[TrainState, dict] | None:
    """The newest complete checkpoint of the run in ``workdir`` as ``(state, meta)``, or None."""
    if not (pathlib.Path(str(workdir)) / "checkpoints" / "latest").exists() and not _is_object_store(workdir):
        return None
    with Checkpoints(workdir, read_only=True, async_save=False) as ckpts:
        return ckpts.restore_latest(target)


def restore_best(workdir, target: TrainState) -> tuple[TrainState, dict] | None:
    """The best-on-validation checkpoint of the run in ``workdir`` as ``(state, meta)``, or None."""
    if not (pathlib.Path(str(workdir)) / "checkpoints" / "best").exists() and not _is_object_store(workdir):
        return None
    with Checkpoints(workdir, read_only=True, async_save=False) as ckpts:
        return ckpts.restore_best(target)
