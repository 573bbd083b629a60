"""ProteinGym's zero-shot metrics and its leaderboard aggregation.

Per assay (``assay_metrics``): Spearman, AUC and MCC against the binarised measurement
``DMS_score_bin``, NDCG of the top 10 % and the recall of the top 10 %, computed by
ProteinGym's own functions (``proteingym/performance_DMS_benchmarks.py`` of the PyPI
package ``proteingym``, loaded by path because ``import proteingym`` fails in that wheel).
Every prediction must be oriented "higher = predicted fitter".

Across assays (``aggregate``), as ProteinGym ranks models: join each assay with its row of
the reference file ``DMS_substitutions.csv`` (``UniProt_ID``, ``coarse_selection_type``;
read by :func:`seqdance.benchmark.assays.read_reference`),
average the assays of each (UniProt ID, function category), then each category, and report
the mean of the five category averages as ``Average_<metric>``; the standard error is
ProteinGym's bootstrap over the (protein, category) rows of the difference to the best
model, with a fixed seed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from seqdance.benchmark.assays import read_csv_table, reference_row
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.summaries import score_columns
from seqdance.utils.io import atomic_path

METRICS = ("spearman", "auc", "mcc", "ndcg", "top_recall")
# ProteinGym's names of the metrics (file and column names of its summaries)
PROTEINGYM_NAMES = {
    "spearman": "Spearman",
    "auc": "AUC",
    "mcc": "MCC",
    "ndcg": "NDCG",
    "top_recall": "Top_recall",
}
CATEGORIES = ("Activity", "Binding", "Expression", "OrganismalFitness", "Stability")
BOOTSTRAP_SAMPLES = 10_000  # ProteinGym's number_assay_reshuffle
BOOTSTRAP_SEED = 0
MIN_VARIANTS = 3  # fewer pairs give NaN metrics


@functools.cache
def proteingym():
    """ProteinGym's ``performance_DMS_benchmarks`` module, loaded from the installed
    ``proteingym`` distribution by file path (its package ``__init__`` cannot be imported)."""
    spec = importlib.util.find_spec("proteingym")
    if spec is None or not spec.submodule_search_locations:
        raise SeqDanceError("the 'proteingym' package is not installed (pip install proteingym)")
    path = Path(next(iter(spec.submodule_search_locations))) / "performance_DMS_benchmarks.py"
    if not path.is_file():
        raise SeqDanceError(f"proteingym is installed without {path.name}")
    module_spec = importlib.util.spec_from_file_location("proteingym_performance", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# -- per assay -----------------------------------------------------------------------------
def spearman(prediction: np.ndarray, target: np.ndarray) -> tuple[float, int]:
    """Spearman rank correlation over the finite pairs, and their number (NaN if < 3)."""
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(prediction) & np.isfinite(target)
    n = int(ok.sum())
    if n < MIN_VARIANTS or np.ptp(prediction[ok]) == 0 or np.ptp(target[ok]) == 0:
        return float("nan"), n
    return float(spearmanr(prediction[ok], target[ok]).statistic), n


def binarize(target: np.ndarray, cutoff: float) -> np.ndarray:
    """``DMS_score_bin``: 1 (fit) where the measurement is at or above ``cutoff``, else 0.

    ProteinGym ships the cutoff (``DMS_binarization_cutoff``; the median of the assay or a
    manual threshold) but not the code that applied it; its README calls 1 "above the
    fitness cutoff", and its own binarisation of model scores uses ``>=``.
    """
    return (np.asarray(target, dtype=np.float64) >= float(cutoff)).astype(np.int64)


def assay_metrics(
    prediction: np.ndarray, target: np.ndarray, target_bin: np.ndarray | None = None
) -> dict[str, float]:
    """ProteinGym's five metrics of one oriented prediction (higher = predicted fitter).

    Non-finite predictions or targets are left out (ProteinGym's inputs have none); with
    fewer than 3 pairs or a constant side every metric is NaN; without ``target_bin`` AUC
    and MCC are NaN. Also returns ``n``, the number of pairs used.
    """
    pg = proteingym()
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(prediction) & np.isfinite(target)
    out = dict.fromkeys(METRICS, float("nan"))
    out["n"] = int(ok.sum())
    if out["n"] < MIN_VARIANTS or np.ptp(prediction[ok]) == 0 or np.ptp(target[ok]) == 0:
        return out
    pred, true = prediction[ok], target[ok]
    out["spearman"] = float(spearmanr(true, pred).statistic)
    out["ndcg"] = float(pg.calc_ndcg(true, pred))
    out["top_recall"] = float(pg.calc_toprecall(true, pred))
    if target_bin is not None:
        labels = np.asarray(target_bin)[ok].astype(np.int64)
        if len(np.unique(labels)) == 2:
            out["auc"] = float(roc_auc_score(y_true=labels, y_score=pred))
        # ProteinGym binarises the prediction at its median (1 where >= median)
        pred_bin = (pred >= np.median(pred)).astype(np.int64)
        out["mcc"] = float(matthews_corrcoef(y_true=labels, y_pred=pred_bin))
    return out


# -- leaderboard aggregation ---------------------------------------------------------------
def aggregate(table, reference, metric: str = "spearman", *, samples: int = BOOTSTRAP_SAMPLES):
    """ProteinGym's summary of a per-assay table: one row per model (column of ``table``).

    Parameters
    ----------
    table : DataFrame
        Index: assay ids (``DMS_id``); one numeric column per model or score.
    reference : DataFrame
        :func:`seqdance.benchmark.assays.read_reference`.
    metric : str
        One of :data:`METRICS` (names the columns).
    samples : int
        Bootstrap resamples (ProteinGym: 10,000).

    Returns
    -------
    DataFrame with ``Model_name, Average_<M>, Bootstrap_standard_error_<M>,
    Function_Activity, ..., Function_Stability, n_assays``, sorted by the average
    (descending), unrounded.
    """
    name = PROTEINGYM_NAMES[metric]
    unknown = [a for a in table.index if a not in reference.index]
    if unknown:
        raise SeqDanceError(
            f"{len(unknown)} assay(s) not in the reference file (e.g. {unknown[0]}); "
            "name assays by their ProteinGym DMS_id"
        )
    models = list(table.columns)
    values = table[models].apply(pd.to_numeric, errors="coerce")
    values["UniProt_ID"] = reference.loc[table.index, "UniProt_ID"].to_numpy()
    values["Selection Type"] = reference.loc[table.index, "coarse_selection_type"].to_numpy()
    # ProteinGym: mean per (protein, category), then per category, then over categories
    per_protein = values.groupby(["UniProt_ID", "Selection Type"]).mean(numeric_only=True)
    per_category = per_protein.groupby("Selection Type").mean(numeric_only=True)  # (K, M)
    average = per_category.mean(axis=0)  # (M,)
    top = average.idxmax()
    error = _bootstrap_error(per_protein[models].sub(per_protein[top], axis=0), samples)
    out = pd.DataFrame(
        {
            "Model_name": models,
            f"Average_{name}": average[models].to_numpy(),
            f"Bootstrap_standard_error_{name}": error[models].to_numpy(),
        }
    )
    for category in CATEGORIES:
        column = (
            per_category.loc[category, models].to_numpy()
            if category in per_category.index
            else np.full(len(models), np.nan)
        )
        out[f"Function_{category}"] = column
    out["n_assays"] = [int(values[m].notna().sum()) for m in models]
    return out.sort_values(f"Average_{name}", ascending=False, kind="stable").reset_index(drop=True)


def _bootstrap_error(per_protein, samples: int):
    """ProteinGym's ``compute_bootstrap_standard_error_functional_categories`` with a fixed
    seed (it draws from NumPy's global generator; its state is restored afterwards)."""
    pg = proteingym()
    state = np.random.get_state()
    try:
        np.random.seed(BOOTSTRAP_SEED)
        # index (UniProt_ID, Selection Type), one column per model, as ProteinGym passes it
        return pg.compute_bootstrap_standard_error_functional_categories(
            per_protein, number_assay_reshuffle=samples
        )
    finally:
        np.random.set_state(state)


def long_to_wide(table, metric: str):
    """Our per-assay table (``assay, property, <metric>...``) as assays x properties."""
    if metric not in table.columns:
        raise SeqDanceError(f"per-assay table has no {metric!r} column")
    wide = table.pivot_table(index="assay", columns="property", values=metric, dropna=False)
    return wide[list(dict.fromkeys(table["property"]))]


def read_per_assay_table(path: str | os.PathLike) -> dict[str, object]:
    """A per-assay table as ``{metric: DataFrame (assays x models)}``.

    Accepts ours (``assay, property, spearman[, auc, mcc, ndcg, top_recall], n``) and
    ProteinGym's DMS-level layout (``DMS ID`` then one column per model; its metadata
    columns are dropped; the metric is Spearman unless the file name says otherwise).
    """
    path = Path(path)
    table = read_csv_table(path, "per-assay table")
    if table.empty:
        raise InputFileError(f"{path}: the per-assay table has no rows (only a header)")
    if {"assay", "property"} <= set(table.columns):
        _check_unique(table, ["assay", "property"], path)
        out = {}
        for m in METRICS:
            if m in table.columns and table[m].notna().any():  # a blank metric: not computed
                out[m] = long_to_wide(
                    _check_metric_cells(table, ["assay", "property"], [m], m, path), m
                )
        return out
    if "DMS ID" in table.columns:
        metadata = {
            "Number of Mutants",
            "number_mutants",
            "Selection Type",
            "UniProt ID",
            "UniProt_ID",
            "MSA_Neff_L_category",
            "Taxon",
        }
        models = [c for c in table.columns if c != "DMS ID" and c not in metadata]
        table = table[~table["DMS ID"].isin(["Average", "average"])]
        metric = next((m for m, n in PROTEINGYM_NAMES.items() if f"_{n}_" in path.name), "spearman")
        _check_unique(table, ["DMS ID"], path)
        table = _check_metric_cells(table, ["DMS ID"], models, metric, path)
        empty = [m for m in models if table[m].isna().all()]
        if empty:
            raise InputFileError(f"{path}: column {empty[0]!r} has no value; fill it or remove it")
        return {metric: table.set_index("DMS ID")[models]}
    raise InputFileError(
        f"{path}: neither a seqdance per-assay table (assay, property, ...) nor ProteinGym's "
        "DMS-level layout ('DMS ID' column)"
    )


# the range of each metric; a value outside it is a wrong table, never averaged in
METRIC_RANGES = {
    "spearman": (-1.0, 1.0),
    "mcc": (-1.0, 1.0),
    "auc": (0.0, 1.0),
    "ndcg": (0.0, 1.0),
    "top_recall": (0.0, 1.0),
}


def _row_name(table, keys: list[str], i: int) -> str:
    """``assay X`` (and ``property Y``) of row ``i`` of ``table``, with its line in the file."""
    label = ", ".join(f"{k} {table[k].iloc[i]}" for k in keys)
    return f"line {int(table.index[i]) + 2} ({label})"


def _check_unique(table, keys: list[str], path: Path) -> None:
    """One row per assay (and property): a repeated one would be counted twice."""
    repeated = table.duplicated(subset=keys, keep="first").to_numpy()
    if repeated.any():
        i = int(np.argmax(repeated))
        raise InputFileError(
            f"{path}: {_row_name(table, keys, i)} repeats an earlier row; keep one row per "
            f"{' and '.join(keys)}"
        )


def _check_metric_cells(table, keys: list[str], columns: list[str], metric: str, path: Path):
    """``table`` with ``columns`` as float64; blank cells stay NaN (a metric not computed).

    Text that is not a number, an infinite value or a value outside the metric's range
    (:data:`METRIC_RANGES`) is an error naming the line, the assay and the column.
    """
    table = table.copy()
    low, high = METRIC_RANGES[metric]
    for column in columns:
        raw = table[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)  # (N,)
        text = (
            np.isnan(values)
            & raw.notna().to_numpy()
            & (raw.astype(str).str.strip() != "").to_numpy()
        )
        problems = [
            (text, "is not a number"),
            (np.isinf(values), "is not a finite number"),
            (np.isfinite(values) & ((values < low) | (values > high)),
             f"is outside the range of {PROTEINGYM_NAMES[metric]} [{low:g}, {high:g}]"),
        ]  # fmt: skip
        for bad, what in problems:
            if bad.any():
                i = int(np.argmax(bad))
                cell = raw.iloc[i]
                shown = repr(cell) if isinstance(cell, str) else f"{float(cell):g}"
                raise InputFileError(
                    f"{path}: {_row_name(table, keys, i)}, column {column!r}: {shown} {what}"
                )
        table[column] = values
    return table


DEFAULT_HEADLINE = "norm_geometric_mean"


def check_headline(headline: str, channels, with_suite: bool) -> None:
    """``--headline`` must name a score column of this run (the default may be absent when
    the properties give no combination: then no headline row is printed)."""
    if headline == DEFAULT_HEADLINE:
        return
    if not with_suite:
        raise SeqDanceError("--headline is compared with the paper only with --suite; add one")
    columns = score_columns(channels)
    if headline not in columns:
        raise SeqDanceError(
            f"--headline: no score column {headline!r} in this run (columns: {', '.join(columns)})"
        )


def summary_names(metric: str) -> str:
    """File name of the summary of ``metric`` (``summary_by_model.csv`` for Spearman)."""
    return "summary_by_model.csv" if metric == "spearman" else f"summary_by_model_{metric}.csv"


def match_assays(table, reference):
    """``table`` with its index renamed to ``DMS_id`` (assays named by ``DMS_id`` or
    ``DMS_filename``) and the names that the reference does not know, which are dropped."""
    ids = {}
    for name in table.index:
        row = reference_row(reference, str(name))
        if row is not None:
            ids[name] = str(row["DMS_id"])
    unmatched = [str(a) for a in table.index if a not in ids]
    matched = table.loc[[a for a in table.index if a in ids]].rename(index=ids)
    return matched, unmatched


def write_summaries(
    tables: dict,
    reference,
    out_dir: str | os.PathLike,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    group=None,
) -> tuple[list[Path], list[str]]:
    """:func:`aggregate` every metric's table into ``out_dir`` (written atomically, or as part
    of ``group``, a :func:`seqdance.utils.io.output_group`) over the assays the reference
    knows; returns the files and the assays left out."""
    out_dir = Path(out_dir)
    written = []
    unmatched: list[str] = []
    matched = {}
    for metric, table in tables.items():
        matched[metric], unmatched = match_assays(table, reference)
        if matched[metric].empty:
            raise SeqDanceError(
                f"none of the {len(table)} assays is in the reference file (e.g. "
                f"{table.index[0]}); name assays by their ProteinGym DMS_id"
            )
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # a category or model without values is a blank cell of the summary, said there;
        # pandas' and NumPy's "mean of empty slice" lines would only repeat it
        warnings.simplefilter("ignore", RuntimeWarning)
        summaries = {m: aggregate(t, reference, m, samples=samples) for m, t in matched.items()}
    for metric, summary in summaries.items():
        path = out_dir / summary_names(metric)
        if group is not None:
            summary.to_csv(group.path(path), index=False)
        else:
            with atomic_path(path) as tmp:
                summary.to_csv(tmp, index=False)
        written.append(path)
    return written, unmatched
