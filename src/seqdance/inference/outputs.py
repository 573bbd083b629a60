"""The model's outputs at the positions a score averages over.

Every score and every explanation starts here: the chosen channels of the residue head
(B, P, Cr) and the pair head (B, P, P, Cp) at the scored positions P, which are all
T = L + 2 tokens (the authors' notebook) or the L residues only (``residues_only``).
Three ways to get them, the same numbers in float32:

- :func:`scored_outputs`: one forward pass over equal-length sequences;
- :func:`iter_windowed_outputs`: long sequences in overlapping windows, merged as
  ``predict`` does (residues only);
- :func:`differential_scorer`: a float32 wild type and its mutants by differential
  inference (``seqdance.model.differential``) in low precision.

:func:`outputs_at_scored_positions` picks the first two by the options' window rule;
``seqdance explain`` uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from seqdance.inference.options import ScoreOptions
from seqdance.inference.predict import iter_outputs
from seqdance.model.alphabet import batch_encode, encode
from seqdance.model.differential import differential_forward, wild_type_activations
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS, resolve_properties

# (residue (B, P, Cr) or None, pair (B, P, P, Cp) or None)
Outputs = tuple[torch.Tensor | None, torch.Tensor | None]


def split_channels(properties: str | Sequence[str] | None) -> tuple[list[int], list[int]]:
    """Indices of ``properties`` in the residue head and in the pair head (schema order).

    Names are read by :func:`seqdance.schema.resolve_properties`, as the CLI reads them:
    channel or feature names, ``None`` for all 63.

    Raises
    ------
    PropertyError
        For a name that is neither an output channel nor a feature.
    """
    chosen = set(resolve_properties(properties))
    res = [i for i, c in enumerate(RESIDUE_CHANNELS) if c in chosen]
    pair = [i for i, c in enumerate(PAIR_CHANNELS) if c in chosen]
    return res, pair


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def scored_positions(length: int, residues_only: bool) -> slice:
    """The output rows a score averages over: residues ``1..L`` or all ``T = L + 2`` tokens."""
    return slice(1, length + 1) if residues_only else slice(0, length + 2)


@torch.no_grad()
def scored_outputs(model, sequences: Sequence[str], res_idx, pair_idx, autocast=None,
                   residues_only: bool = False) -> Outputs:  # fmt: skip
    """Residue (B, P, Cr) and pair (B, P, P, Cp) outputs (float32) of equal-length sequences
    at the scored positions P (all T tokens, or the L residues), None for a kind not asked."""
    ids, mask = batch_encode(sequences)
    device = model_device(model)
    # only the trunk in low precision: the heads' outputs stay float32 (see the model)
    out = model(ids.to(device), mask.to(device), pair=bool(pair_idx), trunk_autocast=autocast)
    rows = scored_positions(len(sequences[0]), residues_only)
    res = out.residue[:, rows][..., res_idx].float() if res_idx else None  # (B, P, Cr)
    pair = out.pair[:, rows, rows][..., pair_idx].float() if pair_idx else None  # (B, P, P, Cp)
    return res, pair


def iter_windowed_outputs(
    model, sequences: Sequence[str], res_idx, pair_idx, token_budget: int, window: int
) -> Iterator[tuple[int, torch.Tensor | None, torch.Tensor | None]]:
    """Like :func:`scored_outputs` for long sequences, one at a time as each completes:
    yields ``(index, residue (L, Cr) or None, pair (L, L, Cp) or None)``, windows merged
    as ``predict`` does."""
    for i, out in iter_outputs(
        model, sequences, pair=bool(pair_idx), token_budget=token_budget, window=window
    ):
        res = torch.from_numpy(out.residue[:, res_idx]) if res_idx else None
        pair = torch.from_numpy(np.ascontiguousarray(out.pair[..., pair_idx])) if pair_idx else None
        yield i, res, pair


def outputs_at_scored_positions(
    model, sequences: Sequence[str], properties: Sequence[str], options: ScoreOptions
) -> Outputs:
    """Outputs of equal-length ``sequences`` at the positions their score averages over.

    Parameters
    ----------
    model : SeqDanceModel
    sequences : sequence of str
        All as long as the first; in one forward pass, or (longer than ``options.window``)
        in windows under ``options.token_budget``.
    properties : sequence of str
        Channel names.
    options : ScoreOptions
        ``residues_only``, ``window``, ``token_budget`` and ``autocast`` are used.

    Returns
    -------
    residue : Tensor, shape=(N, P, Cr), or None
    pair : Tensor, shape=(N, P, P, Cp), or None
    """
    res_idx, pair_idx = split_channels(properties)
    if not options.windowed(len(sequences[0])):
        return scored_outputs(
            model, sequences, res_idx, pair_idx, options.autocast, options.residues_only
        )
    device = model_device(model)
    autocast = options.autocast
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        windows = iter_windowed_outputs(
            model, sequences, res_idx, pair_idx, options.token_budget, options.window
        )
        found = {i: (r, p) for i, r, p in windows}
    res = torch.stack([found[i][0] for i in range(len(sequences))]) if res_idx else None
    pair = torch.stack([found[i][1] for i in range(len(sequences))]) if pair_idx else None
    return res, pair


def all_float32(model) -> bool:
    return all(p.dtype == torch.float32 for p in model.parameters())


Forward = Callable[..., Outputs]  # forward(sequences, wild_type=False) -> Outputs


def plain_scorer(model, res_idx, pair_idx, autocast, residues_only: bool = False) -> Forward:
    """``forward(sequences, wild_type=False)`` -> (residue, pair) by :func:`scored_outputs`."""

    def forward(sequences, wild_type: bool = False):
        return scored_outputs(model, sequences, res_idx, pair_idx, autocast, residues_only)

    return forward


def differential_scorer(
    model, wild_type: str, res_idx, pair_idx, dtype, residues_only: bool = False
) -> Forward:
    """Like :func:`plain_scorer`, by differential inference: the wild type in float32 (its
    activations kept), then each batch's trunk Linears on the differences in ``dtype``."""
    device = model_device(model)
    ids = torch.tensor(encode(wild_type), dtype=torch.long, device=device)  # (T,)
    reference, wt_out = wild_type_activations(model, ids, pair=bool(pair_idx))
    rows = scored_positions(len(wild_type), residues_only)

    def select(out):
        res = out.residue[:, rows][..., res_idx] if res_idx else None  # (B, P, Cr)
        pair = out.pair[:, rows, rows][..., pair_idx] if pair_idx else None  # (B, P, P, Cp)
        return res, pair

    def forward(sequences, wild_type: bool = False):
        if wild_type:
            return select(wt_out)
        mutant_ids, _ = batch_encode(sequences)  # (B, T), unpadded: equal lengths
        out = differential_forward(
            model, reference, mutant_ids.to(device), pair=bool(pair_idx), dtype=dtype
        )
        return select(out)

    return forward
