"""Residual blocks of He et al. 2016 ("Deep Residual Learning", the paper's [31]) as linen modules.

Built only from :mod:`jaxnets.nn.modules` (Conv2d eq 22, BatchNorm eqs 34-39, ReLU eq 5), so
``grad="custom" | "autodiff"`` reaches every layer. The residual sum ``F(x) + shortcut(x)`` is a
plain ``+`` of two same-shape arrays: its VJP hands the delta-error unchanged to both branches,
which ``jax.grad`` does exactly.

Layout NCHW: x (R, C, H, W) -> (R, C_out, H', W'), H' = ceil(H / stride) (every spatial
convolution is 3×3 with padding 1, the shortcut 1×1 with padding 0; both give
floor((H - 1) / s) + 1 = ceil(H / s)).

Convolutions carry no bias (``use_bias=False``): each is followed by batch norm, whose β is the
bias. The shortcut is the identity when the shape is unchanged and otherwise a projection,
1×1 convolution with the block's stride + BN (He et al.'s option B; torchvision's
``downsample``). Module names follow torchvision's (``conv1``, ``bn1``, ..., ``downsample_conv``,
``downsample_bn``) so :func:`jaxnets.models.resnet.params_from_torchvision` maps weights by name.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxnets.nn.modules import BatchNorm, Conv2d, relu


class _Residual(nn.Module):
    """Shared shortcut + sum + ReLU; subclasses define ``out_channels`` and ``residual``."""

    def shortcut(self, x: jax.Array, out_channels: int, train: bool) -> jax.Array:
        """Identity if (C, stride) leave the shape unchanged, else 1×1/stride conv + BN."""
        if self.stride == 1 and x.shape[1] == out_channels:
            return x
        g = self.grad
        h = Conv2d(out_channels, 1, self.stride, 0, grad=g, use_bias=False, name="downsample_conv")(x)
        return BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="downsample_bn")(h, train)


class BasicBlock(_Residual):
    """ResNet-18/34 block: 3×3/s conv-BN-ReLU, 3×3 conv-BN, + shortcut, ReLU.

    x: (R, C, H, W) -> (R, features, ceil(H/s), ceil(W/s)).
    """

    features: int
    stride: int = 1
    grad: str = "custom"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5

    expansion = 1  # output channels = expansion * features

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        g, c = self.grad, self.features
        h = Conv2d(c, 3, self.stride, 1, grad=g, use_bias=False, name="conv1")(x)  # (R, c, H', W')
        h = relu(BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="bn1")(h, train), g)
        h = Conv2d(c, 3, 1, 1, grad=g, use_bias=False, name="conv2")(h)  # (R, c, H', W')
        h = BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="bn2")(h, train)
        return relu(h + self.shortcut(x, c, train), g)


class Bottleneck(_Residual):
    """ResNet-50/101/152 block: 1×1 conv-BN-ReLU (C -> features), 3×3/s conv-BN-ReLU,
    1×1 conv-BN (features -> expansion·features), + shortcut, ReLU.

    The stride sits on the 3×3 convolution, as in torchvision ("ResNet v1.5"); He et al.'s
    original put it on the first 1×1. Parameter counts are the same either way.

    x: (R, C, H, W) -> (R, expansion·features, ceil(H/s), ceil(W/s)).
    """

    features: int
    stride: int = 1
    grad: str = "custom"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    expansion: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        g, c = self.grad, self.features
        out = self.expansion * c
        h = Conv2d(c, 1, 1, 0, grad=g, use_bias=False, name="conv1")(x)  # (R, c, H, W)
        h = relu(BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="bn1")(h, train), g)
        h = Conv2d(c, 3, self.stride, 1, grad=g, use_bias=False, name="conv2")(h)  # (R, c, H', W')
        h = relu(BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="bn2")(h, train), g)
        h = Conv2d(out, 1, 1, 0, grad=g, use_bias=False, name="conv3")(h)  # (R, 4c, H', W')
        h = BatchNorm(self.bn_momentum, self.bn_eps, grad=g, name="bn3")(h, train)
        return relu(h + self.shortcut(x, out, train), g)


__all__ = ["BasicBlock", "Bottleneck"]
