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
    ResidueMerge,
    Window,
    merge_pairs,
    plan_windows,
)
from seqdance.model.alphabet import batch_encode, check_sequence
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import save_npz
from seqdance.utils.progress import progress_bar
from seqdance.utils.tables import write_rows

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
    The merged pair maps are dense (L, L, 13): for long sequences write them in tiles with
    :func:`iter_pieces` and :class:`seqdance.inference.windows.PairMerge` instead.
    """
    parts: dict[int, _Parts] = {}
    for index, k, plan, piece in iter_pieces(
        model, sequences, pair=pair, embeddings=embeddings, attentions=attentions,
        token_budget=token_budget, window=window, overlap=overlap, progress=progress, desc=desc,
    ):  # fmt: skip
        held = parts.setdefault(index, _Parts(plan))
        held.add(k, piece)
        if k + 1 == len(plan):
            yield index, parts.pop(index).result()


def window_plan(length: int, window: int | None, overlap: int | None = None) -> list[Window]:
    """The windows :func:`iter_outputs` cuts a sequence of ``length`` residues into."""
    if window is None:  # one pass
        return [Window(0, length, length)]
    min_overlap = overlap if overlap is not None else min(DEFAULT_MIN_OVERLAP, window // 4)
    return plan_windows(length, window, min_overlap)


def iter_pieces(
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
) -> Iterator[tuple[int, int, list[Window], SequenceOutput]]:
    """Yield ``(index, k, plan, output of window k)`` as each window is predicted.

    Options as :func:`iter_outputs`. The windows of one sequence come in plan order (they
    have one width, so the length sort keeps them in order); windows are not merged.
    """
    checked = [check_sequence(f"#{i + 1}", s) for i, s in enumerate(sequences)]
    pieces: list[_Piece] = []
    plans: list[list[Window]] = []
    for index, seq in enumerate(checked):
        plan = window_plan(len(seq), window, overlap)
        plans.append(plan)
        pieces.extend(_Piece(index, w, seq[w.start : w.stop]) for w in plan)
    done = [0] * len(plans)
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
                result = SequenceOutput(
                    residue=_numpy(out.residue[row, real]),
                    pair=_numpy(out.pair[row, real, real]) if pair else None,
                    embeddings=_numpy(out.embeddings[row, real]) if embeddings else None,
                    attentions=_numpy(out.attentions[row, :, :, real, real])
                    if attentions
                    else None,
                )
                index = piece.seq_index
                plan = plans[index]
                k = done[index]
                if plan[k] != piece.window:  # cannot happen with one width per plan
                    raise RuntimeError("windows of a sequence came out of order")
                done[index] += 1
                yield index, k, plan, result
                if done[index] == len(plan):
                    bar.update(1)
            del out
    finally:
        bar.close()


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()


class _Parts:
    """One sequence's windows: residue rows and embeddings merged as they come (the running
    sum of :class:`ResidueMerge`, equal to :func:`merge_residues`), pair and attention maps
    kept for the dense merge at the end."""

    def __init__(self, plan: list[Window]) -> None:
        self.plan = plan
        self.residue = ResidueMerge(plan)
        self.embeddings = ResidueMerge(plan)
        self.pair: list[np.ndarray] = []
        self.attentions: list[np.ndarray] = []

    def add(self, k: int, piece: SequenceOutput) -> None:
        self.residue.add(k, piece.residue)
        if piece.embeddings is not None:
            self.embeddings.add(k, piece.embeddings)
        if piece.pair is not None:
            self.pair.append(piece.pair)
        if piece.attentions is not None:
            self.attentions.append(piece.attentions)

    def result(self) -> SequenceOutput:
        single = len(self.plan) == 1
        pair = attentions = None
        if self.pair:
            pair = self.pair[0] if single else merge_pairs(self.plan, self.pair)
        if self.attentions:
            attentions = (
                self.attentions[0] if single
                else merge_pairs(self.plan, self.attentions, axes=(2, 3))
            )  # fmt: skip
        return SequenceOutput(
            residue=self.residue.result(),
            pair=pair,
            embeddings=self.embeddings.result() if self.embeddings.next else None,
            attentions=attentions,
        )


def predict(model, sequences: Sequence[str], **kwargs) -> list[SequenceOutput]:
    """Outputs for ``sequences``, in input order (keyword options as :func:`iter_outputs`)."""
    results: list[SequenceOutput | None] = [None] * len(sequences)
    for index, output in iter_outputs(model, sequences, **kwargs):
        results[index] = output
    return results  # type: ignore[return-value]


# -- writers -----------------------------------------------------------------------------
def write_residue_table(path: str | os.PathLike, sequence: str, residue: np.ndarray) -> Path:
    """CSV: ``position`` (1-based), ``residue``, then the 50 residue outputs by schema name."""
    rows = (
        (pos, letter, *(f"{v:.6g}" for v in row))
        for pos, (letter, row) in enumerate(zip(sequence, residue, strict=True), start=1)
    )
    return write_rows(path, ("position", "residue", *RESIDUE_CHANNELS), rows)


def write_pair_npz(path: str | os.PathLike, pair: np.ndarray) -> Path:
    """The 13 pair outputs by schema name, each (L, L) float32."""
    save_npz(path, **{name: pair[..., i] for i, name in enumerate(PAIR_CHANNELS)})
    return Path(path)


def write_attention_npz(path: str | os.PathLike, attentions: np.ndarray) -> Path:
    """``attention``: (layers, heads, L, L) float16 attention probabilities (query, key)."""
    save_npz(path, attention=attentions.astype(np.float16))
    return Path(path)
