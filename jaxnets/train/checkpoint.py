"""Orbax checkpoints of a run: one directory per saved step, the best one kept by reference.

Layout::

    checkpoints/<step>/state   the whole TrainState
    checkpoints/<step>/meta    JSON: step, walltime, config, data fingerprint, the evaluations
                               run at this step, ``best`` = {"step", "metric", "value"} -- the
                               selected step as known after this one -- and ``state_sha256``
    checkpoints-corrupt/<step> checkpoints found corrupt on resume, moved aside (never read)

"The weights which performed best on the validation set were picked and used to compute the
final results on the test set" (section 4.3): a step that improves the task's selection metric
is saved right away, so the best checkpoint is always an ordinary saved step that the newest
checkpoint points to. There is no second ``best`` directory to keep in step with ``latest``, so
no instant of a crash can leave the two disagreeing.

Crash safety:

* every save goes to ``<step>.orbax-checkpoint-tmp-*`` and is renamed to ``<step>`` when complete
  (``AtomicityMode.ATOMIC_RENAME``; orbax's commit-file protocol on object stores), so a save cut
  short is never listed; leftovers are deleted when a manager is opened for writing;
* a step is deleted only after a newer one is on disk (the previous save is awaited first) and
  only if the newest one no longer needs it: the ``keep`` most recent steps and the one its
  ``best`` names stay;
* ``state_sha256`` (:func:`~jaxnets.train.state.tree_sha256`) is checked on every restore, so a
  flipped bit is a :class:`CorruptCheckpoint` naming the step, not other weights loaded silently.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from jaxnets.train.state import TrainState, tree_sha256, tree_signature

STATE, META = "state", "meta"
CHECKSUM = "state_sha256"
META_CHECKSUM = "meta_sha256"


class CorruptCheckpoint(Exception):
    """The checkpoint of ``step`` cannot be read, or its state does not match its checksum."""

    def __init__(self, step: int, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"checkpoint step {step} is corrupt: {reason}")


def _is_object_store(path: str) -> bool:
    return "://" in str(path)


def _barrier(name: str) -> None:
    """Wait for every process (a no-op with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def meta_sha256(meta: dict) -> str:
    """sha256 of the metadata's canonical JSON, without its own ``meta_sha256`` field."""
    body = {k: v for k, v in meta.items() if k != META_CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


class Checkpoints:
    """The saved steps of the run in ``workdir``; see the module docstring."""

    def __init__(self, workdir, *, keep: int = 2, async_save: bool = True, read_only: bool = False):
        self.workdir = epath.Path(os.path.abspath(os.path.expanduser(str(workdir))))  # orbax: absolute
        self.directory = self.workdir / "checkpoints"
        self.keep = max(1, int(keep))
        mode = ocp.options.AtomicityMode.AUTO if _is_object_store(self.directory) else ocp.options.AtomicityMode.ATOMIC_RENAME
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None,  # deletion is ours: see collect()
            save_interval_steps=0 if read_only else 1,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=False,  # ours, synchronous: see _remove_unfinished
            enable_async_checkpointing=async_save,
            atomicity_options=ocp.options.AtomicityOptions(mode=mode),
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE, META))
        self._newest_meta: dict | None = None  # meta of the newest save of this process
        if not read_only and not _is_object_store(self.directory):
            self._remove_unfinished()

    def _remove_unfinished(self) -> None:
        """Delete ``<step>.orbax-checkpoint-tmp*`` directories: saves a crash cut short. Done here,
        synchronously, instead of orbax's background clean-up (two clean-ups would race)."""
        if jax.process_index() == 0 and self.directory.is_dir():
            for p in self.directory.iterdir():
                if ".orbax-checkpoint-tmp" in p.name:
                    shutil.rmtree(p, ignore_errors=True)
        _barrier("jaxnets_checkpoint_cleanup")  # no process starts a save before the clean-up is done

    # ---- queries -------------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """The finalised steps, oldest first."""
        return sorted(self.manager.all_steps())

    def steps_on_disk(self) -> list[int]:
        """The finalised step directories as the filesystem lists them now (not orbax's cache)."""
        return _step_dirs(self.directory)

    def read_meta(self, step: int) -> dict:
        """The JSON metadata of ``step``; :class:`CorruptCheckpoint` if it cannot be read."""
        if not _is_object_store(self.directory) and not (self.directory / str(step)).is_dir():
            raise CorruptCheckpoint(step, "it is missing")
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            meta = dict(restored[META])
        except Exception as e:  # orbax/tensorstore/json errors of a damaged directory
            raise CorruptCheckpoint(step, f"its metadata cannot be read ({_reason(e)})") from None
        if meta.get("step") != step or CHECKSUM not in meta or META_CHECKSUM not in meta:
            raise CorruptCheckpoint(step, "its metadata is incomplete")
        if meta_sha256(meta) != meta[META_CHECKSUM]:
            raise CorruptCheckpoint(step, "its metadata does not match the checksum saved with it")
        return meta

    def restore(self, step: int, target: TrainState) -> tuple[TrainState, dict]:
        """``(state, meta)`` of ``step``, shaped and sharded like ``target``, checksum verified."""
        meta = self.read_meta(step)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
        except Exception as e:
            raise CorruptCheckpoint(step, f"its state cannot be read ({_reason(e)})") from None
        state = restored[STATE]
        if tree_sha256(state) != meta[CHECKSUM]:
            raise CorruptCheckpoint(step, "its state does not match the checksum saved with it")
        return state, meta

    # ---- saving --------------------------------------------------------------------------------
    def save(self, step: int, state: TrainState, meta: dict[str, Any]) -> None:
        """Save ``state`` and ``meta`` as ``step`` (asynchronously); then older steps not needed go.

        The checksum is taken before returning, so ``state`` may be donated afterwards.
        """
        self.wait()  # the previous save is on disk ...
        self.collect()  # ... so the steps it made unnecessary can go
        self.check_space(state)
        meta = {**meta, "step": int(step), CHECKSUM: tree_sha256(state), "state_signature": tree_signature(state)}
        meta = json.loads(json.dumps(meta))  # what the JSON file will hold (tuples -> lists ...)
        meta[META_CHECKSUM] = meta_sha256(meta)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args, force=True)
        self._newest_meta = meta

    def check_space(self, state: TrainState) -> None:
        """Raise ENOSPC *before* writing when the disk cannot hold another checkpoint.

        The need is estimated from the newest step on disk (its allocated blocks), or for the first
        save from the state's bytes plus 24 filesystem blocks of orbax metadata, with 10% to spare. Orbax
        running out of space mid-write leaves a ``.orbax-checkpoint-tmp`` directory (removed on the
        next start) and its background threads print tracebacks; this check avoids both in the
        usual case of a disk that fills up slowly."""
        if _is_object_store(self.directory):
            return
        steps = self.steps_on_disk()
        if steps:
            need = sum(p.stat().st_blocks * 512 for p in pathlib.Path(self.directory / str(steps[-1])).rglob("*"))
        else:
            block = os.statvfs(self.directory).f_bsize  # orbax writes ~20 small files besides the arrays
            need = sum(int(x.nbytes) for x in jax.tree_util.tree_leaves(state)) + 24 * block
        need = int(need * 1.1)
        free = shutil.disk_usage(self.directory).free
        if free < need:
            raise OSError(errno.ENOSPC, f"No space left on device ({free:,} bytes free, a checkpoint needs about {need:,})")

    def collect(self) -> None:
        """Delete the steps the newest finalised one does not need (its ``keep`` and its best)."""
        steps = self.steps()
        if not steps:
            return
        newest = steps[-1]
        meta = self._newest_meta if self._newest_meta and self._newest_meta["step"] == newest else None
        if meta is None:
            try:
                meta = self.read_meta(newest)
            except CorruptCheckpoint:
                return  # never delete on the word of a damaged checkpoint
        needed = set(steps[-self.keep :])
        if meta.get("best"):
            needed.add(int(meta["best"]["step"]))
        for s in steps:
            if s not in needed:
                self.manager.delete(s)

    def drop_after(self, step: int) -> None:
        """Delete finalised steps newer than ``step`` (a resume redoes them)."""
        for s in self.steps():
            if s > step:
                self.manager.delete(s)

    def quarantine(self, step: int) -> epath.Path:
        """Move a corrupt step to ``checkpoints-corrupt/<step>`` (kept for inspection, never read)."""
        dest = self.workdir / "checkpoints-corrupt" / str(step)
        n = 1
        while dest.exists():  # keep what an earlier quarantine moved here
            dest, n = self.workdir / "checkpoints-corrupt" / f"{step}.{n}", n + 1
        if jax.process_index() == 0:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.directory / str(step), dest)
        _barrier(f"jaxnets_quarantine_{step}")
        self.manager.reload()
        return dest

    def wait(self) -> None:
        """Block until a pending asynchronous save is on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _step_dirs(directory) -> list[int]:
    """The step numbers of the finalised ``<step>`` directories in ``directory``, oldest first."""
    directory = epath.Path(directory)
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


def has_checkpoints(workdir) -> bool:
    """True if ``workdir/checkpoints`` holds a finalised step (a cheap check, nothing is opened)."""
    return bool(_step_dirs(epath.Path(os.path.abspath(os.path.expanduser(str(workdir)))) / "checkpoints"))


def restore_step(workdir, target: TrainState, step: int | None = None) -> tuple[TrainState, dict] | None:
    """``(state, meta)`` of ``step`` (default: the newest) of the run in ``workdir``, or None."""
    if not has_checkpoints(workdir):
        return None
    with Checkpoints(workdir, read_only=True, async_save=False) as ckpts:
        steps = ckpts.steps()
        return ckpts.restore(steps[-1] if step is None else step, target) if steps else None


def restore_best(workdir, target: TrainState) -> tuple[TrainState, dict] | None:
    """The selected (best) checkpoint the newest one names, as ``(state, meta)``; None if none."""
    if not has_checkpoints(workdir):
        return None
    with Checkpoints(workdir, read_only=True, async_save=False) as ckpts:
        steps = ckpts.steps()
        best = ckpts.read_meta(steps[-1]).get("best") if steps else None
        return ckpts.restore(int(best["step"]), target) if best else None
