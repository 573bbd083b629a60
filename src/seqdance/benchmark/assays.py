"""Assays: variants of one wild type with a measured target, and ProteinGym's reference file.

A ProteinGym-style assay is ``X.csv`` with a ``mutant`` column (``A12G``, ``A12G:C15D``;
optionally ``mutated_sequence``) and a score column (``DMS_score``, else ``score``; higher =
fitter; other columns are ignored, duplicate names included) next to ``X.fasta`` holding the
wild type. ``DMS_score_bin`` (1 = fit), when present, is kept for AUC and MCC; else the
reference file ``DMS_substitutions.csv`` supplies the cutoff it is derived from
(``DMS_binarization_cutoff``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.errors import InputFileError
from seqdance.inference.fasta import read_fasta

SCORE_COLUMNS = ("DMS_score", "score")
BIN_COLUMN = "DMS_score_bin"
REFERENCE_COLUMNS = ("DMS_id", "UniProt_ID", "coarse_selection_type", "DMS_binarization_cutoff")


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


# -- readers -------------------------------------------------------------------------------
def read_csv_table(path: Path, what: str | None = None):
    """A CSV (a UTF-8 byte-order mark allowed), or one line naming the file and the problem.

    With ``what`` (e.g. ``"reference file"``), a missing file is such an error too.
    """
    if what is not None and not path.is_file():
        raise InputFileError(f"{what} not found: {path}")
    try:
        return pd.read_csv(path, encoding="utf-8-sig", low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(f"{path}: cannot read CSV ({reason})") from exc


def read_proteingym_assay(csv: str | os.PathLike, fasta: str | os.PathLike | None = None) -> Assay:
    """One ProteinGym-style assay (``fasta`` defaults to the CSV's name with ``.fasta``)."""
    csv = Path(csv)
    fasta = Path(fasta) if fasta is not None else csv.with_suffix(".fasta")
    if not fasta.is_file():
        raise InputFileError(f"{csv}: no wild-type FASTA {fasta.name} next to it")
    records = read_fasta(fasta)
    if len(records) != 1:
        raise InputFileError(f"{fasta}: {len(records)} records; the wild type must be the only one")
    wild_type = records[0].sequence
    table = read_csv_table(csv)
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
        target_bin = _numeric_column(table, BIN_COLUMN, csv)  # text: an error naming the row
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
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & table[column].notna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise InputFileError(
            f"{path}: column {column}, row {row + 2}: {table[column].iloc[row]!r} is not a number"
        )
    return values


def read_proteingym_folder(path: Path, limit: int | None = None) -> list[Assay]:
    """The assays of a folder of ``X.csv`` + ``X.fasta`` pairs, sorted by name."""
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


# -- the reference file --------------------------------------------------------------------
def read_reference(path: str | os.PathLike):
    """ProteinGym's ``DMS_substitutions.csv`` indexed by ``DMS_id`` (checked columns)."""
    path = Path(path)
    table = read_csv_table(path, "reference file")
    missing = [c for c in REFERENCE_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(
            f"{path}: not a ProteinGym reference file (missing {', '.join(missing)})"
        )
    return table.drop_duplicates("DMS_id").set_index("DMS_id", drop=False)


def reference_row(reference, assay_name: str):
    """The reference row of an assay named by its ``DMS_id`` or its ``DMS_filename``
    (without ``.csv``), or None."""
    if assay_name in reference.index:
        return reference.loc[assay_name]
    if "DMS_filename" in reference.columns:
        stems = reference["DMS_filename"].astype(str).str.removesuffix(".csv")
        hit = reference[stems == assay_name]
        if len(hit):
            return hit.iloc[0]
    return None
