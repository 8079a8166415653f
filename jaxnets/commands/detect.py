"""``jaxnets detect INPUT --workdir RUN``: a trained FaceNet on an image, a folder of images or a video.

    jaxnets detect photo.jpg --workdir runs/faces_cpu_v2_3 --out annotated/
    jaxnets detect data/faces/WIDER_val/images --workdir RUN --wider preds/ --score 0.05
    jaxnets detect clip.mp4 --workdir RUN --out annotated/ --scales 1,0.5

INPUT: an image (.jpg .png .bmp .gif .tif .webp), a folder (its images, sub-folders included) or
a video (.mp4 .avi .mov .mkv .webm .m4v .mpg; read and written with OpenCV: the ``video`` extra).
``--out DIR``: annotated copies, boxes and scores drawn (DIR/<path relative to INPUT>; a video as
DIR/<stem>.mp4, or .avi for .avi input). ``--wider DIR``: one WIDER FACE prediction file per image
(DIR/<parent folder>/<stem>.txt) or per frame (DIR/<video stem>/<video stem>_<frame:06d>.txt).
Prints images (frames) per second and the number of faces. Bad input -> one line, exit 2.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

from jaxnets.commands import bad_input

COMMAND = "detect"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(COMMAND, help="find faces in an image, a folder of images or a video with a trained FaceNet",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="an image file, a folder of images, or a video file")
    p.add_argument("--workdir", required=True, metavar="RUN", help="a `jaxnets train` run of a face_detection config")
    p.add_argument("--step", type=int, help="this checkpoint step (default: the selected best one)")
    p.add_argument("--out", metavar="DIR", help="write annotated images / the annotated video here")
    p.add_argument("--wider", metavar="DIR", help="write WIDER FACE prediction files here (one per image / frame)")
    p.add_argument("--score", type=float, default=0.5, help="score threshold (default 0.5)")
    p.add_argument("--nms", type=float, default=0.3, help="NMS IoU (default 0.3)")
    p.add_argument("--size", type=int, metavar="N",
                   help="letterbox side, a multiple of 32 (default: config.eval.image_size)")
    p.add_argument("--scales", default="1", help="multi-scale testing, e.g. 1,0.5 (default 1)")
    p.add_argument("--max-detections", type=int, default=750, metavar="N", help="at most N faces per image (default 750)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="video frames per network call (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    return bad_input(COMMAND, message)


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1,0.5"`` -> (1.0, 0.5); ValueError for anything but comma-separated positive finite numbers."""
    try:
        scales = tuple(float(t) for t in text.split(","))
    except ValueError:
        scales = ()
    if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"--scales {text!r}: expected comma-separated positive numbers, e.g. 1,0.5")
    return scales


def _check_options(args) -> str | None:
    """The first bad option as a message, or None."""
    if not 0 <= args.score < 1:
        return f"--score {args.score}: expected a number in [0, 1)"
    if not 0 < args.nms <= 1:
        return f"--nms {args.nms}: expected a number in (0, 1]"
    if args.size is not None and (args.size < 32 or args.size % 32 or args.size > 8192):
        return f"--size {args.size}: expected a multiple of 32 in [32, 8192]"
    if args.max_detections < 1:
        return f"--max-detections {args.max_detections}: expected >= 1"
    if args.batch_size < 1:
        return f"--batch-size {args.batch_size}: expected >= 1"
    try:
        parse_scales(args.scales)
    except ValueError as e:
        return str(e)
    return None


def find_inputs(path: pathlib.Path) -> tuple[str, list[pathlib.Path]]:
    """``("video", [file])`` or ``("images", files)``; ValueError naming the path when it is missing,
    of an unsupported kind, or a folder without images."""
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise ValueError(f"{path}: no images in this folder (looked for {' '.join(IMAGE_EXTS)})")
        return "images", files
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return "images", [path]
    if ext in VIDEO_EXTS:
        return "video", [path]
    raise ValueError(f"{path}: unsupported extension {ext or '(none)'!r}; expected an image "
                     f"({' '.join(IMAGE_EXTS)}), a video ({' '.join(VIDEO_EXTS)}) or a folder")


def _unreadable(path, e: BaseException) -> ValueError:
    return ValueError(f"{path}: cannot be read as an image ({str(e).splitlines()[0] if str(e) else type(e).__name__})")


def read_image(path: pathlib.Path):
    """uint8 (H, W, 3) RGB of an image file (a GIF's first frame); ValueError naming the file when it
    cannot be decoded."""
    import numpy as np
    import PIL.Image

    try:
        with PIL.Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as e:
        raise _unreadable(path, e) from None


def draw_detections(image, detections):
    """uint8 (H, W, 3) RGB with each box (red, 2 px per 500 px of the short side) and its score
    drawn -> a new uint8 (H, W, 3) array."""
    import numpy as np
    import PIL.Image
    import PIL.ImageDraw

    im = PIL.Image.fromarray(np.ascontiguousarray(image))
    draw = PIL.ImageDraw.Draw(im)
    width = max(1, round(min(image.shape[:2]) / 250))
    for (x1, y1, x2, y2), s in zip(detections.boxes.tolist(), detections.scores.tolist()):
        draw.rectangle((x1, y1, x2, y2), outline=(255, 0, 0), width=width)
        draw.text((x1 + 1, max(0.0, y1 - 11)), f"{s:.2f}", fill=(255, 255, 0))
    return np.asarray(im)


def _wider_name(event: str, stem: str) -> str:
    clean = lambda s: s.replace("/", "_").strip() or "images"  # noqa: E731
    event, stem = clean(event), clean(stem)
    return f"{'images' if event in ('.', '..') else event}/{'image' if stem in ('.', '..') else stem}"


def _image_plan(root: pathlib.Path, files: list[pathlib.Path], args) -> list[tuple[pathlib.Path, pathlib.Path | None, str]]:
    """(input, annotated output or None, WIDER name) per image; ValueError on clashes."""
    base = root if root.is_dir() else root.parent
    plan, names = [], {}
    for f in files:
        out = pathlib.Path(args.out) / f.relative_to(base) if args.out else None
        if out is not None and out.resolve() == f.resolve():
            raise ValueError(f"--out {args.out}: would overwrite the input {f}; give another folder")
        name = _wider_name(f.parent.resolve().name, f.stem)
        if args.wider and name in names:
            raise ValueError(f"--wider: {names[name]} and {f} would both write {name}.txt")
        names[name] = f
        plan.append((f, out, name))
    return plan


def _summary(kind: str, count: int, faces: int, seconds: float, first: tuple[float, int]) -> str:
    """``"N images, F faces in T s: R images/s"``; R leaves out ``first`` = (seconds, items) of the
    first image (batch of frames), which compiles the network, when more came after it."""
    unit = kind[:-1] if count == 1 else kind
    rest, n = (seconds - first[0], count - first[1]) if count > first[1] else (seconds, count)
    rate = f"{n / rest:.2f}" if rest > 0 else "inf"
    note = "after the first, which compiles" if n < count else "compilation included"
    return f"{count} {unit}, {faces} faces in {seconds:.1f} s: {rate} {kind}/s ({note}; read, detect, draw, write)"


def run(args) -> int:
    message = _check_options(args)
    if message:
        return _fail(message)
    try:
        kind, files = find_inputs(pathlib.Path(args.input))
    except ValueError as e:
        return _fail(str(e))
    if kind == "video":
        try:
            import cv2  # noqa: F401
        except ImportError:
            return _fail(f"{args.input}: video needs OpenCV: pip install 'jaxnets[video]'")
        plan = None
    else:
        try:
            plan = _image_plan(pathlib.Path(args.input), files, args)
            for f, _, _ in plan:  # every header identified before any work
                _identify(f)
        except ValueError as e:
            return _fail(str(e))
    import logging

    from jaxnets.detection.inference import FaceDetectorRunner
    from jaxnets.train.workdir import WorkdirError

    logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's "directory is read only" note
    try:
        runner = FaceDetectorRunner.from_workdir(args.workdir, args.step)
    except WorkdirError as e:
        return _fail(str(e).splitlines()[0])
    options = dict(size=args.size, scales=parse_scales(args.scales), score_threshold=args.score, nms_iou=args.nms,
                   max_detections=args.max_detections)
    print(f"{args.workdir}: checkpoint step {runner.step}, letterbox {args.size or runner.size}, scales {args.scales}")
    try:
        if kind == "video":
            return _run_video(runner, files[0], args, options)
        return _run_images(runner, plan, args, options)
    except ValueError as e:
        return _fail(str(e).splitlines()[0])
    except OSError as e:
        return _fail(f"{e.filename or args.out or args.wider}: cannot write ({e.strerror or e})")


def _identify(path: pathlib.Path) -> None:
    """ValueError naming the file unless PIL recognises its header (cheap; decoding comes later)."""
    import PIL.Image

    try:
        with PIL.Image.open(path):
            pass
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as e:
        raise _unreadable(path, e) from None


def _run_images(runner, plan, args, options) -> int:
    import PIL.Image
    from tqdm import tqdm

    from jaxnets.detection.inference import write_wider_predictions

    faces, first, t0 = 0, None, time.perf_counter()
    for i, (f, out, name) in enumerate(tqdm(plan, unit="img", disable=args.no_progress, file=sys.stderr)):
        image = read_image(f)
        dets = runner.detect(image, **options)
        faces += len(dets)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(draw_detections(image, dets)).save(out)
        if args.wider:
            write_wider_predictions(args.wider, {name: dets})
        first = first or (time.perf_counter() - t0, 1)
    print(_summary("images", len(plan), faces, time.perf_counter() - t0, first))
    _print_outputs(args)
    return 0


def _run_video(runner, path: pathlib.Path, args, options) -> int:
    import cv2
    from tqdm import tqdm

    from jaxnets.detection.inference import write_wider_predictions

    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise ValueError(f"{path}: cannot be read as a video (no frame could be decoded)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer, out = None, None
    if args.out:
        ext = ".avi" if path.suffix.lower() == ".avi" else ".mp4"
        out = pathlib.Path(args.out) / f"{path.stem}{ext}"
        if out.resolve() == path.resolve():
            cap.release()
            raise ValueError(f"--out {args.out}: would overwrite the input {path}; give another folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        h, w = frame.shape[:2]
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v")), fps, (w, h))
        if not writer.isOpened():
            cap.release()
            raise ValueError(f"--out {out}: OpenCV cannot open a video writer there")
    count = faces = 0
    first, t0 = None, time.perf_counter()
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr)
    try:
        while frame is not None:
            chunk = [frame]
            while len(chunk) < args.batch_size:
                ok, f = cap.read()
                if not ok:
                    break
                chunk.append(f)
            rgb = [c[:, :, ::-1] for c in chunk]
            padded = rgb + [rgb[-1]] * (args.batch_size - len(rgb))  # one compiled batch size throughout
            dets = runner.detect_many(padded, batch_size=args.batch_size, **options)[: len(rgb)]
            for i, (image, d) in enumerate(zip(rgb, dets)):
                faces += len(d)
                if writer is not None:
                    writer.write(draw_detections(image, d)[:, :, ::-1].copy())
                if args.wider:
                    write_wider_predictions(args.wider, {_wider_name(path.stem, f"{path.stem}_{count + i:06d}"): d})
            count += len(chunk)
            first = first or (time.perf_counter() - t0, len(chunk))
            bar.update(len(chunk))
            ok, frame = cap.read() if len(chunk) == args.batch_size else (False, None)
            frame = frame if ok else None
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            writer.release()
    print(_summary("frames", count, faces, time.perf_counter() - t0, first))
    _print_outputs(args, out)
    return 0


def _print_outputs(args, video_out=None) -> None:
    if args.out:
        print(f"annotated: {video_out or args.out}")
    if args.wider:
        print(f"WIDER predictions: {args.wider}")
