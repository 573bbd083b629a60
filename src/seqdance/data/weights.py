"""Per-feature, per-group loss weights from the data (the authors' recipe, facts section 4).

For each training protein and each schema feature its data measures, the *baseline RMSE* is the
RMSE of predicting every position with the protein's own mean of that feature (the standard
deviation; for multi-channel features such as ``ss`` or ``nma_pair``, the square root of the
mean over channels of the per-channel variance), computed on the targets as the model sees
them (RMSF divided by its maximum, interactions cube-rooted) over the positions where the
feature is defined (not -1). A group's baseline RMSE of a feature is the mean over its
proteins (as in the authors' ``loss_weight.ipynb``).

Weights are proportional to 1 / baseline RMSE, scaled per group so that at the baseline every
feature of a category contributes equally, and the categories contribute
residue : pair = 1 : 3 and, within pair, interactions : co-movement = 3 : 1 (a group without
interaction channels gives all of the pair share to co-movement). Each group's baseline loss
is therefore 4, so the groups also weigh equally.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.data.dataset import normalise_rmsf
from seqdance.data.store import dataset_paths, pair_key, read_index, res_key
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import (
    DATA_GROUPS,
    FEATURE_BY_NAME,
    INTERACTIONS,
    MISSING,
    PAIR_FEATURES,
    RESIDUE_FEATURES,
    Feature,
    group_of_source,
)
from seqdance.utils.io import atomic_path

WEIGHTS_FILE = "loss_weights.json"
RECIPE = "weight ~ 1/baseline RMSE; residue:pair = 1:3; interactions:co_movement = 3:1"
PAIR_TO_RESIDUE = 3.0
INTERACTIONS_TO_COMOVEMENT = 3.0


def category(feature: Feature) -> str:
    """``residue``, ``interactions`` or ``co_movement``."""
    if feature.kind == "residue":
        return "residue"
    return "interactions" if feature.name in INTERACTIONS else "co_movement"


def _features_of(kind: str) -> list[tuple[Feature, slice, bool]]:
    """(feature, stored column slice, is_residue) for every feature one data kind stores."""
    out = []
    for features, residue in ((RESIDUE_FEATURES, True), (PAIR_FEATURES, False)):
        chosen = [f for f in features if f.source == kind]
        base = chosen[0].start
        out += [(f, slice(f.start - base, f.stop - base), residue) for f in chosen]
    return out


def baseline_rmse(values: np.ndarray) -> float:
    """RMSE of predicting each channel by its mean over the defined positions.

    ``values`` (positions, C): -1 marks an undefined value (excluded per channel). For C > 1
    the per-channel variances are averaged before the square root. NaN if nothing is defined.
    """
    variances = []
    for c in range(values.shape[1]):
        column = values[:, c]
        column = column[column != MISSING]
        if len(column):
            variances.append(float(np.mean((column - column.mean()) ** 2)))
    return float(np.sqrt(np.mean(variances))) if variances else float("nan")


def protein_baselines(res: np.ndarray, pair: np.ndarray, kind: str) -> dict[str, float]:
    """Baseline RMSE of each feature of one protein's ``res`` (T, C) and ``pair`` (T, T, C)."""
    res = np.asarray(res, dtype=np.float64)
    if kind == "md":
        res = normalise_rmsf(res.copy())
    pair_flat = np.asarray(pair, dtype=np.float64).reshape(-1, pair.shape[-1])  # (T*T, C)
    out = {}
    for feature, cols, residue in _features_of(kind):
        out[feature.name] = baseline_rmse((res if residue else pair_flat)[:, cols])
    return out


def weights_from_rmse(rmse: dict[str, float]) -> dict[str, float]:
    """Loss weights of one group from its features' baseline RMSE (see module docstring)."""
    usable = {n: r for n, r in rmse.items() if np.isfinite(r) and r > 0}
    by_category: dict[str, list[str]] = {}
    for name in usable:
        by_category.setdefault(category(FEATURE_BY_NAME[name]), []).append(name)
    pair_share = PAIR_TO_RESIDUE
    if "interactions" in by_category and "co_movement" in by_category:
        ratio = INTERACTIONS_TO_COMOVEMENT
        shares = {
            "interactions": pair_share * ratio / (ratio + 1),
            "co_movement": pair_share / (ratio + 1),
        }
    else:
        shares = {"interactions": pair_share, "co_movement": pair_share}
    shares["residue"] = 1.0
    weights = {name: 0.0 for name in rmse}
    for cat, names in by_category.items():
        for name in names:
            weights[name] = shares[cat] / (len(names) * usable[name])
    return weights


@dataclass
class LossWeights:
    """Loss weights and the baseline RMSE they come from, per data group and feature."""

    weights: dict[str, dict[str, float]]  # group -> feature name -> weight
    baseline_rmse: dict[str, dict[str, float]] = field(default_factory=dict)
    n_proteins: dict[str, int] = field(default_factory=dict)
    label: str | None = "train"

    def weight(self, group: str, feature: str) -> float:
        try:
            return self.weights[group][feature]
        except KeyError:
            raise SeqDanceError(
                f"no loss weight for group {group!r}, feature {feature!r}"
            ) from None

    def to_json(self) -> dict:
        return {
            "recipe": RECIPE,
            "label": self.label,
            "groups": {
                g: {
                    "n_proteins": self.n_proteins.get(g, 0),
                    "baseline_rmse": self.baseline_rmse.get(g, {}),
                    "weights": w,
                }
                for g, w in self.weights.items()
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LossWeights:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            groups = data["groups"]
            return cls(
                weights={g: dict(v["weights"]) for g, v in groups.items()},
                baseline_rmse={g: dict(v.get("baseline_rmse", {})) for g, v in groups.items()},
                n_proteins={g: int(v.get("n_proteins", 0)) for g, v in groups.items()},
                label=data.get("label"),
            )
        except FileNotFoundError:
            raise InputFileError(f"{path}: no such loss-weights file") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputFileError(f"{path}: not a loss-weights file ({exc})") from None


def compute_loss_weights(
    root: str | os.PathLike,
    label: str | None = "train",
    max_proteins: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LossWeights:
    """Loss weights of a built dataset from its ``label`` proteins (all if None, or if no
    protein has a label). ``max_proteins`` caps the proteins read per group (random, seeded)."""
    from tqdm.auto import tqdm

    from seqdance.data.store import open_h5

    features_path, index_path = dataset_paths(root)
    index = read_index(index_path)
    if label is not None and "label" in index.columns and (index["label"] == label).any():
        index = index[index["label"] == label]
    else:
        _check_unlabelled(index, label, index_path)
        label = None
    index = index.assign(group=[group_of_source(str(s)).name for s in index["source"]])
    rng = np.random.default_rng(seed)

    result = LossWeights(weights={}, label=label)
    with open_h5(features_path) as h5:
        for group in DATA_GROUPS:
            names = list(index.loc[index["group"] == group.name, "name"])
            if not names:
                continue
            if max_proteins is not None and len(names) > max_proteins:
                names = list(rng.choice(names, size=max_proteins, replace=False))
            per_protein: dict[str, list[float]] = {}
            for name in tqdm(names, desc=group.name, unit="protein", disable=not progress):
                res, pair = h5[res_key(name)][()], h5[pair_key(name)][()]
                _check_protein(res, pair, group.source_kind, name, features_path)
                values = protein_baselines(res, pair, group.source_kind)
                for feature, value in values.items():
                    per_protein.setdefault(feature, []).append(value)
            rmse = {
                f: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                for f, v in per_protein.items()
            }
            result.baseline_rmse[group.name] = {
                f: (r if np.isfinite(r) else 0.0) for f, r in rmse.items()
            }
            result.weights[group.name] = weights_from_rmse(rmse)
            result.n_proteins[group.name] = len(names)
    if not result.weights:
        raise SeqDanceError(f"{index_path}: no proteins to compute loss weights from")
    return result


def _check_unlabelled(index, label: str | None, index_path) -> None:
    """Falling back to every protein is right only when the index labels none of them."""
    if label is None or "label" not in index.columns:
        return
    labels = {str(v) for v in index["label"].dropna() if str(v).strip()}
    if labels:
        raise SeqDanceError(
            f"{index_path}: no protein labelled {label!r} (labels: {', '.join(sorted(labels))})"
        )


def _check_protein(res, pair, kind: str, name: str, features_path) -> None:
    """Refuse data that ``seqdance dataset check`` rejects (a weight from it would be wrong)."""
    from seqdance.data.check import protein_problems

    problems = protein_problems(res, pair, None, kind)
    if problems:
        raise SeqDanceError(
            f"{features_path}: protein {name}: {problems[0]} (run `seqdance dataset check`)"
        )
