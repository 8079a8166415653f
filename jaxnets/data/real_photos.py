"""Three real photographs with faces that are on every machine, as a tiny WIDER FACE val split.

=============  ============================================  ===========  =============================
stem           source                                        size (WxH)   face (x, y, w, h), attributes
=============  ============================================  ===========  =============================
astronaut      ``skimage.data.astronaut()`` (Eileen Collins)  512x512      182 78 90 99, frontal
camera         ``skimage.data.camera()`` (the cameraman;      512x512      193 126 63 68, profile
               grey, written as 3 equal channels)                         (pose = 1, atypical)
grace_hopper   matplotlib ``sample_data/grace_hopper.jpg``    512x600      179 134 167 197, frontal
=============  ============================================  ===========  =============================

The boxes are in ``real_photos/wider_face_val_bbx_gt.txt`` (WIDER's own format, event
``0--Real_Photos``); ``real_photos/README.md`` says how they were drawn: by eye, on
zoomed crops with a 5- or 10-pixel grid, following the WIDER FACE rule that the box "tightly
contains the forehead, chin and cheek" -- top at the hairline (or the cap's brim), bottom at the
chin, left and right at the cheek outline where the ear joins (ears left out; in the profile,
from the jaw's back edge to the nose tip). No detector output was used.

:func:`write_real_photos` writes them in the layout ``jaxnets make-faces`` writes (images as JPEG,
quality 95, 4:2:0, from the decoded RGB pixels -- the same bytes on every run with the same
Pillow), with every face in easy, medium and hard.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np

from jaxnets.data.errors import DataError
from jaxnets.data.wider_txt import WiderImage, read_gt

DATA_DIR = pathlib.Path(__file__).with_name("real_photos")
GT_FILE = DATA_DIR / "wider_face_val_bbx_gt.txt"
EVENT = "0--Real_Photos"
PHOTOS = ("astronaut", "camera", "grace_hopper")
JPEG_QUALITY = 95


def load_photo(stem: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of one photo, decoded from the package that ships it."""
    if stem == "astronaut":
        import skimage.data

        return np.ascontiguousarray(skimage.data.astronaut())
    if stem == "camera":
        import skimage.data

        return np.repeat(skimage.data.camera()[:, :, None], 3, axis=2)  # (512, 512) grey -> 3 channels
    if stem == "grace_hopper":
        import matplotlib
        from PIL import Image

        path = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if not path.is_file():
            raise DataError(f"{path}: not found (matplotlib's sample data is missing)")
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    raise DataError(f"photo {stem!r}: expected one of {', '.join(PHOTOS)}")


def encode_jpeg(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes (quality 95, 4:2:0, no optimisation passes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, format="JPEG", quality=JPEG_QUALITY,
                                                             subsampling="4:2:0", optimize=False)
    return buf.getvalue()


def real_photos_gt() -> list[WiderImage]:
    """The hand-drawn ground truth: one WiderImage per photo, in :data:`PHOTOS` order."""
    return read_gt(GT_FILE)


def write_real_photos(out) -> list[WiderImage]:
    """Write ``out/WIDER_val/images/0--Real_Photos/<stem>.jpg``,
    ``out/wider_face_split/wider_face_val_bbx_gt.txt`` and ``out/eval_tools/ground_truth/*.mat``
    (every face in easy, medium and hard). Returns the records written."""
    from jaxnets.data.wider_mat import SUBSETS, write_val_mats
    from jaxnets.data.wider_txt import check_images, split_paths, write_gt

    images = real_photos_gt()
    txt, images_dir = split_paths(out, "val")
    try:
        (images_dir / EVENT).mkdir(parents=True, exist_ok=True)
        txt.parent.mkdir(parents=True, exist_ok=True)
        for im in images:
            (images_dir / im.name).write_bytes(encode_jpeg(load_photo(im.stem)))
        write_gt(txt, images)
        check_images(txt, images, images_dir)  # every hand box lies inside its photo
        every_face = {im.name: np.arange(1, len(im.faces) + 1) for im in images}
        write_val_mats(pathlib.Path(out) / "eval_tools" / "ground_truth", images,
                       {s: every_face for s in SUBSETS})
    except OSError as e:
        raise DataError(f"{e.filename or out}: cannot write ({e.strerror})") from None
    return images
