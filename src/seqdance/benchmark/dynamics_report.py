"""The dynamics benchmark's outputs: the ATLAS protocol table beside the peers, the honest
notes, the CSV files and the figures; :func:`run_dynamics_benchmark` runs it all.

The ATLAS protocol (AlphaFlow's evaluation, reused by later ensemble models): per target the
Pearson correlation of predicted and MD RMSF over its residues, reported as the median over
targets, and the *global* RMSF Pearson over all residues of all targets. Ours are computed on
the per-protein normalised RMSF that SeqDance predicts (RMSF / its maximum); the per-target
value does not change under that scaling, the global one does. The peers' rows are their
published numbers on their split (:data:`PEERS`), never recomputed here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.benchmark.dynamics import (
    DynamicsOptions,
    DynamicsResult,
    evaluate_dynamics,
    load_proteins,
    residue_values,
)
from seqdance.benchmark.identity import (
    PUBLISHED_NOTE,
    IdentityOptions,
    find_mmseqs,
    highest_identity,
    is_published,
)
from seqdance.schema import RESIDUE_CHANNELS
from seqdance.utils.figures import legend_outside, write_figure
from seqdance.utils.io import output_group

ROWS_NAME = "per_protein.csv"
POOLED_NAME = "pooled.csv"
SUMMARY_NAME = "summary.csv"
IDENTITY_NAME = "identity.csv"
ATLAS_NAME = "atlas_protocol.csv"
REPORT_NAME = "summary.md"
PROFILES_PLOT = "rmsf_profiles.png"
SCATTER_PLOT = "rmsf_scatter.png"
THEIRS = "their numbers, their split"
__all__ = ["DynamicsOptions", "find_mmseqs", "run_dynamics_benchmark", "terminal_table"]


@dataclass(frozen=True)
class Peer:
    """A peer's published ATLAS numbers, what the model takes as input, and where the
    numbers are printed."""

    model: str
    per_target_rmsf_r: float
    global_rmsf_r: float
    inputs: str
    source: str


_AF_PAPER = "arXiv 2402.04845v2 (AlphaFlow/ESMFlow paper)"
_AF_ASSET = "github bjing2016/alphaflow @2c27c69, assets/12l_md_templates.md"
_CONFDIFF = "github bytedance/ConfDiff @9cfae1c, README.md, ATLAS table"
_DYNAPROT = (
    "github MihirBafna/dynaprot @e72851d, experiments/rebuttal_revised.md, Table 1 "
    "(the DynaProt authors' review response, not the arXiv paper)"
)
_SEQ_MSA = "sequence + MSA"
_SEQ = "sequence only (protein language model)"
_STRUCT = "sequence + the structure that started the MD"

# Only numbers read in their source (docs/dynamics-benchmark.md, "beside the peers"); see there for
# the peers left out because their numbers could not be verified.
PEERS: tuple[Peer, ...] = (
    Peer("AlphaFlow-MD+Templates (48 layers)", 0.90, 0.91, _STRUCT + " + MSA", _AF_ASSET),
    Peer("AlphaFlow-MD+Templates (12 layers)", 0.89, 0.78, _STRUCT + " + MSA", _AF_ASSET),
    Peer("AlphaFlow-MD", 0.85, 0.60, _SEQ_MSA, f"{_AF_PAPER}, Table 1, AlphaFlow-MD Full"),
    Peer("AlphaFlow-MD (distilled)", 0.81, 0.54, _SEQ_MSA,
         f"{_AF_PAPER}, Table 1, AlphaFlow-MD Distilled"),
    Peer("ESMFlow-MD", 0.76, 0.31, _SEQ, f"{_AF_PAPER}, Table 4, ESMFlow-MD Full"),
    Peer("ESMFlow-MD (distilled)", 0.74, 0.33, _SEQ, f"{_AF_PAPER}, Table 4, ESMFlow-MD Distilled"),
    Peer("ESMFlow-MD+Templates", 0.90, 0.84, _STRUCT,
         f"{_AF_PAPER}, Table 4, EFMD+Templates Full"),
    Peer("ConfDiff-OF-r3-MD", 0.85, 0.67, "sequence (OpenFold representation)", _CONFDIFF),
    Peer("ConfDiff-ESM-r3-MD", 0.82, 0.48, "sequence (ESMFold representation)", _CONFDIFF),
    Peer("DynaProt", 0.86, 0.71, "structure (single static input structure)", _DYNAPROT),
    Peer("BioEmu (run by the DynaProt authors)", 0.77, 0.63, _SEQ_MSA, _DYNAPROT),
)  # fmt: skip


def atlas_test_split() -> pd.DataFrame:
    """The 82 ATLAS test chains of AlphaFlow's split: ``name, seqres, seqlen``."""
    with resources.files("seqdance.benchmark").joinpath("data", "atlas_test.csv").open() as f:
        return pd.read_csv(f)


def atlas_members(names: list[str], sequences: list[str]) -> list[str]:
    """The proteins that are ATLAS test chains (by name, case-insensitive, or by sequence)."""
    split = atlas_test_split()
    by_name = {str(n).lower() for n in split["name"]}
    by_seq = set(split["seqres"])
    return [n for n, s in zip(names, sequences, strict=True)
            if n.lower() in by_name or s in by_seq]  # fmt: skip


def atlas_protocol(result: DynamicsResult, n_atlas: int) -> pd.DataFrame:
    """Our ATLAS-protocol row and the peers' published rows (``split`` says whose)."""
    ours = result.summary[(result.summary["property"] == "rmsf_nor")
                          & (result.summary["metric"] == "pearson")
                          & (result.summary["bin"] == "all")]  # fmt: skip
    pooled = result.pooled[(result.pooled["property"] == "rmsf_nor")
                           & (result.pooled["metric"] == "pearson")]  # fmt: skip
    n = int(ours["n_proteins"].iloc[0]) if len(ours) else 0
    rows = [{
        "model": "ours",
        "per_target_rmsf_r": float(ours["median"].iloc[0]) if len(ours) else float("nan"),
        "per_target_se": float(ours["se"].iloc[0]) if len(ours) else float("nan"),
        "global_rmsf_r": float(pooled["value"].iloc[0]) if len(pooled) else float("nan"),
        "n_targets": n,
        "split": f"this dataset ({n} proteins, {n_atlas} of the 82 ATLAS test chains)",
        "inputs": "sequence only",
        "source": "this run (RMSF normalised per protein)",
    }]  # fmt: skip
    for peer in PEERS:
        rows.append({"model": peer.model, "per_target_rmsf_r": peer.per_target_rmsf_r,
                     "per_target_se": float("nan"), "global_rmsf_r": peer.global_rmsf_r,
                     "n_targets": 82, "split": THEIRS, "inputs": peer.inputs,
                     "source": peer.source})  # fmt: skip
    return pd.DataFrame(rows)


def honest_notes(model_spec, result: DynamicsResult, n_atlas: int, train_fasta) -> list[str]:
    """What the numbers can and cannot be compared with (printed and written)."""
    notes = []
    n = len(result.proteins)
    if not is_published(model_spec):
        notes.append(f"model {model_spec} is not a published SeqDance/ESMDance model: the "
                     "numbers describe this model only, not comparable with the paper")  # fmt: skip
    else:
        notes.append(PUBLISHED_NOTE)
    if n_atlas < 82 or n != 82:
        notes.append(f"subset: {n} proteins, {n_atlas} of the 82 ATLAS test chains; the peers' "
                     f"rows are {THEIRS}, not comparable with ours")  # fmt: skip
    if result.identity is None:
        notes.append("no training FASTA (--train-fasta, or train_sequences.fasta in the model "
                     "folder): leakage not checked, no rows per identity bin")  # fmt: skip
    else:
        inside = result.identity.loc[result.identity["in_training"], "name"].tolist()
        if inside:
            notes.append(f"{len(inside)} benchmark protein(s) are in the model's training set "
                         f"(100 % identity to {train_fasta}): {', '.join(inside[:5])}"
                         + (" ..." if len(inside) > 5 else ""))  # fmt: skip
    notes.append("global RMSF r: ours over per-protein normalised RMSF (RMSF / its maximum, "
                 "what the model predicts), the peers' over RMSF in Angstrom")  # fmt: skip
    return notes


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *body])


def write_report_md(path: Path, result: DynamicsResult, atlas: pd.DataFrame) -> None:
    headline = result.summary[result.summary["metric"].isin(["pearson", "precision_top_l"])]
    text = "\n\n".join([
        "# Dynamics benchmark",
        "\n".join(f"- note: {n}" for n in result.notes),
        "## ATLAS protocol (RMSF Pearson)",
        _markdown(atlas),
        "## Median over proteins (bootstrap SE), per leakage bin",
        _markdown(headline),
    ]) + "\n"  # fmt: skip
    path.write_text(text, encoding="utf-8")


def plot_rmsf(result: DynamicsResult, profiles: Path, scatter: Path) -> list[Path]:
    """Predicted vs MD RMSF: profiles of the best, median and worst proteins (per-protein
    Pearson) and a scatter of all residues; 300 dpi PNGs. Nothing without an MD protein."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows[(result.rows["property"] == "rmsf_nor")
                       & (result.rows["metric"] == "pearson")].dropna(subset=["value"])  # fmt: skip
    if rows.empty:
        return []
    ranked = rows.sort_values(["value", "protein"], ascending=[False, True])["protein"].tolist()
    labels: dict[str, str] = {}
    for tag, name in (("best", ranked[0]), ("median", ranked[len(ranked) // 2]),
                      ("worst", ranked[-1])):  # fmt: skip
        labels[name] = f"{labels[name]}/{tag}" if name in labels else tag
    picks = list(labels)
    by_name = {p.name: p for p in result.proteins}
    k = RESIDUE_CHANNELS.index("rmsf_nor")
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.6 * len(picks)), squeeze=False)
    for ax, name in zip(axes[:, 0], picks, strict=True):
        p = by_name[name]
        true = p.true_res[:, k].astype(np.float64)
        true[true == -1] = np.nan
        x = np.arange(1, len(true) + 1)  # 1-based residue numbers
        ax.plot(x, true, color="k", lw=1.2, label="MD")
        ax.plot(x, p.pred_res[:, k], color="tab:orange", lw=1.2, label="predicted")
        r = float(rows.loc[rows["protein"] == name, "value"].iloc[0])
        ax.set_title(f"{labels[name]}: {name} (Pearson r = {r:.2f})", fontsize="medium")
        ax.set_xlabel("residue number")
        ax.set_ylabel("RMSF / max RMSF (unitless)")
        legend_outside(ax, fontsize="small")
    fig.tight_layout()
    written = [write_figure(fig, profiles)]
    parts = [residue_values(p, "rmsf_nor") for p in result.proteins]
    pred = np.concatenate([a for a, _ in parts])
    true = np.concatenate([b for _, b in parts])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, pred, s=4, alpha=0.5, color="tab:blue")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("MD RMSF / max RMSF (unitless)")
    ax.set_ylabel("predicted RMSF / max RMSF (unitless)")
    ax.set_title(f"all residues (n = {len(true)}, {len(parts)} proteins)", fontsize="medium")
    fig.tight_layout()
    written.append(write_figure(fig, scatter))
    return written


def run_dynamics_benchmark(
    model,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: DynamicsOptions | None = None,
    *,
    model_spec: str | None = None,
    train_fasta: str | os.PathLike | None = None,
    identity_options: IdentityOptions | None = None,
    plots: bool = True,
    progress: bool = False,
) -> tuple[DynamicsResult, pd.DataFrame]:
    """Run the dynamics benchmark; write its tables (and figures) into ``out_dir``.

    Writes ``per_protein.csv``, ``pooled.csv``, ``summary.csv`` (median, SE per property,
    metric and leakage bin), ``atlas_protocol.csv`` (ours beside the peers), ``summary.md``,
    ``identity.csv`` with a training FASTA, and ``rmsf_profiles.png``, ``rmsf_scatter.png``.
    Returns the result and the ATLAS-protocol table.
    """
    options = options or DynamicsOptions()
    options.check()
    proteins = load_proteins(model, data_dir, options, progress=progress)
    identity = None
    if train_fasta is not None:
        identity = highest_identity({p.name: p.sequence for p in proteins}, train_fasta,
                                    identity_options)  # fmt: skip
    result = evaluate_dynamics(proteins, options, identity)
    n_atlas = len(atlas_members([p.name for p in proteins], [p.sequence for p in proteins]))
    result.notes = honest_notes(model_spec, result, n_atlas, train_fasta)
    atlas = atlas_protocol(result, n_atlas)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_group() as group:
        result.rows.to_csv(group.path(out_dir / ROWS_NAME), index=False)
        result.pooled.to_csv(group.path(out_dir / POOLED_NAME), index=False)
        result.summary.to_csv(group.path(out_dir / SUMMARY_NAME), index=False)
        atlas.to_csv(group.path(out_dir / ATLAS_NAME), index=False)
        if identity is not None:
            identity.to_csv(group.path(out_dir / IDENTITY_NAME), index=False)
        write_report_md(group.path(out_dir / REPORT_NAME), result, atlas)
        if plots:
            plot_rmsf(result, group.path(out_dir / PROFILES_PLOT),
                      group.path(out_dir / SCATTER_PLOT))  # fmt: skip
    return result, atlas


def terminal_table(result: DynamicsResult, atlas: pd.DataFrame) -> str:
    """The ATLAS-protocol rows and the headline medians as plain text for the terminal."""
    lines = [f"{'model':<36} {'per-target r':>12} {'global r':>9}  split"]
    for row in atlas.itertuples(False):
        lines.append(f"{row.model:<36} {row.per_target_rmsf_r:>12.3f} {row.global_rmsf_r:>9.3f}"
                     f"  {row.split}")  # fmt: skip
    lines.append(f"{'property':<12} {'metric':<16} {'bin':<8} {'median':>7} {'se':>7} {'n':>4}")
    chosen = result.summary[result.summary["metric"] != "spearman"]
    for row in chosen.itertuples(False):
        lines.append(f"{row.property:<12} {row.metric:<16} {row.bin:<8} {row.median:>7.3f} "
                     f"{row.se:>7.3f} {row.n_proteins:>4}")  # fmt: skip
    return "\n".join(lines)
