"""Loss weights per data group and loss term: the authors' published table, or ours from the data.

**The authors' table** (the default of ``seqdance train``): a CSV with one row per loss term
(``rmsf_nor``, ..., ``nma_pair3``; first column, unnamed, the term) and one column per data
group (``ATLAS_GPCRmd_PED_mdCATH``, ``IDRome``, ``Proteinflow``), as their ``model/utils.py``
reads it (``pd.read_csv(path, index_col=0)``). :data:`AUTHORS_WEIGHTS` ships the values the
authors printed in ``model/loss_weight.ipynb`` (ShenLab/SeqDance, git history, commit 4c48e64;
6 decimals as printed); they were tuned partly by hand from the baseline RMSE below.
:func:`read_weight_table` reads any file in that layout (the one shipped with their dataset).

**Ours** (``seqdance dataset weights``, JSON): for each training protein and each loss term
(``seqdance.schema.loss_terms``) its data measures, the *baseline RMSE* is the
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

from seqdance.data.check import protein_problems
from seqdance.data.dataset import normalise_rmsf
from seqdance.data.store import dataset_paths, open_h5, pair_key, read_index, res_key
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import (
    DATA_GROUPS,
    INTERACTIONS,
    MISSING,
    group_of_source,
    loss_term_names,
    loss_terms,
)
from seqdance.utils.io import atomic_path
from seqdance.utils.progress import progress_bar

WEIGHTS_FILE = "loss_weights.json"
AUTHORS_WEIGHTS = Path(__file__).with_name("authors_loss_weights.csv")
RECIPE = "weight ~ 1/baseline RMSE; residue:pair = 1:3; interactions:co_movement = 3:1"
PAIR_TO_RESIDUE = 3.0
INTERACTIONS_TO_COMOVEMENT = 3.0


_RESIDUE_TERMS = frozenset(loss_term_names(True)[: len(loss_terms("residue", True))]) | frozenset(
    loss_term_names(False)[: len(loss_terms("residue", False))]
)


def category(name: str) -> str:
    """``residue``, ``interactions`` or ``co_movement`` of a loss term (or feature) name."""
    if name in _RESIDUE_TERMS:
        return "residue"
    return "interactions" if name in INTERACTIONS else "co_movement"


def _terms_of(kind: str, nma_bands: bool) -> list[tuple[str, slice, bool]]:
    """(term name, stored column slice, is_residue) for every term one data kind stores."""
    out = []
    for k, residue in (("residue", True), ("pair", False)):
        chosen = [t for t in loss_terms(k, nma_bands) if t.source == kind]  # type: ignore[arg-type]
        base = chosen[0].start
        out += [(t.name, slice(t.start - base, t.stop - base), residue) for t in chosen]
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


def protein_baselines(
    res: np.ndarray, pair: np.ndarray, kind: str, nma_bands: bool = True
) -> dict[str, float]:
    """Baseline RMSE of each loss term of one protein's ``res`` (T, C) and ``pair`` (T, T, C)."""
    res = np.asarray(res, dtype=np.float64)
    if kind == "md":
        res = normalise_rmsf(res.copy())
    pair_flat = np.asarray(pair, dtype=np.float64).reshape(-1, pair.shape[-1])  # (T*T, C)
    out = {}
    for name, cols, residue in _terms_of(kind, nma_bands):
        out[name] = baseline_rmse((res if residue else pair_flat)[:, cols])
    return out


def weights_from_rmse(rmse: dict[str, float]) -> dict[str, float]:
    """Loss weights of one group from its features' baseline RMSE (see module docstring)."""
    usable = {n: r for n, r in rmse.items() if np.isfinite(r) and r > 0}
    by_category: dict[str, list[str]] = {}
    for name in usable:
        by_category.setdefault(category(name), []).append(name)
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
    nma_bands: bool = True,
) -> LossWeights:
    """Loss weights of a built dataset from its ``label`` proteins (all if None, or if no
    protein has a label). ``max_proteins`` caps the proteins read per group (random, seeded)."""
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
            for name in progress_bar(names, desc=group.name, unit="protein", enabled=progress):
                res, pair = h5[res_key(name)][()], h5[pair_key(name)][()]
                _check_protein(res, pair, group.source_kind, name, features_path)
                values = protein_baselines(res, pair, group.source_kind, nma_bands)
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


# -- the authors' table layout ----------------------------------------------------------------
def read_weight_table(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """A loss-weight CSV in the authors' layout: ``{group: {term: weight}}``.

    Rows are loss terms (first column, header ignored), columns data groups; every value must
    be a finite number.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such loss-weights file")
    try:
        table = pd.read_csv(path, index_col=0)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(f"{path}: not a loss-weights table ({reason})") from None
    if table.empty or table.shape[1] == 0:
        raise InputFileError(f"{path}: no loss-weight rows or group columns")
    try:
        values = table.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputFileError(f"{path}: loss weights must be numbers") from None
    if not np.isfinite(values).all():
        raise InputFileError(f"{path}: loss weights must be finite numbers")
    terms = [str(t).strip() for t in table.index]
    return {
        str(g).strip(): {t: float(v) for t, v in zip(terms, values[:, j], strict=True)}
        for j, g in enumerate(table.columns)
    }


def write_weight_table(weights: dict[str, dict[str, float]], path: str | os.PathLike) -> Path:
    """Write ``{group: {term: weight}}`` in the authors' layout (terms in schema order)."""
    import pandas as pd

    terms = [t for t in (*loss_term_names(True), *loss_term_names(False))
             if any(t in w for w in weights.values())]  # fmt: skip
    table = pd.DataFrame(
        {g: [w.get(t, 0.0) for t in terms] for g, w in weights.items()}, index=terms
    )
    with atomic_path(path) as tmp:
        table.to_csv(tmp)
    return Path(path)


def load_weights(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{group: {term: weight}}`` from a ``.csv`` (authors' layout) or ``.json`` (ours) file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_weight_table(path)
    return LossWeights.load(path).weights


def check_weights_cover(
    weights: dict[str, dict[str, float]], groups: dict[str, str], nma_bands: bool, where: str
) -> None:
    """Raise unless every group (``{name: data kind}``) has a weight for each of its terms."""
    problems = []
    for group, kind in groups.items():
        if group not in weights:
            problems.append(f"no column for data group {group!r}")
            continue
        names = [n for n, _, _ in _terms_of(kind, nma_bands)]
        missing = [n for n in names if n not in weights[group]]
        if missing:
            problems.append(f"{group}: no weight for {', '.join(missing)}")
    if problems:
        raise SeqDanceError(f"{where}: " + "; ".join(problems))


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
    problems = protein_problems(res, pair, None, kind)
    if problems:
        raise SeqDanceError(
            f"{features_path}: protein {name}: {problems[0]} (run `seqdance dataset check`)"
        )
