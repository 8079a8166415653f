"""Benchmark: the face detectors a user would pick instead of ours, on the dense-face val split and
on the three real photographs, through the official WIDER FACE protocol.

Detectors (settings in ``docs/baselines.md`` and :mod:`jaxnets.baselines`): ``mtcnn``
(facenet-pytorch, pretrained), ``lbp`` (scikit-image's LBP frontal-face cascade), ``haar``
(OpenCV's Haar frontal-face cascade). One whose package is absent is skipped with one line.

For each detector:

* dense faces: every image of the val split under ``--faces`` (made first with
  ``jaxnets make-faces FACES --train 0 --val 500 --seed 0`` when the folder does not exist),
  easy / medium / hard AP (:func:`jaxnets.eval.evaluate`, official subsets from the split's
  .mat files), frames per second = images / summed detector time (no JPEG decode, no file
  writing; one untimed warm-up call), the image size;
* ``--facenet NAME=WORKDIR``: our detector, a trained run (:mod:`jaxnets.baselines.facenet`),
  measured the same way, as the row ``facenet_NAME``;
* real photos (``jaxnets real-photos``): per photo, hit or miss -- a hit is a box the detector
  itself reports (score >= its default threshold) with IoU >= 0.5 against the hand-drawn box --
  and the best such IoU.

Prints a markdown table, writes the prediction folders, one PR-curve PNG per detector and one
PNG with all detectors per subset under ``--out``, and optionally the numbers as JSON.

    python bench/face_baselines.py [--faces /tmp/df] [--out runs/face_baselines] [--limit N]
                                   [--detectors mtcnn,lbp,haar] [--mtcnn-thresholds 0.6,0.7,0.7]
                                   [--facenet NAME=WORKDIR ...] [--facenet-scales 1,0.5]
                                   [--facenet-size S] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys

DETECTORS = ("mtcnn", "lbp", "haar")
PHOTOS = ("astronaut", "camera", "grace_hopper")


def _thresholds(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected three numbers in [0, 1], e.g. 0.6,0.7,0.7")
    return values


def ensure_faces(root: pathlib.Path, val: int, seed: int) -> pathlib.Path:
    """The dense-face root, made with ``jaxnets make-faces`` when it does not exist yet."""
    if not (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").is_file():
        from jaxnets.cli import main as cli

        print(f"making the dense-face val split: jaxnets make-faces {root} --train 0 --val {val} --seed {seed}")
        if cli(["make-faces", str(root), "--train", "0", "--val", str(val), "--seed", str(seed), "--no-progress"]):
            raise SystemExit(f"face_baselines: jaxnets make-faces {root} failed")
    return root


def dense_faces(detector, root, out: pathlib.Path, limit) -> dict:
    """AP per subset, speed and image size of ``detector`` on the val split of ``root``."""
    from jaxnets.baselines import restrict_ground_truth, run_detector
    from jaxnets.eval import evaluate, load_ground_truth, plot_pr_curves, write_predictions

    predictions, stats = run_detector(detector, root, "val", limit)
    load = os.getloadavg()[0]
    write_predictions(out / f"{detector.name}_val", predictions)
    result = evaluate(restrict_ground_truth(load_ground_truth(root), predictions), predictions)
    plot_pr_curves(result, out / f"{detector.name}_val_pr.png", title=f"{detector.name} on the dense-face val split")
    print(f"  {stats.describe()} (1-min load average at the end: {load:.2f})")
    return {"ap": dict(result.ap), "faces": dict(result.faces), "official": result.official,
            "images_per_s": stats.images_per_s, "seconds": stats.seconds, "num_images": stats.num_images,
            "image_size": stats.image_size, "num_boxes": stats.num_boxes, "load_average": load,
            "curves": {s: (result.recall[s], result.precision[s]) for s in result.subsets}}


def real_photos(detector, root) -> dict:
    """Per photo: hit (bool), best IoU of the detector's own detections with the hand box."""
    from jaxnets.baselines import run_detector
    from jaxnets.baselines.hits import face_hits
    from jaxnets.data.real_photos import real_photos_gt

    predictions, stats = run_detector(detector, root, "val")
    out = {}
    for im in real_photos_gt():
        hit, best = face_hits(predictions[f"{im.event}/{im.stem}"], im.boxes, detector.default_threshold)
        out[im.stem] = {"hits": int(hit.sum()), "faces": len(hit), "best_iou": float(best.max(initial=0.0)),
                        "boxes": int(len(predictions[f"{im.event}/{im.stem}"]))}
    return out


def table(rows: dict) -> str:
    """The markdown table of every measured detector."""
    head = ("| detector | easy AP | medium AP | hard AP | images/s | image size | "
            + " | ".join(PHOTOS) + " |")
    lines = [head, "|" + "---|" * (6 + len(PHOTOS))]
    fmt = lambda v: "-" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
    for name, r in rows.items():
        d, p = r["dense"], r["photos"]
        cells = [fmt(d["ap"].get(s)) for s in ("easy", "medium", "hard")]
        cells += [f"{d['images_per_s']:.2f}", d["image_size"]]
        cells += [f"{'hit' if p[s]['hits'] else 'miss'} (IoU {p[s]['best_iou']:.2f})" for s in PHOTOS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_all(rows: dict, path: pathlib.Path) -> None:
    """One panel per subset, one PR curve per detector."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4), dpi=110)
    FigureCanvasAgg(fig)
    for k, subset in enumerate(("easy", "medium", "hard")):
        ax = fig.add_subplot(1, 3, k + 1)
        for name, r in rows.items():
            rec, prec = r["dense"]["curves"][subset]
            ok = np.isfinite(prec)
            points = len(set(zip(rec[ok].tolist(), prec[ok].tolist())))  # a scoreless detector: one point
            ax.plot(rec[ok], prec[ok], "-", lw=1.6, marker="o" if points < 3 else None,
                    label=f"{name}: AP {r['dense']['ap'][subset]:.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=f"dense faces val: {subset}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", default="/tmp/df", help="dense-face WIDER root (made when absent)")
    p.add_argument("--val", type=int, default=500, help="val images when making the split (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="only the first N val images")
    p.add_argument("--out", default="runs/face_baselines", help="prediction folders and PR-curve PNGs")
    p.add_argument("--detectors", default=",".join(DETECTORS),
                   help="comma-separated subset of mtcnn,lbp,haar ('' for none: only --facenet runs)")
    p.add_argument("--mtcnn-thresholds", type=_thresholds, default="0.6,0.7,0.7",
                   help="MTCNN's P/R/O-net thresholds (default: the library's 0.6,0.7,0.7)")
    p.add_argument("--facenet", action="append", default=[], metavar="NAME=WORKDIR",
                   help="also measure our detector: a trained face_detection run (repeatable), e.g. "
                        "v2_3=runs/faces_cpu_v2_3; its row is called facenet_NAME")
    p.add_argument("--facenet-scales", default="1", metavar="S,S,...",
                   help="multi-scale testing for the --facenet runs, e.g. 1,0.5 (default 1: one scale)")
    p.add_argument("--facenet-size", type=int, metavar="S",
                   help="letterbox side for the --facenet runs (default: each run's eval.image_size)")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)
    if args.facenet_size is not None and args.facenet_size < 32:
        p.error(f"--facenet-size {args.facenet_size}: expected a side of at least 32 pixels")
    settings = {"mtcnn": {"thresholds": args.mtcnn_thresholds}}
    for spec in args.facenet:
        name, _, workdir = spec.partition("=")
        if not name or not workdir:
            p.error(f"--facenet {spec!r}: expected NAME=WORKDIR")
        settings[f"facenet_{name}"] = {"workdir": workdir, "scales": args.facenet_scales, "size": args.facenet_size}
    from jaxnets.baselines import MissingPackage, make_detector
    from jaxnets.data.real_photos import write_real_photos
    from jaxnets.train.workdir import WorkdirError

    out = pathlib.Path(args.out)
    faces = ensure_faces(pathlib.Path(args.faces), args.val, args.seed)
    write_real_photos(out / "real_photos")
    rows = {}
    names = [d.strip() for d in args.detectors.split(",") if d.strip()] + [f"facenet_{s.partition('=')[0]}"
                                                                            for s in args.facenet]
    for name in names:
        try:
            kind = "facenet" if name.startswith("facenet_") else name
            detector = make_detector(kind, **settings.get(name, {}))
            detector.name = name  # facenet_<NAME>: one prediction folder and PR plot per run
        except (MissingPackage, ValueError, WorkdirError) as e:
            print(f"skipped {name}: {e}")
            continue
        print(f"{name}: {detector.settings}")
        rows[name] = {"settings": detector.settings, "score": detector.score,
                      "dense": dense_faces(detector, faces, out, args.limit),
                      "photos": real_photos(detector, out / "real_photos")}
    if not rows:
        print("no detector could run", file=sys.stderr)
        return 1
    plot_all(rows, out / "baselines_pr.png")
    print(f"\nCPU: {os.cpu_count()} cores; PR curves: {out}/baselines_pr.png\n")
    print(table(rows))
    if args.json:
        for r in rows.values():
            r["dense"].pop("curves")
            r["dense"]["ap"] = {s: None if math.isnan(v) else v for s, v in r["dense"]["ap"].items()}
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
