"""Embeddings: the trunk's last hidden state per residue and its mean over residues."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from seqdance.inference.predict import DEFAULT_TOKEN_BUDGET, iter_outputs
from seqdance.utils.io import h5_output


def embed(
    model,
    sequences: Sequence[str],
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    progress: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, residues)`` with residues of shape (L, E), special tokens removed.

    Only the trunk runs (fused attention, no heads but the small residue head). ``window``:
    as :func:`seqdance.inference.predict.iter_outputs` (None: one pass at any length).
    """
    for index, out in iter_outputs(
        model,
        sequences,
        pair=False,
        embeddings=True,
        token_budget=token_budget,
        window=window,
        progress=progress,
        desc="embed",
    ):
        yield index, out.embeddings


def write_embeddings(path: str | os.PathLike, items: Iterable[tuple[str, np.ndarray]]) -> Path:
    """HDF5 with one group per record id: ``residues`` (L, E) and ``mean`` (E,), float32.

    The file appears only when every record has been written.
    """
    path = Path(path)
    with h5_output(path) as h5:
        for name, residues in items:
            group = h5.create_group(name)
            group.create_dataset("residues", data=residues.astype(np.float32))
            group.create_dataset(
                "mean", data=residues.mean(axis=0, dtype=np.float64).astype(np.float32)
            )
    return path
