"""Evaluate a model on a dataset split, as the authors evaluated checkpoints.

Every protein of the split (default ``test``) is read once with an N-terminal crop (default
1,024 tokens), predicted, and scored with the training loss's per-protein masked RMSE of each
loss term (same mask and NMA terms as the loss; default the authors'). The groups are those of
the authors' evaluation script (:data:`seqdance.schema.DATA_GROUPS`: its MD group includes
mdCATH, unlike their training loader). Reported: the mean over proteins of each term's RMSE
per data group and over all groups, and per group the mean weighted loss when loss weights are
available.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from seqdance.data.dataset import DatasetConfig, ProteinDataset, collate
from seqdance.data.loss_weights import AUTHORS_WEIGHTS, load_weights
from seqdance.errors import SeqDanceError
from seqdance.model.loss import term_rmse
from seqdance.model.seqdance import load_model
from seqdance.schema import DATA_GROUPS, loss_terms
from seqdance.train.distributed import DistEnv, pick_device
from seqdance.utils.io import atomic_path
from seqdance.utils.progress import progress_bar


@dataclass(frozen=True)
class EvalConfig:
    """Which proteins and how they are read."""

    label: str | None = "test"  # None: every protein
    crop_size: int = 1024  # N-terminal window, special tokens included
    batch_size: int = 1
    clamp: float | None = None  # the authors never clip targets
    mask: str = "residue"  # the loss's mask (seqdance.model.loss)
    nma_bands: bool = True  # six NMA terms (the authors) or two pooled


@torch.no_grad()
def evaluate_model(
    model,
    data_dir: str | os.PathLike,
    config: EvalConfig | None = None,
    loss_weights: dict[str, dict[str, float]] | None = None,
    progress: bool = False,
) -> dict:
    """Per-term and per-group RMSE of ``model`` (a ``SeqDanceModel``) on a dataset split.

    Returns
    -------
    dict
        ``n_proteins`` {group: n}; ``features`` {term: mean RMSE over all proteins that
        measure it}; ``groups`` {group: {"rmse": {term: mean RMSE}, "loss": mean weighted
        loss or None}}.
    """
    config = config or EvalConfig()
    dataset = ProteinDataset(
        data_dir,
        label=config.label,
        config=DatasetConfig(crop_size=config.crop_size, random_crop=False, clamp=config.clamp),
    )
    if len(dataset) == 0:
        raise SeqDanceError(f"{data_dir}: no proteins labelled {config.label!r} to evaluate")
    device = next(model.parameters()).device
    model.eval()
    res_terms = loss_terms("residue", config.nma_bands)
    pair_terms = loss_terms("pair", config.nma_bands)
    names = [t.name for t in (*res_terms, *pair_terms)]
    result: dict = {"label": config.label, "crop_size": config.crop_size, "n_proteins": {},
                    "features": {}, "groups": {}}  # fmt: skip
    total_sum = torch.zeros(len(names), dtype=torch.float64)
    total_n = torch.zeros(len(names), dtype=torch.float64)
    bar = progress_bar(total=len(dataset), unit="protein", desc="evaluate", enabled=progress)
    for group in (g.name for g in DATA_GROUPS):
        members = [i for i, g in enumerate(dataset.groups) if g == group]
        if not members:
            continue
        rmse_sum = torch.zeros(len(names), dtype=torch.float64)
        rmse_n = torch.zeros(len(names), dtype=torch.float64)
        weight = None
        if loss_weights is not None and group in loss_weights:
            weight = torch.tensor([loss_weights[group].get(n, 0.0) for n in names],
                                  dtype=torch.float64)  # fmt: skip
        loss_sum = 0.0
        for start in range(0, len(members), config.batch_size):
            batch = collate([dataset[i] for i in members[start : start + config.batch_size]])
            out = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            res_rmse, res_ok = term_rmse(
                out.residue.float(), batch["res"].to(device), res_terms, config.mask
            )  # (B, K_res)
            pair_rmse, pair_ok = term_rmse(
                out.pair.float(), batch["pair"].to(device), pair_terms, config.mask
            )  # (B, K_pair)
            rmse = torch.cat([res_rmse, pair_rmse], 1).double().cpu()  # (B, F)
            ok = torch.cat([res_ok, pair_ok], 1).cpu()  # (B, F)
            _check_finite(rmse, ok, batch["names"], names, data_dir)
            rmse_sum += torch.where(ok, rmse, 0.0).sum(0)
            rmse_n += ok.sum(0)
            if weight is not None:
                loss_sum += float((torch.where(ok, rmse, 0.0) * weight).sum())
            bar.update(len(batch["names"]))
        total_sum += rmse_sum
        total_n += rmse_n
        result["n_proteins"][group] = len(members)
        result["groups"][group] = {
            "rmse": _means(names, rmse_sum, rmse_n),
            "loss": loss_sum / len(members) if weight is not None else None,
        }
    bar.close()
    result["features"] = _means(names, total_sum, total_n)
    return result


def _means(names: list[str], sums: torch.Tensor, counts: torch.Tensor) -> dict[str, float]:
    return {n: float(sums[i] / counts[i]) for i, n in enumerate(names) if counts[i] > 0}


def write_metrics(metrics: dict, path: str | os.PathLike) -> Path:
    """Write ``metrics`` as JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return Path(path)


def _check_finite(rmse: torch.Tensor, ok: torch.Tensor, proteins, names, data_dir) -> None:
    """A NaN/inf target (data ``dataset check`` rejects) is an error naming the protein."""
    bad = ok & ~torch.isfinite(rmse)  # (B, F)
    if bool(bad.any()):
        b, f = (int(i) for i in bad.nonzero()[0])
        raise SeqDanceError(
            f"{data_dir}: protein {proteins[b]} has non-finite {names[f]} values "
            "(run `seqdance dataset check`)"
        )


def evaluate_checkpoint(
    spec: str,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: EvalConfig,
    *,
    device: str = "auto",
    weights: str = "authors",
    progress: bool = False,
) -> dict:
    """``seqdance evaluate``: load the model ``spec`` on ``device``, evaluate it on
    ``data_dir`` and write the metrics (model and data named) to ``out``.

    ``weights``: ``authors`` (their published table), a table file, or ``none``.
    """
    net = load_model(spec, device=pick_device(device, DistEnv()))
    table = None
    if weights != "none":
        table = load_weights(AUTHORS_WEIGHTS if weights == "authors" else weights)
    metrics = evaluate_model(net, data_dir, config, table, progress=progress)
    metrics = {"model": spec, "data": str(data_dir), **metrics}
    write_metrics(metrics, out)
    return metrics
