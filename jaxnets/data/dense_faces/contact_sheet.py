"""A contact sheet: the first images of a split, half size, with their face boxes drawn.

Box colours: easy green, medium (not easy) yellow, hard (not medium) orange, outside hard
(invalid, or under 8 px) red.
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxnets.data.dense_faces.difficulty import subset_masks

COLOURS = {"easy": (40, 220, 40), "medium": (250, 230, 20), "hard": (255, 130, 0), "ignore": (230, 20, 20)}


def face_colour(masks: dict, k: int) -> tuple:
    for s in ("easy", "medium", "hard"):
        if masks[s][k]:
            return COLOURS[s]
    return COLOURS["ignore"]


def draw_boxes(image, faces: np.ndarray, scale: float):
    """PIL image (already resized by ``scale``) with the (K, 10) faces' boxes drawn on it."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    masks = subset_masks(faces)
    for k, (x, y, w, h) in enumerate(np.asarray(faces)[:, :4].tolist()):
        x1, y1 = x * scale, y * scale
        draw.rectangle([x1, y1, max(x1, x1 + w * scale - 1), max(y1, y1 + h * scale - 1)], outline=face_colour(masks, k))
    return image


def write_contact_sheet(path, images_dir, images: list, columns: int = 4, rows: int = 3, scale: float = 0.5) -> None:
    """Write a PNG of the first ``columns * rows`` of ``images`` (WiderImage records whose files
    are under ``images_dir``), each resized by ``scale``, boxes drawn."""
    from PIL import Image

    shown = images[: columns * rows]
    if not shown:
        return
    tiles = []
    for im in shown:
        with Image.open(pathlib.Path(images_dir) / im.name) as pic:
            w, h = pic.size
            tile = pic.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                            Image.Resampling.BILINEAR)
        tiles.append(draw_boxes(tile, im.faces, scale))
    tw, th = max(t.width for t in tiles), max(t.height for t in tiles)
    n_rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (tw * min(columns, len(tiles)) + 2 * (min(columns, len(tiles)) - 1),
                              th * n_rows + 2 * (n_rows - 1)), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * (tw + 2), (i // columns) * (th + 2)))
    sheet.save(path, format="PNG")
