"""FaceNet's classification and regression heads (§5.2.1), shared across pyramid levels, with the
neck in front of them: the FPN (§5.3.3, v1.3+) or a per-level 1×1 projection (v1.0-v1.2).

Each head is 4 residual bottlenecks (§5.2.1: "constructed out of 4 residual bottleneck layers")
and a final 3×3 convolution; with ``head_upsample`` (v2.1+, §5.3.5: "after the first 2 residual
bottleneck layer, the feature maps were upscaled by a factor of 2") a bilinear ×2
(align_corners=False) sits between bottleneck 2 and 3, so a level of size (H, W) predicts on a
(2H, 2W) grid.  **One set of parameters serves every level** (the same head is applied to each
level's map, as in RetinaNet); with ``head_norm="batch"`` only the batch norms are per level
(``bn<i>_<level>``, as EfficientDet does: levels have different statistics).

Shapes, for a level l of size (H_l, W_l) and A = ``num_anchors`` anchors per position::

    neck:        {level: (R, C_l, H_l, W_l)}  ->  {level: (R, channels, H_l, W_l)}
    head body:   (R, channels, H_l, W_l)      ->  (R, channels, H'_l, W'_l)   H' = H or 2H
    final conv:  -> (R, A·K, H'_l, W'_l), channel a·K + k = output k of anchor a
    flatten:     -> (R, H'_l·W'_l·A, K), row (y·W'_l + x)·A + a
    concatenate over levels (in ``levels`` order, fine to coarse) -> (R, N, K), N = sum_l H'_l W'_l A

with K = ``num_logits`` (classification) or 4 (regression: the centre/size offsets of
:mod:`jaxnets.detection.anchors`).  **Ordering convention**: level by level (``levels`` order),
then y (row), then x (column), then anchor -- the order in which the anchor generator lists its
anchors, so prediction n belongs to anchor n.  ``head_grid_sizes`` gives each level's
(H'_l, W'_l), the grid the anchors must be laid on (with ``head_upsample`` the grid's stride is
half the level's).

**Residual bottleneck** (He et al. 2016, §5.2.1): 1×1 conv (channels -> channels/4), ReLU,
3×3 conv (pad 1), ReLU, 1×1 conv (-> channels), + identity, ReLU.  With ``head_norm="batch"``
each conv is followed by batch norm (eqs 34-39) and has no bias.

**Initialisation.**  The body of each head as RetinaNet (Lin et al. 2017 §4.1; the paper:
"similar to RetinaNet"): every bottleneck convolution N(0, 0.01²) weights, zero bias
(``head_init="normal"``; ``"he"``: He-normal weights).  The final convolutions: **zero weights
by default** (``final_init="zeros"``), the regression conv's bias 0 and the classification
conv's bias the prior bias below, so at initialisation every anchor's face probability is
exactly π and every offset 0, whatever the scale of the features -- the property §5.2.1 asks
for.  ``final_init="normal"`` is RetinaNet's N(0, 0.01²): the logits are then b + ε with ε of
standard deviation 0.01·sqrt(9·channels·E[x²]), and the mean probability
E[sigmoid(b + ε)] ≈ π E[e^ε] = π e^(σ²/2) exceeds π.  Measured: 1.03 π with 8 channels on
unit-scale features (tests/test_fpn_heads.py); with 256 channels on freshly initialised
ResNet-18 conv4/conv5 features of a 128² input (batch-statistics BN, RMS 1.3) σ = 1.06 and the
mean is 2.0 π (largest anchor 0.021); with the running statistics of a fresh network
(``train=False``) σ = 26 and the mean 0.5.  Zero final weights
still get gradients (δ times the head's activations); the body's gradients are 0 only until the
first update moves them off zero.

**Prior bias** (§5.2.1, RetinaNet §3.3), so that at initialisation every anchor's face
probability is π = ``prior`` (0.001):

* 1 logit (sigmoid, BCE/focal, v1.1+): ``b = -log((1 - π) / π)``, so sigmoid(b) = π.
* 2 logits (softmax, v1.0), index 0 = background, index 1 = face: ``b = (0, -log((1 - π) / π))``,
  so softmax(b)_1 = e^b1 / (1 + e^b1) = sigmoid(b1) = π exactly.  The paper writes
  ``b = -log(C(1 - π) / π)`` with C = 2 classes; put on the face logit (background 0) that gives
  π / (C(1 - π) + π) = π / (2 - π) ≈ π / 2, not π, so we use the derivation above (only the
  difference b1 - b0 = log(π / (1 - π)) matters to a softmax).

Every op is :mod:`jaxnets.nn` / :mod:`jaxnets.layers` (convolution eq 22, ReLU eq 5, batch norm,
bilinear upsampling) with ``grad="custom" | "autodiff"``; the residual sum, the flattening
(reshape/transpose) and the concatenation are plain ``jnp``, whose autodiff VJPs are exact
(identity, inverse permutation, split).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxnets import layers
from jaxnets.detection.anchors import flatten_level
from jaxnets.models.fpn import FPN, FPN_UPSAMPLE, LevelProjection, check_features
from jaxnets.nn import BatchNorm, he_normal

__all__ = [
    "HEAD_NORMS",
    "HEAD_INITS",
    "FINAL_INITS",
    "prior_bias",
    "flatten_predictions",
    "head_grid_sizes",
    "HeadConv",
    "HeadBottleneck",
    "DenseHead",
    "FaceHeads",
    "face_heads_config",
    "face_heads_from_config",
]

HEAD_NORMS = ("none", "batch")
HEAD_INITS = ("normal", "he")
FINAL_INITS = ("normal", "zeros")
RETINANET_STD = 0.01  # σ of RetinaNet's head weight initialisation, N(0, σ²)


def prior_bias(prior: float, num_logits: int) -> tuple[float, ...]:
    """The classification conv's bias per anchor, (K,), so that every anchor starts at face
    probability π = ``prior`` (see the module docstring).

    K = 1: ``(-log((1 - π) / π),)`` (sigmoid); K = 2: ``(0, -log((1 - π) / π))`` (softmax,
    index 1 = face).
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must lie in (0, 1), got {prior}")
    b = -math.log((1.0 - prior) / prior)
    if num_logits == 1:
        return (b,)
    if num_logits == 2:
        return (0.0, b)
    raise ValueError(f"num_logits must be 1 (sigmoid) or 2 (softmax), got {num_logits}")


def flatten_predictions(y: jax.Array, num_anchors: int) -> jax.Array:
    """(R, A·K, H, W), channel a·K + k  ->  (R, H·W·A, K), row (y·W + x)·A + a: the anchor order
    of :func:`jaxnets.detection.anchors.flatten_level`, which does the work."""
    if y.shape[1] % num_anchors:
        raise ValueError(f"num_anchors: {y.shape[1]} channels are not a multiple of {num_anchors} anchors")
    return flatten_level(y, y.shape[1] // num_anchors)


def head_grid_sizes(
    feature_shapes: Mapping[str, Sequence[int]], levels: Sequence[str], head_upsample: bool = False
) -> tuple[tuple[int, int], ...]:
    """The (H'_l, W'_l) prediction grid of each level, in ``levels`` order: the feature's
    (H_l, W_l) (from (R, C, H_l, W_l) shapes), doubled with ``head_upsample``.  The heads' output
    has N = A · sum_l H'_l W'_l rows."""
    f = 2 if head_upsample else 1
    return tuple((f * int(feature_shapes[lvl][2]), f * int(feature_shapes[lvl][3])) for lvl in levels)


def _upsample_bilinear(x: jax.Array, factor: int, grad: str) -> jax.Array:
    """(R, C, H, W) -> (R, C, factor·H, factor·W), bilinear, align_corners=False."""
    return layers.get_ops(grad).upsample_bilinear(x, factor)


class HeadConv(nn.Module):
    """Convolution (eq 22) with a chosen initialisation; x: (R, C, H, W) -> (R, C', H', W').

    ``init``: "normal" (N(0, 0.01²), RetinaNet), "he" (He-normal) or "zeros" for the weights
    ``w`` (C', C, k, k); ``bias``: the initial value of ``b`` (C',), tiled if shorter (a
    per-anchor bias of K values repeats A times), or None (no bias).
    """

    features: int
    kernel_size: int = 3
    padding: int = 1
    init: str = "normal"
    bias: tuple[float, ...] | None = (0.0,)
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.init == "normal":
            w_init = nn.initializers.normal(RETINANET_STD)
        elif self.init == "he":
            w_init = he_normal((1, 2, 3), 0)
        elif self.init == "zeros":
            w_init = nn.initializers.zeros
        else:
            raise ValueError(f"init={self.init!r}: choose 'normal', 'he' or 'zeros'")
        k = self.kernel_size
        w = self.param("w", w_init, (self.features, x.shape[1], k, k), jnp.float32)
        b = None
        if self.bias is not None:
            if self.features % len(self.bias):
                raise ValueError(f"bias of {len(self.bias)} values does not tile {self.features} channels")
            b0 = np.tile(np.asarray(self.bias, np.float32), self.features // len(self.bias))
            b = self.param("b", lambda _key, shape, dtype: jnp.asarray(b0, dtype), b0.shape, jnp.float32)
            b = b.astype(x.dtype)
        ops = layers.get_ops(self.grad)
        return ops.conv2d(x, w.astype(x.dtype), b, stride=1, padding=self.padding)


class HeadBottleneck(nn.Module):
    """Residual bottleneck of the heads: x (R, channels, H, W) -> (R, channels, H, W).

    ``relu(x + conv3(relu(conv2(relu(conv1(x))))))`` with conv1 1×1 (-> channels/4), conv2 3×3,
    conv3 1×1 (-> channels); ``norm="batch"`` adds batch norm after each conv (no conv bias),
    one per pyramid ``level`` (``bn<i>_<level>``) while the convolutions are shared.
    """

    channels: int
    norm: str = "none"
    init: str = "normal"
    grad: str = "custom"

    def _norm(self, h: jax.Array, i: int, level: str, train: bool) -> jax.Array:
        if self.norm == "none":
            return h
        return BatchNorm(grad=self.grad, name=f"bn{i}_{level}")(h, train)

    @nn.compact
    def __call__(self, x: jax.Array, level: str, train: bool) -> jax.Array:
        if x.shape[1] != self.channels:
            raise ValueError(f"HeadBottleneck: input has {x.shape[1]} channels, expected {self.channels}")
        g, c = self.grad, self.channels
        mid = max(1, c // 4)
        bias = (0.0,) if self.norm == "none" else None
        h = HeadConv(mid, 1, 0, self.init, bias, g, name="conv1")(x)  # (R, c/4, H, W)
        h = layers.get_ops(g).relu(self._norm(h, 1, level, train))
        h = HeadConv(mid, 3, 1, self.init, bias, g, name="conv2")(h)  # (R, c/4, H, W)
        h = layers.get_ops(g).relu(self._norm(h, 2, level, train))
        h = HeadConv(c, 1, 0, self.init, bias, g, name="conv3")(h)  # (R, c, H, W)
        h = self._norm(h, 3, level, train)
        return layers.get_ops(g).relu(h + x)


class DenseHead(nn.Module):
    """One head (classification or regression), applied with the same parameters to every level.

    features: {level: (R, channels, H_l, W_l)} (dict order = level order) ->
    (R, N, K), N = sum_l H'_l W'_l A, rows ordered (level, y, x, anchor); K = ``outputs``.
    ``final_bias``: the final conv's initial bias per anchor (K values), e.g. :func:`prior_bias`.
    """

    outputs: int
    num_anchors: int
    channels: int
    num_blocks: int = 4
    upsample: bool = False
    upsample_after: int = 2
    norm: str = "none"
    init: str = "normal"
    final_init: str = "zeros"
    final_bias: tuple[float, ...] = (0.0,)
    grad: str = "custom"

    @nn.compact
    def __call__(self, features: Mapping[str, jax.Array], train: bool = False) -> jax.Array:
        blocks = [
            HeadBottleneck(self.channels, self.norm, self.init, self.grad, name=f"block{i + 1}")
            for i in range(self.num_blocks)
        ]
        final = HeadConv(
            self.num_anchors * self.outputs, 3, 1, self.final_init, self.final_bias, self.grad, name="final"
        )
        out = []
        for level, x in features.items():  # x: (R, channels, H_l, W_l)
            for i, block in enumerate(blocks):
                if self.upsample and i == self.upsample_after:
                    x = _upsample_bilinear(x, 2, self.grad)  # (R, channels, 2H_l, 2W_l)
                x = block(x, level, train)
            if self.upsample and self.upsample_after == self.num_blocks:
                x = _upsample_bilinear(x, 2, self.grad)
            out.append(flatten_predictions(final(x), self.num_anchors))  # (R, H'W'A, K)
        return jnp.concatenate(out, axis=1)  # (R, N, K)


class FaceHeads(nn.Module):
    """Neck + classification head + regression head of FaceNet (§5.2.1, §5.3.3, §5.3.5).

    features: {level: (R, C_l, H_l, W_l)} from the backbone (extra levels ignored) ->
    ``{"logits": (R, N, num_logits), "offsets": (R, N, 4)}``, N = A · sum_l H'_l W'_l, rows
    ordered (level in ``levels`` order, y, x, anchor) -- see the module docstring.

    Fields: ``levels`` (fine to coarse), ``channels`` (neck and head width; RetinaNet 256),
    ``use_fpn`` (False: v1.0-v1.2's per-level 1×1 projection), ``fpn_upsample``
    ("nearest" | "bilinear"), ``num_anchors`` A, ``num_logits`` (1: sigmoid, 2: softmax with
    index 1 = face), ``head_upsample`` (v2.1+), ``head_blocks`` (4), ``head_norm``
    ("none" | "batch"), ``head_init``, ``final_init``, ``prior`` π, ``grad``.
    """

    levels: tuple[str, ...]
    channels: int = 256
    use_fpn: bool = True
    fpn_upsample: str = "nearest"
    num_anchors: int = 6
    num_logits: int = 1
    head_upsample: bool = False
    head_blocks: int = 4
    head_norm: str = "none"
    head_init: str = "normal"
    final_init: str = "zeros"
    prior: float = 0.001
    grad: str = "custom"

    def check(self) -> None:
        """ValueError naming the first bad field."""
        if self.grad not in layers.GRAD_MODES:
            raise ValueError(f"grad must be one of {layers.GRAD_MODES}, got {self.grad!r}")
        if len(self.levels) == 0 or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be a non-empty tuple of unique names, got {self.levels!r}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.fpn_upsample not in FPN_UPSAMPLE:
            raise ValueError(f"fpn_upsample={self.fpn_upsample!r}: choose one of {FPN_UPSAMPLE}")
        if self.num_anchors < 1:
            raise ValueError(f"num_anchors must be >= 1, got {self.num_anchors}")
        prior_bias(self.prior, self.num_logits)  # checks prior and num_logits
        if self.head_blocks < (2 if self.head_upsample else 1):
            need = ">= 2 with head_upsample (the ×2 follows bottleneck 2)" if self.head_upsample else ">= 1"
            raise ValueError(f"head_blocks must be {need}, got {self.head_blocks}")
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm={self.head_norm!r}: choose one of {HEAD_NORMS}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init={self.head_init!r}: choose one of {HEAD_INITS}")
        if self.final_init not in FINAL_INITS:
            raise ValueError(f"final_init={self.final_init!r}: choose one of {FINAL_INITS}")

    def grid_sizes(self, features: Mapping[str, jax.Array]) -> tuple[tuple[int, int], ...]:
        """Each level's prediction grid (H'_l, W'_l), in ``levels`` order (for the anchors)."""
        return head_grid_sizes({k: v.shape for k, v in features.items()}, self.levels, self.head_upsample)

    @nn.compact
    def __call__(self, features: Mapping[str, jax.Array], train: bool = False) -> dict[str, jax.Array]:
        self.check()
        check_features(features, self.levels)
        levels, g, c = tuple(self.levels), self.grad, self.channels
        if self.use_fpn:
            neck = FPN(levels, c, self.fpn_upsample, g, name="fpn")(features)
        else:
            neck = LevelProjection(levels, c, g, name="projection")(features)
        neck = {lvl: neck[lvl] for lvl in levels}  # (R, channels, H_l, W_l), fine to coarse
        common = dict(
            num_anchors=self.num_anchors,
            channels=c,
            num_blocks=self.head_blocks,
            upsample=self.head_upsample,
            norm=self.head_norm,
            init=self.head_init,
            final_init=self.final_init,
            grad=g,
        )
        logits = DenseHead(
            self.num_logits, final_bias=prior_bias(self.prior, self.num_logits), name="cls_head", **common
        )(neck, train)  # (R, N, K)
        offsets = DenseHead(4, final_bias=(0.0,), name="reg_head", **common)(neck, train)  # (R, N, 4)
        return {"logits": logits, "offsets": offsets}


_DEFAULTS = dict(
    levels=("conv2", "conv3", "conv4", "conv5", "conv6"),
    channels=256,
    use_fpn=True,
    fpn_upsample="nearest",
    num_anchors=6,
    num_logits=1,
    head_upsample=False,
    head_blocks=4,
    head_norm="none",
    head_init="normal",
    final_init="zeros",
    prior=0.001,
    grad="custom",
)


def face_heads_config(**overrides) -> ml_collections.ConfigDict:
    """The neck/heads fields of a detector's model config (defaults: v1.3-like, conv2-conv6,
    FPN 256 wide, 6 anchors, 1 logit, π = 0.001); unknown fields raise ValueError."""
    unknown = sorted(set(overrides) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown face-heads config fields {unknown}; known: {sorted(_DEFAULTS)}")
    fields = dict(_DEFAULTS, **overrides)
    fields["levels"] = tuple(fields["levels"])
    return ml_collections.ConfigDict(fields)


def face_heads_from_config(mc) -> FaceHeads:
    """The :class:`FaceHeads` a config describes (fields of :func:`face_heads_config`; missing
    fields take its defaults, other keys of ``mc`` are ignored)."""
    get = mc.get if hasattr(mc, "get") else (lambda k, d: getattr(mc, k, d))
    # each field cast to its default's type (tuple, int, bool, str, float)
    heads = FaceHeads(**{k: type(d)(get(k, d)) for k, d in _DEFAULTS.items()})
    heads.check()
    return heads
