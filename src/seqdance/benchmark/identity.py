"""Leakage: each benchmark protein's highest sequence identity to a model's training sequences.

``mmseqs easy-search`` aligns every benchmark sequence against the training FASTA; a protein's
identity is the highest ``fident`` (percent of identical aligned residues) over its hits, with
that hit's query coverage. A protein without any hit (E-value above MMseqs2's default 1e-3,
the case of unrelated sequences) gets identity 0. A protein is *in the training set* when
a training sequence matches it at 100 % identity over at least 95 % of its length.

The training FASTA is the one the user gives or ``train_sequences.fasta`` in the model folder.
The published SeqDance and ESMDance weights ship none; they were trained on all of ATLAS (and
the other sources of their dataset), so every ATLAS protein is in their training set.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seqdance.data.split import find_mmseqs
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.fasta import read_fasta
from seqdance.model.pretrained import HUB_MODELS

TRAIN_FASTA = "train_sequences.fasta"  # beside config.json in a model folder
IN_TRAINING_COVERAGE = 0.95
PUBLISHED_NOTE = (
    "the published SeqDance/ESMDance weights were trained on all of ATLAS (with GPCRmd, PED, "
    "IDRome and ProteinFlow): every ATLAS protein is in their training set"
)


@dataclass(frozen=True)
class IdentityOptions:
    """How MMseqs2 runs (one thread by default: the same input gives the same hits)."""

    threads: int = 1
    sensitivity: float = 7.5  # mmseqs -s: the most sensitive prefilter
    mmseqs: str = "mmseqs"


def is_published(spec: str | os.PathLike | None) -> bool:
    """Whether ``--model`` names the published weights (a hub id of ours)."""
    return spec is not None and str(spec) in HUB_MODELS


def training_fasta(model_spec: str | os.PathLike | None, given: str | os.PathLike | None):
    """The training FASTA to search: ``given``, else the model folder's, else None."""
    if given is not None:
        given = Path(given)
        if not given.is_file():
            raise InputFileError(f"--train-fasta {given}: no such file")
        return given
    if model_spec is not None and Path(model_spec).is_dir():
        beside = Path(model_spec) / TRAIN_FASTA
        if beside.is_file():
            return beside
    return None


def highest_identity(
    queries: dict[str, str],
    train_fasta: str | os.PathLike,
    options: IdentityOptions | None = None,
) -> pd.DataFrame:
    """Highest identity of every query to the training FASTA.

    Parameters
    ----------
    queries : name -> sequence of the benchmark proteins.
    train_fasta : the model's training sequences.

    Returns
    -------
    DataFrame, one row per query in input order: ``name, identity`` (percent, 0 without a
    hit), ``coverage`` (query coverage of that hit, 0 without), ``closest`` (the training
    record's id, '' without) and ``in_training`` (bool).
    """
    options = options or IdentityOptions()
    binary = find_mmseqs(options.mmseqs)
    names = list(queries)
    train = read_fasta(train_fasta)
    if not train:
        raise InputFileError(f"{train_fasta}: no sequences")
    with tempfile.TemporaryDirectory(prefix="seqdance-identity-") as tmp:
        tmp_path = Path(tmp)
        query_file, target_file = tmp_path / "query.fasta", tmp_path / "train.fasta"
        # numeric headers: names may hold spaces or characters MMseqs2 would cut
        query_file.write_text("".join(f">{i}\n{queries[n]}\n" for i, n in enumerate(names)))
        target_file.write_text("".join(f">{i}\n{r.sequence}\n" for i, r in enumerate(train)))
        result = tmp_path / "hits.m8"
        command = [
            binary, "easy-search", str(query_file), str(target_file), str(result),
            str(tmp_path / "work"), "--format-output", "query,target,fident,qcov",
            "-s", str(options.sensitivity), "--threads", str(options.threads), "-v", "1",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split()[-30:])
            raise SeqDanceError(f"mmseqs easy-search failed (exit {done.returncode}): {tail}")
        text = result.read_text() if result.is_file() else ""
    best: dict[int, tuple[float, float, int]] = {}
    for line in text.splitlines():
        q, t, fident, qcov = line.split("\t")
        key = (float(fident), float(qcov), -int(t))  # ties: more coverage, then first record
        if int(q) not in best or key > best[int(q)]:
            best[int(q)] = key
    rows = []
    for i, name in enumerate(names):
        fident, qcov, neg_t = best.get(i, (0.0, 0.0, 1))
        rows.append({
            "name": name,
            "identity": round(100.0 * fident, 1),
            "coverage": qcov,
            "closest": train[-neg_t].id if i in best else "",
            "in_training": fident >= 1.0 and qcov >= IN_TRAINING_COVERAGE,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["name", "identity", "coverage", "closest", "in_training"])
