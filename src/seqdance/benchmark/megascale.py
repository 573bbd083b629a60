"""The mega-scale stability tables (Tsuboyama et al. 2023): the published table and bioemu's.

``Tsuboyama2023_Dataset2_Dataset3_20230416.csv`` (Zenodo record 7992926, folder
``Processed_K50_dG_datasets``) has 37 columns, :data:`TSUBOYAMA_COLUMNS`. The authors' notebook
(``zero_shot_mutation.ipynb``) reads it as follows, and so does :func:`read_tsuboyama`:

1. drop the rows whose ``ddG_ML`` is ``-`` (unreliable) and those whose ``mut_type`` contains
   ``ins`` or ``del`` (insertions and deletions change the length);
2. average ``ddG_ML`` over identical ``aa_seq`` (some sequences were measured more than once);
3. keep one row per ``aa_seq``: the first after sorting by ``mut_type`` in descending order
   (a stable sort here; theirs was pandas' default, whose order among equal ``mut_type`` is
   unspecified), with its ``mut_type``, ``WT_name`` and ``WT_cluster``;
4. one assay per ``WT_name``: the wild type is its ``mut_type == "wt"`` row, which stays in the
   assay (score 0, ESM2 log-likelihood ratio 0). The target is the averaged ``ddG_ML``
   (kcal/mol; positive = stabilising, so higher = more stable, as the benchmark expects).

The 135 designed proteins of the paper are, as inferred here, the ``WT_name`` s that are not
PDB entries (:func:`is_designed`).

The other input, the mega-scale stability table as shipped by bioemu-benchmarks
(``system_info.csv``: :data:`MEGASCALE_COLUMNS`), is read by :func:`read_megascale`. There
``dg_exp`` is the folding free energy (negative = stable) and ``ddg_exp = dg_mut - dg_wt``
(positive = destabilising), so the target is ``-ddg_exp``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.benchmark.assays import Assay, read_csv_table
from seqdance.errors import InputFileError

_K50 = [f"log10_K50_{p}{s}" for p in ("t", "c") for s in ("", "_95CI_high", "_95CI_low", "_95CI")]
TSUBOYAMA_COLUMNS: tuple[str, ...] = (
    "name", "dna_seq",
    *_K50[:4], "fitting_error_t", "log10_K50unfolded_t",
    "deltaG_t", "deltaG_t_95CI_high", "deltaG_t_95CI_low", "deltaG_t_95CI",
    *_K50[4:], "fitting_error_c", "log10_K50unfolded_c",
    "deltaG_c", "deltaG_c_95CI_high", "deltaG_c_95CI_low", "deltaG_c_95CI",
    "deltaG", "deltaG_95CI_high", "deltaG_95CI_low", "deltaG_95CI",
    "aa_seq_full", "aa_seq", "mut_type", "WT_name", "WT_cluster",
    "log10_K50_trypsin_ML", "log10_K50_chymotrypsin_ML", "dG_ML", "ddG_ML",
    "Stabilizing_mut", "pair_name",
)  # fmt: skip
USED_COLUMNS = ("aa_seq", "mut_type", "WT_name", "WT_cluster", "ddG_ML")
WILD_TYPE = "wt"
MEGASCALE_COLUMNS = ("name", "name_wt", "mutant", "ddg_exp", "dg_exp", "sequence")

_PDB_ENTRY = re.compile(r"^[0-9][A-Za-z0-9]{3}(\.pdb|$|_)")


def is_tsuboyama(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a CSV file whose header has the columns the notebook uses."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        header = [c.strip() for c in handle.readline().strip().split(",")]
    return all(c in header for c in USED_COLUMNS)


def is_designed(wt_name: str) -> bool:
    """A designed domain (``EEHEE_rd4_0308.pdb``, ``r10_572_TrROS_Hall.pdb``), not a PDB entry."""
    return _PDB_ENTRY.match(wt_name) is None


def _finite_values(table, column: str, path, allowed: str = "") -> np.ndarray:
    """``table[column]`` as float64 (N,); a cell that is not a finite number is an error naming
    its line (blank cells stay NaN). ``allowed`` names what the column may hold instead."""
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    blank = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
    bad = ~np.isfinite(values) & ~blank
    if bad.any():
        i = int(np.argmax(bad))
        where = f"{path}: line {int(table.index[i]) + 2}" if path is not None else "a row"
        raise InputFileError(
            f"{where}, column {column}: {str(raw.iloc[i]).strip()!r} is not a finite number"
            f"{allowed}; fix or remove that row"
        )
    return values


def filter_tsuboyama(table, path=None):
    """The notebook's filtering of the raw table: one row per sequence (``aa_seq``,
    ``mut_type``, ``WT_name``, ``WT_cluster``, mean ``ddG_ML``); see the module docstring.

    A ``ddG_ML`` that is neither ``-`` nor a finite number (text, ``inf``, blank) is an
    error naming its line: it is never dropped silently."""
    ddg = table["ddG_ML"].astype(str).str.strip()
    keep = (ddg != "-") & ~table["mut_type"].astype(str).str.contains("ins|del", regex=True)
    table = table[keep].copy()
    values = _finite_values(table, "ddG_ML", path, " (or '-' for an unreliable value)")
    if np.isnan(values).any():
        i = int(np.argmax(np.isnan(values)))
        where = f"{path}: line {int(table.index[i]) + 2}" if path is not None else "a row"
        raise InputFileError(f"{where}, column ddG_ML: blank; write '-' for an unreliable value")
    table["ddG_ML"] = values
    mean = table.groupby("aa_seq", sort=False)["ddG_ML"].mean()
    first = table.sort_values("mut_type", ascending=False, kind="stable").drop_duplicates("aa_seq")
    out = first[["aa_seq", "mut_type", "WT_name", "WT_cluster"]].copy()
    out["ddG_ML"] = mean.reindex(out["aa_seq"]).to_numpy()
    return out.reset_index(drop=True)


def read_tsuboyama(path: str | os.PathLike, designed_only: bool = False) -> list[Assay]:
    """One :class:`~seqdance.benchmark.assays.Assay` per ``WT_name`` (sorted), as the notebook.

    Wild types without a ``wt`` row left after filtering are skipped (they cannot be scored).
    ``designed_only`` keeps the designed domains (:func:`is_designed`).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(f"{path}: cannot read CSV ({reason})") from exc
    missing = [c for c in USED_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = filter_tsuboyama(table, path)
    assays = []
    for wt_name, group in rows.groupby("WT_name", sort=True):
        if designed_only and not is_designed(str(wt_name)):
            continue
        wild = group[group["mut_type"] == WILD_TYPE]
        if len(wild) == 0:
            continue
        wild_type = str(wild["aa_seq"].iloc[0]).upper()
        group = group[group["aa_seq"].str.len() == len(wild_type)]
        assays.append(
            Assay(
                name=str(wt_name),
                wild_type=wild_type,
                target=group["ddG_ML"].to_numpy(dtype=np.float64),
                mutated_sequences=tuple(str(s).upper() for s in group["aa_seq"]),
            )
        )
    if not assays:
        raise InputFileError(f"{path}: no protein with a wild-type ('wt') row after filtering")
    return assays


def is_megascale(path: Path) -> bool:
    """Whether ``path`` is a CSV file whose header has :data:`MEGASCALE_COLUMNS`."""
    if not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    return all(c in header for c in MEGASCALE_COLUMNS)


def read_megascale(path: str | os.PathLike) -> list[Assay]:
    """One assay per wild type of a mega-scale ``system_info.csv``; target ``-ddg_exp``.

    Wild types without their own row, and mutants whose length differs from the wild type,
    are left out.
    """
    path = Path(path)
    table = read_csv_table(path)
    missing = [c for c in MEGASCALE_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}")
    table["ddg_exp"] = _finite_values(table, "ddg_exp", path)  # text or inf: an error
    is_mutant = table["mutant"].astype(str).str.lower().isin(("true", "1"))
    wild = table[~is_mutant].drop_duplicates("name").set_index("name")
    assays = []
    for name_wt, group in table[is_mutant].groupby("name_wt", sort=True):
        if name_wt not in wild.index:
            continue
        wild_type = str(wild.loc[name_wt, "sequence"]).upper()
        group = group[group["sequence"].str.len() == len(wild_type)]
        group = group[np.isfinite(group["ddg_exp"].to_numpy(dtype=np.float64))]  # blank: none
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
