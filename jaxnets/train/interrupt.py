"""Stop cleanly on Ctrl-C (SIGINT) or SIGTERM: at the next step boundary, with a checkpoint.

Inside :func:`stop_requests` the first signal only sets a flag that the driver reads after each
step; it then writes a checkpoint and raises :class:`Interrupted`, which the CLI turns into one
line saying how to resume. A second Ctrl-C falls back to Python's default (immediate
``KeyboardInterrupt``), for a run that must die now. Handlers are installed only in the main
thread, and the previous ones are restored on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(Exception):
    """Training stopped on a signal at ``step``; a checkpoint of that step was written."""

    def __init__(self, step: int, workdir, signame: str):
        self.step, self.workdir, self.signame = step, workdir, signame
        super().__init__(
            f"stopped by {signame} after step {step}; checkpoint written to {workdir}/checkpoints/{step}. "
            "Continue with the same command plus --resume"
        )


class StopFlag:
    def __init__(self):
        self.signame: str | None = None

    def __bool__(self) -> bool:
        return self.signame is not None


@contextlib.contextmanager
def stop_requests():
    """Yield a :class:`StopFlag` that becomes true on SIGINT / SIGTERM."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.signame = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
