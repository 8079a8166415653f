"""Run a baseline detector over the images of a WIDER FACE split and time it.

``run_detector`` reads the split's image list (``wider_face_split/wider_face_{train,val}_bbx_gt.txt``,
or ``wider_face_test_filelist.txt``), decodes each JPEG to (H, W, 3) uint8 RGB, calls the
detector and keeps its (N, 5) ``x, y, w, h, score`` rows per ``"event/stem"`` -- the prediction
folder :func:`jaxnets.eval.write_predictions` writes and ``jaxnets wider-eval`` scores.

Speed is detector time only: ``time.perf_counter()`` around each ``detector(image)`` call, not
the JPEG decode nor the file writing, after one untimed warm-up call on the first image (first
calls pay for lazy initialisation). ``images_per_s`` = timed images / summed seconds.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import time
from typing import Callable

import numpy as np

from jaxnets.data.errors import DataError


@dataclasses.dataclass(frozen=True)
class RunStats:
    """What one run measured.

    detector, settings: the detector's name and its one-line settings
    num_images:   images run (and timed)
    seconds:      summed detector time over them (s)
    num_boxes:    boxes returned over all images
    sizes:        ((W, H), count) of the image sizes seen, most common first
    """

    detector: str
    settings: str
    num_images: int
    seconds: float
    num_boxes: int
    sizes: tuple[tuple[tuple[int, int], int], ...]

    @property
    def images_per_s(self) -> float:
        return self.num_images / self.seconds if self.seconds > 0 else float("nan")

    @property
    def image_size(self) -> str:
        """``"WxH"`` of the images (the most common one and ``"+ k others"`` when they differ)."""
        if not self.sizes:
            return "-"
        (w, h), _ = self.sizes[0]
        return f"{w}x{h}" + (f" (+{len(self.sizes) - 1} other sizes)" if len(self.sizes) > 1 else "")

    def describe(self) -> str:
        return (f"{self.detector}: {self.num_images} images ({self.image_size}), {self.num_boxes} boxes, "
                f"detector time {self.seconds:.2f} s = {self.images_per_s:.2f} images/s")


def split_image_names(root, split: str = "val") -> tuple[list[str], pathlib.Path]:
    """(``"event/name.jpg"`` of every image of ``split``, in file order; the images folder).
    WiderFormatError (a DataError) naming file and line when the list is malformed."""
    from jaxnets.data.wider_txt import read_filelist, read_gt, split_paths

    txt, images_dir = split_paths(root, split)
    names = read_filelist(txt) if split == "test" else [im.name for im in read_gt(txt)]
    return names, images_dir


def load_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (grey and RGBA converted); DataError when unreadable.
    The decoding is :func:`jaxnets.data.wider_source.decode_jpeg`'s, the WIDER loader's own."""
    from jaxnets.data.wider_source import decode_jpeg

    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    return decode_jpeg(data, str(path))


def prediction_name(image_name: str) -> str:
    """``"event/stem.jpg"`` -> ``"event/stem"``, the key of a prediction file."""
    return image_name.rsplit(".", 1)[0] if "." in image_name.split("/")[-1] else image_name


def run_detector(detector, root, split: str = "val", limit: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, np.ndarray], RunStats]:
    """Run ``detector`` on the first ``limit`` (all when None) images of ``split`` under the WIDER
    root ``root``. Returns (``"event/stem"`` -> (N, 5) x, y, w, h, score; RunStats)."""
    names, images_dir = split_image_names(root, split)
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit {limit}: expected a positive number of images")
        names = names[:limit]
    predictions, seconds, sizes = {}, 0.0, collections.Counter()
    for i, name in enumerate(names):
        image = load_rgb(images_dir / name)
        if i == 0:
            detector(image)  # warm-up, not timed
        t0 = time.perf_counter()
        boxes = detector(image)
        seconds += time.perf_counter() - t0
        predictions[prediction_name(name)] = boxes
        sizes[(image.shape[1], image.shape[0])] += 1
        if progress is not None:
            progress(i + 1, len(names))
    stats = RunStats(detector.name, detector.settings, len(names), seconds,
                     int(sum(len(p) for p in predictions.values())), tuple(sizes.most_common()))
    return predictions, stats


def restrict_ground_truth(gt, names):
    """The WiderGroundTruth ``gt`` cut down to the images ``"event/stem"`` in ``names`` (their
    subsets with them), events without such an image dropped; for scoring a ``--limit`` run."""
    keep = set(names)
    out = dict(events=[], files=[], boxes=[], invalid=[], subsets={s: [] for s in gt.subsets})
    for i, event in enumerate(gt.events):
        js = [j for j, stem in enumerate(gt.files[i]) if f"{event}/{stem}" in keep]
        if not js:
            continue
        out["events"].append(event)
        for key in ("files", "boxes", "invalid"):
            out[key].append([getattr(gt, key)[i][j] for j in js])
        for s, rows in gt.subsets.items():
            out["subsets"][s].append([rows[i][j] for j in js])
    return dataclasses.replace(gt, **out, source=f"{gt.source} (the {len(keep)} images run)")
