"""Figures of an explanation (:mod:`seqdance.inference.explain`): per-residue change
profiles and pair difference maps of one mutant, residues numbered as the user numbers them
(``--offset``), written by :func:`seqdance.utils.figures.write_figure` (PNG at 300 dpi, SVG
or PDF by the file's suffix)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqdance.inference.explain import TOP_LABELS, Explanation
from seqdance.schema import RESIDUE_FEATURES, feature_unit
from seqdance.utils.figures import labelled_colorbar, pyplot, residue_ticks, write_figure

REL_UNIT = "|mut - wt| / (|wt| + 0.01)"
MAX_MAP_CELLS = 300  # a difference map wider than this is drawn as blocks of its largest change


def _residue_rows(ex: Explanation) -> np.ndarray:
    """Row indices of the residues (special-token rows left out): shape=(L,)."""
    return np.array([i for i, lab in enumerate(ex.labels) if not lab.startswith("<")])


def _ticks(ex: Explanation, target: int) -> tuple[list[int], list[str]]:
    """Tick rows and labels in the user's residue numbering (first residue included)."""
    rows = _residue_rows(ex)
    idx, labels = residue_ticks([int(ex.labels[r]) for r in rows], target)
    return [int(rows[i]) for i in idx], labels


def _row_name(ex: Explanation, wild_type: str | None, row: int) -> str:
    label = ex.labels[row]
    if wild_type is None or label.startswith("<"):
        return label
    return wild_type[row - int(_residue_rows(ex)[0])] + label


def _top_rows(values: np.ndarray, count: int, spacing: float) -> list[int]:
    """Up to ``count`` rows of the largest ``|values|``, no two closer than ``spacing`` rows
    (so that their labels do not overlap)."""
    order = np.argsort(-np.nan_to_num(np.abs(values), nan=-np.inf), kind="stable")
    chosen: list[int] = []
    for r in order:
        if not np.isfinite(values[r]):
            break
        if all(abs(int(r) - c) >= spacing for c in chosen):
            chosen.append(int(r))
        if len(chosen) == count:
            break
    return chosen


def block_extremes(values: np.ndarray, block: int) -> np.ndarray:
    """Each ``block`` x ``block`` tile of ``values`` as its value of largest magnitude
    (sign kept; NaN only where the whole tile is NaN), so that a change confined to one
    row or column stays visible when a long protein's map is drawn smaller than one pixel
    per residue.

    ``values``: shape=(R, R). Returns shape=(ceil(R / block), ceil(R / block)).
    """
    n = values.shape[0]
    m = -(-n // block)
    padded = np.full((m * block, m * block), np.nan)
    padded[:n, :n] = values
    tiles = padded.reshape(m, block, m, block).transpose(0, 2, 1, 3).reshape(m, m, -1)
    magnitude = np.where(np.isnan(tiles), -np.inf, np.abs(tiles))
    pick = np.take_along_axis(tiles, magnitude.argmax(-1)[..., None], -1)[..., 0]
    return pick  # an all-NaN tile picks a NaN


def _feature_profiles(ex: Explanation, m: int):
    """(feature name, signed change or None, relative change, score, unit) per residue
    feature: scalar features with their signed change, multi-channel ones by their mean
    relative change over channels."""
    out = []
    for feature in RESIDUE_FEATURES:
        idx = [ex.residue_channels.index(c) for c in feature.channels if c in ex.residue_channels]
        if not idx:
            continue
        rel = ex.rel_residue[m][:, idx]  # (R, k)
        delta = None
        if len(idx) == 1:
            delta = ex.mt_residue[m][:, idx[0]] - ex.wt_residue[:, idx[0]]
        label = (
            feature.name
            if len(idx) == len(feature.channels)
            else ",".join(ex.residue_channels[i] for i in idx)
        )
        unit = feature_unit(feature.name)
        out.append((label, delta, rel.mean(axis=1), float(np.nanmean(rel)), unit))
    return out


def plot_change_profiles(
    ex: Explanation, m: int, path: str | os.PathLike, wild_type: str | None = None
) -> Path:
    """Write :func:`change_profiles_figure` to ``path`` (PNG at 300 dpi, SVG or PDF)."""
    return write_figure(change_profiles_figure(ex, m, wild_type), path)


def change_profiles_figure(ex: Explanation, m: int, wild_type: str | None = None):
    """Per-residue change of each residue feature (signed for one-channel features, the
    relative change for the softmax ones), mutated positions marked, largest labelled; the
    feature's score (mean relative change) beside each track."""
    plt = pyplot()
    profiles = _feature_profiles(ex, m) if ex.rel_residue is not None else []
    if ex.rel_pair is not None:
        rel = np.nanmean(ex.rel_pair[m], axis=1)  # (R, Cp): row means
        profiles.append(("pair (row mean)", None, rel.mean(axis=1), float(np.nanmean(rel)), ""))
    n = len(profiles)
    rows = np.arange(len(ex.labels))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.3 * n + 0.9), sharex=True, squeeze=False)
    for ax, (name, delta, rel, score, unit) in zip(axes[:, 0], profiles, strict=True):
        values = delta if delta is not None else rel
        color = "tab:blue" if delta is not None else "tab:purple"
        ax.plot(rows, values, color=color, lw=0.8)
        if delta is not None:
            ax.axhline(0, color="grey", lw=0.5)
        for r in ex.mutated[m]:
            ax.axvline(r, color="tab:red", lw=0.8, alpha=0.6, zorder=0)
        top = _top_rows(values, TOP_LABELS, max(1.0, len(rows) / 40))
        ax.scatter(top, values[top], s=8, color="k", zorder=3)
        for r in top:
            ax.annotate(_row_name(ex, wild_type, r), (r, values[r]), textcoords="offset points",
                        xytext=(2, 2), fontsize=6)  # fmt: skip
        kind = f"mut - wt\n({unit})" if delta is not None else "rel. change"
        ax.set_ylabel(f"{name}\n{kind}", fontsize=6.5)
        ax.tick_params(labelsize=6)
        ax.margins(y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
        ax.text(1.005, 0.5, f"score\n{score:.3g}", transform=ax.transAxes, ha="left",
                va="center", fontsize=6.5)  # fmt: skip
    ticks, labels = _ticks(ex, 20)
    axes[-1, 0].set_xticks(ticks, labels, fontsize=6)
    axes[-1, 0].set_xlim(-0.5, len(rows) - 0.5)
    axes[-1, 0].set_xlabel("residue number (red lines: mutated)", fontsize=8)
    fig.suptitle(f"{ex.mutants[m]}: predicted change per residue (rel. change = {REL_UNIT})",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def plot_pair_maps(ex: Explanation, m: int, path: str | os.PathLike) -> Path:
    """Write :func:`pair_changes_figure` to ``path`` (PNG at 300 dpi, SVG or PDF)."""
    return write_figure(pair_changes_figure(ex, m), path)


def pair_changes_figure(ex: Explanation, m: int):
    """Difference maps (mutant - wild type) of every scored pair channel, row i down the
    side and column j along the bottom, mutated residues marked by red triangles."""
    plt = pyplot()
    n = len(ex.pair_channels)
    cols = min(5, n)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.9 * nrows + 0.6), squeeze=False)
    delta = ex.mt_pair[m] - ex.wt_pair  # (R, R, Cp)
    size = delta.shape[0]
    block = -(-size // MAX_MAP_CELLS)  # 1 up to 300 rows
    ticks, labels = _ticks(ex, 5)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        d = delta[..., k] if block == 1 else block_extremes(delta[..., k], block)
        lim = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
        lim = lim if lim > 0 else 1.0
        edge = d.shape[0] * block - 0.5  # a padded last block reaches past the last row
        image = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                          extent=(-0.5, edge, edge, -0.5))  # fmt: skip
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        top, right = ax.get_xaxis_transform(), ax.get_yaxis_transform()
        for r in ex.mutated[m]:  # triangles above and right of the map point at mutated rows
            ax.plot([r], [1.03], marker="v", color="tab:red", ms=4, clip_on=False, transform=top)
            ax.plot([1.03], [r], marker="<", color="tab:red", ms=4, clip_on=False, transform=right)
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        channel = ex.pair_channels[k]
        score = float(np.nanmean(ex.rel_pair[m][..., k]))
        ax.set_title(f"{channel} (score {score:.3g})", fontsize=8, pad=8)
        ax.tick_params(labelsize=6)
        if k % cols == 0:
            ax.set_ylabel("residue number i", fontsize=7)
        if k + cols >= n:
            ax.set_xlabel("residue number j", fontsize=7)
        labelled_colorbar(fig, image, ax, "mut - wt", feature_unit(channel), fontsize=6,
                          fraction=0.046, pad=0.08)  # fmt: skip
    note = "" if block == 1 else f"; each cell the largest change of a {block} x {block} block"
    fig.suptitle(
        f"{ex.mutants[m]}: pair outputs, mutant - wild type (red: mutated residues{note})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
