"""Run a model over many sequences: length-sorted batches under a token budget, long
sequences in overlapping windows; write per-residue tables and pair arrays."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqdance.inference.windows import (
    DEFAULT_MIN_OVERLAP,
    Window,
    merge_pairs,
    merge_residues,
    plan_windows,
)
from seqdance.model.alphabet import batch_encode, check_sequence
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import atomic_path, save_npz
from seqdance.utils.progress import progress_bar

DEFAULT_TOKEN_BUDGET = 4096  # tokens (padding included) per forward pass


@dataclass
class SequenceOutput:
    """Outputs for one sequence of L residues, special tokens removed (float32 arrays).

    residue: (L, 50); pair: (L, L, 13) or None; embeddings: (L, E) or None;
    attentions: (layers, heads, L, L) or None. Channels follow ``seqdance.schema``.
    """

    residue: np.ndarray
    pair: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    attentions: np.ndarray | None = None


@dataclass(frozen=True)
class _Piece:
    seq_index: int
    window: Window
    sequence: str  # the window's residues


def make_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Group indices sorted by length so that batch size x (longest + 2) <= ``token_budget``.

    A sequence longer than the budget still gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[i] + 2  # sorted: the newest is the longest
        if current and (len(current) + 1) * width > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def iter_outputs(
    model,
    sequences: Sequence[str],
    *,
    pair: bool = True,
    embeddings: bool = False,
    attentions: bool = False,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    overlap: int | None = None,
    progress: bool = False,
    desc: str = "predict",
) -> Iterator[tuple[int, SequenceOutput]]:
    """Yield ``(index, SequenceOutput)`` for every sequence, as each one completes.

    Sequences are checked, sorted by length and batched under ``token_budget``; batched
    results equal one-at-a-time results (the padding is masked). ``window`` None (the
    authors): every sequence in one pass, whatever its length (rotary positions have no
    maximum). Else sequences longer than ``window`` residues are cut into windows that
    overlap by at least ``overlap`` (default: 256, or a quarter of a window narrower than
    1,024; e.g. 1,022, ESM2's training length) and merged. With ``pair=False``
    and no attentions only the trunk (with fused attention) and the residue head run.
    """
    checked = [check_sequence(f"#{i + 1}", s) for i, s in enumerate(sequences)]
    pieces: list[_Piece] = []
    plans: list[list[Window]] = []
    for index, seq in enumerate(checked):
        if window is None:  # one pass
            plan = [Window(0, len(seq), len(seq))]
        else:
            min_overlap = overlap if overlap is not None else min(DEFAULT_MIN_OVERLAP, window // 4)
            plan = plan_windows(len(seq), window, min_overlap)
        plans.append(plan)
        pieces.extend(_Piece(index, w, seq[w.start : w.stop]) for w in plan)
    remaining = [len(p) for p in plans]
    parts: list[dict[int, SequenceOutput]] = [{} for _ in checked]
    device = next(model.parameters()).device
    bar = progress_bar(total=len(checked), desc=desc, unit="seq", enabled=progress)
    try:
        for batch in make_batches([len(p.sequence) for p in pieces], token_budget):
            ids, mask = batch_encode([pieces[i].sequence for i in batch])
            with torch.no_grad():
                out = model(
                    ids.to(device),
                    mask.to(device),
                    pair=pair,
                    return_embeddings=embeddings,
                    return_attentions=attentions,
                )
            for row, piece_index in enumerate(batch):
                piece = pieces[piece_index]
                n = len(piece.sequence)
                real = slice(1, n + 1)  # drop <cls>, <eos> and padding
                parts[piece.seq_index][piece.window.start] = SequenceOutput(
                    residue=_numpy(out.residue[row, real]),
                    pair=_numpy(out.pair[row, real, real]) if pair else None,
                    embeddings=_numpy(out.embeddings[row, real]) if embeddings else None,
                    attentions=_numpy(out.attentions[row, :, :, real, real])
                    if attentions
                    else None,
                )
                remaining[piece.seq_index] -= 1
                if remaining[piece.seq_index] == 0:
                    index = piece.seq_index
                    yield index, _merge(plans[index], parts[index])
                    parts[index] = {}
                    bar.update(1)
    finally:
        bar.close()


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


def _merge(plan: list[Window], parts: dict[int, SequenceOutput]) -> SequenceOutput:
    ordered = [parts[w.start] for w in plan]
    if len(ordered) == 1:
        return ordered[0]

    def field(name):
        return [getattr(p, name) for p in ordered]

    first = ordered[0]
    return SequenceOutput(
        residue=merge_residues(plan, field("residue")),
        pair=merge_pairs(plan, field("pair")) if first.pair is not None else None,
        embeddings=merge_residues(plan, field("embeddings"))
        if first.embeddings is not None
        else None,
        attentions=merge_pairs(plan, field("attentions"), axes=(2, 3))
        if first.attentions is not None
        else None,
    )


def predict(model, sequences: Sequence[str], **kwargs) -> list[SequenceOutput]:
    """Outputs for ``sequences``, in input order (keyword options as :func:`iter_outputs`)."""
    results: list[SequenceOutput | None] = [None] * len(sequences)
    for index, output in iter_outputs(model, sequences, **kwargs):
        results[index] = output
    return results  # type: ignore[return-value]


# -- writers -----------------------------------------------------------------------------
def write_residue_tsv(path: str | os.PathLike, sequence: str, residue: np.ndarray) -> Path:
    """``position`` (1-based), ``residue``, then the 50 residue outputs by schema name."""
    path = Path(path)
    header = "\t".join(("position", "residue", *RESIDUE_CHANNELS))
    lines = [header]
    for pos, (letter, row) in enumerate(zip(sequence, residue, strict=True), start=1):
        lines.append(f"{pos}\t{letter}\t" + "\t".join(f"{v:.6g}" for v in row))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def write_pair_npz(path: str | os.PathLike, pair: np.ndarray) -> Path:
    """The 13 pair outputs by schema name, each (L, L) float32."""
    save_npz(path, **{name: pair[..., i] for i, name in enumerate(PAIR_CHANNELS)})
    return Path(path)


def write_attention_npz(path: str | os.PathLike, attentions: np.ndarray) -> Path:
    """``attention``: (layers, heads, L, L) float16 attention probabilities (query, key)."""
    save_npz(path, attention=attentions.astype(np.float16))
    return Path(path)
