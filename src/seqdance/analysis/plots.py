"""Figures of the analyses (matplotlib, Agg backend), written by
:func:`seqdance.utils.figures.write_figure`: PNG at 300 dpi, SVG or PDF by the path's suffix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.utils.figures import labelled_colorbar, legend_outside, pyplot, write_figure

_METRIC_TITLES = {
    "top_l_ratio": "top-L ratio",
    "spearman_pos": "Spearman (corr > 0)",
    "spearman_neg": "Spearman (corr < 0)",
    "auroc": "AUROC (freq >= 0.01)",
}


def attention_heatmaps(
    summary: pd.DataFrame, num_layers: int, num_heads: int, path: str | os.PathLike
) -> Path:
    """One layer x head heat map per (property, metric) of the mean over proteins.

    One row of panels per property, its metrics left to right (top-L ratio, then the
    Spearman pair or the AUROC); the best map of each panel is boxed (highest value; for
    ``spearman_neg`` the most negative).
    """
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    props = list(dict.fromkeys(summary["property"]))
    present = set(zip(summary["property"], summary["metric"], strict=True))
    panels = [[m for m in _METRIC_TITLES if (p, m) in present] for p in props]
    n_rows, n_cols = max(len(props), 1), max((len(row) for row in panels), default=1)
    cell = 0.22
    width = max(2.2, num_heads * cell + 1.2)
    height = max(1.6, num_layers * cell + 0.8)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(width * n_cols, height * n_rows), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for r, (prop, metrics) in enumerate(zip(props, panels, strict=True)):
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            ax.axis("on")
            part = summary[(summary["property"] == prop) & (summary["metric"] == metric)]
            grid = np.full((num_layers, num_heads), np.nan)  # (layers, heads)
            grid[part["layer"].to_numpy(), part["head"].to_numpy()] = part["value"].to_numpy()
            image = ax.imshow(grid, aspect="auto", cmap="viridis", origin="lower")
            labelled_colorbar(fig, image, ax, _METRIC_TITLES[metric], "mean over proteins",
                              fontsize=6, fraction=0.05)  # fmt: skip
            if np.isfinite(grid).any():
                flat = -grid if metric == "spearman_neg" else grid
                layer, head = np.unravel_index(np.nanargmax(flat), grid.shape)
                ax.add_patch(
                    Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, ec="red", lw=1.5)
                )
            ax.set_title(f"{prop}: {_METRIC_TITLES[metric]}", fontsize=8)
            ax.set_xlabel("head (from 0)", fontsize=7)
            ax.set_ylabel("layer (from 0)", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return write_figure(fig, path)


def prediction_scatter(
    measured: np.ndarray,
    predicted: np.ndarray,
    split: np.ndarray,
    target: str,
    title: str,
    path: str | os.PathLike,
) -> Path:
    """Predicted against measured values, test rows in front of the (faded) train rows."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    for name, style in (("train", {"c": "0.7", "s": 10}), ("test", {"c": "tab:blue", "s": 16})):
        keep = split == name
        ax.scatter(measured[keep], predicted[keep], label=name, alpha=0.8, **style)
    both = np.concatenate([measured, predicted])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = float(both.min()), float(both.max())
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
    ax.set_xlabel(f"measured {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(title, fontsize=9)
    ax.plot([], [], color="k", lw=0.8, ls="--", label="y = x")
    legend_outside(ax, fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path)
