"""Run a zero-shot benchmark: score every assay, evaluate, write the summaries.

The assays come from :mod:`~seqdance.benchmark.suites`; each is scored by the relative-change
scores (:func:`seqdance.inference.score.score_mutants`) and optionally the ESM2
log-likelihood ratios (:mod:`seqdance.inference.baselines`), then evaluated by ProteinGym's
metrics (:mod:`~seqdance.benchmark.metrics`).

Every metric is oriented so that higher means "predicts fitness/stability": the
relative-change scores are negated (a bigger change predicts a less fit mutant), the
ESM2 log-likelihood ratios are used as they are. Besides Spearman, each assay gets
ProteinGym's AUC, MCC, NDCG and top-10 % recall; AUC and MCC need ``DMS_score_bin``, read
from the assay or derived from the ProteinGym reference file's ``DMS_binarization_cutoff``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.benchmark.assays import BIN_COLUMN, Assay, reference_row, subsample
from seqdance.benchmark.metrics import (
    BOOTSTRAP_SAMPLES,
    METRICS,
    assay_metrics,
    binarize,
    long_to_wide,
    write_summaries,
)
from seqdance.errors import SeqDanceError
from seqdance.inference.baselines import esm_llr
from seqdance.inference.mutations import build_mutant_set, format_mutant
from seqdance.inference.options import ScoreOptions
from seqdance.inference.score import DEFAULT_OPTIONS, score_mutants
from seqdance.utils.figures import figure_name, legend_outside, write_figure
from seqdance.utils.io import output_group
from seqdance.utils.progress import progress_bar

LLR_PREFIX = "llr_"
SUMMARY_NAME = "summary.csv"  # per assay and property, nothing else
MEDIAN_NAME = "summary_median.csv"  # per property: the median over assays
PLOT_NAME = "summary.png"


def orientation(column: str) -> float:
    """+1 for columns where larger predicts fitter (ESM2 LLRs), -1 for relative changes."""
    return 1.0 if column.startswith(LLR_PREFIX) else -1.0


@dataclass
class BenchmarkResult:
    """Per-assay rows (assay, property, the metrics, n) and the medians over assays."""

    rows: list[dict]
    medians: list[dict]
    skipped: list[str]  # "assay: reason" for assays that could not be scored
    unmatched: list[str] = field(default_factory=list)  # assays without a reference row
    summaries: list[Path] = field(default_factory=list)  # ProteinGym-style summaries written


def score_assay(
    model,
    assay: Assay,
    properties: Sequence[str],
    *,
    baselines: Sequence[str] = (),
    mlm=None,
    options: ScoreOptions = DEFAULT_OPTIONS,
):
    """Score one assay; a DataFrame with ``mutant``, ``target`` and one column per score.

    ``options`` go to :func:`~seqdance.inference.score.score_mutants`; the baselines use
    their ``token_budget`` (and no window)."""
    mutants = build_mutant_set(
        assay.wild_type, assay.mutants, assay.mutated_sequences, assay.offset, first_row=None
    )
    frame = pd.DataFrame(
        {
            "mutant": list(assay.mutants)
            if assay.mutants is not None
            else [format_mutant(s) for s in mutants.substitutions],
            "target": assay.target,
        }
    )
    columns = {}
    if properties:
        columns.update(score_mutants(model, mutants, properties, options).columns())
    for method in baselines:
        key = LLR_PREFIX + method.replace("-", "_")
        columns[key] = esm_llr(mlm, mutants, method, token_budget=options.token_budget)
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def evaluate(frame, assay_name: str, target_bin: np.ndarray | None = None) -> list[dict]:
    """ProteinGym's metrics (oriented) of every score column of a :func:`score_assay` frame.

    One row per column: ``assay, property, spearman, auc, mcc, ndcg, top_recall, n``.
    """
    target = frame["target"].to_numpy(dtype=np.float64)
    rows = []
    for column in frame.columns:
        if column in ("mutant", "target", BIN_COLUMN):
            continue
        prediction = orientation(column) * frame[column].to_numpy(np.float64)
        values = assay_metrics(prediction, target, target_bin)
        row = {"assay": assay_name, "property": column}
        row.update({m: values[m] for m in METRICS})
        row["n"] = values["n"]
        rows.append(row)
    return rows


def medians(rows: list[dict]) -> list[dict]:
    """Median of each metric over assays per property (NaNs left out); ``n_assays`` = assays
    with a finite Spearman."""
    by_prop: dict[str, list[dict]] = {}
    for row in rows:
        by_prop.setdefault(row["property"], []).append(row)
    out = []
    for prop, group in by_prop.items():
        entry: dict = {"property": prop}
        for metric in METRICS:
            finite = [r[metric] for r in group if metric in r and np.isfinite(r[metric])]
            entry[metric] = float(np.median(finite)) if finite else float("nan")
        entry["n_assays"] = sum(1 for r in group if np.isfinite(r["spearman"]))
        out.append(entry)
    return out


def run_benchmark(
    model,
    assays: Sequence[Assay],
    out_dir: str | os.PathLike,
    properties: Sequence[str],
    *,
    baselines: Sequence[str] = (),
    mlm=None,
    max_variants: int | None = None,
    options: ScoreOptions = DEFAULT_OPTIONS,
    progress: bool = False,
    reference=None,
    bootstrap_samples: int | None = None,
    scorer=None,
    figure_format: str = "png",
) -> BenchmarkResult:
    """Score every assay; write ``scores/{assay}.csv``, ``summary.csv`` (per assay),
    ``summary_median.csv`` (per property) and ``summary.png``.

    ``max_variants`` keeps an evenly spaced subset of each assay's variants (in file order).
    ``options`` as :func:`score_assay`.
    ``reference`` (``seqdance.benchmark.assays.read_reference``) supplies the binarisation
    cutoff of assays without ``DMS_score_bin`` and adds ProteinGym's leaderboard summaries
    (``summary_by_model*.csv``) over the assays it lists. ``scorer``: in place of
    :func:`score_assay` (same arguments; ``seqdance.benchmark.sharded`` reads finished shards).
    """
    out_dir = Path(out_dir)
    (out_dir / "scores").mkdir(parents=True, exist_ok=True)
    # scores/*.csv, summary*.csv and summary.png appear together or not at all
    with output_group() as group:
        rows: list[dict] = []
        skipped: list[str] = []
        dms_ids: dict[str, str] = {}  # assay name -> ProteinGym DMS_id
        for assay in progress_bar(assays, desc="benchmark", unit="assay", enabled=progress):
            assay = subsample(assay, max_variants)
            target_bin = assay.target_bin
            if reference is not None:
                row = reference_row(reference, assay.name)
                if row is not None:
                    dms_ids[assay.name] = str(row["DMS_id"])
                    cutoff = float(row["DMS_binarization_cutoff"])
                    if target_bin is None and np.isfinite(cutoff):
                        target_bin = binarize(assay.target, row["DMS_binarization_cutoff"])
            try:
                frame = (scorer or score_assay)(
                    model,
                    assay,
                    properties,
                    baselines=baselines,
                    mlm=mlm,
                    options=options,
                )
            except SeqDanceError as exc:  # a bad assay does not stop the others
                skipped.append(f"{assay.name}: {exc}")
                continue
            if target_bin is not None:
                frame.insert(2, BIN_COLUMN, target_bin)
            frame.to_csv(group.path(out_dir / "scores" / f"{assay.name}.csv"), index=False)
            rows.extend(evaluate(frame, assay.name, target_bin))
        if not rows:
            raise SeqDanceError("no assay could be scored; " + "; ".join(skipped[:3]))
        result = BenchmarkResult(rows, medians(rows), skipped)
        summary = pd.DataFrame(result.rows, columns=["assay", "property", *METRICS, "n"])
        summary.to_csv(group.path(out_dir / SUMMARY_NAME), index=False)
        medians_frame = pd.DataFrame(result.medians, columns=["property", *METRICS, "n_assays"])
        medians_frame.to_csv(group.path(out_dir / MEDIAN_NAME), index=False)
        if reference is not None:
            scored = list(dict.fromkeys(r["assay"] for r in result.rows))
            result.unmatched = [a for a in scored if a not in dms_ids]
            matched = summary[summary["assay"].isin(dms_ids)].copy()
            if len(matched):
                matched["assay"] = matched["assay"].map(dms_ids)
                tables = {m: long_to_wide(matched, m) for m in METRICS}
                samples = BOOTSTRAP_SAMPLES if bootstrap_samples is None else bootstrap_samples
                result.summaries, _ = write_summaries(
                    tables, reference, out_dir, samples=samples, group=group
                )
        plot_summary(result, group.path(out_dir / figure_name(Path(PLOT_NAME).stem, figure_format)))
    return result


def plot_summary(result: BenchmarkResult, path: str | os.PathLike) -> Path:
    """Median oriented Spearman per property (bars) with each assay's value (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(
        result.medians, key=lambda r: -r["spearman"] if np.isfinite(r["spearman"]) else np.inf
    )
    names = [r["property"] for r in order]
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.22 * len(names) + 1)))
    y = np.arange(len(names))
    ax.barh(y, [r["spearman"] for r in order], color="tab:blue", alpha=0.6, label="median")
    position = {name: i for i, name in enumerate(names)}
    dots = [(position[r["property"]], r["spearman"]) for r in result.rows]
    if dots:
        ax.scatter([d[1] for d in dots], [d[0] for d in dots], s=6, color="k", label="assay")
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("Spearman (oriented: positive predicts fitness)")
    n_assays = len({r["assay"] for r in result.rows})
    ax.set_title(f"zero-shot benchmark, {n_assays} assays")
    legend_outside(ax, fontsize="small")
    fig.tight_layout()
    return write_figure(fig, path)
