"""Pictures people would rather look at than read: training curves, values along episodes, progress.

Each function returns PNG bytes (matplotlib, Agg backend), so the same figure can go into Dagster
metadata, a Markdown report or a notebook.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def training_curve(train_loss: Sequence[float], val_loss: Sequence[float], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3))
    # markers: a one-epoch run is a single point, which a bare line would not draw at all
    ax.plot(range(1, len(train_loss) + 1), train_loss, marker="o", markersize=3, label="train")
    if len(val_loss):
        ax.plot(range(1, len(val_loss) + 1), val_loss, marker="o", markersize=3, label="held-out")
    epochs = max(len(train_loss), len(val_loss), 1)
    ax.set_xlim(0.5, epochs + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def values_along_episodes(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes:
    """V(o_t) against t for a few labelled episodes (the paper's Fig. 4): successes should climb to 0."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, (values, returns) in curves.items():
        line = ax.plot(values, label=f"{label}: V(o_t)")[0]
        ax.plot(returns, linestyle="--", color=line.get_color(), alpha=0.6, label=f"{label}: return")
    ax.set_xlabel("step t")
    ax.set_ylabel("normalised value")
    ax.set_ylim(-1.05, 0.05)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _png(fig)


def progress_per_iteration(
    series: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[float]]], ylabel: str, title: str
) -> bytes:
    """One line per method, (iterations, means, standard errors), with error bars over iterations."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    top = 0.0
    # methods sit side by side around each iteration so their interval bars do not hide each other
    width = 0.5 / max(len(series), 1)
    for position, (label, (iterations, mean, se)) in enumerate(series.items()):
        shift = (position - (len(series) - 1) / 2) * width
        ax.errorbar([k + shift for k in iterations], mean, yerr=se, marker="o", capsize=3, label=label)
        top = max([top, *(m + (e or 0.0) for m, e in zip(mean, se, strict=True))])
    # rates and throughputs cannot be negative; all-zero results still get a visible frame
    ax.set_ylim(bottom=0.0, top=top * 1.08 if top > 0 else 1.0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _png(fig)
