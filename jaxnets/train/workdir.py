"""The run directory: checks before anything is written, and atomic small files.

``prepare_workdir`` refuses, with one line each: a workdir that is a file, one that cannot be
written (probed by writing a file, so a read-only filesystem is caught even for root),
``resume`` of a workdir that does not exist, and a fresh run in a workdir that holds
checkpoints (:class:`WorkdirNotEmpty`; nothing is overwritten).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib

from jaxnets.train.checkpoint import has_checkpoints


#: What a run keeps in its workdir: name -> is it a directory.
LAYOUT = {"checkpoints": True, "checkpoints-corrupt": True, "config.json": False, "metrics.jsonl": False,
          "summary.json": False, "curves.png": False}


class WorkdirError(Exception):
    """The workdir cannot be used (the message names it and says why)."""


class WorkdirNotEmpty(WorkdirError, FileExistsError):
    """``workdir`` already holds checkpoints of a run and ``resume`` was not requested."""


def prepare_workdir(workdir, resume: bool) -> pathlib.Path:
    """The absolute, existing, writable workdir of a run (see the module docstring)."""
    try:
        path = pathlib.Path(workdir).expanduser().resolve()  # orbax needs absolute paths
        exists = path.exists()
    except (OSError, RuntimeError) as e:  # a symlink loop, a path through a file ...
        raise WorkdirError(f"workdir {workdir} cannot be used: {e}") from None
    if exists and not path.is_dir():
        raise WorkdirError(f"workdir {path} is a file, not a directory")
    if any((path / "checkpoints" / old).is_dir() for old in ("latest", "best")):
        raise WorkdirError(f"{path} holds checkpoints in the layout of jaxnets before its task-agnostic driver "
                           "(checkpoints/latest, checkpoints/best), which this version cannot resume; use a new workdir")
    for name, want_dir in LAYOUT.items():
        p = path / name
        if p.exists() and p.is_dir() != want_dir:
            kind = "a directory" if want_dir else "a file"
            raise WorkdirError(f"{p} should be {kind}; move it away (the run writes its {name} there)")
    if resume and not path.exists():
        raise WorkdirError(f"cannot resume: workdir {path} does not exist (drop --resume to start a new run)")
    if not resume and path.exists() and has_checkpoints(path):
        raise WorkdirNotEmpty(
            f"{path} already holds checkpoints of a run; resume it (--resume) or choose a new workdir "
            "(nothing was overwritten)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise WorkdirError(f"workdir {path} cannot be written: {e.strerror or e}") from None
    return path


class WorkdirLock:
    """An exclusive ``flock`` on ``workdir/.lock`` for the length of a run (process 0 only): a
    second run on the same workdir is refused instead of deleting the first one's saves. The
    kernel drops the lock when the process dies, however it dies, so a killed run never leaves
    a stale lock behind."""

    def __init__(self, workdir: pathlib.Path):
        self.path, self.fd = workdir / ".lock", None

    def __enter__(self):
        import fcntl

        import jax

        if jax.process_index() != 0:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkdirError(f"workdir {self.path.parent} is in use by another run (pid {holder}); "
                               "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def write_json_atomic(path: pathlib.Path, value) -> None:
    """Write ``value`` as JSON to ``path`` via a temporary file and a rename (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}


def storage_error(e: BaseException) -> OSError | None:
    """The OSError of a full/read-only disk behind ``e`` (itself, a cause or a context), or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return e
        if "No space left on device" in str(e):
            return OSError(errno.ENOSPC, "No space left on device")
        e = e.__cause__ or e.__context__
    return None
