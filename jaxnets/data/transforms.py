"""On-device training augmentation of dict batches: random horizontal flips and translations,
applied to the images *and* to the boxes that sit on them.

Not part of the paper's section 4 (it trains on raw images); an opt-in field of a config,
``data.augment = {hflip: bool, max_shift: int}``, used by the CPU-schedule Fashion-MNIST CNN and
by the toy detection task. It runs inside the jitted train step (a data source's
``device_transform``), on the uint8 batch as stored, with the key
``fold_in(fold_in(state.rng, step), TRANSFORM_STREAM)``: a function of the config seed and the
step only, so a resumed run draws the same augmentations and turning augmentation on does not
change the dropout stream.

Fields: ``"image"`` (R, C, H, W), any dtype, transformed; ``"box"`` (R, 4) or ``"boxes"``
(R, K, 4), ``(x1, y1, x2, y2)`` in pixels with the box covering ``[x1, x2) × [y1, y2)``, moved
with their image: a flip maps ``x -> W - x`` (and swaps x1, x2), a shift adds ``(dx, dy)`` and
clips to the image, ``[0, W] × [0, H]`` (a box shifted partly out keeps the part inside).
Every other field passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Transform = Callable[[jax.Array, dict], dict]
BOX_FIELDS = ("box", "boxes")


def random_hflip(rng: jax.Array, images: jax.Array) -> jax.Array:
    """Mirror each image left-right with probability 1/2. images (R, C, H, W) -> (R, C, H, W)."""
    return hflip_where(_flips(rng, images.shape[0]), images)


def _flips(rng: jax.Array, r: int) -> jax.Array:
    return jax.random.bernoulli(rng, 0.5, (r,))  # (R,)


def hflip_where(flip: jax.Array, images: jax.Array) -> jax.Array:
    """images (R, C, H, W) with the rows where ``flip`` (R,) is true mirrored left-right."""
    return jnp.where(flip[:, None, None, None], images[..., ::-1], images)


def hflip_boxes(flip: jax.Array, boxes: jax.Array, width: int) -> jax.Array:
    """boxes (R, ..., 4) as (x1, y1, x2, y2): where ``flip`` (R,), x1' = W - x2, x2' = W - x1."""
    flipped = jnp.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], axis=-1)
    f = flip.reshape(flip.shape + (1,) * (boxes.ndim - 1))
    return jnp.where(f, flipped.astype(boxes.dtype), boxes)


def _offsets(rng: jax.Array, r: int, max_shift: int) -> jax.Array:
    return jax.random.randint(rng, (r, 2), -max_shift, max_shift + 1)  # (R, 2): (dy, dx)


def random_shift(rng: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Translate each image by (dy, dx), each uniform in [-max_shift, max_shift], filling with zeros."""
    if max_shift == 0:
        return images
    return shift_images(_offsets(rng, images.shape[0], max_shift), images, max_shift)


def shift_images(offsets: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """out[r, c, i, j] = images[r, c, i - dy, j - dx] inside the image, else 0. offsets (R, 2) = (dy, dx)."""
    _, _, h, w = images.shape
    m = max_shift
    padded = jnp.pad(images, ((0, 0), (0, 0), (m, m), (m, m)))  # (R, C, H + 2m, W + 2m)

    def crop(img, off):  # img (C, H + 2m, W + 2m) -> (C, H, W)
        return jax.lax.dynamic_slice(img, (0, m - off[0], m - off[1]), (img.shape[0], h, w))

    return jax.vmap(crop)(padded, offsets)


def shift_boxes(offsets: jax.Array, boxes: jax.Array, height: int, width: int) -> jax.Array:
    """boxes (R, ..., 4) moved by offsets (R, 2) = (dy, dx) and clipped to [0, W] × [0, H]."""
    off = offsets.reshape((offsets.shape[0],) + (1,) * (boxes.ndim - 2) + (2,)).astype(boxes.dtype)
    dy, dx = off[..., 0], off[..., 1]
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return jnp.stack([jnp.clip(x1 + dx, 0, width), jnp.clip(y1 + dy, 0, height),
                      jnp.clip(x2 + dx, 0, width), jnp.clip(y2 + dy, 0, height)], axis=-1)


def check_augment(augment, image_shape: tuple[int, ...] | None = None) -> dict:
    """Validate ``config.data.augment`` and return it as ``{"hflip": bool, "max_shift": int}``.

    Raises ValueError naming the field for an unknown key, a negative or non-integer shift or a
    shift as large as the image.
    """
    spec = {"hflip": False, "max_shift": 0}
    if not augment:
        return spec
    augment = dict(augment)
    unknown = sorted(set(augment) - set(spec))
    if unknown:
        raise ValueError(f"data.augment: unknown field(s) {unknown}; expected {sorted(spec)}")
    hflip, shift = augment.get("hflip", False), augment.get("max_shift", 0)
    if not isinstance(hflip, bool):
        raise ValueError(f"data.augment.hflip={hflip!r}: expected true or false")
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"data.augment.max_shift={shift!r}: expected an integer >= 0")
    if image_shape is not None and shift and shift >= min(image_shape[-2:]):
        raise ValueError(f"data.augment.max_shift={shift} must be smaller than the image ({image_shape[-2:]})")
    return {"hflip": hflip, "max_shift": shift}


def make_augment(augment) -> Transform | None:
    """``transform(rng, batch) -> batch`` for a checked spec (see :func:`check_augment`), or None if off."""
    spec = check_augment(augment)
    if not (spec["hflip"] or spec["max_shift"]):
        return None

    def apply(rng: jax.Array, batch: dict) -> dict:
        flip_rng, shift_rng = jax.random.split(rng)
        images = batch["image"]
        r, _, h, w = images.shape
        out = dict(batch)
        if spec["hflip"]:
            flip = _flips(flip_rng, r)
            images = hflip_where(flip, images)
            for f in BOX_FIELDS:
                if f in out:
                    out[f] = hflip_boxes(flip, out[f], w)
        if spec["max_shift"]:
            offsets = _offsets(shift_rng, r, spec["max_shift"])
            images = shift_images(offsets, images, spec["max_shift"])
            for f in BOX_FIELDS:
                if f in out:
                    out[f] = shift_boxes(offsets, out[f], h, w)
        out["image"] = images
        return out

    return apply
