"""The demo's own figures: the training curve and the score scatter (matplotlib, Agg),
written by :func:`seqdance.utils.figures.write_figure` (format from the path's suffix)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from seqdance.benchmark.metrics import spearman
from seqdance.utils.figures import legend_outside, pyplot, write_figure


def plot_training_curve(path: str | os.PathLike, log: list[dict]) -> Path:
    """Training loss (total and per data group) against the update number.

    ``log``: the records of the training ``log.jsonl`` (``step``, ``loss``, ``groups``).
    """
    plt = pyplot()
    steps = [r["step"] for r in log]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["loss"] for r in log], marker="o", ms=3, color="k", label="total")
    groups = sorted({g for r in log for g in r.get("groups", {})})
    for group in groups:
        values = [r["groups"].get(group, math.nan) for r in log]
        ax.plot(steps, values, lw=1, alpha=0.8, label=group)
    ax.set_xlabel("update")
    ax.set_yscale("log")  # the first updates fall steeply; later progress stays visible
    ax.set_ylabel("weighted RMSE loss (log scale)")
    ax.set_title("training loss of the tiny demo model")
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize="small", title="data group", title_fontsize="small")
    fig.tight_layout()
    return write_figure(fig, path)


def plot_score_scatter(
    path: str | os.PathLike, score: np.ndarray, target: np.ndarray, title: str
) -> Path:
    """Zero-shot score (x) against the measured fitness (y) of every variant.

    ``score``, ``target``: shape=(N,). Larger scores predict less fit variants, so a useful
    model gives a falling cloud.
    """
    plt = pyplot()
    rho, n = spearman(-score, target)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(score, target, s=14, color="tab:blue", alpha=0.8)
    ax.set_xlabel("predicted relative change (larger = less fit)")
    ax.set_ylabel("measured fitness")
    ax.set_title(f"{title}\nSpearman (oriented) = {rho:.3f}, n = {n}", fontsize="medium")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return write_figure(fig, path)
