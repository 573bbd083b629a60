"""Validate a dataset folder (ours or the authors' published layout).

Checks, per protein: both datasets present, shapes (T, C) and (T, T, C) with T = L + 2 and the
channel widths of its data kind, special-token rows all -1, no NaN or infinity, and value
ranges by activation (from :mod:`seqdance.schema`): softplus/sigmoid channels >= 0, softmax
groups in [0, 1] summing to 1 where defined, correlations in [-1, 1]. Globally: the index and
the HDF5 file list the same proteins, names are unique, labels are train/test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from seqdance.data.store import (
    STORED_CHANNELS,
    dataset_paths,
    kind_of_widths,
    open_h5,
    pair_key,
    read_index,
    res_key,
    stored_names,
)
from seqdance.errors import InputFileError
from seqdance.schema import MISSING, PAIR_FEATURES, RESIDUE_FEATURES, Feature, group_of_source
from seqdance.utils.progress import progress_bar

SUM_TOLERANCE = 1e-3  # softmax groups: |sum - 1| allowed (fractions stored as float32)
RANGE_TOLERANCE = 1e-4  # correlations: allowed excess beyond [-1, 1]


@dataclass
class CheckReport:
    n_proteins: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _stored_features(kind: str, residue: bool) -> list[tuple[Feature, slice]]:
    """Schema features of one data kind with their column slice in the stored array."""
    features = RESIDUE_FEATURES if residue else PAIR_FEATURES
    chosen = [f for f in features if f.source == kind]
    base = chosen[0].start
    return [(f, slice(f.start - base, f.stop - base)) for f in chosen]


def value_problems(values: np.ndarray, kind: str, residue: bool) -> list[str]:
    """Range problems of stored features ``values`` (T, C) or (T, T, C) of one data kind."""
    problems = []
    flat = values.reshape(-1, values.shape[-1])  # (positions, C)
    for feature, cols in _stored_features(kind, residue):
        block = flat[:, cols]  # (positions, width)
        missing = block == MISSING
        defined = ~missing.any(axis=1)
        partial = missing.any(axis=1) & ~missing.all(axis=1)
        if feature.activation == "softmax" and partial.any():
            problems.append(f"{feature.name}: {int(partial.sum())} positions partly -1")
        present = block[~missing]
        if feature.activation in ("softplus", "sigmoid"):
            if (present < 0).any():
                problems.append(f"{feature.name}: negative values (min {present.min():.4g})")
        elif feature.activation == "tanh2":
            if (np.abs(present) > 1 + RANGE_TOLERANCE).any():
                worst = present[np.argmax(np.abs(present))]
                problems.append(f"{feature.name}: values outside [-1, 1] ({worst:.4g})")
        elif feature.activation == "softmax":
            rows = block[defined]
            if ((rows < 0) | (rows > 1 + RANGE_TOLERANCE)).any():
                problems.append(f"{feature.name}: fractions outside [0, 1]")
            sums = rows.sum(axis=1)
            bad = np.abs(sums - 1) > SUM_TOLERANCE
            if bad.any():
                problems.append(
                    f"{feature.name}: {int(bad.sum())} positions do not sum to 1 "
                    f"(e.g. {sums[bad][0]:.4g})"
                )
    return problems


def protein_problems(
    res: np.ndarray, pair: np.ndarray, length: int | None, kind: str | None
) -> list[str]:
    """Problems of one protein's stored arrays ``res`` (T, C_res), ``pair`` (T, T, C_pair)."""
    if res.ndim != 2 or pair.ndim != 3:
        return [f"arrays have {res.ndim} and {pair.ndim} dimensions, expected 2 and 3"]
    t = res.shape[0]
    problems = []
    if pair.shape[:2] != (t, t):
        problems.append(f"pair shape {pair.shape} does not match {t} residue rows")
        return problems
    if length is not None and t != length + 2:
        problems.append(
            f"{t} rows for a sequence of {length} residues (expected L+2 = {length + 2})"
        )
    widths_kind = kind_of_widths(res.shape[1], pair.shape[2])
    if widths_kind is None:
        return problems + [f"channel widths {res.shape[1]} / {pair.shape[2]} match no data kind"]
    if kind is not None and widths_kind != kind:
        res_w, pair_w = (len(c) for c in STORED_CHANNELS[kind])  # type: ignore[index]
        problems.append(
            f"{kind} data should have {res_w} / {pair_w} channels, "
            f"not {res.shape[1]} / {pair.shape[2]}"
        )
        return problems
    for arr, what in ((res, "residue"), (pair, "pair")):
        n_bad = int((~np.isfinite(arr)).sum())
        if n_bad:
            problems.append(f"{what} features have {n_bad} NaN/infinite values")
    if t >= 2:
        specials = np.concatenate(
            [res[[0, -1]].ravel(), pair[[0, -1]].ravel(), pair[:, [0, -1]].ravel()]
        )
        if (specials != MISSING).any():
            problems.append("special-token rows (<cls>, <eos>) are not all -1")
    finite_res = np.where(np.isfinite(res), res, MISSING)
    finite_pair = np.where(np.isfinite(pair), pair, MISSING)
    problems += [f"residue {p}" for p in value_problems(finite_res, widths_kind, residue=True)]
    problems += [f"pair {p}" for p in value_problems(finite_pair, widths_kind, residue=False)]
    return problems


def check_dataset(root: str | os.PathLike, progress: bool = False) -> CheckReport:
    """Check a dataset folder (``features.h5`` + ``index.csv``); returns every problem found."""
    features_path, index_path = dataset_paths(root)
    if not features_path.is_file():
        raise InputFileError(f"{features_path}: no such dataset file")
    index = read_index(index_path)
    report = CheckReport()
    problems = report.problems

    names = [str(n) for n in index["name"]]
    duplicated = (
        sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    )
    if duplicated:
        problems.append(f"index: duplicate names {', '.join(duplicated[:10])}")
    if "modify_seq" not in index.columns:
        problems.append("index: no modify_seq (or sequence) column")
    if "label" in index.columns:
        bad = sorted(set(index["label"]) - {"train", "test", ""})
        if bad:
            problems.append(f"index: labels {bad} are not train/test")
    sequences = dict(zip(names, index["modify_seq"], strict=True)) if "modify_seq" in index else {}
    sources = dict(zip(names, index["source"], strict=True)) if "source" in index else {}

    with open_h5(features_path) as h5:
        in_h5 = stored_names(h5)
        stored = set(in_h5)
        lone = sorted(k for k in h5.keys() if k.rsplit("_", 2)[0] not in stored)
        if lone:
            problems.append(
                f"HDF5: {len(lone)} datasets without a partner or not named "
                f"*_res/pair_feature, e.g. {lone[0]}"
            )
        missing = [n for n in dict.fromkeys(names) if n not in stored]
        if missing:
            problems.append(
                f"index lists {len(missing)} proteins missing from the HDF5 file, e.g. {missing[0]}"
            )
        extra = sorted(set(in_h5) - set(names))
        if extra:
            problems.append(
                f"HDF5 has {len(extra)} proteins missing from the index, e.g. {extra[0]}"
            )

        checked = [n for n in dict.fromkeys(names) if n in stored]
        for name in progress_bar(checked, desc="check", unit="protein", enabled=progress):
            kind = None
            source = sources.get(name)
            if source:
                try:
                    kind = group_of_source(str(source)).source_kind
                except KeyError:
                    problems.append(f"{name}: unknown source {source!r}")
            seq = sequences.get(name)
            length = len(seq) if isinstance(seq, str) and seq else None
            res, pair = h5[res_key(name)][()], h5[pair_key(name)][()]
            problems += [f"{name}: {p}" for p in protein_problems(res, pair, length, kind)]
            report.n_proteins += 1
    return report
