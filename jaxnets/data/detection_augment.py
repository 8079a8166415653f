"""The face detector's training augmentation (section 5.2.2, v2.3's colour jitter of 5.3.5) as pure
functions: images and the face boxes on them move together.

Section 5.2.2: "The models are trained on square image crops, randomly picked to be of between
0.33 and 0.95 of the short size of the image, and resized to be of size 512^2 pixels ...
Additionally, the image is flipped horizontally with a probability of 0.5." Section 5.3.5 (v2.3):
"random color jitter, through adding random noise and shifting the hues by a random value". The
paper gives no magnitudes for the jitter; ours (the defaults of :class:`AugmentSpec`) are stated
there.

Where each part runs:

* **crop + resize + flip on the host** (numpy / PIL), since every image has its own size: one
  ``np.random.default_rng((seed, CROP_STREAM, step, index))`` per example (:func:`example_rng`)
  draws its crop and flip, so an example's augmentation is a function of the data seed, the
  global step and the example's index in the split -- never of the other examples of the batch;
* **colour jitter on the device** (jax, inside the jitted train step, cheap): the step's
  transform key folded with each example's index (:func:`color_jitter`).

Boxes are ``(x1, y1, x2, y2)`` in pixels, continuous coordinates: a box covers pixel columns
``x1 .. x2 - 1`` (the convention of :mod:`jaxnets.tasks.toy_boxes` and the WIDER loader). Pixel
``i`` covers ``[i, i + 1)``, so a crop at ``(x0, y0)`` of side ``c`` resized to ``S`` maps
``x -> (x - x0) * S / c`` exactly (PIL resamples the same continuous box), and a flip maps
``x -> S - x``.

**The rule for faces the crop cuts**: a face is kept when its centre ``((x1 + x2) / 2,
(y1 + y2) / 2)`` lies inside the crop, ``[x0, x0 + c) × [y0, y0 + c)``, and its box is clipped to
the crop; otherwise it is dropped (SSD's rule). A kept face therefore keeps at least half its
width and half its height. Faces of zero width or height are dropped.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image

#: Mixed into every host augmentation seed, so its stream differs from the batch-order stream.
CROP_STREAM = 0x43524F50


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """Training augmentation of the detector (section 5.2.2; jitter: 5.3.5, v2.3).

    size: S, the side of the training crops (the paper: 512; CPU forms smaller).
    min_crop, max_crop: crop side as a fraction of the image's short side (paper: 0.33, 0.95).
    hflip: probability of a horizontal flip (paper: 0.5).
    jitter: colour jitter on or off (v2.3 and later).
    max_hue: hue shift uniform in [-max_hue, max_hue] turns of the colour wheel (ours: 0.05 = 18°).
    noise_std: per-pixel Gaussian noise of standard deviation uniform in [0, noise_std] per
      image, in uint8 levels (ours: 6).
    """

    size: int = 512
    min_crop: float = 0.33
    max_crop: float = 0.95
    hflip: float = 0.5
    jitter: bool = False
    max_hue: float = 0.05
    noise_std: float = 6.0

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(f"size={self.size!r}: expected an integer >= 1")
        if not 0.0 < self.min_crop <= self.max_crop <= 1.0:
            raise ValueError(f"min_crop={self.min_crop}, max_crop={self.max_crop}: need 0 < min_crop <= max_crop <= 1")
        if not 0.0 <= self.hflip <= 1.0:
            raise ValueError(f"hflip={self.hflip}: a probability in [0, 1]")
        if not isinstance(self.jitter, bool):
            raise ValueError(f"jitter={self.jitter!r}: expected true or false")
        if not 0.0 <= self.max_hue <= 0.5:
            raise ValueError(f"max_hue={self.max_hue}: expected turns in [0, 0.5]")
        if not 0.0 <= self.noise_std <= 128.0:
            raise ValueError(f"noise_std={self.noise_std}: expected uint8 levels in [0, 128]")

    def describe(self) -> dict:
        d = dataclasses.asdict(self)
        d["cut_face_rule"] = "keep a face whose centre lies inside the crop, box clipped to the crop; drop the others"
        return d


def example_rng(seed: int, step: int, index: int) -> np.random.Generator:
    """The host generator of one example's crop and flip: a function of (seed, step, index) only."""
    return np.random.default_rng((int(seed), CROP_STREAM, int(step), int(index)))


def draw_crop(rng: np.random.Generator, height: int, width: int, spec: AugmentSpec) -> tuple[int, int, int, bool]:
    """(x0, y0, c, flip): a square crop of side c = round(U(min_crop, max_crop) · min(H, W)) (>= 1)
    at a uniform integer position inside the (H, W) image, and whether to flip it."""
    frac = rng.uniform(spec.min_crop, spec.max_crop)
    c = int(min(max(1, round(frac * min(height, width))), min(height, width)))
    x0 = int(rng.integers(0, width - c + 1))
    y0 = int(rng.integers(0, height - c + 1))
    flip = bool(rng.random() < spec.hflip)
    return x0, y0, c, flip


def resize_region(image: np.ndarray, box: tuple[float, float, float, float], out_w: int, out_h: int) -> np.ndarray:
    """The region ``box = (x0, y0, x1, y1)`` (continuous pixels, inside the image) of image
    uint8 (H, W, 3) resampled bilinearly (antialiased) to uint8 (out_h, out_w, 3)."""
    with PIL.Image.fromarray(np.ascontiguousarray(image)) as im:
        return np.asarray(im.resize((int(out_w), int(out_h)), PIL.Image.BILINEAR, box=tuple(float(b) for b in box)))


def crop_boxes(boxes: np.ndarray, x0: float, y0: float, c: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K, 4) after the crop ``[x0, x0 + c) × [y0, y0 + c)`` resized to S = ``size``.

    Returns (kept boxes (K', 4) float32 in the S × S crop, keep (K,) bool): the cut-face rule of
    the module docstring (centre inside the crop; box clipped to it; no zero-size faces).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    keep = (cx >= x0) & (cx < x0 + c) & (cy >= y0) & (cy < y0 + c)
    keep &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    clipped = np.stack([np.clip(b[:, 0] - x0, 0, c), np.clip(b[:, 1] - y0, 0, c),
                        np.clip(b[:, 2] - x0, 0, c), np.clip(b[:, 3] - y0, 0, c)], 1)
    return (clipped[keep] * (size / c)).astype(np.float32), keep


def hflip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """boxes (K, 4) of an image of width W mirrored: x1' = W - x2, x2' = W - x1."""
    b = np.asarray(boxes)
    return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], 1).astype(b.dtype)


def random_crop(rng: np.random.Generator, image: np.ndarray, boxes: np.ndarray, spec: AugmentSpec
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Section 5.2.2's crop, resize and flip of one example.

    image uint8 (H, W, 3), boxes (K, 4) -> (uint8 (S, S, 3), kept boxes float32 (K', 4), keep (K,) bool).
    """
    h, w = image.shape[:2]
    x0, y0, c, flip = draw_crop(rng, h, w, spec)
    out = resize_region(image, (x0, y0, x0 + c, y0 + c), spec.size, spec.size)
    kept, keep = crop_boxes(boxes, x0, y0, c, spec.size)
    if flip:
        out, kept = out[:, ::-1], hflip_boxes(kept, spec.size)
    return out, kept, keep


def letterbox_geometry(height: int, width: int, size: int) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """(scale, (new_w, new_h), (offset_x, offset_y)) of the whole (H, W) image fitted into S × S
    keeping its aspect ratio: scale = S / max(H, W), the resized image centred, zero padding."""
    scale = size / max(height, width)
    nw = max(1, min(size, int(np.floor(width * scale + 1e-6))))
    nh = max(1, min(size, int(np.floor(height * scale + 1e-6))))
    return scale, (nw, nh), ((size - nw) // 2, (size - nh) // 2)


def letterbox(image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The evaluation transform: the whole image resized keeping its aspect ratio and padded to S × S.

    image uint8 (H, W, 3), boxes (K, 4) -> (uint8 (S, S, 3), boxes float32 (K, 4) in the S × S
    image, scale, offset float32 (2,) = (ox, oy)); a point maps ``x' = x · scale + ox``, and
    :func:`unletterbox_boxes` maps predictions back to the original pixels. The resampled region
    is ``[0, new_w / scale) × [0, new_h / scale)``, so the scale is exact in both axes (at most
    one original pixel row or column, cut by the floor, is left out).
    """
    h, w = image.shape[:2]
    scale, (nw, nh), (ox, oy) = letterbox_geometry(h, w, size)
    out = np.zeros((size, size, 3), np.uint8)
    out[oy : oy + nh, ox : ox + nw] = resize_region(image, (0, 0, min(w, nw / scale), min(h, nh / scale)), nw, nh)
    offset = np.array([ox, oy], np.float32)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) * scale + np.tile(offset, 2)
    return out, b.astype(np.float32), float(scale), offset


def unletterbox_boxes(boxes, scale, offset) -> np.ndarray:
    """Boxes (..., 4) in a letterboxed S × S image back to original pixels: (b - offset) / scale.

    scale: scalar or (...,) (one per image, broadcast over the trailing box axes as (R, 1, 1) when
    boxes are (R, M, 4)); offset: (2,) or (..., 2) = (ox, oy)."""
    b = np.asarray(boxes, np.float64)
    scale = np.asarray(scale, np.float64)
    offset = np.asarray(offset, np.float64)
    while scale.ndim and scale.ndim < b.ndim - 1:
        scale, offset = scale[..., None], offset[..., None, :]
    return ((b - np.concatenate([offset, offset], -1)) / scale[..., None]).astype(np.float32)


# ---------------------------------------------------------------- colour jitter (device, jax)

def rgb_to_hsv(images: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """images float (R, 3, H, W) (any scale) -> (hue in [0, 1) turns, max, min, max - min), each (R, H, W)."""
    r, g, b = images[:, 0], images[:, 1], images[:, 2]
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    d = maxc - minc
    safe = jnp.where(d > 0, d, 1.0)
    h6 = jnp.where(maxc == r, jnp.mod((g - b) / safe, 6.0),
                   jnp.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))  # hue in sixths
    return jnp.where(d > 0, h6 / 6.0, 0.0), maxc, minc, d


def shift_hue(images: jax.Array, delta: jax.Array) -> jax.Array:
    """Rotate the HSV hue of images float (R, 3, H, W) by delta (R,) turns, keeping value and
    saturation (so max, min of each pixel's channels are kept).

    Channel n ∈ {R: 5, G: 3, B: 1} of HSV -> RGB is ``max - (max - min) · clip(min(k, 4 - k), 0, 1)``
    with ``k = (n + 6 h) mod 6``."""
    h, maxc, _, d = rgb_to_hsv(images)
    h = jnp.mod(h + delta[:, None, None], 1.0)
    out = [maxc - d * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)
           for k in (jnp.mod(n + 6.0 * h, 6.0) for n in (5.0, 3.0, 1.0))]
    return jnp.stack(out, axis=1)


def jitter_params(key: jax.Array, index: jax.Array, max_hue: float, noise_std: float) -> tuple[jax.Array, jax.Array]:
    """(hue shift (R,) turns, noise std (R,) levels) of examples ``index`` (R,) int: each drawn from
    ``fold_in(key, index[r])``, so an example's jitter does not depend on the rest of the batch."""
    def one(i):
        kh, kn = jax.random.split(jax.random.fold_in(key, i))
        return (jax.random.uniform(kh, (), jnp.float32, -max_hue, max_hue),
                jax.random.uniform(kn, (), jnp.float32, 0.0, noise_std))

    return jax.vmap(one)(index)


def color_jitter(key: jax.Array, images: jax.Array, index: jax.Array, max_hue: float, noise_std: float) -> jax.Array:
    """Section 5.3.5's colour jitter (v2.3): a random hue shift, then additive Gaussian noise.

    images uint8 (R, 3, H, W), index int (R,) (the examples' indices in the split) -> uint8
    (R, 3, H, W), rounded and clipped to [0, 255] (no wrap-around)."""
    delta, std = jitter_params(key, index, max_hue, noise_std)
    x = shift_hue(images.astype(jnp.float32), delta)

    def noise(i, shape):
        return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), 1), shape, jnp.float32)

    x = x + std[:, None, None, None] * jax.vmap(lambda i: noise(i, images.shape[1:]))(index)
    return jnp.clip(jnp.round(x), 0, 255).astype(jnp.uint8)


def make_color_jitter(spec: AugmentSpec):
    """``device_transform(key, batch) -> batch`` (run in the train step) jittering ``batch["image"]``
    uint8 (R, 3, S, S) with per-example keys from ``batch["index"]`` (R,); None when jitter is off."""
    if not spec.jitter:
        return None

    def transform(key: jax.Array, batch: dict) -> dict:
        index = batch["index"] if "index" in batch else jnp.arange(batch["image"].shape[0])
        return {**batch, "image": color_jitter(key, batch["image"], index, spec.max_hue, spec.noise_std)}

    return transform
