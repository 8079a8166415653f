"""Model registry: ``build_model(config.model)`` builds the model named by ``config.model.name``.

======================  ==============================================  ========================
name                    model                                           config fields
======================  ==============================================  ========================
``mnist_cnn``           :class:`~jaxnets.models.mnist.MnistCNN` (Tab 1)  grad, bn_momentum, bn_eps,
``mnist_ffn``           :class:`~jaxnets.models.mnist.MnistFFN` (Tab 2)  num_classes
``tcn``                 :class:`~jaxnets.models.tcn.SequenceClassifier`  see ``tcn_model_config``
                        (§6, Tables 5-6)
======================  ==============================================  ========================
"""

from __future__ import annotations

import flax.linen as nn

from jaxnets.models.mnist import MnistCNN, MnistFFN
from jaxnets.models.tcn import SequenceClassifier, build_tcn

#: Model classes by ``config.model.name``.
MODELS = {"mnist_cnn": MnistCNN, "mnist_ffn": MnistFFN, "tcn": SequenceClassifier}


def _build_mnist(mc) -> nn.Module:
    kwargs = dict(grad=mc.grad, bn_momentum=mc.bn_momentum, bn_eps=mc.bn_eps)
    if "num_classes" in mc:
        kwargs["num_classes"] = mc.num_classes
    return MODELS[mc.name](**kwargs)


_BUILDERS = {"mnist_cnn": _build_mnist, "mnist_ffn": _build_mnist, "tcn": build_tcn}


def build_model(model_config) -> nn.Module:
    """Build the model named by ``model_config.name`` (a key of :data:`MODELS`) from its fields.

    Raises ``ValueError`` naming the field for an unknown name or a bad ``grad``.
    """
    name = model_config.name
    if name not in MODELS:
        raise ValueError(f"model.name={name!r}: unknown model; choose one of {sorted(MODELS)}")
    if model_config.grad not in ("custom", "autodiff"):
        raise ValueError(f"model.grad={model_config.grad!r}: must be 'custom' or 'autodiff'")
    return _BUILDERS[name](model_config)
