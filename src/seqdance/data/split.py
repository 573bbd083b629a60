"""Train/test split by sequence clusters (MMseqs2), as the authors: 50% identity, 95/5;
optionally a ``valid`` set of whole clusters too (early stopping while fine-tuning).

Sequences are clustered with ``mmseqs easy-cluster`` (``--min-seq-id 0.5``, coverage 0.8);
whole clusters are then drawn into the test set in a seeded random order until it holds the
requested fraction of proteins, so that no test protein has a training protein of >= 50%
identity in its cluster. The same index, options and MMseqs2 version give the same split.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.data.store import dataset_paths, read_index, write_index
from seqdance.errors import SeqDanceError

INSTALL_HINT = (
    "install MMseqs2 and put `mmseqs` on PATH: `apt-get install mmseqs2` (Debian/Ubuntu), "
    "`conda install -c bioconda mmseqs2`, or a static binary from "
    "https://github.com/soedinglab/MMseqs2/releases"
)


@dataclass(frozen=True)
class SplitConfig:
    min_seq_id: float = 0.5  # sequence identity threshold of a cluster
    coverage: float = 0.8  # mmseqs -c
    test_fraction: float = 0.05
    seed: int = 0
    threads: int = 1
    mmseqs: str = "mmseqs"  # binary name or path
    valid_fraction: float = 0.0  # clusters labelled ``valid`` (early stopping), after test


def find_mmseqs(binary: str = "mmseqs") -> str:
    path = shutil.which(binary)
    if path is None:
        raise SeqDanceError(f"MMseqs2 binary {binary!r} not found; {INSTALL_HINT}")
    return path


def cluster_sequences(
    sequences: dict[str, str], config: SplitConfig | None = None
) -> dict[str, str]:
    """Cluster sequences with MMseqs2; returns ``name -> name of its cluster representative``."""
    config = config or SplitConfig()
    binary = find_mmseqs(config.mmseqs)
    names = list(sequences)
    with tempfile.TemporaryDirectory(prefix="seqdance-mmseqs-") as tmp:
        tmp_path = Path(tmp)
        fasta = tmp_path / "input.fasta"
        # numeric headers: protein names may hold spaces or characters MMseqs2 would cut
        fasta.write_text("".join(f">{i}\n{sequences[n]}\n" for i, n in enumerate(names)))
        command = [
            binary, "easy-cluster", str(fasta), str(tmp_path / "out"), str(tmp_path / "work"),
            "--min-seq-id", str(config.min_seq_id), "-c", str(config.coverage),
            "--threads", str(config.threads), "-v", "1",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split()[-30:])
            raise SeqDanceError(f"mmseqs easy-cluster failed (exit {done.returncode}): {tail}")
        table = pd.read_csv(tmp_path / "out_cluster.tsv", sep="\t", header=None, dtype=int)
    clusters = {names[member]: names[rep] for rep, member in zip(table[0], table[1], strict=True)}
    missing = [n for n in names if n not in clusters]
    if missing:
        raise SeqDanceError(f"mmseqs left {len(missing)} sequences unclustered, e.g. {missing[0]}")
    return clusters


def assign_split(
    clusters: dict[str, str], test_fraction: float = 0.05, seed: int = 0,
    valid_fraction: float = 0.0,
) -> dict[str, str]:  # fmt: skip
    """``name -> train|test|valid``: whole clusters go to test, in seeded random order, until
    ``ceil(test_fraction * n)`` proteins are test, then the next clusters to ``valid`` until
    ``ceil(valid_fraction * n)`` are (at least one cluster stays train). The test proteins are
    the same whatever ``valid_fraction``."""
    if not 0 <= test_fraction < 1 or not 0 <= valid_fraction < 1:
        raise SeqDanceError(
            f"test and valid fractions must be in [0, 1), not {test_fraction}, {valid_fraction}"
        )
    members: dict[str, list[str]] = {}
    for name, rep in clusters.items():
        members.setdefault(rep, []).append(name)
    reps = sorted(members)  # a fixed order before shuffling: independent of input order
    order = list(np.random.default_rng(seed).permutation(len(reps)))[:-1]  # one stays train
    labels = dict.fromkeys(clusters, "train")
    for label, fraction in (("test", test_fraction), ("valid", valid_fraction)):
        target = math.ceil(fraction * len(clusters))
        n_drawn = 0
        while order and n_drawn < target:
            for name in members[reps[order.pop(0)]]:
                labels[name] = label
                n_drawn += 1
    return labels


def split_index(index: pd.DataFrame, config: SplitConfig | None = None) -> pd.DataFrame:
    """Index with ``cluster`` and ``label`` columns set from MMseqs2 clusters."""
    config = config or SplitConfig()
    column = "modify_seq" if "modify_seq" in index.columns else "sequence"
    if column not in index.columns:
        raise SeqDanceError("index has no modify_seq or sequence column")
    sequences = dict(zip(index["name"].astype(str), index[column].astype(str), strict=True))
    clusters = cluster_sequences(sequences, config)
    labels = assign_split(clusters, config.test_fraction, config.seed, config.valid_fraction)
    out = index.copy()
    out["label"] = [labels[str(n)] for n in out["name"]]
    out["cluster"] = [clusters[str(n)] for n in out["name"]]
    return out


def split_dataset(
    root: str | os.PathLike, config: SplitConfig | None = None, out: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Split a built dataset: rewrite ``index.csv`` (or write ``out``) with labels, clusters."""
    _, index_path = dataset_paths(root)
    index = split_index(read_index(index_path), config)
    write_index(out or index_path, index)
    return index
