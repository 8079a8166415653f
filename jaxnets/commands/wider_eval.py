"""``jaxnets wider-eval PRED_DIR --gt DIR``: the official WIDER FACE protocol on a prediction folder.

    jaxnets wider-eval runs/mtcnn_val --gt data/dense_faces            # a WIDER root
    jaxnets wider-eval preds --gt eval_tools/ground_truth --plot pr.png --json ap.json

Prints easy / medium / hard AP (or, without the subset .mat files, AP over all valid faces and by
face height, said so on the first line), writes the PR-curve PNG (default ``<PRED_DIR>_pr.png``
beside the prediction folder) and optionally the curves as JSON. Exit 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from jaxnets.commands import bad_input

COMMAND = "wider-eval"
SHOWN_NAMES = 3


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(COMMAND, help="WIDER FACE easy/medium/hard AP of a prediction folder (official protocol)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred_dir", metavar="PRED_DIR", help="folder of <event>/<stem>.txt prediction files")
    p.add_argument("--gt", required=True, metavar="DIR",
                   help="folder with wider_face_val.mat + wider_{easy,medium,hard}_val.mat, or a WIDER root "
                        "(eval_tools/ground_truth, else wider_face_split/wider_face_val_bbx_gt.txt), or that txt")
    p.add_argument("--plot", metavar="PNG", help="PR-curve PNG (default: <PRED_DIR>_pr.png beside PRED_DIR)")
    p.add_argument("--json", metavar="OUT", help="also write AP, face counts and the PR curves as JSON")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold for a match (default 0.5, official)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    return bad_input(COMMAND, message)


def _warn(message: str) -> None:
    print(f"jaxnets {COMMAND}: warning: {message}", file=sys.stderr)


def _names(names) -> str:
    more = f", ... ({len(names) - SHOWN_NAMES} more)" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more


def default_plot_path(pred_dir) -> pathlib.Path:
    """``<parent>/<name>_pr.png`` beside the prediction folder (not inside it)."""
    p = pathlib.Path(pred_dir).resolve()
    return p.with_name(f"{p.name}_pr.png")


def _table(result) -> list[str]:
    rows = [f"  {'subset':14s} {'AP':>8s} {'faces':>8s}"]
    for name in result.subsets:
        ap = result.ap[name]
        rows.append(f"  {name:14s} {'no faces' if math.isnan(ap) else f'{ap:.4f}':>8s} {result.faces[name]:8d}")
    return rows


def result_json(result, pred_dir) -> dict:
    """AP, counts and curves of a WiderResult as plain JSON values (NaN -> null)."""
    clean = lambda xs: [None if math.isnan(x) else float(x) for x in xs]  # noqa: E731
    return {
        "official": result.official, "ground_truth": result.source, "predictions": str(pred_dir),
        "iou_threshold": result.iou_threshold, "num_images": result.num_images,
        "num_predictions": result.num_predictions, "missing": list(result.missing), "extra": list(result.extra),
        "thresholds": clean(result.thresholds),
        "subsets": {s: {"ap": clean([result.ap[s]])[0], "faces": result.faces[s],
                        "precision": clean(result.precision[s]), "recall": clean(result.recall[s])}
                    for s in result.subsets},
    }


def run(args) -> int:
    from jaxnets.data.errors import DataError
    from jaxnets.eval import evaluate_dir, load_ground_truth, plot_pr_curves

    if not (math.isfinite(args.iou) and 0.0 < args.iou <= 1.0):
        return _fail(f"--iou {args.iou}: expected a value in (0, 1]")
    if args.plot and pathlib.Path(args.plot).suffix.lower() != ".png":
        return _fail(f"--plot {args.plot}: expected a .png file name")
    try:
        gt = load_ground_truth(args.gt)
        result = evaluate_dir(args.pred_dir, gt, iou_threshold=args.iou)
    except DataError as e:
        return _fail(str(e).splitlines()[0])
    if not result.official:
        print(f"note: ground truth {gt.source} comes without the easy/medium/hard subset files (.mat): AP over "
              "all valid faces and by face height, NOT the official WIDER FACE subsets")
    if result.missing:
        _warn(f"no prediction file for {len(result.missing)} of {result.num_images} images (counted as no "
              f"detections): {_names(result.missing)}")
    if result.extra:
        _warn(f"{len(result.extra)} prediction files for images not in the ground truth (ignored): "
              f"{_names(result.extra)}")
    print(f"ground truth {gt.source}: {result.num_images} images; predictions {args.pred_dir}: "
          f"{result.num_predictions} boxes; IoU >= {result.iou_threshold:g}")
    print("\n".join(_table(result)))
    plot = pathlib.Path(args.plot) if args.plot else default_plot_path(args.pred_dir)
    try:
        title = f"WIDER FACE protocol: {pathlib.Path(args.pred_dir).resolve().name}"
        print(f"PR curves: {plot_pr_curves(result, plot, title=title)}")
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(result_json(result, args.pred_dir), indent=1) + "\n")
            print(f"JSON: {args.json}")
    except OSError as e:
        return _fail(f"{e.filename or plot}: cannot write ({e.strerror})")
    return 0
