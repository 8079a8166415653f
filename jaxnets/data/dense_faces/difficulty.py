"""WIDER attributes of a drawn face, and the easy / medium / hard rule.

Attributes (WIDER's fields and values; what each means in this set):

* ``blur`` from the face's total blur b = hypot(0.5 * max(height/25, 1), extra sigma) in pixels
  (upscaling a 25-pixel crop blurs by about half a source pixel):
  2 heavy when height / b < 16 (sigma over 1/16 of the face: 1.5 pixels of the 25-pixel crop), else
  1 normal when b >= 1.5 (a face drawn 3x or more its source size, or extra blur) or height / b < 30,
  else 0 clear.
* ``expression``: 1 (exaggerate) for the LFW crops with the mouth wide open or the face screwed up
  (:data:`EXAGGERATED`, picked by eye), else 0.
* ``illumination``: 1 (extreme) when the lighting changes the brightness by a factor over 2.5
  across the face, or the face's overall gain is < 0.45 or > 1.6, else 0.
* ``occlusion`` from the covered fraction c of the face's own pixels (alpha >= 0.5) -- covered by
  faces, texture patches or negatives drawn after it, or cut off by the image border:
  0 when c < 0.05, 1 (partial) when c <= 0.3, 2 (heavy) above.
* ``invalid``: 1 when c > 0.5 (less than half the face shows), else 0.
* ``pose``: 1 (atypical) when the roll is over 20 degrees or the face is narrowed (squeeze < 0.78,
  a turned head), else 0.

Subsets (nested by construction, easy ⊂ medium ⊂ hard; h = annotated box height after clipping):

* hard   = valid (invalid 0) and h >= 8;
* medium = hard and h >= 16 and occlusion <= 1 and blur <= 1;
* easy   = medium and h >= 32 and occlusion == 0 and pose == 0 and illumination == 0.

Faces outside ``hard`` (invalid, or under 8 px after border clipping) are WIDER's "ignore" faces.
"""

from __future__ import annotations

import dataclasses

import numpy as np

EXAGGERATED = frozenset({0, 16, 29, 51, 53, 96})
"""LFW identities (rows of lfw_subset.npy) whose crop shows an exaggerated expression."""

HARD_MIN, MEDIUM_MIN, EASY_MIN = 8, 16, 32
"""Smallest box height (pixels) of the hard, medium and easy subsets."""

INVALID_COVER = 0.5
"""A face with more than this fraction covered (or off the image) is invalid."""


@dataclasses.dataclass(frozen=True)
class Drawn:
    """What a face's attributes are computed from.

    identity: LFW row; height: drawn crop height (px); blur_px: total blur (px);
    light_ratio: brightest / darkest lighting factor across the face; gain: overall brightness;
    angle: roll (degrees); squeeze: width / height; covered: fraction of its pixels not visible.
    """

    identity: int
    height: float
    blur_px: float
    light_ratio: float
    gain: float
    angle: float
    squeeze: float
    covered: float


def blur_level(height: float, blur_px: float) -> int:
    sharpness = height / max(blur_px, 1e-6)
    if sharpness < 16:
        return 2
    return 1 if blur_px >= 1.5 or sharpness < 30 else 0


def occlusion_level(covered: float) -> int:
    return 0 if covered < 0.05 else (1 if covered <= 0.3 else 2)


def attributes(d: Drawn) -> tuple[int, int, int, int, int, int]:
    """(blur, expression, illumination, invalid, occlusion, pose) of one drawn face."""
    illumination = int(d.light_ratio > 2.5 or d.gain < 0.45 or d.gain > 1.6)
    pose = int(abs(d.angle) > 20 or d.squeeze < 0.78)
    return (blur_level(d.height, d.blur_px), int(d.identity in EXAGGERATED), illumination,
            int(d.covered > INVALID_COVER), occlusion_level(d.covered), pose)


def subset_masks(faces: np.ndarray) -> dict[str, np.ndarray]:
    """faces: (K, 10) int rows in FACE_FIELDS order (x1 y1 w h blur expression illumination
    invalid occlusion pose) -> {"easy" | "medium" | "hard": (K,) bool}, nested easy ⊂ medium ⊂ hard."""
    faces = np.asarray(faces).reshape(-1, 10)
    h, blur, illum, invalid, occl, pose = (faces[:, i] for i in (3, 4, 6, 7, 8, 9))
    hard = (invalid == 0) & (h >= HARD_MIN)
    medium = hard & (h >= MEDIUM_MIN) & (occl <= 1) & (blur <= 1)
    easy = medium & (h >= EASY_MIN) & (occl == 0) & (pose == 0) & (illum == 0)
    return {"easy": easy, "medium": medium, "hard": hard}


def subset_indices(faces: np.ndarray) -> dict[str, np.ndarray]:
    """Like :func:`subset_masks`, as 1-based int64 indices into the image's faces (WIDER gt_list)."""
    return {k: (np.flatnonzero(m) + 1).astype(np.int64) for k, m in subset_masks(faces).items()}
