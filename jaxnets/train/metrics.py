"""Metrics as JSON lines: ``workdir/metrics.jsonl``, one object per log or eval event.

Each line has ``step`` (updates done), ``split`` ("train" | "validation" | "test"), ``loss``,
``accuracy``, ``lr``, ``examples_per_sec`` (train lines: over the log window) and ``walltime``
(seconds of training so far, carried across resumes). A train line averages the
``log_every`` steps before it; a validation line evaluates the whole validation split.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

FILENAME = "metrics.jsonl"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan" / "inf": JSON has no literal for them
    return value


class MetricsWriter:
    """Appends events to ``path``; a no-op when ``enabled`` is False (processes other than 0)."""

    def __init__(self, path, enabled: bool = True):
        self.path = pathlib.Path(path)
        self.enabled = enabled

    def write(self, step: int, split: str, **values: Any) -> dict:
        record = {"step": int(step), "split": split, **{k: _clean(v) for k, v in values.items()}}
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def truncate_after(self, step: int) -> None:
        """Drop events later than ``step`` (written by a run that then crashed; they will be redone)."""
        if not (self.enabled and self.path.exists()):
            return
        keep = [r for r in read_metrics(self.path) if r["step"] <= step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        tmp.replace(self.path)

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()


def read_metrics(path) -> list[dict]:
    """All events of a ``metrics.jsonl`` (a torn last line, from a crash mid-write, is skipped)."""
    records = []
    for line in pathlib.Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
