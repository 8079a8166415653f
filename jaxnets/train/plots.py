"""Figure 13 of the paper from ``metrics.jsonl``: (a) accuracy and (b) loss against iterations."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxnets.train.metrics import read_metrics  # noqa: E402

FILENAME = "curves.png"


def _series(records: list[dict], split: str, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for r in records:
        if r.get("split") == split and isinstance(r.get(key), (int, float)):
            steps.append(r["step"])
            values.append(float(r[key]))
    return steps, values


def plot_metrics(metrics_path, out_path=None, *, title: str = "") -> pathlib.Path:
    """Write a PNG with panels (a) accuracy and (b) loss, train and validation, vs iterations.

    ``out_path`` defaults to ``curves.png`` beside ``metrics_path``. Returns the PNG's path.
    """
    metrics_path = pathlib.Path(metrics_path)
    out_path = pathlib.Path(out_path) if out_path else metrics_path.with_name(FILENAME)
    records = read_metrics(metrics_path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "accuracy", "(a) accuracy"), (axes[1], "loss", "(b) loss")):
        plotted = []
        for split, style in (("train", "-"), ("validation", "o-")):
            steps, values = _series(records, split, key)
            if steps:
                ax.plot(steps, values, style, markersize=3, label=f"{split} {key}")
                plotted += values
        ax.set_xlabel("iterations")
        ax.set_ylabel(key)
        ax.set_title(label)
        if key == "loss" and plotted and min(plotted) > 0:
            ax.set_yscale("log")  # the paper's losses span 2.3 down to 3e-4
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
