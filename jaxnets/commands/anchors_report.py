"""``jaxnets anchors-report DATA``: which faces of a WIDER-format set no anchor can learn.

    jaxnets anchors-report data/dense_faces --split val --config v1.3
    jaxnets anchors-report WIDER --config v2.4 --input-size 640 --plot v24.png
    jaxnets anchors-report WIDER --config v2.3 --sizes 8,16,32,64,128,256 --levels conv2,conv3,conv4,conv5,conv6,conv7

For every valid face (WIDER's ``invalid`` flag 0, width and height > 0), after the training
resize, the best IoU any anchor of the configuration reaches (exact: the nearest grid centre of
every anchor shape, :func:`jaxnets.detection.best_anchor_iou`). A face below the threshold gets
no positive anchor under the paper's assignment rule, so the net never learns it - the paper's
reason (5.3.5) for v2.4's 8, 10, 13 px anchors. Prints uncovered faces per face-height bin and
writes a histogram PNG (covered vs not, per bin).

Training resize: the paper trains on square crops of ``--crop`` x the short side (0.33-0.95,
random) resized to ``--input-size`` (512), so a face is scaled by ``input / (crop * short
side)``; the default ``--crop 1`` scales the short side to the input size (the least zoom; try
0.33 for the most). The anchor grid covers the whole resized image. ``--config`` picks a Table 4
version's anchors (default v2.4); ``--sizes / --ratios / --levels / --scales / --upsample /
--threshold`` override its fields. Exit 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib

from jaxnets.commands import bad_input

COMMAND = "anchors-report"
HEIGHT_BINS = (0, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, math.inf)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(COMMAND, help="faces of a WIDER-format set that no anchor covers, by face height",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA", help="WIDER-format root (wider_face_split/, WIDER_<split>/images/)")
    p.add_argument("--split", default="train", choices=("train", "val"), help="which split (default train)")
    p.add_argument("--config", default="v2.4", metavar="NAME", help="Table 4 version, v1.0 ... v2.5 (default v2.4)")
    p.add_argument("--sizes", metavar="S,S,...", help="base anchor size (px) of each level, e.g. 16,32,64,128,256")
    p.add_argument("--levels", metavar="L,L,...", help="feature levels, e.g. conv2,conv3,conv4,conv5,conv6")
    p.add_argument("--ratios", metavar="R,R,...", help="anchor width:height ratios, e.g. 1:1,1:1.5")
    p.add_argument("--scales", metavar="K,K,...", help="scales per level (default 1,2^(1/3),2^(2/3))")
    p.add_argument("--upsample", type=int, help="head upsampling factor (1, or 2 for v2.1+)")
    p.add_argument("--threshold", type=float, help="positive IoU threshold (0.55 / 0.65)")
    p.add_argument("--input-size", type=int, default=512, help="training input side in pixels (default 512)")
    p.add_argument("--crop", type=float, default=1.0, help="crop side / short side before the resize (default 1)")
    p.add_argument("--plot", metavar="PNG", help="histogram PNG (default anchors_<config>_<split>.png here)")
    p.add_argument("--json", metavar="OUT", help="also write the per-bin counts as JSON")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    return bad_input(COMMAND, message)


def _numbers(flag: str, text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(parse_number(t)) for t in text.split(",") if t.strip())
    except (ValueError, ArithmeticError):  # float ** overflows, x / 0
        raise ValueError(f"{flag} {text!r}: expected comma-separated numbers") from None
    if not values:
        raise ValueError(f"{flag} {text!r}: expected at least one number")
    return values


def parse_number(token: str) -> float:
    """'1.26', '2^(1/3)' or '2**(1/3)' -> float (only those two forms)."""
    t = token.strip().replace("**", "^").replace("(", "").replace(")", "")
    if "^" in t:
        base, exp = t.split("^", 1)
        num, _, den = exp.partition("/")
        return float(base) ** (float(num) / float(den or 1))
    return float(t)


def _ratios(text: str) -> tuple[float, ...]:
    out = []
    for tok in text.split(","):
        w, sep, h = tok.strip().partition(":")
        try:
            out.append(float(h) / float(w) if sep else float(w))
        except (ValueError, ArithmeticError):  # float ** overflows, x / 0
            raise ValueError(f"--ratios {text!r}: expected width:height pairs like 1:1,1:1.5") from None
    return tuple(out)


def config_from_args(args):
    """The preset named by --config with the flags' overrides; ValueError naming the flag."""
    from jaxnets.detection import preset

    c = preset(args.config)
    changes = {}
    if args.levels:
        changes["levels"] = tuple(t.strip() for t in args.levels.split(",") if t.strip())
    if args.sizes:
        changes["sizes"] = _numbers("--sizes", args.sizes)
    if args.scales:
        changes["scales"] = _numbers("--scales", args.scales)
    if args.ratios:
        changes["ratios"] = _ratios(args.ratios)
    if args.upsample is not None:
        changes["upsample"] = args.upsample
    if args.threshold is not None:
        changes["iou_threshold"] = args.threshold
    if "levels" in changes and "sizes" not in changes and len(changes["levels"]) != len(c.sizes):
        raise ValueError(f"--levels: {len(changes['levels'])} levels but the {args.config} sizes have "
                         f"{len(c.sizes)}; give --sizes too")
    return c.replace(**changes) if changes else c


def measure(images, sizes, config, input_size: int, crop: float):
    """Per valid face: (height after the resize (F,), best anchor IoU (F,)); and the number of
    invalid or empty faces left out."""
    import numpy as np

    from jaxnets.detection import best_anchor_iou, xywh_to_xyxy

    heights, ious, skipped = [], [], 0
    for im, (h, w) in zip(images, sizes):
        scale = input_size / (crop * min(h, w))
        faces = im.faces
        ok = (faces[:, 7] == 0) & (faces[:, 2] > 0) & (faces[:, 3] > 0)
        skipped += int((~ok).sum())
        if not ok.any():
            continue
        boxes = xywh_to_xyxy(faces[ok, :4].astype(np.float64)) * scale
        shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        heights.append(boxes[:, 3] - boxes[:, 1])
        ious.append(best_anchor_iou(config, shape, boxes))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    return cat(heights), cat(ious), skipped


def bin_table(heights, ious, threshold: float) -> list[dict]:
    """Per face-height bin of :data:`HEIGHT_BINS`: faces, uncovered (best IoU < threshold)."""
    rows = []
    for lo, hi in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:]):
        m = (heights >= lo) & (heights < hi)
        if m.any():
            rows.append({"lo": lo, "hi": hi, "faces": int(m.sum()), "uncovered": int((ious[m] < threshold).sum())})
    return rows


def plot_bins(rows, path, title: str) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['lo']}-{r['hi']}" if math.isfinite(r["hi"]) else f">={r['lo']}" for r in rows]
    covered = [r["faces"] - r["uncovered"] for r in rows]
    uncovered = [r["uncovered"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(labels, covered, color="tab:green", label="an anchor >= threshold")
    ax.bar(labels, uncovered, bottom=covered, color="tab:red", label="no anchor >= threshold")
    ax.set_xlabel("face height after the training resize (px)")
    ax.set_ylabel("faces")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load(root, split):
    from jaxnets.data.wider_txt import image_size, read_gt, split_paths

    txt, images_dir = split_paths(root, split)
    if not pathlib.Path(root).is_dir():
        raise ValueError(f"{root}: not a directory")
    images = read_gt(txt)
    return images, [image_size(txt, images_dir / im.name, im.line) for im in images]


def _print_rows(rows, threshold) -> None:
    print(f"  {'height px':>11s} {'faces':>7s} {'no anchor':>9s} {'%':>6s}")
    for r in rows:
        hi = f"{r['hi']:g}" if math.isfinite(r["hi"]) else "inf"
        pct = 100.0 * r["uncovered"] / r["faces"]
        print(f"  {r['lo']:>5g}-{hi:<5s} {r['faces']:7d} {r['uncovered']:9d} {pct:6.1f}")
    n, u = sum(r["faces"] for r in rows), sum(r["uncovered"] for r in rows)
    print(f"  {'all':11s} {n:7d} {u:9d} {100.0 * u / max(n, 1):6.1f}   (best anchor IoU < {threshold:g})")


def run(args) -> int:
    from jaxnets.data.errors import DataError

    if not args.input_size > 0:
        return _fail(f"--input-size {args.input_size}: expected a positive number of pixels")
    if not (math.isfinite(args.crop) and 0.0 < args.crop <= 1.0):
        return _fail(f"--crop {args.crop}: expected a fraction in (0, 1]")
    if args.plot and pathlib.Path(args.plot).suffix.lower() != ".png":
        return _fail(f"--plot {args.plot}: expected a .png file name")
    try:
        config = config_from_args(args)
        images, sizes = _load(args.data, args.split)
    except (ValueError, DataError) as e:  # DataError is a ValueError; one line either way
        return _fail(str(e).splitlines()[0])
    heights, ious, skipped = measure(images, sizes, config, args.input_size, args.crop)
    rows = bin_table(heights, ious, config.iou_threshold)
    ratios = ", ".join(f"1:{r:g}" for r in config.ratios)
    sz = config.all_sizes()
    print(f"{args.data} [{args.split}]: {len(images)} images, {len(heights)} valid faces ({skipped} invalid or "
          f"empty left out); resize: short side x{args.crop:g} -> {args.input_size} px")
    print(f"anchors {args.config}{' (modified)' if config != _preset(args.config) else ''}: levels "
          f"{','.join(config.levels)}, sizes {sz.min():.1f}..{sz.max():.1f} px ({len(sz)}), ratios w:h {ratios}, "
          f"grid strides {','.join(f'{s:g}' for s in config.strides)} px, IoU >= {config.iou_threshold:g}")
    _print_rows(rows, config.iou_threshold)
    plot = pathlib.Path(args.plot or f"anchors_{args.config}_{args.split}.png")
    try:
        title = (f"{pathlib.Path(args.data).resolve().name} {args.split}: anchors {args.config}, "
                 f"IoU >= {config.iou_threshold:g}, input {args.input_size}")
        print(f"histogram: {plot_bins(rows, plot, title)}")
        if args.json:
            out = {"data": str(args.data), "split": args.split, "config": args.config,
                   "threshold": config.iou_threshold, "input_size": args.input_size, "crop": args.crop,
                   "bins": [{**r, "hi": None if not math.isfinite(r["hi"]) else r["hi"]} for r in rows]}
            pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
            print(f"JSON: {args.json}")
    except OSError as e:
        return _fail(f"{e.filename or plot}: cannot write ({e.strerror})")
    return 0


def _preset(name):
    from jaxnets.detection import preset

    return preset(name)
