"""One registry convention for everything a config names: models and tasks.

A builder registers itself next to the code it builds, with a decorator::

    from jaxnets.registry import MODELS

    @MODELS.register("mnist_cnn")
    def build(model_config) -> nn.Module: ...

and the driver resolves ``config.model.name`` with ``MODELS.build(config.model, field="model.name")``.
An unknown name is a :class:`~jaxnets.config.ConfigError` naming the field and the choices.
Importing :mod:`jaxnets.models` and :mod:`jaxnets.tasks` registers the built-in ones; a
user's own task or model registers the same way (import its module before training).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxnets.config import ConfigError


class Registry:
    """Builders by name for one kind of thing ("model", "task")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@REGISTRY.register("name")`` on a builder function."""

        def add(builder: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._builders and self._builders[name] is not builder:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return add

    def names(self) -> list[str]:
        return sorted(self._builders)

    def get(self, name: str, field: str) -> Callable[..., Any]:
        """The builder of ``name``; ``field`` (e.g. "model.name") is named in the error."""
        if name not in self._builders:
            raise ConfigError(f"{field}={name!r}: unknown {self.kind}; choose one of {self.names()}")
        return self._builders[name]

    def __contains__(self, name: str) -> bool:
        return name in self._builders


MODELS = Registry("model")
TASKS = Registry("task")


def build_model(model_config) -> Any:
    """The Flax module named by ``model_config.name``, built by its registered builder."""
    import jaxnets.models  # noqa: F401  (registers the built-in models)

    if not hasattr(model_config, "get"):
        raise ConfigError(f"model={model_config!r}: must be a group of fields (name, ...)")
    builder = MODELS.get(model_config.get("name", None), "model.name")
    try:
        return builder(model_config)
    except ConfigError:
        raise
    except ValueError as e:  # a builder's own range checks, e.g. the TCN's dropout
        raise ConfigError(f"model: {e}") from None


def build_task(config, mesh) -> Any:
    """The :class:`~jaxnets.train.task.Task` named by ``config.task`` for ``mesh``."""
    import jaxnets.tasks  # noqa: F401  (registers the built-in tasks)

    builder = TASKS.get(config.get("task", None), "task")
    try:
        return builder(config, mesh)
    except ConfigError:
        raise
    except ValueError as e:  # e.g. a data source refusing a batch larger than its split
        if type(e) is not ValueError:  # DataError and other specific errors keep their type
            raise
        raise ConfigError(str(e)) from None
