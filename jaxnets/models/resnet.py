"""ResNet backbones (He et al. 2016, the paper's [31]) returning named stage features, section 5.2.1.

FaceNet's backbone is ResNet-18 (v1.0-v2.4) or ResNet-50/101/152 (v2.5), with the levels
conv1 ... conv5 of He et al.'s Table 1, plus extra levels conv6 (and conv7) of section 5.2.1:
"one convolutional layer with stride 2, and 2 residual bottleneck layers used by ResNet-50 up
to ResNet-152". Built only from :mod:`jaxnets.nn` (our custom-VJP layers); ``grad`` reaches
every layer. Layout NCHW.

Shapes (R batch, input (R, 3, H, W); every stride-s layer maps H to ceil(H / s))::

    level  stride  layers                                          channels (width 1)
    conv1    2     7×7/2 conv (pad 3), BN, ReLU                    64
    pool     4     3×3/2 max-pool, pad 1 (with -inf)               64
    conv2    4     n2 blocks, stride 1                             64  (basic) / 256  (bottleneck)
    conv3    8     n3 blocks, stride 2 at the first                128 (basic) / 512
    conv4   16     n4 blocks, stride 2 at the first                256 (basic) / 1024
    conv5   32     n5 blocks, stride 2 at the first                512 (basic) / 2048
    conv6   64     3×3/2 conv (pad 1), BN, ReLU, 2 bottlenecks     = conv5's channels
    conv7  128     same again                                      = conv5's channels

``__call__(x, train)`` returns ``{"conv2": (R, C2, ceil(H/4), ceil(W/4)), ..., "conv5": ...}``
plus ``"conv6"``/``"conv7"`` when ``extra_levels`` is 1/2 (big_vision style: heads pick the
levels they need). There is no classification head (no global pool, no fc).

Choices the papers leave open, stated here:

* Bottlenecks put the stride on the 3×3 convolution (torchvision's "v1.5"; He et al. put it
  on the first 1×1). Projection shortcuts (1×1/s conv + BN) only where the shape changes.
* Convolutions have no bias: a BN follows each one. BN momentum 0.1 (eqs 38-39's λ) and
  ε = 1e-5, torchvision's defaults.
* torchvision's max-pool pads by 1; our ``max_pool2d`` has no padding, so the input is padded
  explicitly with -inf (``jnp.pad``, whose autodiff is exact: the VJP crops). A -inf is never a
  window's maximum, so the gradient reaches only real neurons, as with PyTorch's padding.
* conv6/conv7: the stride-2 convolution is 3×3, pad 1, keeping conv5's channel count C5, then
  BN and ReLU as every convolution of the backbone; the two bottlenecks have width C5/4 and
  expansion 4, so they map C5 -> C5 with identity shortcuts.
* ``width`` multiplies every channel count: c -> max(1, floor(c·width + 1/2)) (round half up)
  for the stem and each stage's base width; bottleneck outputs are 4 × the rounded base width,
  so the 4× expansion holds exactly at every width. ``width=1`` is the standard network.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets import layers
from jaxnets.nn.blocks import BasicBlock, Bottleneck
from jaxnets.nn.modules import BatchNorm, Conv2d, max_pool2d, relu
from jaxnets.registry import MODELS

#: depth -> (block kind, blocks in conv2..conv5), He et al. 2016, Table 1.
RESNET_STAGES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

#: Level name -> stride of its features relative to the input (ceil(H / stride) rows).
FEATURE_STRIDES: dict[str, int] = {"conv2": 4, "conv3": 8, "conv4": 16, "conv5": 32, "conv6": 64, "conv7": 128}

_BASE_WIDTHS = (64, 128, 256, 512)  # base width of conv2..conv5 (bottleneck outputs are 4×)


def scale_channels(c: int, width: float) -> int:
    """``c`` channels at width multiplier ``width``: max(1, floor(c·width + 1/2))."""
    return max(1, int(math.floor(c * width + 0.5)))


class ResNet(nn.Module):
    """ResNet-``depth`` backbone: x (R, 3, H, W) -> dict of level features (see module docstring).

    Fields: ``depth`` in {18, 34, 50, 101, 152}; ``width`` > 0 channel multiplier;
    ``extra_levels`` in {0, 1, 2} (conv6, conv7 of section 5.2.1); ``grad`` "custom" |
    "autodiff"; ``bn_momentum`` (λ of eqs 38-39), ``bn_eps``.
    """

    depth: int = 18
    width: float = 1.0
    extra_levels: int = 0
    grad: str = "custom"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5

    def __post_init__(self):
        if self.depth not in RESNET_STAGES:
            raise ValueError(f"depth={self.depth!r}: must be one of {sorted(RESNET_STAGES)}")
        if not (isinstance(self.width, (int, float)) and self.width > 0):
            raise ValueError(f"width={self.width!r}: must be a number > 0")
        if self.extra_levels not in (0, 1, 2):
            raise ValueError(f"extra_levels={self.extra_levels!r}: must be 0, 1 or 2")
        if self.grad not in layers.GRAD_MODES:
            raise ValueError(f"grad={self.grad!r}: must be 'custom' or 'autodiff'")
        super().__post_init__()

    @property
    def levels(self) -> tuple[str, ...]:
        """The keys ``__call__`` returns, finest first."""
        return tuple(f"conv{i}" for i in range(2, 6 + self.extra_levels))

    def feature_channels(self) -> dict[str, int]:
        """Channels C of each returned level (what an FPN's lateral 1×1 convolutions take)."""
        kind, _ = RESNET_STAGES[self.depth]
        expansion = 1 if kind == "basic" else Bottleneck.expansion
        chans = {f"conv{i + 2}": expansion * scale_channels(c, self.width) for i, c in enumerate(_BASE_WIDTHS)}
        for i in range(self.extra_levels):
            chans[f"conv{6 + i}"] = chans["conv5"]
        return chans

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        """x: (R, 3, H, W) -> {level: (R, C_level, ceil(H/stride), ceil(W/stride))}."""
        g, mom, eps = self.grad, self.bn_momentum, self.bn_eps
        kind, counts = RESNET_STAGES[self.depth]
        block_cls = BasicBlock if kind == "basic" else Bottleneck

        # conv1: 7×7/2 conv, BN, ReLU -> (R, 64w, H/2, W/2); 3×3/2 max-pool, pad 1 -> H/4.
        h = Conv2d(scale_channels(64, self.width), 7, 2, 3, grad=g, use_bias=False, name="conv1")(x)
        h = relu(BatchNorm(mom, eps, grad=g, name="bn1")(h, train), g)
        h = jnp.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-jnp.inf)
        h = max_pool2d(h, 3, 2, g)

        features: dict[str, jax.Array] = {}
        for stage, (n, base) in enumerate(zip(counts, _BASE_WIDTHS)):
            level = f"conv{stage + 2}"
            for i in range(n):
                stride = 2 if (i == 0 and stage > 0) else 1
                h = block_cls(scale_channels(base, self.width), stride, g, mom, eps, name=f"{level}_{i}")(h, train)
            features[level] = h  # (R, C_level, ceil(H/stride), ceil(W/stride))

        c5 = h.shape[1]
        for j in range(self.extra_levels):  # section 5.2.1: stride-2 conv + 2 bottlenecks
            level = f"conv{6 + j}"
            h = Conv2d(c5, 3, 2, 1, grad=g, use_bias=False, name=f"{level}_down")(h)
            h = relu(BatchNorm(mom, eps, grad=g, name=f"{level}_bn")(h, train), g)
            for i in range(2):
                h = Bottleneck(max(1, c5 // 4), 1, g, mom, eps, expansion=4, name=f"{level}_{i}")(h, train)
            features[level] = h
        return features


def variable_shapes(model: ResNet, image_size: int = 64) -> dict[str, Any]:
    """``{"params", "batch_stats"}`` as ``jax.ShapeDtypeStruct`` leaves, computing nothing
    (``jax.eval_shape`` of ``init``): parameter counts of ResNet-152 at no cost."""
    x = jax.ShapeDtypeStruct((1, 3, image_size, image_size), jnp.float32)
    return jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.PRNGKey(0), x)


def params_from_torchvision(state_dict, depth: int) -> dict[str, Any]:
    """A torchvision ``resnet{depth}`` ``state_dict()`` as ``{"params", "batch_stats"}`` for
    :class:`ResNet` (width 1, no extra levels); the ``fc`` head and ``num_batches_tracked``
    are dropped. Arrays are numpy float32 in our layout (torch's OIHW kernels are our C'×C×k×k).

    ``conv1``/``bn1`` -> stem; ``layer{s}.{i}.*`` -> ``conv{s+1}_{i}``; ``downsample.0/1`` ->
    ``downsample_conv``/``downsample_bn``; BN weight/bias/running_mean/running_var ->
    gamma/beta/mean/var.
    """
    import numpy as np

    if depth not in RESNET_STAGES:
        raise ValueError(f"depth={depth!r}: must be one of {sorted(RESNET_STAGES)}")
    bn_names = {"weight": ("params", "gamma"), "bias": ("params", "beta"),
                "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
    out: dict[str, Any] = {"params": {}, "batch_stats": {}}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "fc" or parts[-1] == "num_batches_tracked":
            continue
        # a copy: torch.Tensor.numpy() shares memory, and torch updates BN statistics in place
        arr = np.array(value.detach().cpu().numpy() if hasattr(value, "detach") else value, np.float32, copy=True)
        if parts[0].startswith("layer"):
            module = [f"conv{int(parts[0][5:]) + 1}_{parts[1]}"]
            rest = parts[2:]
            if rest[0] == "downsample":
                rest = ["downsample_conv" if rest[1] == "0" else "downsample_bn"] + rest[2:]
            module.append(rest[0])
        else:
            module, rest = [parts[0]], parts
        leaf = rest[-1]
        if "conv" in module[-1]:
            collection, name = "params", "w"
        else:
            collection, name = bn_names[leaf]
        node = out[collection]
        for m in module:
            node = node.setdefault(m, {})
        node[name] = arr
    return out


def resnet_from_config(mc) -> ResNet:
    """``config.model`` fields depth, width, extra_levels, grad, bn_momentum, bn_eps -> ResNet."""
    return ResNet(
        depth=int(mc.get("depth", 18)),
        width=float(mc.get("width", 1.0)),
        extra_levels=int(mc.get("extra_levels", 0)),
        grad=mc.get("grad", "custom"),
        bn_momentum=float(mc.get("bn_momentum", 0.1)),
        bn_eps=float(mc.get("bn_eps", 1e-5)),
    )


MODELS.register("resnet")(resnet_from_config)

__all__ = [
    "FEATURE_STRIDES",
    "RESNET_STAGES",
    "ResNet",
    "params_from_torchvision",
    "resnet_from_config",
    "scale_channels",
    "variable_shapes",
]
