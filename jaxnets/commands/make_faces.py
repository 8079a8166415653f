"""``jaxnets make-faces OUT --train N --val M [--test K] --seed S [--size WxH] [--workers J]``

Makes the dense-face set (real LFW faces composited into crowd scenes) in WIDER FACE's layout, so
the WIDER loader and ``jaxnets wider-eval`` read and score it; see docs/dense_faces.md. Exit 0 when
written, 2 on a bad argument or a target folder it may not write, 1 when writing fails (disk).
"""

from __future__ import annotations

import os
import re
import sys

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_IMAGES = 1_000_000  # per split (WIDER FACE has 32,203 images in all)


def _count(name: str, text: str) -> int:
    from jaxnets.data.errors import DataError

    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise DataError(f"--{name} {text!r}: expected a whole number >= 0")
    top = 2**63 - 1 if name == "seed" else MAX_IMAGES
    if int(text) > top:
        raise DataError(f"--{name} {text.strip()}: at most {top:,}")
    return int(text)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); DataError unless both sides are whole numbers in [64, 4096]."""
    from jaxnets.data.errors import DataError

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise DataError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480")
    w, h = int(m.group(1)), int(m.group(2))
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise DataError(f"--size {text!r}: each side must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    return w, h


def run(args) -> int:
    from jaxnets.data.errors import DataError

    try:
        counts = {s: _count(s, getattr(args, s)) for s in ("train", "val", "test")}
        seed = _count("seed", args.seed)
        workers = _count("workers", args.workers) if args.workers is not None else min(os.cpu_count() or 1, 8)
        size = parse_size(args.size)
        if workers < 1:
            raise DataError("--workers 0: expected at least 1")
        if not sum(counts.values()):
            raise DataError("--train, --val and --test are all 0: nothing to make")
        from jaxnets.data.dense_faces import write_set

        manifest = write_set(args.out, counts, seed, size, workers, progress=not args.no_progress)
    except DataError as e:
        print(f"jaxnets make-faces: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"jaxnets make-faces: {where}{e.strerror or e} (nothing complete was left in {args.out})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"jaxnets make-faces: interrupted; {args.out} was not written or replaced (the next run removes "
              f"{args.out}.partial)", file=sys.stderr)
        return 130
    faces = ", ".join(f"{s} {manifest['images'][s]} images / {manifest['faces'][s]} faces"
                      for s in ("train", "val", "test") if manifest["images"][s])
    print(f"wrote {args.out}: {faces}")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("make-faces", help="make the dense-face set (real faces, WIDER FACE layout)",
                              description=__doc__)
    p.add_argument("out", help="folder to write (absent, empty, or a set made earlier by make-faces)")
    p.add_argument("--train", default="0", help="number of training images (identities 0-79)")
    p.add_argument("--val", default="0", help="number of validation images (held-out identities 80-99)")
    p.add_argument("--test", default="0", help="number of test images (held-out identities 80-99)")
    p.add_argument("--seed", default="0", help="seed; the same seed gives the same files byte for byte")
    p.add_argument("--size", default="640x480", help="image size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--workers", default=None, help="processes (default: the CPU count, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
