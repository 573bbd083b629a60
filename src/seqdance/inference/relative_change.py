"""The score's kernel: the mean relative change of a mutant's outputs from the wild type's.

For every output channel P, ``|P_mut - P_wt| / (|P_wt| + eps)`` per element, averaged over
the scored positions (pair channels: position pairs). :func:`relative_change_elements` keeps
the terms (``seqdance explain``), :func:`relative_change` averages them, and
:func:`reduce_changes` does it for the residue and the pair outputs of a batch at once.
"""

from __future__ import annotations

import numpy as np
import torch

from seqdance.inference.options import EPSILON


def relative_change(mutant: torch.Tensor, wild_type: torch.Tensor, eps: float = EPSILON):
    """Mean relative change per channel, over every axis but the first and the last.

    Parameters
    ----------
    mutant : Tensor, shape=(B, L, C) or (B, L, L, C)
        Outputs of B mutants.
    wild_type : Tensor, shape=(L, C) or (L, L, C)
        Outputs of the wild type.
    eps : float

    Returns
    -------
    Tensor, shape=(B, C)
        ``mean |mutant - wild_type| / (|wild_type| + eps)``; NaN entries (pairs that no
        window of a long sequence holds) are left out of the mean.
    """
    inv = 1.0 / (wild_type.abs() + eps)  # (L, C) or (L, L, C)
    rel = (mutant - wild_type).abs_().mul_(inv)  # (B, L, C) or (B, L, L, C)
    flat = rel.reshape(rel.shape[0], -1, rel.shape[-1])  # (B, L or L*L, C)
    if torch.isnan(flat).any():
        return torch.nanmean(flat, dim=1)
    return flat.mean(dim=1)


def relative_change_elements(
    mutant: torch.Tensor, wild_type: torch.Tensor, eps: float = EPSILON
) -> torch.Tensor:
    """The terms that :func:`relative_change` averages, one per element:
    ``|mutant - wild_type| / (|wild_type| + eps)`` (same shape as ``mutant``; NaN stays NaN).
    ``seqdance explain`` reports them per residue and residue pair."""
    return (mutant - wild_type).abs() / (wild_type.abs() + eps)


def reduce_changes(res, pair, wt_res, wt_pair, eps: float = EPSILON) -> np.ndarray:
    """Relative change per mutant and channel of residue and pair outputs.

    Parameters
    ----------
    res : Tensor, shape=(B, P, Cr) or (P, Cr), or None
    pair : Tensor, shape=(B, P, P, Cp) or (P, P, Cp), or None
    wt_res : Tensor, shape=(P, Cr), or None
    wt_pair : Tensor, shape=(P, P, Cp), or None
    eps : float

    Returns
    -------
    ndarray, shape=(B, Cr + Cp), float64
    """
    parts = []
    if res is not None:
        res = res if res.dim() == 3 else res[None]
        parts.append(relative_change(res, wt_res, eps))  # (B, Cr)
    if pair is not None:
        pair = pair if pair.dim() == 4 else pair[None]
        parts.append(relative_change(pair, wt_pair, eps))  # (B, Cp)
    return torch.cat(parts, dim=1).double().cpu().numpy()
