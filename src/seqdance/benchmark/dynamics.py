"""The dynamics benchmark: predicted against MD properties on a built dataset.

Every protein of a built dataset (``seqdance dataset build``; optionally one ``label``) is
predicted in one pass at its full length and compared with its stored targets (RMSF divided
by its per-protein maximum, as the model predicts it; interaction channels as stored, the
cube root of mean contacts per frame):

- residue properties (:data:`RESIDUE_PROPERTIES`): Pearson and Spearman over the protein's
  residues; a feature of several channels (``ss``, ``chi``, ``phi``, ``psi``, ``nma_res``) over
  all its (residue, channel) values, and ``ss_H``, ``ss_E``, ``ss_loop`` one class each;
- interaction types (``vdw`` .. ``ts``): precision of the top-L predicted pairs with
  ``j - i >= min_separation``, a true contact being a mean of at least
  ``contact_threshold`` contacts per frame in the MD;
- ``corr`` (movement correlation) and ``nma_pair``: Pearson and Spearman over the pairs i < j.

Values marked missing (-1) are left out. Then per property and metric the median over
proteins with a bootstrap standard error
(:func:`~seqdance.benchmark.dynamics_metrics.median_with_se`, fixed seed), overall and per
leakage bin, and the pooled correlation over all residues (pairs) of all proteins. Tables
and plots: :mod:`~seqdance.benchmark.dynamics_report`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqdance.benchmark.dynamics_metrics import (
    IDENTITY_BINS,
    identity_bin,
    median_with_se,
    pearson_r,
    spearman_r,
    top_l_precision,
    upper_pairs,
)
from seqdance.data.dataset import DatasetConfig, ProteinDataset
from seqdance.errors import SeqDanceError
from seqdance.inference.options import DEFAULT_TOKEN_BUDGET
from seqdance.inference.predict import iter_outputs
from seqdance.schema import (
    FEATURE_BY_NAME,
    INTERACTIONS,
    MISSING,
    PAIR_CHANNELS,
    RESIDUE_CHANNELS,
)

# residue properties: whole features (several channels pooled) and single channels
RESIDUE_PROPERTIES: tuple[str, ...] = (
    "rmsf_nor", "sasa_mean", "sasa_std", "ss", "ss_H", "ss_E", "ss_loop",
    "chi", "phi", "psi", "nma_res",
)  # fmt: skip
MAP_PROPERTIES: tuple[str, ...] = ("corr", "nma_pair")
CONTACT_PROPERTIES: tuple[str, ...] = INTERACTIONS
ROW_COLUMNS = ["protein", "property", "metric", "value", "n"]


@dataclass(frozen=True)
class DynamicsOptions:
    """What the dynamics benchmark reads and how it scores."""

    label: str | None = None  # only proteins with this index label; None: all
    contact_threshold: float = 0.5  # mean contacts per frame that make an MD contact
    min_separation: int = 6  # |i - j| of the pairs ranked for top-L precision
    bootstrap_samples: int = 1000
    seed: int = 0
    token_budget: int = DEFAULT_TOKEN_BUDGET

    def check(self) -> None:
        if self.contact_threshold <= 0:
            raise SeqDanceError("--contact-threshold must be > 0 (mean contacts per frame)")
        if self.min_separation < 1:
            raise SeqDanceError("--min-separation must be >= 1")
        if self.bootstrap_samples < 2:
            raise SeqDanceError("--bootstrap-samples must be >= 2")


@dataclass
class ProteinArrays:
    """One protein's predictions and targets, residues only (no special tokens)."""

    name: str
    sequence: str
    kind: str  # md or nma
    pred_res: np.ndarray  # (L, 50)
    pred_pair: np.ndarray  # (L, L, 13)
    true_res: np.ndarray  # (L, 50), -1 missing
    true_pair: np.ndarray  # (L, L, 13), -1 missing


@dataclass
class DynamicsResult:
    """Per-protein rows, pooled rows, the summary and the arrays behind them."""

    rows: pd.DataFrame  # protein, property, metric, value, n
    pooled: pd.DataFrame  # property, metric, value, n
    summary: pd.DataFrame  # property, metric, bin, median, se, n_proteins
    proteins: list[ProteinArrays]
    identity: pd.DataFrame | None = None  # name, identity, coverage, closest, in_training
    notes: list[str] = field(default_factory=list)


def _columns(name: str, kind: str) -> list[int]:
    """Output columns of a property (a feature or one channel) of a residue/pair output."""
    channels = RESIDUE_CHANNELS if kind == "residue" else PAIR_CHANNELS
    if name in FEATURE_BY_NAME:
        return list(range(FEATURE_BY_NAME[name].start, FEATURE_BY_NAME[name].stop))
    return [channels.index(name)]


def residue_values(p: ProteinArrays, prop: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, MD) values of a residue property where the MD value exists, flattened."""
    cols = _columns(prop, "residue")
    pred, true = p.pred_res[:, cols], p.true_res[:, cols]  # (L, C)
    valid = true != MISSING
    return pred[valid].astype(np.float64), true[valid].astype(np.float64)


def map_values(p: ProteinArrays, prop: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, MD) values of a pair map over the pairs i < j where the MD value exists."""
    cols = _columns(prop, "pair")
    i, j = upper_pairs(len(p.sequence), 1)
    pred, true = p.pred_pair[i, j][:, cols], p.true_pair[i, j][:, cols]  # (P, C)
    valid = true != MISSING
    return pred[valid].astype(np.float64), true[valid].astype(np.float64)


def protein_rows(p: ProteinArrays, options: DynamicsOptions) -> list[dict]:
    """Every metric of one protein that its data measures (long rows of :data:`ROW_COLUMNS`)."""
    rows: list[dict] = []

    def add(prop: str, metric: str, value: float, n: int) -> None:
        rows.append({"protein": p.name, "property": prop, "metric": metric, "value": value,
                     "n": n})  # fmt: skip

    for prop in RESIDUE_PROPERTIES:
        pred, true = residue_values(p, prop)
        if len(true):
            add(prop, "pearson", pearson_r(pred, true), len(true))
            add(prop, "spearman", spearman_r(pred, true), len(true))
    cube = options.contact_threshold ** (1.0 / 3.0)  # stored values are cube roots
    for prop in CONTACT_PROPERTIES:
        k = PAIR_CHANNELS.index(prop)
        true = p.true_pair[..., k]  # (L, L)
        valid = true != MISSING
        if valid.any():
            value = top_l_precision(p.pred_pair[..., k], valid & (true >= cube), valid,
                                    min_separation=options.min_separation)  # fmt: skip
            add(prop, "precision_top_l", value, len(p.sequence))
    for prop in MAP_PROPERTIES:
        pred, true = map_values(p, prop)
        if len(true):
            add(prop, "pearson", pearson_r(pred, true), len(true))
            add(prop, "spearman", spearman_r(pred, true), len(true))
    return rows


def pooled_rows(proteins: list[ProteinArrays]) -> pd.DataFrame:
    """Pearson and Spearman over all residues (pairs) of all proteins, per property."""
    rows = []
    for prop, values in [*((q, residue_values) for q in RESIDUE_PROPERTIES),
                         *((q, map_values) for q in MAP_PROPERTIES)]:  # fmt: skip
        parts = [values(p, prop) for p in proteins]
        pred = np.concatenate([a for a, _ in parts]) if parts else np.zeros(0)
        true = np.concatenate([b for _, b in parts]) if parts else np.zeros(0)
        if len(true):
            rows.append({"property": prop, "metric": "pearson", "value": pearson_r(pred, true),
                         "n": len(true)})  # fmt: skip
            rows.append({"property": prop, "metric": "spearman", "value": spearman_r(pred, true),
                         "n": len(true)})  # fmt: skip
    return pd.DataFrame(rows, columns=["property", "metric", "value", "n"])


def summarise_dynamics(
    rows: pd.DataFrame, bins: dict[str, str], options: DynamicsOptions
) -> pd.DataFrame:
    """Median over proteins and its bootstrap SE per property and metric, overall (``all``)
    and per leakage bin (``bins``: protein -> bin; bins without proteins are left out)."""
    out = []
    for (prop, metric), group in rows.groupby(["property", "metric"], sort=False):
        for name in ("all", *IDENTITY_BINS):
            chosen = group if name == "all" else group[group["protein"].map(bins) == name]
            values = chosen["value"].to_numpy(np.float64)
            if name != "all" and len(values) == 0:
                continue
            median, se = median_with_se(values, options.bootstrap_samples, options.seed)
            out.append({"property": prop, "metric": metric, "bin": name, "median": median,
                        "se": se, "n_proteins": int(np.isfinite(values).sum())})  # fmt: skip
    return pd.DataFrame(out, columns=["property", "metric", "bin", "median", "se", "n_proteins"])


def load_proteins(model, data_dir: str | os.PathLike, options: DynamicsOptions,
                  progress: bool = False) -> list[ProteinArrays]:  # fmt: skip
    """Predict every protein of the dataset (full length, one pass) beside its targets."""
    dataset = ProteinDataset(
        data_dir, label=options.label, config=DatasetConfig(crop_size=None, random_crop=False)
    )
    if len(dataset) == 0:
        chosen = "" if options.label is None else f" labelled {options.label!r}"
        raise SeqDanceError(f"{data_dir}: no proteins{chosen} to benchmark")
    model.eval()
    outputs = dict(iter_outputs(model, dataset.sequences, pair=True,
                                token_budget=options.token_budget, progress=progress,
                                desc="dynamics"))  # fmt: skip
    proteins = []
    for i, name in enumerate(dataset.names):
        item = dataset[i]
        inner = slice(1, item["res"].shape[0] - 1)  # drop <cls>, <eos>
        out = outputs[i]
        proteins.append(ProteinArrays(
            name=name, sequence=dataset.sequences[i], kind=dataset._kinds[i],
            pred_res=out.residue, pred_pair=out.pair,
            true_res=item["res"][inner].numpy(), true_pair=item["pair"][inner, inner].numpy(),
        ))  # fmt: skip
    return proteins


def evaluate_dynamics(
    proteins: list[ProteinArrays],
    options: DynamicsOptions,
    identity: pd.DataFrame | None = None,
) -> DynamicsResult:
    """Per-protein rows, pooled rows and the summary (per leakage bin when ``identity``)."""
    rows: list[dict] = []
    for p in proteins:
        rows.extend(protein_rows(p, options))
    table = pd.DataFrame(rows, columns=ROW_COLUMNS)
    bins: dict[str, str] = {}  # without identities: only the "all" rows
    if identity is not None:
        bins.update({n: identity_bin(v) for n, v in zip(identity["name"], identity["identity"],
                                                         strict=True)})  # fmt: skip
    summary = summarise_dynamics(table, bins, options)
    return DynamicsResult(table, pooled_rows(proteins), summary, proteins, identity)
