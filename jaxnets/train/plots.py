"""Curves of every logged metric from ``metrics.jsonl`` (Figure 13 of the paper for classification).

One panel per metric name found in the records (``loss``, whatever a task logs: a detector's ``ap_hard``,
a captioner's ``bleu4`` ...), each with the train series and every evaluator's series
against iterations; ``lr``, ``examples_per_sec`` and ``walltime`` are not plotted.
"""

from __future__ import annotations

import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxnets.train.metrics import read_metrics  # noqa: E402

FILENAME = "curves.png"
NOT_PLOTTED = {"step", "split", "lr", "examples_per_sec", "walltime", "event", "detail"}


def _series(records: list[dict], split: str, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for r in records:
        v = r.get(key)
        if r.get("split") == split and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            steps.append(r["step"])
            values.append(float(v))
    return steps, values


def metric_names(records: list[dict]) -> list[str]:
    """The plottable metric names, ``loss`` first, then in the order they were first logged."""
    names = dict.fromkeys(k for r in records for k, v in r.items() if k not in NOT_PLOTTED and isinstance(v, (int, float)))
    return sorted(names, key=lambda k: k != "loss")  # stable: first-logged order otherwise


def plot_metrics(metrics_path, out_path=None, *, title: str = "") -> pathlib.Path:
    """Write a PNG with one panel per metric (train and each evaluator vs iterations).

    ``out_path`` defaults to ``curves.png`` beside ``metrics_path``. Returns the PNG's path.
    """
    metrics_path = pathlib.Path(metrics_path)
    out_path = pathlib.Path(out_path) if out_path else metrics_path.with_name(FILENAME)
    records = read_metrics(metrics_path)
    names = metric_names(records) or ["loss"]
    splits = list(dict.fromkeys(r["split"] for r in records))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for i, (ax, key) in enumerate(zip(axes[0], names)):
        plotted = []
        for split in splits:
            steps, values = _series(records, split, key)
            if len(steps) > 0:
                ax.plot(steps, values, "-" if split == "train" else "o-", markersize=3, label=f"{split} {key}")
                plotted += values
        ax.set_xlabel("iterations")
        ax.set_ylabel(key)
        ax.set_title(f"({chr(ord('a') + i)}) {key}")
        if key == "loss" and plotted and min(plotted) > 0:
            ax.set_yscale("log")  # the paper's losses span 2.3 down to 3e-4
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out_path)
    return out_path
