"""The one list of the paper's ops: the ``__all__`` of each layer module, in ``OP_MODULES`` order.

``OP_NAMES``, the custom namespace (``CUSTOM``), ``reference.__all__``, the autodiff namespace
and the rows of ``jaxnets gradcheck`` all come from here.  To add an op: write it in a layer
module and list it in that module's ``__all__``; write its plain-``jnp`` twin (same name and
signature) in ``reference``; add its cases to ``jaxnets.gradcheck``.  tests/test_layers.py
checks that nothing was missed.
"""

from __future__ import annotations

import importlib

# Submodules of jaxnets.layers holding custom-VJP ops.  ``importlib`` (not ``from ... import``)
# because jaxnets.layers rebinds ``dense``, ``softmax``, ... to the functions of that name.
OP_MODULES = (
    "dense",
    "conv",
    "activation",
    "pool",
    "norm",
    "softmax",
    "losses",
    "temporal",
    "weight_norm",
    "dropout",
    "resample",
    "detection_losses",
)

CUSTOM = {
    name: getattr(module, name)
    for module in (importlib.import_module(f"jaxnets.layers.{m}") for m in OP_MODULES)
    for name in module.__all__
}

OP_NAMES: tuple[str, ...] = tuple(CUSTOM)

__all__ = ["OP_MODULES", "CUSTOM", "OP_NAMES"]
