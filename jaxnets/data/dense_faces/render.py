"""Drawing one 25x25 grey crop (a face, a non-face patch) as a coloured, lit, blurred, rotated
patch with a feathered alpha edge, and pasting patches onto a canvas in painter's order.

Conventions: a canvas is (H, W, 3) float32 RGB in [0, 1]; a patch is ``rgb`` (h, w, 3) float32
plus ``alpha`` (h, w) float32 in [0, 1]; positions are pixel coordinates, x to the right, y down,
the centre of pixel (i, j) at (j + 0.5, i + 0.5).

The face box (see :func:`face_box`) is the axis-aligned bound of the face oval: the crop's
rectangle, shrunk by :data:`BOX_INSET`, taken as an ellipse and rotated with the face. The crop
runs from the hairline to below the chin and a little past both cheeks; the inset box runs from
the upper forehead to the chin and cheek to cheek, as WIDER FACE boxes do.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

CROP = 25
"""Side of the source crops (``lfw_subset.npy``)."""

BOX_INSET = (0.11, 0.03, 0.11, 0.06)
"""(left, top, right, bottom) fractions of the drawn crop left out of the face box: the crops
are wider than the face (background and hair beside the cheeks) and reach below the chin. Set from
MTCNN's median box on the large faces of a first set drawn with the whole crop as the box (0.77 of
its width, 0.91 of its height, centred 0.02 of the height above it; see docs/dense_faces.md)."""

FEATHER = 0.12
"""Width of the alpha fall-off at the patch edge, as a fraction of the patch height (>= 1 px)."""

SQUIRCLE_POWER = 5.0
"""Exponent p of the alpha outline |u|^p + |v|^p = 1: a rounded square (p=2 would be an ellipse)."""


@dataclasses.dataclass(frozen=True)
class Look:
    """How one crop is drawn.

    height: drawn crop height in pixels (before rotation); width = height * squeeze.
    squeeze: width / height in (0, 1], narrowing that looks like a turned head (yaw).
    angle: in-plane rotation (roll) in degrees, counter-clockwise.
    mirror: flip left-right before anything else.
    tone: (3,) RGB colour of luminance 1 the grey crop is tinted toward.
    tint: 0 (stays grey) .. 1 (fully toned).
    gain, contrast: brightness multiplier; contrast about the crop's mean.
    light: (gx, gy) relative brightness change from the patch centre to its right / bottom edge.
    blur: extra Gaussian sigma in output pixels (on top of the resampling's own softness).
    """

    height: float
    squeeze: float = 1.0
    angle: float = 0.0
    mirror: bool = False
    tone: tuple = (1.0, 1.0, 1.0)
    tint: float = 0.0
    gain: float = 1.0
    contrast: float = 1.0
    light: tuple = (0.0, 0.0)
    blur: float = 0.0


@dataclasses.dataclass(frozen=True)
class Patch:
    """A drawn crop: rgb (h, w, 3), alpha (h, w), both float32; (cx, cy) is the crop centre in
    patch coordinates; box = (x1, y1, x2, y2) of the face box relative to that centre."""

    rgb: np.ndarray
    alpha: np.ndarray
    cx: float
    cy: float
    box: tuple


def resampling_blur(height: float) -> float:
    """Gaussian sigma (output pixels) that upscaling a 25-pixel crop to ``height`` adds: about
    half a source pixel, 0.5 * height / 25; a downscaled crop keeps ~0.5 px."""
    return 0.5 * max(height / CROP, 1.0)


def total_blur(look: Look) -> float:
    """Blur of the drawn face in output pixels: resampling and extra blur added in quadrature."""
    return math.hypot(resampling_blur(look.height), look.blur)


def face_box(look: Look) -> tuple:
    """(x1, y1, x2, y2) of the face box relative to the crop centre, in output pixels (floats)."""
    w, h = look.height * look.squeeze, look.height
    l, t, r, b = BOX_INSET
    if look.mirror:
        l, r = r, l
    ox, oy = (l - r) * w / 2, (t - b) * h / 2  # centre of the inset rectangle
    a, c = w * (1 - l - r) / 2, h * (1 - t - b) / 2  # semi-axes
    th = math.radians(look.angle)
    cos, sin = math.cos(th), math.sin(th)
    # rotation about the crop centre, counter-clockwise on screen (y down): (x, y) -> (x cos + y sin, -x sin + y cos)
    mx, my = ox * cos + oy * sin, -ox * sin + oy * cos
    hw, hh = math.hypot(a * cos, c * sin), math.hypot(a * sin, c * cos)
    return (mx - hw, my - hh, mx + hw, my + hh)


def alpha_outline(h: int, w: int, feather_px: float) -> np.ndarray:
    """(h, w) float32 alpha: 1 inside a rounded square filling the patch, falling to 0 at its
    edge over ``feather_px`` pixels."""
    u = np.abs((np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1)[None, :]
    v = np.abs((np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1)[:, None]
    r = (u ** SQUIRCLE_POWER + v ** SQUIRCLE_POWER) ** (1 / SQUIRCLE_POWER)
    edge = feather_px / (0.5 * min(h, w))
    return np.clip((1 - r) / max(edge, 1e-3), 0.0, 1.0).astype(np.float32)


def resize(grey: np.ndarray, w: int, h: int, *, smooth: bool) -> np.ndarray:
    """(h, w) float32 resize of a 2-D float array (bicubic when ``smooth``, else bilinear; both
    average when shrinking)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC if smooth else Image.Resampling.BILINEAR),
                      dtype=np.float32)


def _rotate(a: np.ndarray, angle: float, *, smooth: bool) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    out = im.rotate(angle, resample=Image.Resampling.BICUBIC if smooth else Image.Resampling.BILINEAR, expand=True)
    return np.asarray(out, dtype=np.float32)


def _shade(grey: np.ndarray, look: Look) -> np.ndarray:
    """(h, w) grey -> (h, w, 3) RGB: contrast, gain, lighting gradient, tint toward the tone."""
    h, w = grey.shape
    g = (grey - grey.mean()) * look.contrast + grey.mean()
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    lamp = 1 + look.light[0] * xs[None, :] + look.light[1] * ys[:, None]
    g = g * look.gain * np.maximum(lamp, 0.05)
    colour = look.tint * np.asarray(look.tone, np.float32) + (1 - look.tint)
    return g[:, :, None] * colour[None, None, :]


def draw(crop: np.ndarray, look: Look) -> Patch:
    """Draw a (25, 25) grey crop in [0, 1] as a :class:`Patch` with the given look."""
    from scipy import ndimage

    h = max(2, int(round(look.height)))
    w = max(2, int(round(look.height * look.squeeze)))
    grey = resize(crop[:, ::-1] if look.mirror else crop, w, h, smooth=True)
    alpha = alpha_outline(h, w, max(1.0, FEATHER * h))
    pad = int(math.ceil(2 * look.blur)) + 1
    grey = np.pad(grey, pad, mode="edge")
    alpha = np.pad(alpha, pad)
    if abs(look.angle) > 0.5:
        grey, alpha = _rotate(grey, look.angle, smooth=True), _rotate(alpha, look.angle, smooth=False)
    if look.blur > 0.3:
        grey = ndimage.gaussian_filter(grey, look.blur, mode="nearest")
        alpha = ndimage.gaussian_filter(alpha, look.blur * 0.5, mode="constant")
    rgb = _shade(grey, look)
    ph, pw = alpha.shape
    return Patch(rgb=rgb, alpha=np.clip(alpha, 0, 1), cx=pw / 2, cy=ph / 2, box=face_box(look))


def paste(canvas: np.ndarray, top: np.ndarray, patch: Patch, x: float, y: float, layer: int) -> tuple:
    """Blend ``patch`` over ``canvas`` (in place) with its crop centre at (x, y).

    top: (H, W) int32, the layer id drawn last at each pixel (alpha >= 0.5), updated in place.
    Returns (x0, y0, mask_total): the patch's top-left canvas position and how many of its
    alpha >= 0.5 pixels there are, inside the canvas or not.
    """
    H, W = top.shape
    ph, pw = patch.alpha.shape
    x0, y0 = int(round(x - patch.cx)), int(round(y - patch.cy))
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + pw, W), min(y0 + ph, H)
    solid = patch.alpha >= 0.5
    if cx1 > cx0 and cy1 > cy0:
        sl = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        a = patch.alpha[sl][:, :, None]
        region = canvas[cy0:cy1, cx0:cx1]
        region *= 1 - a
        region += a * patch.rgb[sl]
        t = top[cy0:cy1, cx0:cx1]
        t[solid[sl]] = layer
    return x0, y0, int(solid.sum())
