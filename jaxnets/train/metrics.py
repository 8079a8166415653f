"""Metrics as JSON lines: ``workdir/metrics.jsonl``, one object per log or eval event.

Each line has ``step`` (updates done), ``split`` ("train" or the name of an evaluator, e.g.
"validation", "test"), the values (train lines: ``loss`` and the task's metrics averaged over
the ``log_every`` steps before it, ``lr``, ``examples_per_sec``; evaluator lines: whatever the
evaluator returns) and ``walltime`` (seconds of training so far, carried across resumes).

A crash can leave a torn last line (skipped by :func:`read_metrics`) and lines newer than the
checkpoint a resume starts from; :meth:`MetricsWriter.truncate_after` removes both, and the
lines of the final evaluation, by an atomic rewrite.
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

    def truncate_after(self, step: int, drop_splits: tuple[str, ...] = ()) -> int:
        """Drop events later than ``step`` and every event of ``drop_splits`` (the final
        evaluation's): a resumed run redoes them. The rewrite is atomic (temp file + rename).
        Returns how many unreadable lines (not JSON events) were dropped with them."""
        if not (self.enabled and self.path.exists()):
            return 0
        records, unreadable = _parse(self.path.read_text(errors="replace"))
        keep = [r for r in records if r["step"] <= step and r["split"] not in drop_splits]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        tmp.replace(self.path)
        return unreadable

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()


def _parse(text: str) -> tuple[list[dict], int]:
    """The events of a metrics text, and how many non-blank lines were not events."""
    records, unreadable = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int) and isinstance(record.get("split"), str):
            records.append(record)
        else:
            unreadable += 1
    return records, unreadable


def read_metrics(path) -> list[dict]:
    """All events of a ``metrics.jsonl`` (a torn last line, from a crash mid-write, and any other
    line that is not an event are skipped; a missing file has none)."""
    path = pathlib.Path(path)
    return _parse(path.read_text(errors="replace"))[0] if path.is_file() else []
