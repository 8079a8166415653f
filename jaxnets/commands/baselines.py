"""``jaxnets baselines DETECTOR DATA_ROOT OUT_PRED_DIR``: a baseline face detector over a WIDER split.

    jaxnets baselines mtcnn /tmp/df runs/mtcnn_val               # all val images
    jaxnets baselines haar /tmp/df runs/haar_val --limit 50      # the first 50 (a quick loop)
    jaxnets wider-eval runs/mtcnn_val --gt /tmp/df               # the official protocol, all images

DETECTOR is ``mtcnn`` (facenet-pytorch), ``lbp`` (scikit-image) or ``haar`` (OpenCV), with the
settings of ``docs/baselines.md``. Writes ``OUT_PRED_DIR/<event>/<stem>.txt`` (the official
submission format), prints the detector's speed (detector time only: no JPEG decode, no file
writing) and, for a split with ground truth, easy / medium / hard AP over the images it ran
(with ``--limit``, the first N images only: the ground truth is cut to them). Exit 2 with one
line on bad input or when the detector's package is absent (the line names the install command).
"""

from __future__ import annotations

import argparse
import math
import sys
from jaxnets.commands import bad_input

COMMAND = "baselines"
DETECTOR_NAMES = ("mtcnn", "lbp", "haar")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(COMMAND, help="run MTCNN / the LBP cascade / the Haar cascade over a WIDER split",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("detector", metavar="DETECTOR", choices=DETECTOR_NAMES, help=" | ".join(DETECTOR_NAMES))
    p.add_argument("data_root", metavar="DATA_ROOT", help="a WIDER FACE root (wider_face_split/, WIDER_<split>/)")
    p.add_argument("pred_dir", metavar="OUT_PRED_DIR", help="where to write <event>/<stem>.txt prediction files")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="default val")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images of the split")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    return bad_input(COMMAND, message)


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"  {done}/{total} images", file=sys.stderr, flush=True)


def _ap_lines(args, predictions) -> list[str]:
    """AP lines of a val / train run scored against the split's ground truth (cut to the images run)."""
    from jaxnets.baselines import restrict_ground_truth
    from jaxnets.eval import evaluate, load_ground_truth

    if args.split != "val":
        return [f"(no AP: the official protocol scores the val split; {args.split} given)"]
    gt = restrict_ground_truth(load_ground_truth(args.data_root), predictions)
    result = evaluate(gt, predictions)
    kind = "official subsets" if result.official else "NOT the official subsets (no .mat files)"
    scope = f"the first {len(predictions)} images" if args.limit else f"all {len(predictions)} images"
    lines = [f"AP over {scope} ({kind}):"]
    for s in result.subsets:
        ap = result.ap[s]
        lines.append(f"  {s:14s} {'no faces' if math.isnan(ap) else f'{ap:.4f}':>8s} {result.faces[s]:8d} faces")
    return lines


def run(args) -> int:
    from jaxnets.baselines import MissingPackage, make_detector, run_detector
    from jaxnets.data.errors import DataError
    from jaxnets.eval import write_predictions

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit {args.limit}: expected a positive number of images")
    try:
        detector = make_detector(args.detector)
        print(f"{detector.name}: {detector.settings}; score: {detector.score}")
        predictions, stats = run_detector(detector, args.data_root, args.split, args.limit, progress=_progress)
        write_predictions(args.pred_dir, predictions)
        lines = _ap_lines(args, predictions)
    except MissingPackage as e:
        return _fail(str(e))
    except DataError as e:
        return _fail(str(e).splitlines()[0])
    except OSError as e:
        return _fail(f"{e.filename or args.pred_dir}: cannot write ({e.strerror})")
    print(stats.describe())
    print(f"predictions: {args.pred_dir} ({len(predictions)} files)")
    print("\n".join(lines))
    return 0
