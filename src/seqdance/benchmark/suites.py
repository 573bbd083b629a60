"""Which assays to score: those of a path, or those of one of the paper's suites.

A path is a folder of ProteinGym-style assays (:mod:`~seqdance.benchmark.assays`), the
published mega-scale table or bioemu's ``system_info.csv``
(:mod:`~seqdance.benchmark.megascale`). The paper's suites come from their published inputs:
``megascale`` (the whole Tsuboyama table), ``designed`` (its designed domains) and
``proteingym-viral``: ProteinGym assays whose ``taxon`` is ``Virus`` and ``seq_len <= 1022`` in
the reference file of January 2024 (v1.0/v1.1: 28 viral assays, 23 of them short enough; the
paper's 23), shipped as ``benchmark/data/proteingym_viral.csv`` with the newer release
(``--viral-release 2025-04``: 31 and 26), or in a reference file the user gives. The
``dynamics`` suite is of its own kind (:mod:`~seqdance.benchmark.dynamics`). Its medians
of per-protein Spearman correlations (:data:`PAPER_RESULTS`) are over 412, 135
and 23 proteins (:data:`PAPER_COUNTS`).
"""

from __future__ import annotations

import os
from importlib import resources
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
from seqdance.model.pretrained import HUB_MODELS

SUITES = ("megascale", "designed", "proteingym-viral")
VIRAL_RELEASES = ("2024-01", "2025-04", "reference")  # the first is the paper's
MAX_VIRAL_LENGTH = 1022  # the paper's rule: assays of longer targets are left out
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
    """``DMS_id`` s whose ``taxon`` is ``Virus`` in a ProteinGym reference file (and whose
    ``seq_len`` is at most 1,022 where the file has that column)."""
    reference = Path(reference)
    if not reference.is_file():
        raise InputFileError(f"ProteinGym reference file not found: {reference}")
    table = pd.read_csv(reference)
    for column in ("DMS_id", "taxon"):
        if column not in table.columns:
            raise InputFileError(f"{reference}: no {column!r} column (a DMS_substitutions.csv?)")
    keep = table["taxon"] == "Virus"
    if "seq_len" in table.columns:
        keep &= table["seq_len"] <= MAX_VIRAL_LENGTH
    return set(table.loc[keep, "DMS_id"].astype(str))


def released_viral_assays(release: str = "2024-01") -> list[str]:
    """The viral assays of a ProteinGym release with ``seq_len <= 1022`` (sorted), from the
    packaged table: 23 for ``2024-01`` (the paper's), 26 for ``2025-04``."""
    with resources.files("seqdance.benchmark").joinpath("data", "proteingym_viral.csv").open() as f:
        table = pd.read_csv(f)
    if release not in set(table["release"]):
        known = ", ".join(sorted(set(table["release"])))
        raise SeqDanceError(f"unknown ProteinGym release {release!r}; known: {known}")
    rows = table[(table["release"] == release) & (table["seq_len"] <= MAX_VIRAL_LENGTH)]
    return sorted(rows["DMS_id"].astype(str))


def suite_assays(
    suite: str,
    assays: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    limit: int | None = None,
    viral_release: str = "2024-01",
) -> list[Assay]:
    """The assays of one paper suite from its published inputs.

    ``megascale``/``designed``: ``assays`` is the Tsuboyama table; ``proteingym-viral``: a folder
    of ProteinGym assays (X.csv + X.fasta), the viral assays of ``viral_release`` (``2024-01``,
    ``2025-04``, or ``reference``: those of ``reference``, ProteinGym's ``DMS_substitutions.csv``).
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
    if viral_release not in VIRAL_RELEASES:
        raise SeqDanceError(
            f"unknown --viral-release {viral_release!r}; known: {', '.join(VIRAL_RELEASES)}"
        )
    if viral_release == "reference":
        if reference is None:
            raise SeqDanceError("--viral-release reference needs --reference DMS_substitutions.csv")
        viral, where = viral_assays(reference), str(reference)
    else:
        viral, where = set(released_viral_assays(viral_release)), f"release {viral_release}"
    chosen = [a for a in read_assays(assays) if a.name in viral]
    if not chosen:
        raise InputFileError(f"{assays}: none of its assays is viral in {where}")
    return chosen[:limit]


def suite_notes(suite: str, model_spec, n_scored: int, limit: int | None,
                max_variants: int | None) -> list[str]:  # fmt: skip
    """Why a suite's medians may not be comparable with the paper (empty when they are)."""
    notes = []
    if str(model_spec) not in HUB_MODELS:
        notes.append(f"model {model_spec} is not a published SeqDance/ESMDance model: "
                     "not comparable with the paper")  # fmt: skip
    if max_variants is not None:
        notes.append(f"subset: at most {max_variants} variants per assay; "
                     "not comparable with the paper")  # fmt: skip
    if n_scored != PAPER_COUNTS[suite] or limit is not None:
        notes.append(f"subset: {n_scored} of the paper's {PAPER_COUNTS[suite]} proteins; "
                     "not comparable with the paper")  # fmt: skip
    return notes


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
