"""Saturation scans: every single substitution of a protein, scored and drawn as heat maps.

A scan scores the 19 substitutions at each chosen position with the scoring code of
``seqdance score`` (``seqdance.inference.score``): channel scores by
:func:`~seqdance.inference.score.score_sequences`, then the per-feature summaries and
their combinations by :func:`~seqdance.inference.summaries.summarise_scores` over the whole scan,
so ``scan.csv`` equals ``seqdance score`` run on the same mutant list.

Work goes in blocks of positions. Each finished block's channel scores are written
atomically to ``OUT/parts/`` next to a manifest (wild type, positions, channels, model
fingerprint); a rerun of a killed scan reads the finished blocks and scores only the rest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import AMINO_ACIDS
from seqdance.inference.options import EPSILON, ScoreOptions
from seqdance.inference.score import DEFAULT_OPTIONS, score_sequences
from seqdance.inference.summaries import ordered_channels, summarise_scores
from seqdance.model.alphabet import check_sequence
from seqdance.model.quantize import state_fingerprint
from seqdance.utils.figures import figure_name, pyplot, residue_ticks, write_figure
from seqdance.utils.io import atomic_path, save_npz
from seqdance.utils.progress import progress_bar

SCAN_NAME = "scan.csv"
PARTS_DIR = "parts"
MANIFEST_NAME = "manifest.json"
BLOCK_POSITIONS = 8  # positions per resumable block (152 mutants)
PANEL_WIDTH = 100  # positions per heat-map panel
# amino acids grouped by kind for the heat maps' rows: hydrophobic aliphatic, aromatic,
# special (C, G, P), polar, negative, positive
HEATMAP_ORDER = "AVLIMFWYCGPSTNQHDEKR"
DEFAULT_PLOTS = ("norm_geometric_mean", "sasa_mean", "rmsf_nor", "psi", "corr")


# -- what to scan --------------------------------------------------------------------------
def parse_positions(text: str | None, length: int, offset: int = 1) -> list[int]:
    """``10-80,95`` (user numbering, first residue = ``offset``) as sorted 0-based indices.

    None or empty text means every position. Raises a one-line :class:`SeqDanceError` for
    malformed text, an empty range (``80-10``) or a position outside the sequence.
    """
    last = offset + length - 1
    if text is None or not text.strip():
        return list(range(length))
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", part)
        if match is None:
            raise SeqDanceError(f"--positions: cannot parse {part!r} (expected e.g. 10-80,95)")
        start = int(match.group(1))
        stop = int(match.group(2)) if match.group(2) is not None else start
        if stop < start:
            raise SeqDanceError(f"--positions: empty range {part!r} (start after end)")
        for pos in (start, stop):
            if not offset <= pos <= last:
                raise SeqDanceError(
                    f"--positions: position {pos} is outside the sequence "
                    f"(positions {offset}..{last} with offset {offset})"
                )
        chosen.update(range(start - offset, stop - offset + 1))
    return sorted(chosen)


@dataclass(frozen=True)
class ScanMutant:
    index: int  # 0-based position in the wild type
    wt: str
    mt: str


def scan_mutants(wild_type: str, positions: Sequence[int]) -> list[ScanMutant]:
    """The 19 substitutions at each 0-based position, positions in order, then amino acids
    in alphabetical order."""
    out = []
    for i in positions:
        out.extend(ScanMutant(i, wild_type[i], aa) for aa in AMINO_ACIDS if aa != wild_type[i])
    return out


def mutant_sequence(wild_type: str, mutant: ScanMutant) -> str:
    return wild_type[: mutant.index] + mutant.mt + wild_type[mutant.index + 1 :]


# -- resumable scoring ---------------------------------------------------------------------
def model_fingerprint(model) -> str:
    """Hash of the model's parameters and buffers (names, shapes, values; int8 too)."""
    return state_fingerprint(model)


def _block_path(parts: Path, k: int) -> Path:
    return parts / f"block_{k:05d}.npz"


def _check_manifest(parts: Path, manifest: dict, mine: set[int] | None = None) -> bool:
    """Check ``parts/manifest.json`` against this scan's ``manifest`` (or write it).

    Returns True when it was damaged (truncated, not JSON, not an object): the blocks beside
    it (``mine``: a rank's own; None: all) cannot be traced to their options, so they are
    removed and scored again. A readable manifest of another scan is an error.
    """
    path = parts / MANIFEST_NAME
    damaged = False
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old == manifest:
            return False
        if isinstance(old, dict):
            changed = [k for k in manifest if old.get(k) != manifest[k]] or ["manifest"]
            raise SeqDanceError(
                f"{parts.parent} holds parts of another scan (different {', '.join(changed)}); "
                "use a new --out folder or delete its parts/ folder"
            )
        damaged = True
        for block in parts.glob("block_*.npz"):
            if mine is None or block.name[6:11].isdigit() and int(block.name[6:11]) in mine:
                block.unlink(missing_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return damaged


@dataclass
class ScanResult:
    """The scan table and what this run did."""

    table: object  # DataFrame: position, wt, mt, mutant, one column per score
    computed_blocks: int  # blocks scored in this run
    reused_blocks: int  # blocks read from a previous run
    damaged_blocks: int = 0  # blocks of a previous run that were unreadable: scored again
    damaged_manifest: bool = False  # parts/manifest.json was unreadable: every block scored again


def run_scan(
    model,
    wild_type: str,
    out_dir: str | os.PathLike,
    properties: Sequence[str],
    *,
    positions: Sequence[int] | None = None,
    offset: int = 1,
    options: ScoreOptions = DEFAULT_OPTIONS,
    block_positions: int = BLOCK_POSITIONS,
    progress: bool = False,
    blocks: Sequence[int] | None = None,
) -> ScanResult | None:
    """Score every single substitution at ``positions`` (0-based; all when None), resumably.

    Writes ``out_dir/parts/`` (manifest and one ``.npz`` of channel scores per block of
    ``block_positions`` positions) and ``out_dir/scan.csv``. Blocks already in
    ``out_dir/parts`` from an interrupted run with the same manifest are not recomputed.
    ``options``: as :func:`~seqdance.inference.score.score_sequences`. ``blocks``: score only
    these blocks (one rank's share, ``seqdance.inference.sharding``), write no ``scan.csv``
    and return None.
    """
    wild_type = check_sequence("wild type", wild_type)
    positions = list(range(len(wild_type))) if positions is None else sorted(set(positions))
    if not positions:
        raise SeqDanceError("no position to scan")
    channels = ordered_channels(properties)
    if not channels:
        raise SeqDanceError("no property to score")
    options.windowed(len(wild_type))  # the window rule, checked before anything is written
    out_dir = Path(out_dir)
    parts = out_dir / PARTS_DIR
    manifest = {
        "wild_type": wild_type,
        "offset": offset,
        "positions": positions,
        "channels": list(channels),
        "block_positions": block_positions,
        "autocast": str(options.autocast),
        "residues_only": options.residues_only,
        "window": options.window,
        "model": model_fingerprint(model),
    }
    if options.eps != EPSILON:  # older manifests, all at the default, stay valid
        manifest["eps"] = options.eps
    mine = None if blocks is None else set(blocks)
    damaged_manifest = _check_manifest(parts, manifest, mine)
    for stale in parts.glob(".block_*"):  # temporary files of a killed write
        if mine is None or int(stale.name[7:12]) in mine:  # (a rank's own blocks only)
            stale.unlink(missing_ok=True)
    all_blocks = [positions[i : i + block_positions]
                  for i in range(0, len(positions), block_positions)]  # fmt: skip
    scores: list[np.ndarray] = []
    computed = reused = damaged = 0
    bar = progress_bar(total=len(positions), desc="scan", unit="position", enabled=progress)
    for k, block in enumerate(all_blocks):
        if mine is not None and k not in mine:
            continue
        mutants = scan_mutants(wild_type, block)
        path = _block_path(parts, k)
        block_scores = _read_block(path, len(mutants), len(channels))
        if block_scores is None and path.exists():
            damaged += 1  # truncated or of another shape: score it again, replace it
        if block_scores is None:
            block_scores = score_sequences(
                model,
                wild_type,
                [mutant_sequence(wild_type, m) for m in mutants],
                channels,
                options,
            )  # (19 * len(block), C)
            save_npz(path, compressed=False, scores=block_scores)
            computed += 1
        else:
            reused += 1
        scores.append(block_scores)
        bar.update(len(block))
    bar.close()
    if mine is not None:
        return None
    channel_scores = np.concatenate(scores, axis=0)  # (N, C)
    mutants = scan_mutants(wild_type, positions)
    columns = summarise_scores(channels, channel_scores).columns()
    table = pd.DataFrame(
        {
            "position": [m.index + offset for m in mutants],
            "wt": [m.wt for m in mutants],
            "mt": [m.mt for m in mutants],
            "mutant": [f"{m.wt}{m.index + offset}{m.mt}" for m in mutants],
        }
    )
    table = pd.concat([table, pd.DataFrame(columns)], axis=1)
    with atomic_path(out_dir / SCAN_NAME) as tmp:
        table.to_csv(tmp, index=False)
    return ScanResult(table, computed, reused, damaged, damaged_manifest)


def _read_block(path: Path, rows: int, cols: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            scores = data["scores"]
    except Exception:  # noqa: BLE001 - truncated zip, bad CRC, not an npz: score it again
        return None
    return scores if scores.shape == (rows, cols) else None


# -- heat maps -----------------------------------------------------------------------------
def plot_columns(scores: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """Score columns to draw: ``requested`` (checked against ``scores``, the scan's score
    columns) or the defaults that the scan has (the first score column when none)."""
    scores = list(scores)
    if requested:
        unknown = [c for c in requested if c not in scores]
        if unknown:
            raise SeqDanceError(
                f"--plot: no score column {', '.join(unknown)} (columns: {', '.join(scores)})"
            )
        return list(dict.fromkeys(requested))
    chosen = [c for c in DEFAULT_PLOTS if c in scores]
    return chosen or scores[:1]


def heatmap_matrix(table, column: str):
    """Positions (user numbering), wild-type letters and the (20, P) matrix of ``column``
    with rows in :data:`HEATMAP_ORDER` (NaN at the wild type)."""
    positions = list(dict.fromkeys(table["position"].tolist()))
    col = {p: j for j, p in enumerate(positions)}
    row = {aa: i for i, aa in enumerate(HEATMAP_ORDER)}
    matrix = np.full((len(HEATMAP_ORDER), len(positions)), np.nan)
    wt = [""] * len(positions)
    for p, w, m, v in zip(table["position"], table["wt"], table["mt"], table[column], strict=True):
        matrix[row[m], col[p]] = v
        wt[col[p]] = w
    return np.asarray(positions), wt, matrix


def plot_heatmap(table, column: str, path: str | os.PathLike, title: str = "") -> Path:
    """Position x amino-acid heat map of one score with the wild type marked and the mean
    over the 19 substitutions per position above each panel; long scans are split into
    panels of :data:`PANEL_WIDTH` positions sharing one colour scale. The format follows
    ``path``'s suffix (PNG at 300 dpi, SVG, PDF)."""
    plt = pyplot()

    positions, wt, matrix = heatmap_matrix(table, column)
    n = len(positions)
    finite = matrix[np.isfinite(matrix)]
    vmin = float(np.min(finite)) if finite.size else 0.0
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    vmax = vmax if vmax > vmin else vmin + 1e-12
    mean = np.nanmean(matrix, axis=0)  # (P,)
    width = min(n, PANEL_WIDTH)
    n_panels = -(-n // PANEL_WIDTH)
    cell = 0.11  # inches per position
    fig_w = max(6.0, width * cell + 2.2)
    panel_h = 2.6 + 0.7  # heat map + mean track
    fig = plt.figure(figsize=(fig_w, panel_h * n_panels + 1.1))
    grid = fig.add_gridspec(
        2 * n_panels, 2, height_ratios=[0.7, 2.6] * n_panels, width_ratios=[1, 0.015],
        hspace=0.12, wspace=0.02, left=1.0 / fig_w, right=1 - 1.0 / fig_w,
        top=1 - 0.75 / fig.get_figheight(), bottom=0.45 / fig.get_figheight(),
    )  # fmt: skip
    cmap = plt.get_cmap("magma_r").with_extremes(bad="#d9d9d9")
    image = None
    for k in range(n_panels):
        sl = slice(k * PANEL_WIDTH, min(n, (k + 1) * PANEL_WIDTH))
        cols = np.arange(sl.stop - sl.start)
        track = fig.add_subplot(grid[2 * k, 0])
        heat = fig.add_subplot(grid[2 * k + 1, 0], sharex=track)
        track.bar(cols, mean[sl], width=0.9, color="#7f7f7f")
        track.set_ylim(vmin, float(np.nanmax(mean)) * 1.05 if np.isfinite(mean).any() else 1)
        track.set_ylabel("mean", fontsize=7)
        track.tick_params(labelbottom=False, labelsize=6)
        track.spines[["top", "right"]].set_visible(False)
        image = heat.imshow(
            matrix[:, sl], aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
            interpolation="nearest", extent=(-0.5, len(cols) - 0.5, len(HEATMAP_ORDER) - 0.5, -0.5),
        )  # fmt: skip
        rows = {aa: i for i, aa in enumerate(HEATMAP_ORDER)}
        wt_rows = [rows.get(w, np.nan) for w in wt[sl]]  # X, B, Z, U, O: no dot
        heat.scatter(cols, wt_rows, s=6, marker="o", color="#1f77b4", linewidths=0)
        heat.set_yticks(range(len(HEATMAP_ORDER)), list(HEATMAP_ORDER), fontsize=6)
        ticks, labels = residue_ticks(positions[sl], 10)  # the first position, then tens
        heat.set_xticks(ticks, labels, fontsize=7)
        heat.set_xlim(-0.5, width - 0.5)
        track.set_xlim(-0.5, width - 0.5)
        if len(cols) <= 150:  # wild-type letters along the top of the heat map
            for j in cols:
                heat.text(j, -0.7, wt[sl][j], ha="center", va="bottom", fontsize=5, clip_on=False)
        heat.set_ylabel("substitution", fontsize=7)
        if k == n_panels - 1:
            heat.set_xlabel("position (dot: wild type)", fontsize=8)
    cax = fig.add_subplot(grid[1, 1])
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(labelsize=6)
    bar.set_label(f"{column} (larger = bigger predicted change)", fontsize=7)
    height = fig.get_figheight()
    fig.suptitle(
        f"{title or column}: {n} positions x 19 substitutions", fontsize=9, y=1 - 0.2 / height
    )
    return write_figure(fig, path)


def plot_scan(
    table, out_dir: str | os.PathLike, columns: Sequence[str], title: str = "", fmt: str = "png"
):
    """One ``scan_{column}.{fmt}`` per column in ``out_dir`` (``fmt``: png, svg or pdf)."""
    out_dir = Path(out_dir)
    return [
        plot_heatmap(table, c, out_dir / figure_name(f"scan_{c}", fmt), f"{title} {c}".strip())
        for c in columns
    ]
