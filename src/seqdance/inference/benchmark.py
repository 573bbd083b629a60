"""Zero-shot benchmarks: score assays with measured fitness or stability, report Spearman.

Two input formats:

- a folder of ProteinGym-style assays: ``X.csv`` with a ``mutant`` column (``A12G``,
  ``A12G:C15D``; optionally ``mutated_sequence``) and a score column (``DMS_score``, else
  ``score``; higher = fitter; other columns are ignored, duplicate names included) next
  to ``X.fasta`` holding the wild type;
- the mega-scale stability table (``system_info.csv`` of Tsuboyama 2023 as shipped by
  bioemu-benchmarks): ``name, name_wt, mutant, dg_exp, ddg_exp, sequence``. There
  ``dg_exp`` is the folding free energy (negative = stable) and
  ``ddg_exp = dg_mut - dg_wt`` (positive = destabilising), so the target is ``-ddg_exp``.

Every metric is oriented so that higher means "predicts fitness/stability": the
relative-change scores are negated (a bigger change predicts a less fit mutant), the
ESM2 log-likelihood ratios are used as they are. Besides Spearman, each assay gets
ProteinGym's AUC, MCC, NDCG and top-10 % recall (``seqdance.inference.metrics``); AUC and
MCC need ``DMS_score_bin``, read from the assay or derived from the ProteinGym reference
file's ``DMS_binarization_cutoff``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.utils.io import output_group, save_figure

SCORE_COLUMNS = ("DMS_score", "score")
BIN_COLUMN = "DMS_score_bin"
MEGASCALE_COLUMNS = ("name", "name_wt", "mutant", "ddg_exp", "dg_exp", "sequence")
MIN_VARIANTS = 3  # fewer measured variants give no Spearman (NaN)
LLR_PREFIX = "llr_"
SUMMARY_NAME = "summary.csv"  # per assay and property, nothing else
MEDIAN_NAME = "summary_median.csv"  # per property: the median over assays
PLOT_NAME = "summary.png"


@dataclass(frozen=True)
class Assay:
    """Variants of one wild type with a measured target (higher = fitter or more stable).

    Exactly one of ``mutants`` (ProteinGym text) and ``mutated_sequences`` is set; both
    hold N entries, as does ``target``.
    """

    name: str
    wild_type: str
    target: np.ndarray
    mutants: tuple[str, ...] | None = None
    mutated_sequences: tuple[str, ...] | None = None
    offset: int = 1
    target_bin: np.ndarray | None = None  # ProteinGym's DMS_score_bin (1 = fit), when known

    def __len__(self) -> int:
        return len(self.target)


# -- readers -------------------------------------------------------------------------------
def _read_csv(path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(f"{path}: cannot read CSV ({reason})") from exc


def read_proteingym_assay(csv: str | os.PathLike, fasta: str | os.PathLike | None = None) -> Assay:
    """One ProteinGym-style assay (``fasta`` defaults to the CSV's name with ``.fasta``)."""
    from seqdance.inference.fasta import read_fasta

    csv = Path(csv)
    fasta = Path(fasta) if fasta is not None else csv.with_suffix(".fasta")
    if not fasta.is_file():
        raise InputFileError(f"{csv}: no wild-type FASTA {fasta.name} next to it")
    records = read_fasta(fasta)
    if len(records) != 1:
        raise InputFileError(f"{fasta}: {len(records)} records; the wild type must be the only one")
    wild_type = records[0].sequence
    table = _read_csv(csv)
    score_col = next((c for c in SCORE_COLUMNS if c in table.columns), None)
    if score_col is None:
        raise InputFileError(f"{csv}: no score column (expected one of {', '.join(SCORE_COLUMNS)})")
    if "mutant" not in table.columns and "mutated_sequence" not in table.columns:
        raise InputFileError(f"{csv}: no 'mutant' or 'mutated_sequence' column")
    target = _numeric_column(table, score_col, csv)
    keep = np.isfinite(target)
    use_text = "mutant" in table.columns
    column = table["mutant" if use_text else "mutated_sequence"]
    keep &= column.notna().to_numpy()
    values = tuple(str(v) for v in column[keep])
    target_bin = None
    if BIN_COLUMN in table.columns:
        target_bin = np.asarray(table[BIN_COLUMN], dtype=np.float64)
        keep_bin = np.isfinite(target_bin[keep])
        target_bin = target_bin[keep].astype(np.int64) if keep_bin.all() else None
    return Assay(
        name=csv.stem,
        wild_type=wild_type,
        target=target[keep],
        mutants=values if use_text else None,
        mutated_sequences=None if use_text else values,
        target_bin=target_bin,
    )


def _numeric_column(table, column: str, path: Path) -> np.ndarray:
    """A score column as float64; text that is not a number is an error naming the row."""
    import pandas as pd

    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & table[column].notna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise InputFileError(
            f"{path}: column {column}, row {row + 2}: {table[column].iloc[row]!r} is not a number"
        )
    return values


def read_megascale(path: str | os.PathLike) -> list[Assay]:
    """One assay per wild type of a mega-scale ``system_info.csv``; target ``-ddg_exp``.

    Wild types without their own row, and mutants whose length differs from the wild type,
    are left out.
    """
    path = Path(path)
    table = _read_csv(path)
    missing = [c for c in MEGASCALE_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}")
    is_mutant = table["mutant"].astype(str).str.lower().isin(("true", "1"))
    wild = table[~is_mutant].drop_duplicates("name").set_index("name")
    assays = []
    for name_wt, group in table[is_mutant].groupby("name_wt", sort=True):
        if name_wt not in wild.index:
            continue
        wild_type = str(wild.loc[name_wt, "sequence"]).upper()
        group = group[group["sequence"].str.len() == len(wild_type)]
        group = group[np.isfinite(group["ddg_exp"].to_numpy(dtype=np.float64))]
        if len(group) == 0:
            continue
        assays.append(
            Assay(
                name=str(name_wt),
                wild_type=wild_type,
                target=-group["ddg_exp"].to_numpy(dtype=np.float64),
                mutated_sequences=tuple(str(s).upper() for s in group["sequence"]),
            )
        )
    return assays


def is_megascale(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    return all(c in header for c in MEGASCALE_COLUMNS)


def read_assays(path: str | os.PathLike, limit: int | None = None) -> list[Assay]:
    """Assays of a ProteinGym-style folder (sorted by name) or a mega-scale CSV file."""
    path = Path(path)
    if path.is_dir():
        csvs = sorted(path.glob("*.csv"))
        alone = [p.name for p in csvs if not p.with_suffix(".fasta").is_file()]
        if csvs and alone:
            raise InputFileError(
                f"{path}: no wild-type FASTA for {', '.join(alone[:3])}"
                + (f" and {len(alone) - 3} more" if len(alone) > 3 else "")
                + " (each X.csv needs X.fasta beside it)"
            )
        if not csvs:
            raise InputFileError(f"{path}: no assay (X.csv with X.fasta beside it)")
        return [read_proteingym_assay(p) for p in csvs[:limit]]
    from seqdance.inference.megascale import is_tsuboyama, read_tsuboyama

    if is_tsuboyama(path):  # the published Tsuboyama2023_Dataset2_Dataset3 table
        return read_tsuboyama(path)[:limit]
    if is_megascale(path):
        return read_megascale(path)[:limit]
    if path.is_file():
        raise InputFileError(
            f"{path}: not a folder of assays nor a mega-scale table "
            f"(columns {', '.join(MEGASCALE_COLUMNS)})"
        )
    raise InputFileError(f"assays not found: {path}")


# -- statistics ----------------------------------------------------------------------------
def spearman(prediction: np.ndarray, target: np.ndarray) -> tuple[float, int]:
    """Spearman rank correlation over the finite pairs, and their number (NaN if < 3)."""
    from scipy.stats import spearmanr

    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(prediction) & np.isfinite(target)
    n = int(ok.sum())
    if n < MIN_VARIANTS or np.ptp(prediction[ok]) == 0 or np.ptp(target[ok]) == 0:
        return float("nan"), n
    return float(spearmanr(prediction[ok], target[ok]).statistic), n


def orientation(column: str) -> float:
    """+1 for columns where larger predicts fitter (ESM2 LLRs), -1 for relative changes."""
    return 1.0 if column.startswith(LLR_PREFIX) else -1.0


# -- running -------------------------------------------------------------------------------
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
    token_budget: int = 4096,
    autocast=None,
    score_options: dict | None = None,
):
    """Score one assay; a DataFrame with ``mutant``, ``target`` and one column per score.
    ``score_options``: more keywords of ``score_mutants`` (``residues_only``, ``window``)."""
    import pandas as pd

    from seqdance.inference.mutations import build_mutant_set, format_mutant
    from seqdance.inference.score import esm_llr, score_mutants

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
        columns.update(
            score_mutants(
                model,
                mutants,
                properties,
                token_budget=token_budget,
                autocast=autocast,
                **(score_options or {}),
            ).columns()  # fmt: skip
        )
    for method in baselines:
        key = LLR_PREFIX + method.replace("-", "_")
        columns[key] = esm_llr(mlm, mutants, method, token_budget=token_budget)
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def evaluate(frame, assay_name: str, target_bin: np.ndarray | None = None) -> list[dict]:
    """ProteinGym's metrics (oriented) of every score column of a :func:`score_assay` frame.

    One row per column: ``assay, property, spearman, auc, mcc, ndcg, top_recall, n``.
    """
    from seqdance.inference.metrics import METRICS, assay_metrics

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
    from seqdance.inference.metrics import METRICS

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
    token_budget: int = 4096,
    progress: bool = False,
    autocast=None,
    score_options: dict | None = None,
    reference=None,
    bootstrap_samples: int | None = None,
) -> BenchmarkResult:
    """Score every assay; write ``scores/{assay}.csv``, ``summary.csv`` (per assay),
    ``summary_median.csv`` (per property) and ``summary.png``.

    ``max_variants`` keeps an evenly spaced subset of each assay's variants (in file order).
    ``reference`` (``seqdance.inference.metrics.read_reference``) supplies the binarisation
    cutoff of assays without ``DMS_score_bin`` and adds ProteinGym's leaderboard summaries
    (``summary_by_model*.csv``) over the assays it lists.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from seqdance.inference.metrics import (
        BOOTSTRAP_SAMPLES,
        METRICS,
        binarize,
        long_to_wide,
        reference_row,
        write_summaries,
    )

    out_dir = Path(out_dir)
    (out_dir / "scores").mkdir(parents=True, exist_ok=True)
    # scores/*.csv, summary*.csv and summary.png appear together or not at all
    with output_group() as group:
        rows: list[dict] = []
        skipped: list[str] = []
        dms_ids: dict[str, str] = {}  # assay name -> ProteinGym DMS_id
        for assay in tqdm(assays, desc="benchmark", unit="assay", disable=not progress):
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
                frame = score_assay(
                    model,
                    assay,
                    properties,
                    baselines=baselines,
                    mlm=mlm,
                    token_budget=token_budget,
                    autocast=autocast,
                    score_options=score_options,
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
        plot_summary(result, group.path(out_dir / PLOT_NAME))
    return result


def subsample(assay: Assay, max_variants: int | None) -> Assay:
    """At most ``max_variants`` variants, evenly spaced in file order (all when None)."""
    if max_variants is None or len(assay) <= max_variants:
        return assay
    keep = np.unique(np.linspace(0, len(assay) - 1, max_variants).round().astype(int))

    def pick(values):
        return None if values is None else tuple(values[i] for i in keep)

    return Assay(
        assay.name,
        assay.wild_type,
        assay.target[keep],
        pick(assay.mutants),
        pick(assay.mutated_sequences),
        assay.offset,
        None if assay.target_bin is None else assay.target_bin[keep],
    )


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
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def check_properties(names: str | None) -> tuple[str, ...]:
    """``--properties`` text to channel names (all 63 when None), as a one-line error."""
    from seqdance.schema import resolve_properties

    try:
        return resolve_properties(names)
    except ValueError as exc:
        raise SeqDanceError(str(exc)) from None
