"""Feature pyramid network (Lin et al. 2017, the paper's [30]) over a backbone's named features
(§5.3.3, FaceNet v1.3+), and the plain per-level projection the FPN-less rows use (v1.0-v1.2).

Input: a dict of named backbone features, as :mod:`jaxnets.models.resnet` returns them, NCHW::

    {"conv2": (R, C2, H/4, W/4), "conv3": (R, C3, H/8, W/8), ..., "conv7": (R, C7, H/128, W/128)}

``levels`` (a config field, e.g. ``("conv2", ..., "conv6")`` for v1.0-v1.9 or
``("conv3", ..., "conv7")`` for v2.0-v2.3) picks the levels, listed **fine to coarse**; every
level is ``ceil(H_finer / 2)`` of the one before it when the backbone's stride-2 convolutions pad
by 1 (any coarser-or-equal size is accepted by the nearest mode, see below).

The top-down pathway (Lin et al. §3, Fig. 3), for levels l = 1 (finest) .. L (coarsest)::

    M_L = lateral_L(C_L)                              lateral: 1×1 conv, C_l -> channels
    M_l = lateral_l(C_l) + up(M_{l+1})                up: ×2 nearest (default) or bilinear
    P_l = smooth_l(M_l)                               smooth: 3×3 conv, padding 1, no ReLU

Every output P_l is (R, channels, H_l, W_l), the size of its backbone level.  The sum is a
plain ``+`` of two same-shape arrays (its VJP passes the delta-error to both terms unchanged,
which ``jax.grad`` does exactly); the nearest upsampling is an index gather (``jnp.repeat`` for
an exact ×2), whose autodiff VJP is the exact scatter-add of the delta-errors onto the source
pixels.  Only the convolutions carry hand-derived rules (eq 22, :mod:`jaxnets.layers.conv`).

**Odd sizes** (a finer level of odd height H has a coarser level of ceil(H/2), whose ×2 is H + 1):

* ``upsample="nearest"``: nearest interpolation *to the exact size* of the finer level,
  source index ``floor(i · h / H)`` -- torchvision's ``FeaturePyramidNetwork``
  (``F.interpolate(size=..., mode="nearest")``).  When h = ceil(H/2) this is the ×2 repeat with
  its last row/column cropped (``tests/test_fpn_heads.py`` checks the identity); when H = 2h it
  is the ×2 repeat itself.
* ``upsample="bilinear"``: bilinear ×2 (align_corners=False, :func:`jaxnets.layers.upsample_bilinear`)
  of the coarser map, then cropped at the bottom/right to the finer size (or, when the coarser
  level is floor(H/2), its last row/column repeated once).  The two sizes must differ by at
  most 1 after the ×2.  This keeps the ×2 interpolation weights (1/4, 3/4) everywhere instead of
  torchvision's h/H-scaled ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import layers
from jaxnets.nn import Conv2d

__all__ = [
    "FPN_UPSAMPLE",
    "FPN",
    "LevelProjection",
    "check_features",
    "upsample_nearest_to",
    "fit_to",
]

FPN_UPSAMPLE = ("nearest", "bilinear")


def check_features(features: Mapping[str, jax.Array], levels: Sequence[str]) -> None:
    """ValueError unless ``features`` holds every name of ``levels`` as an (R, C, H, W) array with
    one R, and ``levels`` is non-empty, unique and fine to coarse (H, W non-increasing)."""
    if len(levels) == 0:
        raise ValueError("levels must name at least one feature level, got ()")
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels must be unique, got {tuple(levels)}")
    missing = [lvl for lvl in levels if lvl not in features]
    if missing:
        raise ValueError(f"levels {missing} are not among the features {sorted(features)}")
    shapes = [tuple(features[lvl].shape) for lvl in levels]
    for lvl, s in zip(levels, shapes):
        if len(s) != 4:
            raise ValueError(f"features[{lvl!r}] must be (R, C, H, W), got shape {s}")
    if len({s[0] for s in shapes}) != 1:
        raise ValueError(f"features must share the batch size R, got {dict(zip(levels, shapes))}")
    for (a, sa), (b, sb) in zip(zip(levels, shapes), zip(levels[1:], shapes[1:])):
        if sb[2] > sa[2] or sb[3] > sa[3]:
            raise ValueError(
                f"levels must go fine to coarse: {b!r} {sb[2:]} is larger than {a!r} {sa[2:]}"
            )


def upsample_nearest_to(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Nearest-neighbour interpolation to an exact size, torchvision's rule.

    x: (R, C, h, w) -> (R, C, H, W); output pixel (i, j) copies source pixel
    (floor(i·h/H), floor(j·w/W)).  For H = 2h, W = 2w this is the ×2 repeat of the FPN paper.
    """
    h, w = x.shape[2], x.shape[3]
    big_h, big_w = int(size[0]), int(size[1])
    if (big_h, big_w) == (2 * h, 2 * w):
        return jnp.repeat(jnp.repeat(x, 2, axis=2), 2, axis=3)  # (R, C, 2h, 2w)
    ih = (np.arange(big_h) * h) // big_h  # (H,) source rows
    iw = (np.arange(big_w) * w) // big_w  # (W,) source columns
    return jnp.take(jnp.take(x, ih, axis=2), iw, axis=3)  # (R, C, H, W)


def fit_to(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Crop the bottom/right of x, or repeat its last row/column, to an exact spatial size.

    x: (R, C, H', W') -> (R, C, H, W) with |H' - H| <= 1 and |W' - W| <= 1 (else ValueError).
    """
    big_h, big_w = int(size[0]), int(size[1])
    if abs(x.shape[2] - big_h) > 1 or abs(x.shape[3] - big_w) > 1:
        raise ValueError(f"fit_to: size {(big_h, big_w)} is more than 1 away from {x.shape[2:]}")
    x = x[:, :, :big_h, :big_w]
    pad_h, pad_w = big_h - x.shape[2], big_w - x.shape[3]
    if pad_h or pad_w:
        x = jnp.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
    return x


class FPN(nn.Module):
    """Top-down pathway with lateral 1×1 and smoothing 3×3 convolutions (see the module docstring).

    features: {level: (R, C_l, H_l, W_l)} (extra keys are ignored) ->
    {level: (R, channels, H_l, W_l)} for every name of ``levels`` (fine to coarse).
    Parameters: ``lateral_<level>`` (1×1, C_l -> channels) and ``smooth_<level>`` (3×3,
    channels -> channels), weights and biases each.
    """

    levels: tuple[str, ...]
    channels: int = 256
    upsample: str = "nearest"
    grad: str = "custom"

    def _up(self, x: jax.Array, size: tuple[int, int]) -> jax.Array:
        """(R, c, h, w) -> (R, c, H, W), the coarser map brought to the finer level's size."""
        if self.upsample == "nearest":
            return upsample_nearest_to(x, size)
        return fit_to(layers.get_ops(self.grad).upsample_bilinear(x, 2), size)

    @nn.compact
    def __call__(self, features: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        if self.upsample not in FPN_UPSAMPLE:
            raise ValueError(f"upsample={self.upsample!r}: choose one of {FPN_UPSAMPLE}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        check_features(features, self.levels)
        g, c = self.grad, self.channels
        lateral = [
            Conv2d(c, 1, 1, 0, grad=g, name=f"lateral_{lvl}")(features[lvl]) for lvl in self.levels
        ]  # [(R, c, H_l, W_l)]
        merged = list(lateral)
        for i in range(len(self.levels) - 2, -1, -1):  # coarse to fine
            merged[i] = lateral[i] + self._up(merged[i + 1], lateral[i].shape[2:])
        return {
            lvl: Conv2d(c, 3, 1, 1, grad=g, name=f"smooth_{lvl}")(m)  # (R, c, H_l, W_l)
            for lvl, m in zip(self.levels, merged)
        }


class LevelProjection(nn.Module):
    """The FPN-less rows (v1.0-v1.2): each level's backbone feature through its own 1×1
    convolution to a common width, so one shared head applies to every level.

    features: {level: (R, C_l, H_l, W_l)} -> {level: (R, channels, H_l, W_l)}.
    Parameters: ``proj_<level>`` (1×1, C_l -> channels).
    """

    levels: tuple[str, ...]
    channels: int = 256
    grad: str = "custom"

    @nn.compact
    def __call__(self, features: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        check_features(features, self.levels)
        return {
            lvl: Conv2d(self.channels, 1, 1, 0, grad=self.grad, name=f"proj_{lvl}")(features[lvl])
            for lvl in self.levels
        }
