"""The published mega-scale stability table (Tsuboyama et al. 2023) and the paper's benchmarks.

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

The paper's medians of per-protein Spearman correlations (:data:`PAPER_RESULTS`) are over 412
proteins for the whole table; the 135 designed proteins are, as inferred here, the ``WT_name`` s
that are not PDB entries (:func:`is_designed`); the 23 viral ProteinGym assays are those whose
``taxon`` is ``Virus`` in ProteinGym's reference file (:func:`viral_assays`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

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

SUITES = ("megascale", "designed", "proteingym-viral")
# median per-protein Spearman in the paper (seqdance-facts.md section 6)
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "megascale": {"ESMDance": 0.46, "ESM2-35M": 0.33, "SeqDance": 0.24},
    "designed": {"ESMDance": 0.46, "ESM2-35M": 0.21, "SeqDance": 0.20},
    "proteingym-viral": {"ESMDance": 0.25, "ESM2-35M": 0.03, "SeqDance": 0.18},
}
PAPER_COUNTS = {"megascale": 412, "designed": 135, "proteingym-viral": 23}
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


def filter_tsuboyama(table):
    """The notebook's filtering of the raw table: one row per sequence (``aa_seq``,
    ``mut_type``, ``WT_name``, ``WT_cluster``, mean ``ddG_ML``); see the module docstring."""
    import pandas as pd

    ddg = table["ddG_ML"].astype(str).str.strip()
    keep = (ddg != "-") & ~table["mut_type"].astype(str).str.contains("ins|del", regex=True)
    table = table[keep].copy()
    table["ddG_ML"] = pd.to_numeric(table["ddG_ML"], errors="coerce")
    table = table[np.isfinite(table["ddG_ML"].to_numpy(dtype=np.float64))]
    mean = table.groupby("aa_seq", sort=False)["ddG_ML"].mean()
    first = table.sort_values("mut_type", ascending=False, kind="stable").drop_duplicates("aa_seq")
    out = first[["aa_seq", "mut_type", "WT_name", "WT_cluster"]].copy()
    out["ddG_ML"] = mean.reindex(out["aa_seq"]).to_numpy()
    return out.reset_index(drop=True)


def read_tsuboyama(path: str | os.PathLike, designed_only: bool = False) -> list:
    """One :class:`~seqdance.inference.benchmark.Assay` per ``WT_name`` (sorted), as the notebook.

    Wild types without a ``wt`` row left after filtering are skipped (they cannot be scored).
    ``designed_only`` keeps the designed domains (:func:`is_designed`).
    """
    import pandas as pd

    from seqdance.inference.benchmark import Assay

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(f"{path}: cannot read CSV ({reason})") from exc
    missing = [c for c in USED_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = filter_tsuboyama(table)
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


def viral_assays(reference: str | os.PathLike) -> set[str]:
    """``DMS_id`` s whose ``taxon`` is ``Virus`` in a ProteinGym reference file."""
    import pandas as pd

    reference = Path(reference)
    if not reference.is_file():
        raise InputFileError(f"ProteinGym reference file not found: {reference}")
    table = pd.read_csv(reference)
    for column in ("DMS_id", "taxon"):
        if column not in table.columns:
            raise InputFileError(f"{reference}: no {column!r} column (a DMS_substitutions.csv?)")
    return set(table.loc[table["taxon"] == "Virus", "DMS_id"].astype(str))


def suite_assays(
    suite: str,
    assays: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    limit: int | None = None,
) -> list:
    """The assays of one paper suite from its published inputs.

    ``megascale``/``designed``: ``assays`` is the Tsuboyama table; ``proteingym-viral``: a folder
    of ProteinGym assays (X.csv + X.fasta) and ``reference`` ProteinGym's ``DMS_substitutions.csv``.
    """
    from seqdance.errors import SeqDanceError
    from seqdance.inference.benchmark import read_assays

    if suite not in SUITES:
        raise SeqDanceError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    if suite in ("megascale", "designed"):
        if not is_tsuboyama(assays):
            raise InputFileError(
                f"--suite {suite} needs the Tsuboyama2023_Dataset2_Dataset3 table (columns "
                f"{', '.join(USED_COLUMNS)}), not {assays}"
            )
        return read_tsuboyama(assays, designed_only=suite == "designed")[:limit]
    if reference is None:
        raise SeqDanceError("--suite proteingym-viral needs --reference DMS_substitutions.csv")
    viral = viral_assays(reference)
    chosen = [a for a in read_assays(assays) if a.name in viral]
    if not chosen:
        raise InputFileError(f"{assays}: none of its assays is viral in {reference}")
    return chosen[:limit]


def paper_model(variant: str | None) -> str:
    """The paper's row for a model variant (``esmdance``/``seqdance``)."""
    return "ESMDance" if variant == "esmdance" else "SeqDance"


def compare_with_paper(suite: str, medians: list[dict], variant: str | None,
                       headline: str) -> list[dict]:  # fmt: skip
    """Rows (model, column, ours, paper, n) for our medians beside the paper's."""
    by_prop = {m["property"]: m for m in medians}
    out = []
    ours = by_prop.get(headline)
    if ours is not None:
        model = paper_model(variant)
        out.append({"model": model, "column": headline, "ours": ours["spearman"],
                    "paper": PAPER_RESULTS[suite][model], "n": ours["n_assays"]})  # fmt: skip
    for column, prop in by_prop.items():
        if column.startswith("llr_"):
            paper = PAPER_RESULTS[suite]["ESM2-35M"]
            out.append({"model": "ESM2-35M", "column": column, "ours": prop["spearman"],
                        "paper": paper, "n": prop["n_assays"]})  # fmt: skip
    return out
