"""What each pyramid level of a trained FaceNet sees at the training side and at the test side.

    python bench/face_level_stats.py RUN [--sizes 128,640] [--faces data/faces] [--limit 20]

For the first ``--limit`` val images of the dense-face set under ``--faces``, each letterboxed to
every side in ``--sizes`` (the run's best checkpoint, batch-norm running statistics, as at test
time), prints per size:

* the RMS of each backbone output conv2 ... conv7 (the features the FPN or the heads take), and
* per anchor level, how many anchors per image score above 0.9 (a level that fires on most of its
  positions has left the range it was trained on), with the largest score.

A run trained on 128² crops sees conv6 as 2×2 and conv7 as 1×1 maps, made mostly of the
convolutions' padding; a 640² test image gives them 10×10 and 5×5 maps. The table shows whether
their statistics, and the levels the FPN feeds from them, survive that.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(s < 32 or s % 32 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected sides that are multiples of 32, e.g. 128,640")
    return sizes


def val_images(root: pathlib.Path, limit: int) -> list[np.ndarray]:
    """The first ``limit`` val images (uint8 RGB) of the WIDER-format set under ``root``."""
    from PIL import Image

    from jaxnets.data.wider_txt import read_gt

    records = read_gt(root / "wider_face_split" / "wider_face_val_bbx_gt.txt")[:limit]
    return [np.asarray(Image.open(root / "WIDER_val" / "images" / r.name).convert("RGB")) for r in records]


def level_stats(runner, images: list[np.ndarray], size: int) -> dict:
    """{"rms": {conv2: float, ...}, "hot": (L,) anchors per image > 0.9 per anchor level, "max": float}."""
    import jax

    from jaxnets.data.detection_augment import letterbox
    from jaxnets.detection.anchors import anchors as make_anchors
    from jaxnets.tasks.face_detection import face_scores, pixels

    _, level = make_anchors(runner.anchor_config, (size, size), runner.model.grid_sizes(size))

    @jax.jit
    def run(x):
        out, state = runner.model.apply(runner.variables, pixels(x), train=False, mutable=["intermediates"],
                                        capture_intermediates=lambda m, _: m.name == "backbone")
        feats = state["intermediates"]["backbone"]["__call__"][0]
        return face_scores(out["logits"]), {k: jax.numpy.mean(v**2) for k, v in feats.items()}

    sq, hot, top = {}, np.zeros(len(runner.anchor_config.levels)), 0.0
    for im in images:
        x = letterbox(im, np.zeros((0, 4)), size)[0].transpose(2, 0, 1)[None]
        scores, ms = jax.device_get(run(x))
        for k, v in ms.items():
            sq[k] = sq.get(k, 0.0) + float(v) / len(images)
        hot += np.bincount(level[scores[0] > 0.9], minlength=len(hot)) / len(images)
        top = max(top, float(scores.max()))
    return {"rms": {k: float(np.sqrt(v)) for k, v in sorted(sq.items())}, "hot": hot, "max": top}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a trained face_detection workdir")
    p.add_argument("--sizes", type=_sizes, default="128,640", help="letterbox sides (default 128,640)")
    p.add_argument("--faces", default="data/faces", help="the dense-face WIDER root")
    p.add_argument("--limit", type=int, default=20, help="val images (default 20)")
    args = p.parse_args(argv)
    if args.limit < 1:
        p.error(f"--limit {args.limit}: expected at least 1")
    from jaxnets.data.wider_txt import WiderFormatError
    from jaxnets.detection.inference import FaceDetectorRunner
    from jaxnets.train.workdir import WorkdirError

    try:
        runner = FaceDetectorRunner.from_workdir(args.run)
        images = val_images(pathlib.Path(args.faces), args.limit)
    except (WorkdirError, WiderFormatError, OSError) as e:
        print(f"face_level_stats: {e}", file=sys.stderr)
        return 2
    levels = runner.anchor_config.levels
    print(f"{args.run} (step {runner.step}), {len(images)} val images of {args.faces}\n")
    print("| side | " + " | ".join(f"RMS {k}" for k in ("conv2", "conv3", "conv4", "conv5", "conv6", "conv7"))
          + " | " + " | ".join(f"> 0.9 at {k}" for k in levels) + " | max score |")
    print("|---" * (8 + len(levels)) + "|")
    for size in args.sizes:
        s = level_stats(runner, images, size)
        rms = " | ".join(f"{s['rms'][k]:.2f}" if k in s["rms"] else "-"
                         for k in ("conv2", "conv3", "conv4", "conv5", "conv6", "conv7"))
        print(f"| {size} | {rms} | " + " | ".join(f"{h:.0f}" for h in s["hot"]) + f" | {s['max']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
