"""Which assays to score: those of a path, or those of one of the paper's suites.

A path is a folder of ProteinGym-style assays (:mod:`~seqdance.benchmark.assays`), the
published mega-scale table or bioemu's ``system_info.csv``
(:mod:`~seqdance.benchmark.megascale`). The paper's suites come from their published inputs:
``megascale`` (the whole Tsuboyama table), ``designed`` (its designed domains) and
``proteingym-viral`` (ProteinGym assays whose ``taxon`` is ``Virus`` in the reference file).
Its medians of per-protein Spearman correlations (:data:`PAPER_RESULTS`) are over 412, 135
and 23 proteins (:data:`PAPER_COUNTS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from seqdance.benchmark.assays import Assay, read_proteingym_folder
from seqdance.benchmark.megascale import (
    MEGASCALE_COLUMNS,
    USED_COLUMNS,
    is_megascale,
    is_tsuboyama,
    read_megascale,
    read_tsuboyama,
)
from seqdance.errors import InputFileError, SeqDanceError

SUITES = ("megascale", "designed", "proteingym-viral")
# median per-protein Spearman in the paper (docs/scoring.md, The paper's three tables)
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "megascale": {"ESMDance": 0.46, "ESM2-35M": 0.33, "SeqDance": 0.24},
    "designed": {"ESMDance": 0.46, "ESM2-35M": 0.21, "SeqDance": 0.20},
    "proteingym-viral": {"ESMDance": 0.25, "ESM2-35M": 0.03, "SeqDance": 0.18},
}
PAPER_COUNTS = {"megascale": 412, "designed": 135, "proteingym-viral": 23}


def read_assays(path: str | os.PathLike, limit: int | None = None) -> list[Assay]:
    """Assays of a ProteinGym-style folder (sorted by name) or a mega-scale CSV file."""
    path = Path(path)
    if path.is_dir():
        return read_proteingym_folder(path, limit)
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


def viral_assays(reference: str | os.PathLike) -> set[str]:
    """``DMS_id`` s whose ``taxon`` is ``Virus`` in a ProteinGym reference file."""
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
) -> list[Assay]:
    """The assays of one paper suite from its published inputs.

    ``megascale``/``designed``: ``assays`` is the Tsuboyama table; ``proteingym-viral``: a folder
    of ProteinGym assays (X.csv + X.fasta) and ``reference`` ProteinGym's ``DMS_substitutions.csv``.
    """
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
