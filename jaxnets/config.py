"""Loading experiment configs and applying ``--set`` overrides (nothing else lives here).

A config file is a Python module (e.g. ``experiments/mnist/cnn_fashion.py``) whose
``get_config(smoke=False)`` returns an ``ml_collections.ConfigDict``; ``smoke=True`` asks for
the seconds-long form the tests run end to end (each family defines it in its
``experiments/<part>/common.py``). A file inside a package (``experiments/`` has
``__init__.py`` files) is imported by its dotted name, so configs share their family's
``common.py`` with ordinary imports; any other file is imported from its path. Nothing is
``exec``-ed into globals. Any field can then be overridden from the command line:

    jaxnets train experiments/mnist/cnn_mnist.py --set num_steps=2000 --set optimizer.learning_rate=0.01
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys
from collections.abc import Iterable

import ml_collections


#: The source checkout this package runs from (holds experiments/ when installed with -e).
CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A config file or an override is malformed; the message names the file or argument."""


def _package_name(path: pathlib.Path) -> tuple[pathlib.Path, str] | None:
    """(root on sys.path, dotted module name) if ``path`` sits in a package, else None."""
    parts, folder = [path.stem], path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return (folder, ".".join(parts)) if len(parts) > 1 else None


def _import(path: pathlib.Path):
    package = _package_name(path)
    if package is not None:
        root, name = package
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        existing = sys.modules.get(name)
        if existing is not None and pathlib.Path(getattr(existing, "__file__", "") or "").resolve() != path:
            raise ConfigError(f"{path}: module {name} is already imported from {existing.__file__}")
        return importlib.import_module(name)
    for root in (pathlib.Path.cwd(), CHECKOUT):  # a lone config may import experiments.<part>.common
        if (root / "experiments" / "__init__.py").is_file() and str(root) not in sys.path:
            sys.path.append(str(root))
    name = "jaxnets_config_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python config file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_config(path: str | pathlib.Path, *, smoke: bool = False) -> ml_collections.ConfigDict:
    """Import ``path`` and return its ``get_config()`` (``get_config(smoke=True)`` with ``smoke``)."""
    path = pathlib.Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise ConfigError(f"config file not found: {path}" if not path.is_file() else f"{path}: not a Python config file")
    try:
        module = _import(path)
    except ConfigError:
        raise
    except Exception as e:  # a syntax or import error inside the user's config file
        raise ConfigError(f"{path}: failed to import: {type(e).__name__}: {e}") from e
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path}: defines no get_config()")
    try:
        config = module.get_config(smoke=True) if smoke else module.get_config()
    except TypeError as e:
        if smoke and "smoke" in str(e):
            raise ConfigError(f"{path}: get_config() has no smoke form (a `smoke` argument)") from None
        raise ConfigError(f"{path}: get_config() failed: {e}") from e
    except Exception as e:
        raise ConfigError(f"{path}: get_config() failed: {type(e).__name__}: {e}") from e
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as fashion_mnist


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Apply ``key.sub=value`` overrides; an unknown key or a wrong type names the argument."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. num_steps=2000")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = config
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
                raise ConfigError(f"override {item!r}: unknown config field {key!r}")
            node = node[p]
        leaf = parts[-1]
        if leaf not in node:
            raise ConfigError(f"override {item!r}: unknown config field {key!r}")
        value = _parse_value(text)
        old = node[leaf]
        if isinstance(old, bool) and not isinstance(value, bool):
            raise ConfigError(f"override {item!r}: {key} is a bool; use True or False")
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(value, (int, float)):
            raise ConfigError(f"override {item!r}: {key} must be a number, got {text!r}")
        if isinstance(old, str) and not isinstance(value, str):
            value = text
        try:
            node[leaf] = value
        except (TypeError, ValueError) as e:
            raise ConfigError(f"override {item!r}: {e}") from e
    return config
