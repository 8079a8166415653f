"""The two models of section 4: the CNN of Table 1 and the feed-forward net of Table 2.

Both follow the paper's layer pattern "BN → convolution/dense → ReLU", with the last layer
feeding a softmax instead of a ReLU (section 4.2.1: "... proceeded by a ReLU activation layer,
except the last layer which uses a softmax activation"). ``__call__`` returns the logits
(R, 10), the input of the softmax; the loss is the fused, numerically stable
softmax–cross-entropy (eqs 51-54), and :func:`jaxnets.models.predict` returns the softmax probabilities.

Input: x (R, 1, 28, 28), float in [0, 1], NCHW as in the paper.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import layers
from jaxnets.config import ConfigError
from jaxnets.nn import BatchNorm, Conv2d, Dense, max_pool2d, relu
from jaxnets.registry import MODELS

#: Parameter counts printed in the paper's Table 3.
PAPER_PARAMS = {"mnist_cnn": 153_792, "mnist_ffn": 167_168}


class MnistCNN(nn.Module):
    """Table 1: six 3×3 convolutions (stride 1, no padding, 64 channels), 2×2/2 max-pooling twice.

    Shapes (R batch)::

        input            R×1×28×28
        BN+conv+ReLU     R×64×26×26
        BN+conv+ReLU     R×64×24×24      -> features["stage1"] after pooling: R×64×12×12
        maxpool 2/2      R×64×12×12
        BN+conv+ReLU     R×64×10×10
        BN+conv+ReLU     R×64×8×8
        BN+conv+ReLU     R×64×6×6
        maxpool 2/2      R×64×3×3        -> features["stage2"]
        BN+conv          R×10×1×1        -> logits R×10 (softmax in the loss / models.predict)
    """

    num_classes: int = 10
    channels: int = 64
    grad: str = "custom"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        g = self.grad

        def block(h, features):
            h = BatchNorm(self.bn_momentum, self.bn_eps, grad=g)(h, train)
            return Conv2d(features, 3, 1, 0, grad=g)(h)

        features = {}
        h = relu(block(x, self.channels), g)  # R×64×26×26
        h = relu(block(h, self.channels), g)  # R×64×24×24
        h = max_pool2d(h, 2, 2, g)  # R×64×12×12
        features["stage1"] = h
        h = relu(block(h, self.channels), g)  # R×64×10×10
        h = relu(block(h, self.channels), g)  # R×64×8×8
        h = relu(block(h, self.channels), g)  # R×64×6×6
        h = max_pool2d(h, 2, 2, g)  # R×64×3×3
        features["stage2"] = h
        h = block(h, self.num_classes)  # R×10×1×1
        logits = h.reshape(h.shape[0], self.num_classes)  # R×10
        return (logits, features) if return_features else logits


class MnistFFN(nn.Module):
    """Table 2: six fully connected layers (128, 128, 128, 128, 128, 10), each preceded by BN.

    Shapes: input R×1×28×28 flattened to R×784 -> 5 × (BN+FC+ReLU) R×128 -> BN+FC R×10 (logits).
    """

    num_classes: int = 10
    hidden: int = 128
    depth: int = 6
    grad: str = "custom"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        g = self.grad
        h = x.reshape(x.shape[0], -1)  # R×784
        features = {}
        for i in range(self.depth):
            last = i == self.depth - 1
            h = BatchNorm(self.bn_momentum, self.bn_eps, grad=g)(h, train)
            h = Dense(self.num_classes if last else self.hidden, grad=g)(h)
            if not last:
                h = relu(h, g)  # R×128
                features[f"hidden{i + 1}"] = h
        return (h, features) if return_features else h


@dataclasses.dataclass(frozen=True)
class ParamReport:
    """Parameter counts by kind, beside the paper's figure."""

    name: str
    weights: int  # conv kernels / dense matrices
    biases: int  # conv / dense biases
    batch_norm: int  # γ and β
    paper: int

    @property
    def total(self) -> int:
        return self.weights + self.biases + self.batch_norm

    def describe(self) -> str:
        match = "equals" if self.weights == self.paper else "differs from"
        return (
            f"{self.name}: {self.total:,} trainable parameters = {self.weights:,} weights + "
            f"{self.biases:,} biases + {self.batch_norm:,} batch-norm γ/β. Paper (Table 3): {self.paper:,}, "
            f"which {match} our weight count alone: the paper counted kernel/matrix weights only, "
            f"leaving out biases and batch-norm parameters."
        )


def param_report(name: str, params) -> ParamReport:
    """Split a parameter tree of a section-4 model into weights, biases and BN parameters."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    counts = {"w": 0, "b": 0, "gamma": 0, "beta": 0}
    for path, leaf in flat:
        counts[path[-1].key] += int(np.prod(leaf.shape))
    return ParamReport(name, counts["w"], counts["b"], counts["gamma"] + counts["beta"], PAPER_PARAMS[name])


def variable_shapes(model: nn.Module):
    """``{"params", "batch_stats"}`` as ``jax.ShapeDtypeStruct`` leaves, computing nothing."""
    x = jax.ShapeDtypeStruct((1, 1, 28, 28), jnp.float32)
    return jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.PRNGKey(0), x)


def _build(cls):
    def build(mc) -> nn.Module:
        """``config.model`` -> the section-4 model: fields grad, bn_momentum, bn_eps, num_classes."""
        if mc.get("grad", "custom") not in layers.GRAD_MODES:
            raise ConfigError(f"model.grad={mc.get('grad')!r}: must be 'custom' or 'autodiff'")
        kwargs = dict(grad=mc.get("grad", "custom"), bn_momentum=mc.get("bn_momentum", 0.1), bn_eps=mc.get("bn_eps", 1e-5))
        if "num_classes" in mc:
            kwargs["num_classes"] = mc.num_classes
        return cls(**kwargs)

    return build


MODELS.register("mnist_cnn")(_build(MnistCNN))
MODELS.register("mnist_ffn")(_build(MnistFFN))
