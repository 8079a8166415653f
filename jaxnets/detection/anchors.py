"""Anchor boxes of section 5.2.1 / 5.3.5: a grid of boxes per feature level, in input pixels.

Every level ``l`` (a backbone stage, :data:`LEVEL_STRIDES`) has a square grid of positions with
effective stride ``s_l = stride_l / upsample`` (the heads of v2.1+ upsample their features x2,
which halves the spacing of the grid). At position ``(i, j)`` (row ``i``, column ``j``) the
anchor centre is ``((j + 0.5) s_l, (i + 0.5) s_l)``: the centre of the input patch the feature
cell covers. Each position carries ``A_l = len(scales) * len(ratios)`` anchors of size
``size_l * scale`` (the square root of the area) and height/width ratio ``r``::

    w = size / sqrt(r),   h = size * sqrt(r)         (area = size**2)

**Order** (what the heads' outputs must be flattened to; :func:`flatten_level` does it): level
by level in ``config.levels`` order; inside a level row-major over ``(y, x)``; inside a position
anchor ``a = scale_index * len(ratios) + ratio_index``. A head output of layout ``(R, A_l * D,
H_l, W_l)`` (NCHW, channel ``a * D + d``) becomes ``(R, H_l * W_l * A_l, D)``.

Grid size of a level for an input of ``(H, W)`` pixels: ``ceil(H / stride) * upsample`` rows
(every stride-2 convolution and pooling of the ResNet with ``padding = k // 2`` maps ``n`` to
``ceil(n / 2)``), unless the caller passes the feature maps' own sizes.

The Table 4 anchor configurations are :data:`PRESETS` (see ``docs/anchors.md`` for how each
one's sizes follow from the paper's text and where the text disagrees with itself).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

LEVEL_STRIDES = {"conv2": 4, "conv3": 8, "conv4": 16, "conv5": 32, "conv6": 64, "conv7": 128}
OCTAVE_SCALES = (1.0, 2.0 ** (1.0 / 3.0), 2.0 ** (2.0 / 3.0))  # three scales per level, 5.2.1


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """One anchor configuration (a row group of Table 4).

    levels:   feature levels by name (keys of :data:`LEVEL_STRIDES`), finest first
    sizes:    base anchor size (pixels, sqrt of the area) of each level, one per level
    scales:   multipliers of a level's base size (default 2^0, 2^(1/3), 2^(2/3))
    ratios:   height / width of the anchors (width:height 1:1.5 -> 1.5)
    upsample: factor by which the heads upsample the features (v2.1+: 2); stride / upsample is
              the grid spacing
    iou_threshold: IoU at or above which an anchor is positive (eq 55; 0.55 or 0.65)
    """

    levels: tuple[str, ...]
    sizes: tuple[float, ...]
    scales: tuple[float, ...] = OCTAVE_SCALES
    ratios: tuple[float, ...] = (1.0, 1.5)
    upsample: int = 1
    iou_threshold: float = 0.65

    def __post_init__(self):
        check_config(self)

    @property
    def anchors_per_position(self) -> int:
        return len(self.scales) * len(self.ratios)

    @property
    def strides(self) -> tuple[float, ...]:
        """Effective grid spacing of each level in input pixels: stride / upsample."""
        return tuple(LEVEL_STRIDES[name] / self.upsample for name in self.levels)

    def all_sizes(self) -> np.ndarray:
        """(len(levels) * len(scales),) every anchor size, level by level."""
        return np.array([s * k for s in self.sizes for k in self.scales])

    def replace(self, **changes) -> "AnchorConfig":
        return dataclasses.replace(self, **changes)


def _positive_finite(name: str, values) -> None:
    for v in values:
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected positive finite numbers, got {v!r}")


def check_config(c: AnchorConfig) -> None:
    """ValueError with one line naming the bad field."""
    if not c.levels:
        raise ValueError("levels: expected at least one level")
    for name in c.levels:
        if name not in LEVEL_STRIDES:
            raise ValueError(f"levels: unknown level {name!r}; expected one of {', '.join(LEVEL_STRIDES)}")
    if len(set(c.levels)) != len(c.levels):
        raise ValueError(f"levels: repeated level in {list(c.levels)}")
    if len(c.sizes) != len(c.levels):
        raise ValueError(f"sizes: expected one base size per level ({len(c.levels)}), got {len(c.sizes)}")
    _positive_finite("sizes", c.sizes)
    _positive_finite("scales", c.scales)
    _positive_finite("ratios", c.ratios)
    if not c.scales or not c.ratios:
        raise ValueError("scales / ratios: expected at least one value each")
    if not (isinstance(c.upsample, int) and c.upsample >= 1):
        raise ValueError(f"upsample: expected an integer >= 1, got {c.upsample!r}")
    if not (isinstance(c.iou_threshold, (int, float)) and 0.0 < c.iou_threshold <= 1.0):
        raise ValueError(f"iou_threshold: expected a value in (0, 1], got {c.iou_threshold!r}")


def _octaves(first: float, n: int) -> tuple[float, ...]:
    return tuple(float(first * 2**k) for k in range(n))


_C2_C6 = ("conv2", "conv3", "conv4", "conv5", "conv6")
_C3_C7 = ("conv3", "conv4", "conv5", "conv6", "conv7")
_C2_C7 = ("conv2", "conv3", "conv4", "conv5", "conv6", "conv7")

# The anchor side of each Table 4 version (docs/anchors.md derives every number).
_V1 = AnchorConfig(_C2_C6, _octaves(16, 5), ratios=(1.0, 2.0), upsample=1, iou_threshold=0.55)
_V19 = _V1.replace(ratios=(1.0, 1.5), iou_threshold=0.65)
_V20 = AnchorConfig(_C3_C7, _octaves(16, 5), ratios=(1.0, 1.5), upsample=1, iou_threshold=0.65)
_V21 = _V20.replace(upsample=2)
_V24 = AnchorConfig(_C2_C7, _octaves(8, 6), ratios=(1.0, 1.5), upsample=2, iou_threshold=0.65)
PRESETS: dict[str, AnchorConfig] = {
    **{f"v1.{k}": _V1 for k in range(9)},  # v1.0 ... v1.8
    "v1.9": _V19,
    "v2.0": _V20,
    "v2.1": _V21,
    "v2.2": _V21.replace(iou_threshold=0.55),
    "v2.3": _V21,
    "v2.4": _V24,
    "v2.5": _V24,
}


def preset(name: str) -> AnchorConfig:
    """The anchor configuration of a Table 4 version (``"v1.3"``, ``"v2.4"``; ``v`` optional)."""
    key = name if name.startswith("v") else f"v{name}"
    if key not in PRESETS:
        raise ValueError(f"config {name!r}: unknown; expected one of {', '.join(PRESETS)}")
    return PRESETS[key]


def grid_sizes(config: AnchorConfig, image_size: tuple[int, int]) -> list[tuple[int, int]]:
    """(H_l, W_l) of each level's anchor grid for an input of (H, W) pixels."""
    h, w = image_size
    if not (h > 0 and w > 0):
        raise ValueError(f"image_size: expected positive (H, W), got {image_size!r}")
    return [(-(-h // LEVEL_STRIDES[n]) * config.upsample, -(-w // LEVEL_STRIDES[n]) * config.upsample)
            for n in config.levels]


def anchor_shapes(config: AnchorConfig, level: int) -> np.ndarray:
    """(A_l, 2) width, height of the anchors at one position of level ``level`` (anchor order)."""
    base = config.sizes[level]
    return np.array([[base * k / math.sqrt(r), base * k * math.sqrt(r)]
                     for k in config.scales for r in config.ratios], np.float64)


def level_anchors(config: AnchorConfig, level: int, grid: tuple[int, int]) -> np.ndarray:
    """(H_l * W_l * A_l, 4) x1, y1, x2, y2 of one level, ordered (y, x, anchor)."""
    stride = config.strides[level]
    gh, gw = grid
    cy = (np.arange(gh) + 0.5) * stride  # (H_l,)
    cx = (np.arange(gw) + 0.5) * stride  # (W_l,)
    wh = anchor_shapes(config, level)  # (A_l, 2)
    cx = np.broadcast_to(cx[None, :, None], (gh, gw, len(wh)))  # (H_l, W_l, A_l)
    cy = np.broadcast_to(cy[:, None, None], (gh, gw, len(wh)))
    half_w, half_h = wh[:, 0] / 2, wh[:, 1] / 2  # (A_l,)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)  # (H_l, W_l, A_l, 4)
    return boxes.reshape(-1, 4)


def anchors(config: AnchorConfig, image_size: tuple[int, int],
            feature_sizes: list[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All anchors of an input of ``image_size = (H, W)`` pixels.

    feature_sizes: optional (H_l, W_l) of each level's head output (after upsampling), else
    :func:`grid_sizes`. Returns ``boxes`` (A, 4) float32 x1, y1, x2, y2 in pixels (continuous
    coordinates, may reach outside the image) and ``level`` (A,) int32, the index into
    ``config.levels`` of each anchor (for the level-separated loss, eq 62), in the order of the
    module docstring.
    """
    grids = grid_sizes(config, image_size) if feature_sizes is None else [tuple(g) for g in feature_sizes]
    if len(grids) != len(config.levels):
        raise ValueError(f"feature_sizes: expected {len(config.levels)} (H, W) pairs, got {len(grids)}")
    boxes = [level_anchors(config, k, g) for k, g in enumerate(grids)]
    level = np.concatenate([np.full(len(b), k, np.int32) for k, b in enumerate(boxes)])
    return np.concatenate(boxes).astype(np.float32), level


def flatten_level(x, depth: int):
    """A head output ``(R, A_l * D, H_l, W_l)`` (channel ``a * D + d``) -> ``(R, H_l * W_l * A_l, D)``,
    the anchor order of :func:`anchors`. Works on numpy and jax arrays."""
    r, c, h, w = x.shape
    if c % depth:
        raise ValueError(f"depth: {c} channels are not a multiple of depth {depth}")
    x = x.reshape(r, c // depth, depth, h, w)  # (R, A_l, D, H_l, W_l)
    return x.transpose(0, 3, 4, 1, 2).reshape(r, h * w * (c // depth), depth)


def flatten_levels(outputs, depth: int):
    """A list of head outputs, one per level in ``config.levels`` order -> ``(R, A, D)``."""
    import jax.numpy as jnp

    return jnp.concatenate([flatten_level(x, depth) for x in outputs], axis=1)


def best_anchor_iou(config: AnchorConfig, image_size: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """(K,) for faces ``boxes`` (K, 4) x1, y1, x2, y2: the largest IoU any anchor reaches.

    Exact and cheap (no (A, K) matrix): for one anchor shape the IoU with a fixed box is a
    product-of-overlaps ratio that does not increase as the anchor's centre moves away along x or
    y, so the best anchor of each shape is the grid centre nearest the face's centre (clipped to
    the grid); the best over shapes and levels is the answer. Tested against the full matrix.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    best = np.zeros(len(boxes))
    for k, (gh, gw) in enumerate(grid_sizes(config, image_size)):
        s = config.strides[k]
        ax = (np.clip(np.round(cx / s - 0.5), 0, gw - 1) + 0.5) * s  # (K,) nearest centres
        ay = (np.clip(np.round(cy / s - 0.5), 0, gh - 1) + 0.5) * s
        for aw, ah in anchor_shapes(config, k):
            iw = np.clip(np.minimum(cx + bw / 2, ax + aw / 2) - np.maximum(cx - bw / 2, ax - aw / 2), 0, None)
            ih = np.clip(np.minimum(cy + bh / 2, ay + ah / 2) - np.maximum(cy - bh / 2, ay - ah / 2), 0, None)
            inter = iw * ih
            union = bw * bh + aw * ah - inter
            best = np.maximum(best, np.where(union > 0, inter / np.where(union > 0, union, 1), 0))
    return best
