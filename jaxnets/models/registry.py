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
======================  ==============================================  ========================
"""

from jaxnets.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
