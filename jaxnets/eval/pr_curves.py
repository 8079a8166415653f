"""The precision-recall curves of a :class:`~jaxnets.eval.wider_protocol.WiderResult` as one PNG:
one curve per subset on one axes, the legend giving each subset's AP (as wider_plot.m draws them).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np


def plot_pr_curves(result, out_path, *, title: str = "") -> pathlib.Path:
    """Write the PR curves of ``result`` to ``out_path`` (PNG); returns the path.

    Each curve joins (recall, precision) over the thresholds, highest threshold first, leaving
    out thresholds with no proposals (precision NaN). A subset without faces has no curve; its
    legend entry says so. Without official subsets the title says these are not easy/medium/hard.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_path = pathlib.Path(out_path)
    fig = Figure(figsize=(6, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name in result.subsets:
        ap = result.ap[name]
        if math.isnan(ap):
            ax.plot([], [], " ", label=f"{name}: no faces")
            continue
        rec, prec = result.recall[name], result.precision[name]
        ok = np.isfinite(prec)
        ax.plot(rec[ok], prec[ok], "-", linewidth=1.8, label=f"{name}: AP {ap:.4f} ({result.faces[name]} faces)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    heading = title or "WIDER FACE protocol"
    if not result.official:
        heading += "\nNOT the official subsets: all valid faces and face-height bins"
    ax.set_title(heading, fontsize=9)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    return out_path
