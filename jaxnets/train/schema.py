"""Config validation, once, up front: one line per bad field, before anything is built.

A schema is a list of :class:`Field` s: a dotted name, the Python types it may hold and a range
or choice check. :func:`validate` returns every problem of a config as a line naming the field
(``batch_size=-8: must be an integer >= 1``); :func:`check` raises one
:class:`~jaxnets.config.ConfigError` holding all of them. :data:`DRIVER_SCHEMA` covers the
fields the driver reads; a task checks its own (``model.*``, ``data.*``) with the same helpers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jaxnets.config import ConfigError

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Field:
    name: str  # dotted, e.g. "optimizer.learning_rate"
    kind: str  # "int" | "float" | "str" | "bool" | "list"
    check: Callable[[Any], bool] = lambda v: True
    rule: str = ""  # what check requires, in words
    required: bool = True


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        try:
            if part not in node:
                return _MISSING
            node = node[part]
        except TypeError:
            return _MISSING
    return node


def _type_ok(value, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, (list, tuple))
    raise ValueError(kind)


_WORDS = {"int": "an integer", "float": "a finite number", "str": "a string", "bool": "True or False", "list": "a list"}


def validate(config, schema: Iterable[Field]) -> list[str]:
    """Every problem of ``config`` against ``schema``, one line each (empty: valid)."""
    errors = []
    for f in schema:
        value = _get(config, f.name)
        if value is _MISSING:
            if f.required:
                errors.append(f"{f.name}: missing from the config")
            continue
        try:
            ok = _type_ok(value, f.kind) and bool(f.check(value))
        except (TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            rule = f" {f.rule}" if f.rule else ""
            errors.append(f"{f.name}={value!r}: must be {_WORDS[f.kind]}{rule}")
    return errors


def check(config, schema: Iterable[Field]) -> None:
    """Raise :class:`ConfigError` listing every problem (one per line), or return."""
    errors = validate(config, schema)
    if errors:
        raise ConfigError("\n".join(errors))


def positive_int(name: str) -> Field:
    return Field(name, "int", lambda v: v >= 1, ">= 1")


def _schedule_ok(entries: Sequence) -> bool:
    for e in entries:
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            return False
        step, factor = e
        if not _type_ok(step, "int") or step < 0 or not _type_ok(factor, "float") or factor < 0:
            return False
    return True


OPTIMIZERS = ("sgd", "adam")

#: The fields the driver reads (model.*, data.* belong to the task).
DRIVER_SCHEMA = [
    Field("task", "str", lambda v: bool(v), "naming a registered task"),
    Field("seed", "int", lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
    positive_int("batch_size"),
    positive_int("eval_batch_size"),
    positive_int("num_steps"),
    positive_int("log_every"),
    positive_int("eval_every"),
    positive_int("checkpoint_every"),
    positive_int("keep_checkpoints"),
    Field("optimizer.name", "str", lambda v: v.lower() in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
    Field("optimizer.learning_rate", "float", lambda v: v > 0, "> 0"),
    Field("optimizer.momentum", "float", lambda v: 0 <= v < 1, "in [0, 1)", required=False),
    Field("optimizer.weight_decay", "float", lambda v: v >= 0, ">= 0", required=False),
    Field("optimizer.b1", "float", lambda v: 0 <= v < 1, "in [0, 1)", required=False),
    Field("optimizer.b2", "float", lambda v: 0 <= v < 1, "in [0, 1)", required=False),
    Field("optimizer.eps", "float", lambda v: v > 0, "> 0", required=False),
    Field("optimizer.nesterov", "bool", required=False),
    Field("schedule", "list", _schedule_ok, "of [step >= 0 (integer), factor >= 0] pairs", required=False),
]
