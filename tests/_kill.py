"""Simulated kills for the crash-safety tests: the driver marks the instants a kill may hit
(``jaxnets.train.loop._crash_point``); these helpers make one of them raise :class:`Killed`."""

from __future__ import annotations

import pytest

import jaxnets.train.loop as loop


class Killed(BaseException):
    """Like SIGKILL, nothing in the driver may catch it."""


def run_killed(monkeypatch, at: tuple[str, int], train) -> None:
    """Call ``train()`` with a kill at instant ``at`` = (where, step); it must be killed there.
    The no-op marker is back afterwards."""

    def crash(where, step):
        if (where, step) == at:
            raise Killed

    monkeypatch.setattr(loop, "_crash_point", crash)
    with pytest.raises(Killed):
        train()
    monkeypatch.setattr(loop, "_crash_point", lambda where, step: None)
