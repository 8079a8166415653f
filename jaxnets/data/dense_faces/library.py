"""The real pictures the dense-face set is composited from, all shipped in scikit-image's wheel.

* faces: ``skimage/data/lfw_subset.npy`` rows 0-99, 25x25 grey crops of real faces from Labeled
  Faces in the Wild (one crop per person: the row index is the identity). A crop runs from the
  hairline / upper forehead to just below the chin and from cheek to cheek.
* non-faces: rows 100-199 of the same file, 25x25 grey patches of real photographs without a face
  (pasted unannotated as hard negatives).
* backgrounds: the real photographs and textures in ``skimage/data`` listed in
  :data:`BACKGROUNDS`; never ``astronaut.png`` or ``camera.png``, which hold real faces.
* the cat: ``chelsea.png`` cropped to the cat's head, pasted unannotated as a hard negative.

Identities 0-79 are the training faces, 80-99 the held-out faces of val and test
(:data:`SPLIT_IDENTITIES`).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np

from jaxnets.data.errors import DataError

N_FACES = 100
TRAIN_IDENTITIES = tuple(range(0, 80))
HELD_OUT_IDENTITIES = tuple(range(80, 100))
SPLIT_IDENTITIES = {"train": TRAIN_IDENTITIES, "val": HELD_OUT_IDENTITIES, "test": HELD_OUT_IDENTITIES}

BACKGROUNDS = (
    "brick.png", "grass.png", "gravel.png", "coffee.png", "chelsea.png", "rocket.jpg",
    "hubble_deep_field.jpg", "retina.jpg", "motorcycle_left.png", "coins.png", "page.png",
    "moon.png", "horse.png", "clock_motion.png", "text.png", "cell.png", "ihc.png",
)
"""Background pictures (file names in ``skimage/data``); grey ones are tinted when used."""

TEXTURES = ("brick.png", "grass.png", "gravel.png", "coffee.png", "motorcycle_left.png", "rocket.jpg",
            "ihc.png", "coins.png")
"""Pictures whose crops occlude faces (texture patches: hats, hands, signs, scarves)."""

CAT_BOX = (30, 0, 400, 300)
"""(x1, y1, x2, y2) of the cat's head in ``chelsea.png`` (451x300)."""

FORBIDDEN = ("astronaut.png", "camera.png")


@dataclasses.dataclass(frozen=True)
class Library:
    """Everything a scene is made from, as float32 arrays in [0, 1].

    faces: (100, 25, 25) grey face crops; row = identity.
    nonfaces: (100, 25, 25) grey patches without faces.
    backgrounds: name -> (H, W, 3) RGB picture (grey pictures repeated over 3 channels).
    cat: (h, w, 3) RGB crop of the cat's head.
    """

    faces: np.ndarray
    nonfaces: np.ndarray
    backgrounds: dict
    cat: np.ndarray

    @property
    def background_names(self) -> tuple[str, ...]:
        return tuple(self.backgrounds)


def skimage_data_dir() -> pathlib.Path:
    """The ``skimage/data`` folder of the installed scikit-image (DataError when it is absent)."""
    try:
        import skimage.data
    except ImportError as e:
        raise DataError(f"scikit-image is not installed ({e}); the dense-face set is made from its data files") from None
    return pathlib.Path(skimage.data.__file__).parent


def read_picture(path: pathlib.Path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from an image file (grey and alpha flattened to RGB)."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"{path}: missing (scikit-image's data files are needed to make the dense-face set)")
    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "P", "1"):
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return rgb


@functools.lru_cache(maxsize=1)
def load_library() -> Library:
    """Read the faces, non-faces, backgrounds and the cat once per process."""
    root = skimage_data_dir()
    path = root / "lfw_subset.npy"
    if not path.is_file():
        raise DataError(f"{path}: missing (the 100 LFW face crops the dense-face set is made from)")
    crops = np.load(path).astype(np.float32)
    if crops.shape != (2 * N_FACES, 25, 25):
        raise DataError(f"{path}: expected shape (200, 25, 25), found {crops.shape}")
    backgrounds = {name: read_picture(root / name) for name in BACKGROUNDS}
    x1, y1, x2, y2 = CAT_BOX
    cat = backgrounds["chelsea.png"][y1:y2, x1:x2]
    return Library(faces=crops[:N_FACES], nonfaces=crops[N_FACES:], backgrounds=backgrounds, cat=cat)
