"""Figures of one prediction (or of MD features laid out like one): residue profiles and
pair heat maps. Written by :func:`seqdance.utils.figures.write_figure` (PNG at 300 dpi, SVG
or PDF by the file's suffix); residues are numbered as the input numbers them (``numbers``;
1..L for a sequence), long proteins are split into panels of
:data:`seqdance.utils.figures.PROFILE_PANEL` residues."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqdance.schema import (
    FEATURE_BY_NAME,
    INTERACTIONS,
    PAIR_CHANNELS,
    RESIDUE_CHANNELS,
    SS_CLASSES,
    feature_unit,
)
from seqdance.utils.figures import (
    PROFILE_PANEL,
    labelled_colorbar,
    legend_outside,
    pyplot,
    residue_panels,
    residue_ticks,
    write_figure,
)

# DSSP classes: helices red, strands blue, turns/bends green, loop grey
SS_STYLE = {
    "B": ("#9ecae1", "B (bridge)"),
    "E": ("#2171b5", "E (strand)"),
    "H": ("#cb181d", "H (α-helix)"),
    "I": ("#fcbba1", "I (π-helix)"),
    "G": ("#fb6a4a", "G (3₁₀-helix)"),
    "S": ("#a1d99b", "S (bend)"),
    "T": ("#31a354", "T (turn)"),
    "loop": ("#d9d9d9", "loop"),
}


def _numbers(n: int, numbers: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if numbers is None:
        return np.arange(1, n + 1)
    numbers = np.asarray(numbers)
    if numbers.shape != (n,):
        raise ValueError(f"numbers: shape {numbers.shape}, expected ({n},)")
    return numbers


def _finite_max(values: np.ndarray, floor: float) -> float:
    finite = values[np.isfinite(values)]
    return max(float(finite.max()) * 1.05, floor) if finite.size else floor


def plot_profiles(
    path: str | os.PathLike,
    record_id: str,
    residue: np.ndarray,
    numbers: Sequence[int] | np.ndarray | None = None,
    panel: int = PROFILE_PANEL,
) -> Path:
    """Write :func:`profile_figure` to ``path`` (PNG at 300 dpi, SVG or PDF by its suffix)."""
    return write_figure(profile_figure(record_id, residue, numbers, panel), path)


def profile_figure(
    record_id: str,
    residue: np.ndarray,
    numbers: Sequence[int] | np.ndarray | None = None,
    panel: int = PROFILE_PANEL,
):
    """Normalised RMSF, SASA (mean +/- std) and secondary-structure fractions per residue.

    ``residue``: shape=(L, 50), channels as ``seqdance.schema.RESIDUE_CHANNELS``;
    ``numbers``: shape=(L,), residue numbers (default ``1..L``). Proteins longer than
    ``panel`` residues get one block of three tracks per ``panel`` residues, all on one
    x scale and one y scale.
    """
    plt = pyplot()
    n = residue.shape[0]
    numbers = _numbers(n, numbers)
    col = {name: i for i, name in enumerate(RESIDUE_CHANNELS)}
    rmsf = residue[:, col["rmsf_nor"]]
    mean, std = residue[:, col["sasa_mean"]], residue[:, col["sasa_std"]]
    fractions = residue[:, FEATURE_BY_NAME["ss"].slice]  # (L, 8)
    panels = residue_panels(n, panel)
    width = panels[0].stop - panels[0].start
    ratios = [1.0, 1.0, 1.0, 0.5] * len(panels)
    height = 4.4 * len(panels) + 0.4
    fig, axes = plt.subplots(
        4 * len(panels), 1, figsize=(10, height), squeeze=False,
        gridspec_kw={"height_ratios": ratios[:-1] + [0.01], "hspace": 0.12},
    )  # fmt: skip
    fig.subplots_adjust(top=1 - 0.45 / height, bottom=0.1 / height, left=0.1, right=0.83)
    axes = axes[:, 0]
    sasa_top = _finite_max(mean + np.nan_to_num(std), 0.1)
    for k, sl in enumerate(panels):
        a_rmsf, a_sasa, a_ss, spacer = axes[4 * k : 4 * k + 4]
        spacer.axis("off")
        x = np.arange(sl.start, sl.stop)
        a_rmsf.plot(x, rmsf[sl], color="tab:red", lw=1.0)
        a_rmsf.set_ylim(0, _finite_max(rmsf, 1.0))
        a_rmsf.set_ylabel("RMSF\n(" + feature_unit("rmsf_nor") + ")", fontsize=8)
        a_sasa.plot(x, mean[sl], color="tab:blue", lw=1.0, label="mean")
        a_sasa.fill_between(
            x, (mean - std)[sl], (mean + std)[sl], color="tab:blue", alpha=0.25, lw=0,
            label="± std",
        )  # fmt: skip
        a_sasa.set_ylim(0, sasa_top)
        a_sasa.set_ylabel(f"SASA\n({feature_unit('sasa_mean')})", fontsize=8)
        colours = [SS_STYLE[c][0] for c in SS_CLASSES]
        names = [SS_STYLE[c][1] for c in SS_CLASSES]
        a_ss.stackplot(x, fractions[sl].T, colors=colours, labels=names, lw=0)
        a_ss.set_ylim(0, 1)
        a_ss.set_ylabel("secondary\nstructure\n(fraction)", fontsize=8)
        if k == 0:
            legend_outside(a_sasa, fontsize=7)
            legend_outside(a_ss, fontsize=7, title="DSSP class", title_fontsize=7)
        ticks, labels = residue_ticks(numbers[sl], 10 * len(x) // max(width, 1) or 1)
        for ax in (a_rmsf, a_sasa, a_ss):
            ax.set_xlim(sl.start - 0.5, sl.start + width - 0.5)
            ax.tick_params(labelsize=7)
            ax.set_xticks([sl.start + t for t in ticks], labels if ax is a_ss else [])
            ax.spines[["top", "right"]].set_visible(False)
        a_ss.set_xlabel("residue number", fontsize=8)
    fig.suptitle(record_id, fontsize=10, y=1 - 0.15 / height)
    return fig


def symmetric_counts(matrix: np.ndarray) -> np.ndarray:
    """Contacts of each unordered residue pair at both cells: ``M + M.T`` off the diagonal.

    ``matrix``: shape=(L, L), counts stored at one cell per contact (the authors' MD layout,
    most of a pair's contacts in one triangle). Returns shape=(L, L), symmetric.
    """
    out = matrix + matrix.T
    np.fill_diagonal(out, np.diagonal(matrix))
    return out


def plot_pairs(
    path: str | os.PathLike,
    record_id: str,
    pair: np.ndarray,
    numbers: Sequence[int] | np.ndarray | None = None,
    interaction_label: str = "sum of 9 interaction types",
) -> Path:
    """Write :func:`pair_map_figure` to ``path`` (PNG at 300 dpi, SVG or PDF by its suffix)."""
    return write_figure(pair_map_figure(record_id, pair, numbers, interaction_label), path)


def pair_map_figure(
    record_id: str,
    pair: np.ndarray,
    numbers: Sequence[int] | np.ndarray | None = None,
    interaction_label: str = "sum of 9 interaction types",
):
    """Heat maps (both triangles) of C-alpha movement correlation and of the summed
    interaction channels, residue numbers on both axes.

    ``pair``: shape=(L, L, 13), channels as ``seqdance.schema.PAIR_CHANNELS``; ``numbers``:
    shape=(L,), residue numbers (default ``1..L``).
    """
    plt = pyplot()
    n = pair.shape[0]
    numbers = _numbers(n, numbers)
    col = {name: i for i, name in enumerate(PAIR_CHANNELS)}
    corr = pair[..., col["corr"]]
    interactions = pair[..., [col[name] for name in INTERACTIONS]].sum(-1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    extent = (-0.5, n - 0.5, n - 0.5, -0.5)
    image = axes[0].imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, extent=extent)
    axes[0].set_title("C-alpha movement correlation", fontsize=9)
    labelled_colorbar(fig, image, axes[0], "corr", feature_unit("corr"), fraction=0.046)
    top = _finite_max(interactions, 1e-6) / 1.05
    image = axes[1].imshow(interactions, cmap="viridis", vmin=0, vmax=top, extent=extent)
    axes[1].set_title("interactions: " + interaction_label, fontsize=9)
    label = f"sum of {len(INTERACTIONS)} interaction channels"
    labelled_colorbar(fig, image, axes[1], label, feature_unit("vdw"), fraction=0.046)
    ticks, labels = residue_ticks(numbers, 8)
    for ax in axes:
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("residue number j", fontsize=8)
        ax.set_ylabel("residue number i", fontsize=8)
    fig.suptitle(record_id, fontsize=10)
    fig.tight_layout()
    return fig
