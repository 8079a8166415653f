"""The ``jaxnets`` command line.

    jaxnets gradcheck                      # custom VJPs vs autodiff vs finite differences (table)
    jaxnets params                         # parameter counts of Tables 1-2 vs the paper
    jaxnets train CONFIG [--workdir DIR] [--set KEY=VALUE ...] [--resume] [--smoke]
    jaxnets demo [--workdir DIR]           # gradcheck, then the Table-1 CNN on the bundled MNIST sample
    jaxnets prepare NAME [--idx-dir DIR] [--data-dir DIR]   # prepare IDX digits as tfds array_record
    jaxnets prepare wider_face --wider-dir DIR [--data-dir DIR]   # WIDER FACE txt + JPEGs, likewise
    jaxnets make-faces OUT --train N --val M [--test K] --seed S  # the dense-face set, WIDER layout
    jaxnets real-photos OUT                # three real photos with hand-drawn face boxes, WIDER layout
    jaxnets baselines mtcnn|lbp|haar ROOT PRED_DIR   # a baseline detector -> WIDER prediction files
    jaxnets wider-eval PRED_DIR --gt DIR   # official WIDER FACE easy / medium / hard AP, PR curves
    jaxnets anchors-report DATA --config v2.4   # faces no anchor covers, by size (section 5.3.5)
    jaxnets detect INPUT --workdir RUN [--out DIR] [--wider DIR]   # faces in an image, folder or video

CONFIG is a path to a ``get_config()`` file, or a name relative to ``experiments/``
(``mnist/cnn_mnist``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"
DEMO_CONFIG = "mnist/cnn_sample_cpu"


def resolve_config_path(name: str) -> pathlib.Path:
    """A config path as given, or ``experiments/<name>.py`` (from the CWD or the source checkout).

    Raises ConfigError naming both places when neither exists."""
    from jaxnets.config import ConfigError

    p = pathlib.Path(name)
    if p.is_file():
        return p
    stem = name[:-3] if name.endswith(".py") else name
    stem = stem.removeprefix("experiments/")
    for root in (pathlib.Path.cwd() / "experiments", EXPERIMENTS):
        cand = root / f"{stem}.py"
        if cand.is_file():
            return cand
    raise ConfigError(f"config {name!r} not found (looked for {p} and experiments/{stem}.py)")


def _print_summary(summary: dict) -> None:
    rows = [("data", summary.get("data", "")), ("selection", f"{summary['selection']['metric']} ({summary['selection']['mode']})"),
            ("best_step", summary["best_step"])]
    for name, values in summary.get("evaluations", {}).items():
        for k, v in values.items():
            shown = f"{100 * v:.2f}%" if k.endswith("accuracy") or k in ("exact_match", "hit_rate") else f"{v:.6g}"
            rows.append((f"{name}/{k}", shown))
    rows += [("train_loss", summary.get("train_loss")), ("params", f"{summary['params']:,}"),
             ("walltime_s", f"{summary['walltime_s']:.1f}")]
    for k, v in rows:
        print(f"  {k:22s} {v}")


def _fail(command: str, e: BaseException, code: int) -> int:
    for line in str(e).splitlines() or [type(e).__name__]:
        print(f"jaxnets {command}: {line}", file=sys.stderr)
    return code


def _quiet_libraries() -> None:
    """Keep orbax's / tensorstore's / asyncio's own log lines (tracebacks of their background
    threads when a disk fills, "directory is read only" notes) off the terminal: every failure
    they report also reaches the driver as an exception, which prints one line. ``--verbose``
    shows them."""
    import logging

    for name in ("absl", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)



def cmd_train(args) -> int:
    if not getattr(args, "verbose", False):
        _quiet_libraries()
    if getattr(args, "distributed", False):
        import jax

        # One process per host, all running this same command; arguments come from the
        # cluster environment (TPU pods, SLURM, Kubernetes) or JAX_COORDINATOR_ADDRESS,
        # JAX_NUM_PROCESSES, JAX_PROCESS_ID. See jaxnets/train/sharding.py.
        jax.distributed.initialize()
    from jaxnets.config import ConfigError, apply_overrides, load_config

    try:
        path = resolve_config_path(args.config)
        config = load_config(path, smoke=args.smoke)
        apply_overrides(config, args.set or [])
    except ConfigError as e:
        return _fail("train", e, 2)
    if args.workdir is not None and not args.workdir.strip():
        return _fail("train", ConfigError("--workdir: empty; give a directory"), 2)
    workdir = pathlib.Path(args.workdir or f"runs/{path.stem}")
    print(f"config {path}  ->  workdir {workdir}")
    if config.get("paper"):
        print(f"paper: {config.paper}")
    from jaxnets.data import DataError
    from jaxnets.train import (CorruptCheckpoint, Interrupted, ResumeMismatch, StorageError,
                               TrainingDiverged, WorkdirError, train_and_evaluate)

    try:
        summary = train_and_evaluate(config, str(workdir), resume=args.resume, progress=not args.no_progress)
    except (ConfigError, DataError, WorkdirError, ResumeMismatch, CorruptCheckpoint) as e:
        return _fail("train", e, 2)
    except (TrainingDiverged, StorageError) as e:
        return _fail("train", e, 1)
    except Interrupted as e:
        return _fail("train", e, 130)
    print("result:")
    _print_summary(summary)
    print(f"  {'plot':22s} {workdir / 'curves.png'}")
    print(f"  {'metrics':22s} {workdir / 'metrics.jsonl'}")
    return 0


def cmd_gradcheck(args) -> int:
    from jaxnets import gradcheck

    return gradcheck.main(args.rest)


def cmd_params(args) -> int:
    import ml_collections

    from jaxnets.models import build_model, param_report, variable_shapes

    for name in ("mnist_cnn", "mnist_ffn"):
        variables = variable_shapes(build_model(ml_collections.ConfigDict(dict(name=name, grad="custom"))))
        print(param_report(name, variables["params"]).describe())
    return 0


def cmd_prepare(args) -> int:
    if args.name == "wider_face":
        return _prepare_wider(args)
    if args.wider_dir:
        print(f"jaxnets prepare: --wider-dir applies to wider_face only, not {args.name}", file=sys.stderr)
        return 2
    from jaxnets.data import DataError, load_digits

    try:
        d = load_digits(args.name, data_dir=args.data_dir or "", idx_dir=args.idx_dir or "")
    except DataError as e:
        print(f"jaxnets prepare: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: {d.source}: train {len(d.train.labels)}, validation {len(d.validation.labels)}, "
          f"test {len(d.test.labels)}")
    return 0


def _prepare_wider(args) -> int:
    """``jaxnets prepare wider_face [--wider-dir DIR] [--data-dir DIR]``: the WIDER files of DIR as
    array_record (again if they changed), or the check that tfds' wider_face in --data-dir is readable."""
    from jaxnets.data import DataError
    from jaxnets.data.wider_source import open_wider

    _quiet_libraries()  # tfds' absl warnings ("Variant folder ... has no dataset_info.json")
    if args.idx_dir:
        print("jaxnets prepare: --idx-dir applies to the digit sets; give WIDER FACE as --wider-dir", file=sys.stderr)
        return 2
    try:
        builder, source, note = open_wider(args.wider_dir, args.data_dir or "")
    except DataError as e:
        print(f"jaxnets prepare: {e}", file=sys.stderr)
        return 2
    if note:
        print(note)
    sizes = ", ".join(f"{name} {split.num_examples}" for name, split in builder.info.splits.items())
    print(f"wider_face: {source}: {sizes}")
    return 0


def cmd_results(args) -> int:
    """Markdown rows of the README results table from run summaries; copies each curves.png."""
    import shutil

    out_dir = pathlib.Path(args.figures)
    out_dir.mkdir(parents=True, exist_ok=True)
    for run in map(pathlib.Path, args.workdirs):
        try:
            s = json.loads((run / "summary.json").read_text())
            c = json.loads((run / "config.json").read_text())
            test, val = s["evaluations"]["test"], s["evaluations"]["validation"]
        except (OSError, ValueError, KeyError) as e:
            print(f"jaxnets results: {run}: no finished classification run ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        model = {"mnist_cnn": "CNN (Table 1)", "mnist_ffn": "FFN (Table 2)"}.get(c["model"]["name"], run.name)
        data = {"mnist_sample": "MNIST sample 8k/1k/1k", "fashion_mnist": "Fashion-MNIST 55k/5k/10k",
                "mnist": "MNIST"}.get(c["data"]["name"], s["data"])
        hw = f"{s['devices']}× {s['device_kind']}" + (f" ({os.cpu_count()} cores)" if s["device_kind"] == "cpu" else "")
        print(f"| {model} — ours | {data} | {s['num_steps']:,} it., batch {c['batch_size']} | "
              f"**{100 * test['accuracy']:.2f}%** | {val['loss']:.3f} | {s['train_loss']:.4f} | {s['params']:,} | "
              f"{s['walltime_s'] / 60:.1f} min | {hw} |")
        if (run / "curves.png").is_file():
            shutil.copy(run / "curves.png", out_dir / f"{run.name}.png")
    return 0


def cmd_demo(args) -> int:
    from jaxnets import gradcheck

    print("== 1/2  gradient verification (custom VJP vs jax.grad vs finite differences, float64)")
    rc = gradcheck.main([])
    if rc != 0:
        print("gradient check failed; not training", file=sys.stderr)
        return rc
    print(f"\n== 2/2  Table-1 CNN on the bundled MNIST sample ({DEMO_CONFIG})")
    ns = argparse.Namespace(config=DEMO_CONFIG, workdir=args.workdir or "runs/demo", set=args.set,
                            resume=False, smoke=False, no_progress=False, distributed=False, verbose=False)
    if pathlib.Path(ns.workdir).exists() and any(pathlib.Path(ns.workdir).iterdir()):
        ns.resume = True  # continue (or just re-evaluate) an earlier demo run
    return cmd_train(ns)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxnets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train and evaluate one experiment config")
    t.add_argument("config", help="config file or experiments/ name, e.g. mnist/cnn_fashion")
    t.add_argument("--workdir", help="checkpoints, metrics.jsonl, plots (default runs/<config>)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one config field")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in workdir")
    t.add_argument("--smoke", action="store_true", help="the seconds-long smoke form of the config")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--verbose", action="store_true", help="also show the libraries' own log lines (orbax, asyncio)")
    t.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (multi-host; run on every host)")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("gradcheck", help="verify every custom VJP (exit 1 on failure)")
    g.add_argument("rest", nargs=argparse.REMAINDER)
    g.set_defaults(func=cmd_gradcheck)

    sub.add_parser("params", help="parameter counts vs the paper").set_defaults(func=cmd_params)

    pr = sub.add_parser("prepare", help="prepare MNIST / Fashion-MNIST IDX files or WIDER FACE as tfds array_record")
    pr.add_argument("name", choices=["mnist", "fashion_mnist", "mnist_sample", "wider_face"])
    pr.add_argument("--idx-dir")
    pr.add_argument("--wider-dir", metavar="DIR",
                    help="wider_face: a WIDER FACE root (wider_face_split/, WIDER_{train,val,test}/images/); "
                         "without it, tfds' wider_face prepared in --data-dir is checked")
    pr.add_argument("--data-dir")
    pr.set_defaults(func=cmd_prepare)

    r = sub.add_parser("results", help="README table rows from finished runs (copies their plots)")
    r.add_argument("workdirs", nargs="+")
    r.add_argument("--figures", default="docs/results", help="where to copy each run's curves.png")
    r.set_defaults(func=cmd_results)

    d = sub.add_parser("demo", help="gradcheck, then the CNN on the bundled MNIST sample")
    d.add_argument("--workdir")
    d.add_argument("--set", action="append", metavar="KEY=VALUE")
    d.set_defaults(func=cmd_demo)

    import importlib

    from jaxnets.commands import COMMANDS

    for module in COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before training started (imports, config, data): nothing written
        print(f"jaxnets {args.command}: interrupted; the checkpoints already written (if any) are intact "
              "(continue with the same command plus --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
