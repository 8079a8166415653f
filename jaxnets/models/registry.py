"""``build_model(config.model)``: the model named by ``config.model.name``.

Each model registers its own builder next to its code (``@MODELS.register("name")``, see
:mod:`jaxnets.registry`):

======================  ==============================================  ========================
name                    model                                           builder
======================  ==============================================  ========================
``mnist_cnn``           :class:`~jaxnets.models.mnist.MnistCNN` (Tab 1)  ``jaxnets/models/mnist.py``
``mnist_ffn``           :class:`~jaxnets.models.mnist.MnistFFN` (Tab 2)  ``jaxnets/models/mnist.py``
``tcn``                 :class:`~jaxnets.models.tcn.SequenceClassifier`  ``jaxnets/models/tcn.py``
                        (§6, Tables 5-6)                                 (``tcn_model_config``)
``resnet``              :class:`~jaxnets.models.resnet.ResNet` (§5.2.1   ``jaxnets/models/resnet.py``
                        backbone; fields depth, width, extra_levels)     (``resnet_from_config``)
======================  ==============================================  ========================
"""

from jaxnets.models import resnet  # noqa: F401  (registers "resnet")
from jaxnets.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
