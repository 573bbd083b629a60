"""Attention maps against pair dynamic properties (the paper's attention analysis): the
driver over the proteins of a built dataset and its output files.

The metrics of one protein (top-L ratio, Spearman, AUROC) are defined and computed in
:mod:`seqdance.analysis.attention_metrics`; here the proteins are selected from the
dataset's index, their attention maps computed in token-budget batches, and the metrics
averaged over proteins per (layer, head).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.analysis.attention_metrics import (
    PairProperty,
    attention_metrics,
    pair_properties,
    separation_pairs,
)
from seqdance.analysis.plots import attention_heatmaps
from seqdance.data.store import (
    STORED_CHANNELS,
    dataset_paths,
    kind_of_widths,
    open_h5,
    pair_key,
    read_index,
    res_key,
)
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.predict import iter_outputs
from seqdance.model.config import MAX_RESIDUES
from seqdance.utils.figures import figure_name
from seqdance.utils.io import atomic_path

LABELS = ("test", "train", "all")


# ----------------------------------------------------------------------------- the driver


@dataclass(frozen=True)
class AttentionConfig:
    """Which proteins and how they are compared."""

    label: str = "test"  # index label to keep: train, test or all
    limit: int | None = None  # first N selected proteins
    min_separation: int = 2
    auroc_threshold: float = 0.01
    token_budget: int = 2048  # tokens per forward pass (attention maps grow as T^2)
    progress: bool = False
    top_residues: bool = False  # top-L with L = residues (default: tokens, L + 2, the authors)


@dataclass
class AttentionAnalysis:
    """Per-protein metrics (wide: one column per map) and their means over proteins."""

    per_protein: pd.DataFrame  # name, kind, length, property, metric, n_pairs, l{i}_h{j}...
    summary: pd.DataFrame  # layer, head, property, metric, value, n_proteins
    num_layers: int
    num_heads: int
    proteins: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Protein:
    position: int  # row in the selected index
    name: str
    sequence: str  # cropped to the model window
    kind: str


def map_columns(num_layers: int, num_heads: int) -> list[str]:
    """Column names of the A maps, layer-major (``l0_h0, l0_h1, ...``), 0-based."""
    return [f"l{layer}_h{head}" for layer in range(num_layers) for head in range(num_heads)]


def select_proteins(
    data_dir: str | os.PathLike, config: AttentionConfig, window: int = MAX_RESIDUES
) -> tuple[Path, list[_Protein]]:
    """The dataset file and the proteins of ``config.label`` (each cropped to ``window``
    residues), checked against the stored arrays before any model runs."""
    if config.label not in LABELS:
        raise SeqDanceError(f"label must be one of {', '.join(LABELS)}, not {config.label!r}")
    h5_path, index_path = dataset_paths(data_dir)
    if not h5_path.is_file():
        raise InputFileError(f"{h5_path}: no such dataset file")
    index = read_index(index_path)
    for column in ("modify_seq", "label") if config.label != "all" else ("modify_seq",):
        if column not in index.columns:
            raise InputFileError(f"{index_path}: index has no {column!r} column")
    if config.label != "all":
        index = index[index["label"].astype(str) == config.label]
    if config.limit is not None:
        index = index.head(config.limit)
    if index.empty:
        raise SeqDanceError(f"{index_path}: no proteins with label {config.label!r}")
    proteins = []
    with open_h5(h5_path) as h5:
        for name, seq in zip(index["name"], index["modify_seq"], strict=True):
            if res_key(name) not in h5 or pair_key(name) not in h5:
                raise InputFileError(f"{h5_path}: protein {name!r} of the index is not stored")
            res, pair = h5[res_key(name)], h5[pair_key(name)]
            kind = res.attrs.get("kind") or kind_of_widths(res.shape[-1], pair.shape[-1])
            if kind not in STORED_CHANNELS:
                raise InputFileError(f"{h5_path}: protein {name!r} has unknown channel widths")
            if pair.shape[0] != len(seq) + 2:
                raise InputFileError(
                    f"{h5_path}: protein {name!r} has {pair.shape[0]} token rows but its "
                    f"sequence has {len(seq)} residues (expected {len(seq) + 2})"
                )
            proteins.append(_Protein(len(proteins), str(name), str(seq)[:window], str(kind)))
    return h5_path, proteins


def _read_properties(h5, protein: _Protein) -> dict[str, PairProperty]:
    n = len(protein.sequence)
    stored = h5[pair_key(protein.name)][1 : n + 1, 1 : n + 1]  # (n, n, C), window read only
    return pair_properties(stored, STORED_CHANNELS[protein.kind][1])


def iter_protein_metrics(
    model, data_dir: str | os.PathLike, config: AttentionConfig = AttentionConfig()
) -> Iterator[tuple[_Protein, dict[tuple[str, str], np.ndarray], dict[str, int]]]:
    """Yield ``(protein, metrics, n_pairs)`` per protein as its maps are computed.

    ``metrics`` as :func:`attention_metrics`; ``n_pairs``: compared pairs per property.
    Proteins longer than the model window are cropped to their N-terminal 1,022 residues.
    """
    h5_path, proteins = select_proteins(data_dir, config, MAX_RESIDUES)
    with open_h5(h5_path) as h5:
        for index, output in iter_outputs(
            model,
            [p.sequence for p in proteins],
            pair=False,
            attentions=True,
            token_budget=config.token_budget,
            progress=config.progress,
            desc="attention",
        ):
            protein = proteins[index]
            props = _read_properties(h5, protein)
            metrics = attention_metrics(
                output.attentions,
                props,
                min_separation=config.min_separation,
                threshold=config.auroc_threshold,
                top=len(protein.sequence) if config.top_residues else None,
            )
            rows, cols = separation_pairs(len(protein.sequence), config.min_separation)
            n_pairs = {
                name: int(np.isfinite(p.values[rows, cols]).sum()) for name, p in props.items()
            }
            yield protein, metrics, n_pairs


def summarise(per_protein: pd.DataFrame, num_layers: int, num_heads: int) -> pd.DataFrame:
    """Mean of every (map, property, metric) over the proteins where it is defined."""
    columns = map_columns(num_layers, num_heads)
    rows = []
    for (prop, metric), group in per_protein.groupby(["property", "metric"], sort=False):
        values = group[columns].to_numpy(dtype=np.float64)  # (proteins, A)
        counts = np.isfinite(values).sum(axis=0)
        sums = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        for a in range(len(columns)):
            rows.append((a // num_heads, a % num_heads, prop, metric, means[a], int(counts[a])))
    return pd.DataFrame(
        rows, columns=["layer", "head", "property", "metric", "value", "n_proteins"]
    )


def analyze_attention(
    model, data_dir: str | os.PathLike, config: AttentionConfig = AttentionConfig()
) -> AttentionAnalysis:
    """Run the attention analysis over the selected proteins of a built dataset folder."""
    num_layers, num_heads = model.num_layers, model.num_heads
    columns = map_columns(num_layers, num_heads)
    records: list[dict] = []
    done: list[_Protein] = []
    for protein, metrics, n_pairs in iter_protein_metrics(model, data_dir, config):
        done.append(protein)
        for (prop, metric), values in metrics.items():
            row = {
                "position": protein.position,
                "name": protein.name,
                "kind": protein.kind,
                "length": len(protein.sequence),
                "property": prop,
                "metric": metric,
                "n_pairs": n_pairs[prop],
            }
            row.update(zip(columns, values.tolist(), strict=True))
            records.append(row)
    # proteins come back in completion (length) order; report them in index order
    per_protein = pd.DataFrame.from_records(records).sort_values("position", kind="stable")
    per_protein = per_protein.drop(columns="position").reset_index(drop=True)
    summary = summarise(per_protein, num_layers, num_heads)
    names = [p.name for p in sorted(done, key=lambda p: p.position)]
    return AttentionAnalysis(per_protein, summary, num_layers, num_heads, names)


def write_attention_outputs(
    analysis: AttentionAnalysis, out_dir: str | os.PathLike, fmt: str = "png"
) -> list[Path]:
    """``attention_summary.csv``, ``attention_per_protein.csv``, ``attention_heatmaps.{fmt}``
    (``fmt``: png, svg or pdf)."""
    out_dir = Path(out_dir)
    paths = []
    for name, table in (
        ("attention_summary.csv", analysis.summary),
        ("attention_per_protein.csv", analysis.per_protein),
    ):
        path = out_dir / name
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        paths.append(path)
    path = out_dir / figure_name("attention_heatmaps", fmt)
    attention_heatmaps(analysis.summary, analysis.num_layers, analysis.num_heads, path)
    paths.append(path)
    return paths
