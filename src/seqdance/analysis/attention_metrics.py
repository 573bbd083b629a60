"""The attention analysis's metrics: attention maps of one protein against its pair properties.

Every attention map (layers x heads = A maps) of a protein is compared with each pair
property the protein has, on residue pairs with ``|i - j| > 2`` (special tokens excluded):

- ``top_l_ratio`` (all properties): mean ``|value|`` over the top pairs by attention
  divided by the mean ``|value|`` over the other pairs (``1e-8`` is added to the
  denominator, as the authors do). The number of top pairs is the number of *tokens*,
  L + 2, as in the authors' notebook (its ``length`` counts ``<cls>`` and ``<eos>``);
  ``top_residues`` takes L, the number of residues;
- ``spearman_pos`` / ``spearman_neg`` (correlation-like properties: ``corr`` and
  ``nma_pair1..3``): Spearman correlation between attention and the property over the
  pairs whose value is positive / negative;
- ``auroc`` (interaction properties: the 9 GetContacts interactions and their sum
  ``interaction_sum``): area under the ROC curve of attention as a score for
  "interaction frequency >= 0.01" against "no interaction" (frequency exactly 0); pairs
  with a frequency in (0, 0.01) are left out, as in the authors' notebook.

Interaction channels are stored as value^(1/3) and are cubed back first; stored ``-1``
marks a missing value and such pairs are left out of every metric of that property.

The kernels are vectorised over the A maps: one sort per block of maps serves every
property and metric (average ranks for ties, so the numbers equal ``scipy.stats.spearmanr``
and a Mann-Whitney AUROC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.schema import CUBE_ROOT_CHANNELS, INTERACTIONS, MISSING, PAIR_FEATURES

PropertyKind = Literal["interaction", "correlation"]
METRICS: tuple[str, ...] = ("top_l_ratio", "spearman_pos", "spearman_neg", "auroc")
METRICS_OF_KIND: dict[str, tuple[str, ...]] = {
    "interaction": ("top_l_ratio", "auroc"),
    "correlation": ("top_l_ratio", "spearman_pos", "spearman_neg"),
}
INTERACTION_SUM = "interaction_sum"  # the authors' "summed interaction frequency"


@dataclass(frozen=True)
class PairProperty:
    """One pair property of one protein: ``values`` (L, L) float64, NaN where missing."""

    name: str
    kind: PropertyKind
    values: np.ndarray


# ------------------------------------------------------------------------------ properties


def property_kind(channel: str) -> PropertyKind:
    """``correlation`` for channels in [-1, 1] (tanh2 outputs), else ``interaction``."""
    for feature in PAIR_FEATURES:
        if channel in feature.channels:
            return "correlation" if feature.activation == "tanh2" else "interaction"
    raise KeyError(f"unknown pair channel {channel!r}")


def pair_properties(stored: np.ndarray, channels: tuple[str, ...]) -> dict[str, PairProperty]:
    """Pair properties from stored pair features of one protein.

    Parameters
    ----------
    stored : ndarray, shape=(L, L, C)
        Stored pair channels, special-token rows and columns already removed; ``-1`` missing,
        interaction channels as value^(1/3).
    channels : tuple of str, length C
        Channel names in storage order (``seqdance.schema.MD_PAIR_CHANNELS`` or
        ``NMA_PAIR_CHANNELS``).

    Returns
    -------
    dict
        Name -> :class:`PairProperty`, in channel order; interaction channels cubed back.
        When all 9 interactions are present, ``interaction_sum`` (their sum; missing where
        any of them is) is added after them.
    """
    stored = np.asarray(stored, dtype=np.float64)
    if stored.ndim != 3 or stored.shape[0] != stored.shape[1] or stored.shape[2] != len(channels):
        raise SeqDanceError(
            f"pair features of shape {stored.shape} do not match {len(channels)} channels"
        )
    out: dict[str, PairProperty] = {}
    for index, name in enumerate(channels):
        raw = stored[..., index]  # (L, L)
        values = np.where(raw == MISSING, np.nan, raw)
        if name in CUBE_ROOT_CHANNELS:
            values = values**3
        out[name] = PairProperty(name, property_kind(name), values)
        if name == INTERACTIONS[-1] and all(c in out for c in INTERACTIONS):
            total = sum(out[c].values for c in INTERACTIONS)  # NaN where any is missing
            out[INTERACTION_SUM] = PairProperty(INTERACTION_SUM, "interaction", total)
    return out


# --------------------------------------------------------------------------------- kernels


def separation_pairs(length: int, min_separation: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pairs with ``|i - j| > min_separation`` (row-major)."""
    pos = np.arange(length)
    return np.nonzero(np.abs(pos[:, None] - pos[None, :]) > min_separation)


def average_ranks_sorted(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged, of rows that are already sorted ascending.

    Parameters
    ----------
    values : ndarray, shape=(A, n), each row sorted ascending

    Returns
    -------
    ndarray, shape=(A, n), float64
    """
    a, n = values.shape
    ranks = np.tile(np.arange(1, n + 1, dtype=np.float64), (a, 1))  # (A, n): no ties
    if n < 2:
        return ranks
    rows, cols = np.nonzero(values[:, 1:] == values[:, :-1])  # tied neighbours (c, c + 1)
    if len(rows) == 0:
        return ranks
    tied = rows * n + cols  # flat index of each tied pair's first element, ascending
    breaks = np.flatnonzero(np.diff(tied) != 1) + 1  # runs never span rows (gap of 2)
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(tied)]]) - 1
    first, last = tied[starts], tied[ends] + 1  # flat indices bounding each tie group
    mean_rank = (first + last) / 2.0 - rows[starts] * n + 1.0
    sizes = last - first + 1
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ranks.reshape(-1)[np.repeat(first, sizes) + offsets] = np.repeat(mean_rank, sizes)
    return ranks


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of ``x``, ``y`` (A, n); NaN for n < 2 or a constant row."""
    if x.shape[1] < 2:
        return np.full(x.shape[0], np.nan)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    return np.where(den > 0, r, np.nan)


def _rank_1d(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = average_ranks_sorted(values[order][None, :])[0]
    return ranks


def _subset_in_order(
    order: np.ndarray, ordered: np.ndarray, subset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices and attention of the ``subset`` pairs, each row in ascending order.

    ``order`` (A, N) sorts each row of the maps, ``ordered`` (A, N) holds the sorted values;
    returns two (A, n) arrays, n = number of pairs in ``subset`` (N,).
    """
    n = int(subset.sum())
    if n == len(subset):
        return order, ordered
    keep = subset[order]  # (A, N): every row keeps the same number of pairs
    rows = order.shape[0]
    return order[keep].reshape(rows, n), ordered[keep].reshape(rows, n)


def _block_metrics(
    maps: np.ndarray,
    props: list[tuple[str, PropertyKind, np.ndarray]],
    top: int,
    threshold: float,
) -> dict[tuple[str, str], np.ndarray]:
    """Metrics of a block of maps (a, N) against properties given on the same N pairs."""
    a = maps.shape[0]
    order = np.argsort(maps, axis=1, kind="stable")  # (a, N) ascending attention
    ordered = np.take_along_axis(maps, order, axis=1)  # (a, N) sorted attention
    out: dict[tuple[str, str], np.ndarray] = {}
    for name, kind, v in props:  # v: (N,), NaN = missing
        valid = np.isfinite(v)
        # top-L ratio: mean |v| of the L highest-attention pairs over the mean of the rest
        n = int(valid.sum())
        k = min(top, n)
        if n - k > 0 and k > 0:
            absv = np.where(valid, np.abs(v), 0.0)  # (N,)
            top_idx = _subset_in_order(order, ordered, valid)[0][:, n - k :]  # (a, k)
            top_sum = absv[top_idx].sum(axis=1)
            rest_mean = (absv.sum() - top_sum) / (n - k)
            out[(name, "top_l_ratio")] = (top_sum / k) / (rest_mean + 1e-8)
        else:
            out[(name, "top_l_ratio")] = np.full(a, np.nan)
        if kind == "correlation":
            for metric, subset in (
                ("spearman_pos", valid & (v > 0)),
                ("spearman_neg", valid & (v < 0)),
            ):
                idx, att = _subset_in_order(order, ordered, subset)  # (a, n_sub) each
                value_ranks = np.zeros(len(v))
                value_ranks[subset] = _rank_1d(v[subset])
                out[(name, metric)] = _row_pearson(average_ranks_sorted(att), value_ranks[idx])
        else:
            positive = valid & (v >= threshold) & (v > 0)
            subset = positive | (valid & (v == 0))
            n_pos, n_neg = int(positive.sum()), int((subset & ~positive).sum())
            if n_pos == 0 or n_neg == 0:
                out[(name, "auroc")] = np.full(a, np.nan)
                continue
            idx, att = _subset_in_order(order, ordered, subset)
            ranks = average_ranks_sorted(att)  # (a, n_sub)
            u = np.where(positive[idx], ranks, 0.0).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
            out[(name, "auroc")] = u / (n_pos * n_neg)
    return out


def attention_metrics(
    attention: np.ndarray,
    properties: Mapping[str, PairProperty],
    *,
    min_separation: int = 2,
    top: int | None = None,
    threshold: float = 0.01,
    block_elements: int = 1 << 24,
) -> dict[tuple[str, str], np.ndarray]:
    """Compare A attention maps of one protein with its pair properties.

    Parameters
    ----------
    attention : ndarray, shape=(A, L, L) or (layers, heads, L, L)
        Attention probabilities (query row, key column), special tokens removed.
    properties : mapping name -> PairProperty with ``values`` of shape (L, L)
    min_separation : pairs with ``|i - j| > min_separation`` are compared
    top : number of top-attention pairs for ``top_l_ratio`` (default L + 2, the number of
        tokens, as the authors)
    threshold : interaction frequency at or above which a pair is a positive for ``auroc``
    block_elements : maps are processed in blocks of about this many (map, pair) elements

    Returns
    -------
    dict
        ``(property, metric) -> ndarray of shape (A,)`` (maps flattened layer-major), for
        the metrics of each property's kind (:data:`METRICS_OF_KIND`); NaN where undefined
        (too few pairs, a constant map, no positives or no negatives).
    """
    attention = np.asarray(attention)
    length = attention.shape[-1]
    maps_all = attention.reshape(-1, length * length)  # (A, L*L)
    for prop in properties.values():
        if prop.values.shape != (length, length):
            raise SeqDanceError(
                f"property {prop.name}: shape {prop.values.shape} does not match attention "
                f"maps of {length} residues"
            )
    rows, cols = separation_pairs(length, min_separation)
    flat = rows * length + cols  # (N0,)
    values = {name: p.values.reshape(-1)[flat] for name, p in properties.items()}
    used = np.zeros(len(flat), dtype=bool)
    for v in values.values():
        used |= np.isfinite(v)
    flat = flat[used]  # pairs that at least one property measures, (N,)
    props = [(name, properties[name].kind, v[used]) for name, v in values.items()]
    n_maps = maps_all.shape[0]
    out: dict[tuple[str, str], np.ndarray] = {
        (name, metric): np.full(n_maps, np.nan)
        for name, kind, _ in props
        for metric in METRICS_OF_KIND[kind]
    }
    if len(flat) == 0:
        return out
    step = max(1, block_elements // len(flat))
    for start in range(0, n_maps, step):
        block = maps_all[start : start + step][:, flat]  # (a, N)
        for key, value in _block_metrics(block, props, top or length + 2, threshold).items():
            out[key][start : start + step] = value
    return out
