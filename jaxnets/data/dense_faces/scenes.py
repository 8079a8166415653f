"""One image of the dense-face set from its own random generator.

``make_scene(seed, split, index, size)`` draws, in order: a background crop, hard negatives behind
the crowd (non-face patches, sometimes the cat), the faces of one layout far to near (each with its
look, sometimes followed by a texture patch that covers part of it), a few negatives in front,
a lighting gradient over the whole picture, sometimes a camera blur, and image noise. The image's
generator is ``np.random.default_rng([seed, split code, index])``, so an image does not depend on
how many others are made, or in which process.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxnets.data.dense_faces import difficulty, layouts, render
from jaxnets.data.dense_faces.library import SPLIT_IDENTITIES, TEXTURES, Library, load_library

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

SKIN_TONES = np.asarray([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                         (160, 100, 60), (110, 70, 50)], np.float32)
"""RGB skin tones, light to dark; a face's tone is a random point between two neighbours."""


@dataclasses.dataclass(frozen=True)
class Scene:
    """image: (H, W, 3) uint8 RGB; faces: (K, 10) int64 in WIDER's field order; identities: (K,)
    LFW rows of those faces; kind: the layout kind; quality: the JPEG quality to save it with."""

    image: np.ndarray
    faces: np.ndarray
    identities: np.ndarray
    kind: str
    quality: int


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLIT_CODES[split], int(index)])


def random_tone(rng: np.random.Generator) -> tuple:
    """A skin tone of luminance 1: (3,) floats."""
    i = int(rng.integers(0, len(SKIN_TONES) - 1))
    c = SKIN_TONES[i] + rng.uniform() * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    return tuple(float(v) for v in c / (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]))


def crop_picture(rng: np.random.Generator, picture: np.ndarray, w: int, h: int, zoom: float = 2.5) -> np.ndarray:
    """(h, w, 3) float32: a random crop of ``picture`` at a random scale (1 to ``zoom`` times the
    smallest scale that covers w x h), resized to w x h, maybe mirrored."""
    from PIL import Image

    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph) * rng.uniform(1.0, zoom)
    cw, ch = min(pw, w / scale), min(ph, h / scale)
    x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
    box = (x0, y0, x0 + cw, y0 + ch)
    out = np.empty((h, w, 3), np.float32)
    for c in range(3):
        im = Image.fromarray(np.ascontiguousarray(picture[:, :, c]), mode="F")
        out[:, :, c] = np.asarray(im.resize((w, h), Image.Resampling.BILINEAR, box=box), np.float32)
    return out[:, ::-1] if rng.uniform() < 0.5 else out


def background(rng: np.random.Generator, lib: Library, W: int, H: int) -> np.ndarray:
    """(H, W, 3) float32 background: a crop of a real picture, colour-tinted, contrast-jittered."""
    names = lib.background_names
    bg = crop_picture(rng, lib.backgrounds[names[int(rng.integers(len(names)))]], W, H, zoom=1.6)
    tint = rng.uniform(0.7, 1.2, 3).astype(np.float32)
    contrast = rng.uniform(0.6, 1.1)
    mean = bg.mean()
    return np.clip((bg - mean) * contrast + mean * rng.uniform(0.6, 1.2), 0, 1) * tint


def face_look(rng: np.random.Generator, height: float, exposure: float) -> render.Look:
    """A random :class:`render.Look` for a face of the given drawn height."""
    heavy_light = rng.uniform() < 0.2
    strength = rng.uniform(0.3, 0.6) if heavy_light else rng.uniform(0.0, 0.3)
    direction = rng.uniform(0, 2 * np.pi)
    r = rng.uniform()
    extra = 0.0 if r < 0.65 else (rng.uniform(0.01, 0.035) if r < 0.9 else rng.uniform(0.045, 0.09))
    return render.Look(
        height=float(height),
        squeeze=float(rng.uniform(0.85, 1.0) if rng.uniform() < 0.8 else rng.uniform(0.7, 0.85)),
        angle=float(np.clip(rng.normal(0, 8), -30, 30)),
        mirror=bool(rng.uniform() < 0.5),
        tone=random_tone(rng),
        tint=float(rng.uniform(0.4, 1.0)),
        gain=float(exposure * np.exp(rng.normal(0, 0.15))),
        contrast=float(rng.uniform(0.8, 1.2)),
        light=(float(strength * np.cos(direction)), float(strength * np.sin(direction))),
        blur=float(extra * height),
    )


def texture_patch(rng: np.random.Generator, lib: Library, w: int, h: int) -> render.Patch:
    """A rounded, feathered (h, w) crop of a texture picture (an occluder or a clutter patch)."""
    rgb = crop_picture(rng, lib.backgrounds[TEXTURES[int(rng.integers(len(TEXTURES)))]], w, h, zoom=4.0)
    rgb = rgb * rng.uniform(0.5, 1.2, 3).astype(np.float32)
    alpha = render.alpha_outline(h, w, max(1.0, 0.1 * min(w, h)))
    return render.Patch(rgb=rgb, alpha=alpha, cx=w / 2, cy=h / 2, box=(0, 0, 0, 0))


def occluder_offset(rng: np.random.Generator, height: float) -> tuple:
    """(dx, dy, w, h) of a texture patch covering part of a face of the given height: a scarf or
    hand from below, a hat from above, or something from one side."""
    ow, oh = height * rng.uniform(0.5, 1.0), height * rng.uniform(0.3, 0.6)
    side = int(rng.integers(4))
    reach = height * rng.uniform(0.2, 0.45)  # how far into the face it comes from its edge
    if side == 0:
        return rng.normal(0, 0.15) * height, height / 2 + oh / 2 - reach, ow, oh
    if side == 1:
        return rng.normal(0, 0.15) * height, -height / 2 - oh / 2 + reach, ow, oh
    sign = -1 if side == 2 else 1
    return sign * (height / 2 + oh / 2 - reach), rng.normal(0, 0.15) * height, oh, ow


def negative_patch(rng: np.random.Generator, lib: Library, height: float) -> render.Patch:
    """A non-face patch, drawn like a face (half of them tinted toward a skin tone)."""
    crop = lib.nonfaces[int(rng.integers(len(lib.nonfaces)))]
    look = face_look(rng, height, 1.0)
    if rng.uniform() < 0.5:
        look = dataclasses.replace(look, tint=0.0)
    return render.draw(crop, look)


def cat_patch(lib: Library, height: float) -> render.Patch:
    """The cat's head, ``height`` pixels high, with a feathered rounded edge."""
    h = max(4, int(round(height)))
    w = max(4, int(round(height * lib.cat.shape[1] / lib.cat.shape[0])))
    rgb = np.stack([render.resize(lib.cat[:, :, c], w, h, smooth=False) for c in range(3)], axis=-1)
    alpha = render.alpha_outline(h, w, max(1.0, 0.08 * h))
    return render.Patch(rgb=rgb, alpha=alpha, cx=w / 2, cy=h / 2, box=(0, 0, 0, 0))


@dataclasses.dataclass(frozen=True)
class _Painted:
    """Bookkeeping of one pasted face: its layer id, canvas position, patch and look."""

    layer: int
    x0: int
    y0: int
    patch: render.Patch
    total: int
    look: render.Look
    identity: int


def _paste_negatives(rng, lib: Library, canvas, top, heights, count: int, layer: int) -> int:
    """Paste ``count`` non-face patches at random places (sizes like the faces'); next layer id."""
    H, W = top.shape
    for _ in range(count):
        h = float(heights[int(rng.integers(len(heights)))] * rng.uniform(0.8, 1.2))
        render.paste(canvas, top, negative_patch(rng, lib, h), rng.uniform(0, W), rng.uniform(0, H), layer)
        layer += 1
    return layer


def _paste_faces(rng, lib: Library, canvas, top, layout, heights, split: str, layer: int) -> tuple[list, int]:
    """Paste the layout's faces far to near, some followed by a texture patch covering part of
    them. Returns (list of :class:`_Painted`, next layer id)."""
    exposure = rng.uniform(0.8, 1.15)
    p_occlude = rng.uniform(0.03, 0.15)
    pool = np.asarray(SPLIT_IDENTITIES[split])
    painted = []
    for x, y, h in zip(layout.x, layout.y, heights):
        identity = int(pool[int(rng.integers(len(pool)))])
        look = face_look(rng, h, exposure)
        patch = render.draw(lib.faces[identity], look)
        x0, y0, total = render.paste(canvas, top, patch, x, y, layer)
        painted.append(_Painted(layer, x0, y0, patch, total, look, identity))
        layer += 1
        if rng.uniform() < p_occlude:
            dx, dy, ow, oh = occluder_offset(rng, h)
            occ = texture_patch(rng, lib, max(2, int(round(ow))), max(2, int(round(oh))))
            render.paste(canvas, top, occ, x + dx, y + dy, layer)
            layer += 1
    return painted, layer


def _annotate(p: _Painted, top: np.ndarray, lamp: tuple, camera_blur: float):
    """(row of 10 ints in WIDER field order, or None when no pixel of the face shows)."""
    H, W = top.shape
    ph, pw = p.patch.alpha.shape
    region = top[max(p.y0, 0):max(min(p.y0 + ph, H), 0), max(p.x0, 0):max(min(p.x0 + pw, W), 0)]
    visible = int(np.count_nonzero(region == p.layer))
    cx, cy = p.x0 + p.patch.cx, p.y0 + p.patch.cy
    bx1, by1, bx2, by2 = p.patch.box
    x1, y1 = min(max(int(round(cx + bx1)), 0), W), min(max(int(round(cy + by1)), 0), H)
    x2, y2 = min(max(int(round(cx + bx2)), 0), W), min(max(int(round(cy + by2)), 0), H)
    if visible == 0 or x2 - x1 < 1 or y2 - y1 < 1:
        return None
    s = min(abs(p.look.light[0]) + abs(p.look.light[1]), 0.95)
    gx, gy = lamp
    scene_gain = 1 + gx * (2 * cx / W - 1) + gy * (2 * cy / H - 1)
    drawn = difficulty.Drawn(
        identity=p.identity, height=p.look.height, blur_px=float(np.hypot(render.total_blur(p.look), camera_blur)),
        light_ratio=(1 + s) / (1 - s), gain=p.look.gain * scene_gain, angle=p.look.angle,
        squeeze=p.look.squeeze, covered=1 - visible / max(p.total, 1))
    return [x1, y1, x2 - x1, y2 - y1, *difficulty.attributes(drawn)]


def _finish(rng, canvas: np.ndarray) -> tuple[np.ndarray, tuple, float]:
    """Scene lighting gradient, sometimes camera blur, noise -> (uint8 image, (gx, gy), blur sigma)."""
    from scipy import ndimage

    H, W = canvas.shape[:2]
    gx, gy = (float(v) for v in rng.uniform(-0.25, 0.25, 2))
    xs = np.linspace(-1, 1, W, dtype=np.float32)
    ys = np.linspace(-1, 1, H, dtype=np.float32)
    canvas *= (1 + gx * xs[None, :] + gy * ys[:, None])[:, :, None]
    camera_blur = float(rng.uniform(0.4, 1.2)) if rng.uniform() < 0.15 else 0.0
    if camera_blur:
        canvas = ndimage.gaussian_filter(canvas, (camera_blur, camera_blur, 0))
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(rng.uniform(0.0, 0.03))
    image = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return image, (gx, gy), camera_blur


def make_scene(seed: int, split: str, index: int, size: tuple = (640, 480), lib: Library | None = None) -> Scene:
    """Image ``index`` of ``split`` for ``seed``; size = (W, H) pixels."""
    rng = scene_rng(seed, split, index)
    lib = lib or load_library()
    W, H = size
    canvas = background(rng, lib, W, H)
    top = np.full((H, W), -1, np.int32)
    layout = layouts.choose_layout(rng, W, H)
    heights = np.clip(layout.height, layouts.MIN_HEIGHT, max(layouts.MIN_HEIGHT, layouts.max_height(W, H)))
    n_neg = int(np.clip(round(len(heights) * rng.uniform(0.05, 0.2)), 2, 40))
    layer = 0
    if rng.uniform() < 0.25:
        render.paste(canvas, top, cat_patch(lib, H * rng.uniform(0.15, 0.5)),
                     rng.uniform(0, W), rng.uniform(0, H), layer)
        layer += 1
    layer = _paste_negatives(rng, lib, canvas, top, heights, n_neg - n_neg // 3, layer)
    painted, layer = _paste_faces(rng, lib, canvas, top, layout, heights, split, layer)
    _paste_negatives(rng, lib, canvas, top, heights, n_neg // 3, layer)
    image, lamp, camera_blur = _finish(rng, canvas)
    rows, ids = [], []
    for p in painted:
        row = _annotate(p, top, lamp, camera_blur)
        if row is not None:
            rows.append(row)
            ids.append(p.identity)
    faces = np.asarray(rows, np.int64).reshape(-1, 10)
    return Scene(image=image, faces=faces, identities=np.asarray(ids, np.int64), kind=layout.kind,
                 quality=int(rng.integers(60, 96)))
