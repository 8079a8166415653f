"""README rows for trained FaceNet runs (section 5, Table 4) beside the paper's numbers.

    python bench/face_table.py runs/faces_cpu_v1_0 runs/faces_cpu_v2_3 ... [--yardstick YARD.json ...]

Per run (a finished ``jaxnets train faces/cpu/<row>`` workdir): the row, the paper's easy /
medium / hard mAP (from the config's ``paper`` line), our AP on the dense-face val split at the
selected checkpoint (``summary.json``, the training run's own evaluator: the official protocol),
parameters, training wall time (steps and evaluation, from ``summary.json``) and, when
``--yardstick`` names the JSON of ``bench/face_baselines.py --facenet NAME=RUN --json``, the
images/s that script measured (batch 1, letterboxed 640²) and the real-photo hits. The yardstick
row of run ``runs/faces_cpu_<row>`` is ``facenet_<row>``, of ``runs/faces_cpu256_<row>`` (the 256²
crop forms) ``facenet_<row>_256``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

PHOTOS = ("astronaut", "camera", "grace_hopper")


def paper_ap(paper: str) -> str:
    m = re.search(r": ([\d.]+) / ([\d.]+) / ([\d.]+) mAP", paper)
    return " / ".join(m.groups()) if m else "?"


def run_name(run: pathlib.Path) -> tuple[str, str]:
    """(row, crop side or "") of a workdir named faces_cpu_<row> or faces_cpu<crop>_<row>; any
    other name is its own row."""
    m = re.fullmatch(r"faces_cpu(\d*)_(.+)", run.name)
    return (m[2], m[1]) if m else (run.name, "")


def row(run: pathlib.Path, yard: dict) -> str:
    s = json.loads((run / "summary.json").read_text())
    c = json.loads((run / "config.json").read_text())
    v = s["evaluations"]["validation"]
    name, crop = run_name(run)
    version = name.replace("_", ".", 1) + (f", {crop}² crops" if crop else "")  # v1_3 -> v1.3
    ours = " / ".join(f"{100 * v[k]:.1f}" for k in ("ap_easy", "ap_medium", "ap_hard"))
    y = yard.get(f"facenet_{name}" + (f"_{crop}" if crop else ""))
    fps = f"{y['dense']['images_per_s']:.2f}" if y else "-"
    hits = " / ".join("hit" if y["photos"][p]["hits"] else "miss" for p in PHOTOS) if y else "-"
    return (f"| {version} | {paper_ap(c['paper'])} | **{ours}** | {s['params']:,} | "
            f"{s['walltime_s'] / 60:.0f} min | {fps} | {hits} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--yardstick", action="append", default=[],
                   help="JSON written by bench/face_baselines.py --json (repeatable; later files win)")
    args = p.parse_args(argv)
    yard = {}
    for path in args.yardstick:
        try:
            got = json.loads(pathlib.Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            print(f"face_table: --yardstick {path}: cannot be read as JSON ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        if not isinstance(got, dict):
            print(f"face_table: --yardstick {path}: expected the JSON object of bench/face_baselines.py --json",
                  file=sys.stderr)
            return 2
        yard.update(got)
    print("| row | paper (WIDER val) easy / medium / hard | ours (dense-face val) easy / medium / hard, AP × 100 | "
          "params | train time | images/s | astronaut / camera / grace_hopper |")
    print("|---|---|---|---|---|---|---|")
    for run in map(pathlib.Path, args.runs):
        try:
            print(row(run, yard))
        except (OSError, KeyError, ValueError) as e:
            print(f"face_table: {run}: not a finished face_detection run ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
