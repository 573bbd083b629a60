"""Training loss: per-protein masked RMSE of each loss term (docs/training.md, one update).

A *term* (``seqdance.schema.loss_terms``) is a block of output channels with one weight: every
schema feature, except that the authors' loss splits the NMA bands into six terms
(``nma_res1..3``, ``nma_pair1..3``; ``nma_bands=False`` pools them into ``nma_res``/``nma_pair``).

For every term and every protein, the RMSE over the valid elements of that term; the loss is
the weighted sum over terms of the mean of that RMSE over the batch's proteins. Which elements
are valid (``mask``):

- ``"residue"`` (the authors' ``calculate_loss``, the default): a residue (pair) is valid for
  the terms of a data source when the first channel that source stores is not -1
  (``sasa_mean``/``vdw`` for MD, ``nma_res1``/``nma_pair1`` for NMA); every channel of a valid
  residue then counts, -1 entries included (chi bins of Gly/Ala, phi of the first and psi of
  the last residue are stored as -1, so the model is pulled towards -1 there);
- ``"element"`` (ours): every element whose target is not -1, so undefined angles are left out.

Proteins without a valid element of a term are left out of that term's batch mean (the
authors' loss would be NaN for them; they never occur in their data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from seqdance.schema import MISSING, LossTerm, loss_terms

LossMask = Literal["residue", "element"]
LOSS_MASKS: tuple[str, ...] = ("residue", "element")


@dataclass
class SeqDanceTargets:
    """Training targets aligned with the model's outputs; ``-1`` marks missing elements.

    ``residue``: shape (B, T, 50); ``pair``: shape (B, T, T, 13). Either may be None.
    """

    residue: torch.Tensor | None = None
    pair: torch.Tensor | None = None


def _channel_maps(terms: tuple[LossTerm, ...], channels: int, device) -> tuple[torch.Tensor, ...]:
    """(term index of each channel, anchor channel of each channel), both shape (C,)."""
    term_of = torch.empty(channels, dtype=torch.long)
    anchor_of = torch.empty(channels, dtype=torch.long)
    for i, term in enumerate(terms):
        term_of[term.slice] = i
        anchor_of[term.slice] = term.anchor
    return term_of.to(device), anchor_of.to(device)


def valid_mask(target: torch.Tensor, terms: tuple[LossTerm, ...], mask: LossMask) -> torch.Tensor:
    """Which target elements count, shape of ``target`` (see the module docstring)."""
    if mask == "element":
        return target != MISSING
    if mask != "residue":
        raise ValueError(f"unknown loss mask {mask!r}; use one of {', '.join(LOSS_MASKS)}")
    _, anchor_of = _channel_maps(terms, target.shape[-1], target.device)
    return target.index_select(-1, anchor_of) != MISSING


def term_rmse(
    pred: torch.Tensor,
    target: torch.Tensor,
    terms: tuple[LossTerm, ...],
    mask: LossMask = "residue",
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSE per protein and term over the valid elements.

    Parameters
    ----------
    pred, target : Tensor, shape=(B, ..., C)
        Activated predictions and targets; ``target == -1`` marks missing elements.
    terms : tuple of LossTerm
        The K terms that the C channels form (``seqdance.schema.loss_terms``).
    mask : "residue" or "element"

    Returns
    -------
    rmse : Tensor, shape=(B, K)
        0 where a protein has no valid element of a term.
    valid : BoolTensor, shape=(B, K)
        Whether a protein has any valid element of a term.
    """
    batch, channels = pred.shape[0], pred.shape[-1]
    target = target.to(pred.dtype)
    ok = valid_mask(target, terms, mask)  # (B, ..., C)
    sq = torch.where(ok, (pred - target) ** 2, torch.zeros_like(pred))
    sq_sum = sq.reshape(batch, -1, channels).sum(1)  # (B, C)
    count = ok.reshape(batch, -1, channels).sum(1).to(pred.dtype)  # (B, C)
    term_of, _ = _channel_maps(terms, channels, pred.device)
    n_terms = len(terms)
    term_sq = torch.zeros(batch, n_terms, dtype=pred.dtype, device=pred.device)
    term_sq = term_sq.index_add(1, term_of, sq_sum)  # (B, K)
    term_n = torch.zeros_like(term_sq).index_add(1, term_of, count)  # (B, K)
    valid = term_n > 0
    rmse = torch.sqrt(term_sq / term_n.clamp(min=1) + torch.finfo(pred.dtype).tiny)
    return torch.where(valid, rmse, torch.zeros_like(rmse)), valid


def masked_rmse_loss(
    residue: torch.Tensor | None,
    pair: torch.Tensor | None,
    targets: SeqDanceTargets,
    weights: Mapping[str, float] | None = None,
    *,
    mask: LossMask = "residue",
    nma_bands: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum over terms of the batch-mean per-protein RMSE.

    Parameters
    ----------
    residue : Tensor, shape=(B, T, 50) or None
        Activated residue predictions.
    pair : Tensor, shape=(B, T, T, 13) or None
        Activated pair predictions.
    targets : SeqDanceTargets
    weights : mapping of term name to weight, optional
        Missing names weigh 1.
    mask : "residue" (the authors') or "element"
    nma_bands : bool
        Six NMA terms (the authors') or two pooled ones.

    Returns
    -------
    loss : Tensor, shape=()
    per_term : dict of term name to Tensor, shape=()
        Batch-mean RMSE of each term that had valid elements.
    """
    weights = weights or {}
    per_term: dict[str, torch.Tensor] = {}
    for pred, target, kind in (
        (residue, targets.residue, "residue"),
        (pair, targets.pair, "pair"),
    ):
        if pred is None or target is None:
            continue
        terms = loss_terms(kind, nma_bands)  # type: ignore[arg-type]
        rmse, valid = term_rmse(pred, target, terms, mask)
        n_valid = valid.sum(0)  # (K,)
        mean = rmse.sum(0) / n_valid.clamp(min=1)  # (K,)
        for i, term in enumerate(terms):
            if n_valid[i] > 0:
                per_term[term.name] = mean[i]
    if not per_term:
        raise ValueError("no valid target element in the batch")
    loss = sum(weights.get(name, 1.0) * value for name, value in per_term.items())
    return loss, per_term
