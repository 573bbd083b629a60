"""Training loss: per-protein masked RMSE of each output feature (seqdance-facts.md section 4).

For every feature (a block of channels in ``seqdance.schema``) and every protein, the RMSE
over the valid elements (target != -1, element-wise) of that feature; proteins without a
valid element are left out of that feature's batch mean; the loss is the weighted sum of
the per-feature batch means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from seqdance.schema import MISSING, PAIR_FEATURES, RESIDUE_FEATURES, Feature


@dataclass
class SeqDanceTargets:
    """Training targets aligned with the model's outputs; ``-1`` marks missing elements.

    ``residue``: shape (B, T, 50); ``pair``: shape (B, T, T, 13). Either may be None.
    """

    residue: torch.Tensor | None = None
    pair: torch.Tensor | None = None


def _feature_index(features: tuple[Feature, ...], device) -> torch.Tensor:
    return torch.tensor(
        [i for i, f in enumerate(features) for _ in f.channels], dtype=torch.long, device=device
    )


def per_protein_rmse(
    pred: torch.Tensor, target: torch.Tensor, features: tuple[Feature, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSE per protein and feature over valid elements.

    Parameters
    ----------
    pred, target : Tensor, shape=(B, ..., C)
        Activated predictions and targets; ``target == -1`` marks missing elements.
    features : tuple of Feature
        The C channels grouped into F features.

    Returns
    -------
    rmse : Tensor, shape=(B, F)
        0 where a protein has no valid element of a feature.
    valid : BoolTensor, shape=(B, F)
        Whether a protein has any valid element of a feature.
    """
    batch, channels = pred.shape[0], pred.shape[-1]
    mask = target != MISSING
    sq = torch.where(mask, (pred - target.to(pred.dtype)) ** 2, torch.zeros_like(pred))
    sq_sum = sq.reshape(batch, -1, channels).sum(1)  # (B, C)
    count = mask.reshape(batch, -1, channels).sum(1).to(pred.dtype)  # (B, C)
    index = _feature_index(features, pred.device)
    n_features = len(features)
    feat_sq = torch.zeros(batch, n_features, dtype=pred.dtype, device=pred.device)
    feat_sq = feat_sq.index_add(1, index, sq_sum)  # (B, F)
    feat_n = torch.zeros_like(feat_sq).index_add(1, index, count)  # (B, F)
    valid = feat_n > 0
    rmse = torch.sqrt(feat_sq / feat_n.clamp(min=1) + torch.finfo(pred.dtype).tiny)
    return torch.where(valid, rmse, torch.zeros_like(rmse)), valid


def masked_rmse_loss(
    residue: torch.Tensor | None,
    pair: torch.Tensor | None,
    targets: SeqDanceTargets,
    weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum over features of the batch-mean per-protein RMSE.

    Parameters
    ----------
    residue : Tensor, shape=(B, T, 50) or None
        Activated residue predictions.
    pair : Tensor, shape=(B, T, T, 13) or None
        Activated pair predictions.
    targets : SeqDanceTargets
    weights : mapping of feature name to weight, optional
        Missing names weigh 1.

    Returns
    -------
    loss : Tensor, shape=()
    per_feature : dict of feature name to Tensor, shape=()
        Batch-mean RMSE of each feature that had valid elements.
    """
    weights = weights or {}
    per_feature: dict[str, torch.Tensor] = {}
    for pred, target, features in (
        (residue, targets.residue, RESIDUE_FEATURES),
        (pair, targets.pair, PAIR_FEATURES),
    ):
        if pred is None or target is None:
            continue
        rmse, valid = per_protein_rmse(pred, target, features)
        n_valid = valid.sum(0)  # (F,)
        mean = rmse.sum(0) / n_valid.clamp(min=1)  # (F,)
        for i, feature in enumerate(features):
            if n_valid[i] > 0:
                per_feature[feature.name] = mean[i]
    if not per_feature:
        raise ValueError("no valid target element in the batch")
    loss = sum(weights.get(name, 1.0) * value for name, value in per_feature.items())
    return loss, per_feature
