"""Per-feature summaries of channel scores and their combinations (the authors' notebook).

The notebook summarises per *feature* (``ss``, ``chi``, ``phi``, ``psi`` as one score each:
the mean over their channels, which equals the mean over all elements; every other feature
per channel, so 23 summaries when all 63 channels are scored), and combines the summaries
across the mutants of one protein: raw and quantile-normalised mean, max, weighted mean and
geometric mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqdance.errors import SeqDanceError
from seqdance.schema import (
    PAIR_CHANNELS,
    PAIR_FEATURES,
    RESIDUE_CHANNELS,
    RESIDUE_FEATURES,
    resolve_properties,
)

COMBINE_EPS = 1e-8  # authors' guard in weights and logarithms
COMBINATIONS = ("mean", "max", "weighted_mean", "geometric_mean")


def ordered_channels(properties: str | Sequence[str] | None) -> tuple[str, ...]:
    """``properties`` in output order: residue channels, then pair channels (schema order).

    Names are read by :func:`seqdance.schema.resolve_properties` (feature names expand to
    their channels, ``None`` is all 63); an unknown name raises its one-line error.
    """
    chosen = set(resolve_properties(properties))
    return tuple(c for c in RESIDUE_CHANNELS + PAIR_CHANNELS if c in chosen)


def quantile_normalize(values: np.ndarray) -> np.ndarray:
    """Give every column the same distribution: the mean of the sorted columns.

    Parameters
    ----------
    values : ndarray, shape=(N, F)
        N mutants, F scores.

    Returns
    -------
    ndarray, shape=(N, F)
        Entry (n, f) is the mean over columns of the r-th smallest value, r the rank of
        ``values[n, f]`` in column f (ties ranked in row order).
    """
    values = np.asarray(values, dtype=np.float64)
    ranks = np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0, kind="stable")
    rank_means = np.sort(values, axis=0).mean(axis=1)  # (N,)
    return rank_means[ranks]


def combine(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, max, weighted mean (weights = value / row sum) and geometric mean per row.

    Parameters
    ----------
    values : ndarray, shape=(N, F)

    Returns
    -------
    dict of name -> ndarray, shape=(N,)
    """
    shifted = values + COMBINE_EPS
    weights = shifted / shifted.sum(axis=1, keepdims=True)  # (N, F)
    return {
        "mean": values.mean(axis=1),
        "max": values.max(axis=1),
        "weighted_mean": (values * weights).sum(axis=1),
        "geometric_mean": np.exp(np.log(shifted).mean(axis=1)),
    }


@dataclass(frozen=True)
class Summary:
    """One per-feature summary column: the mean of ``channels``' scores."""

    name: str
    channels: tuple[str, ...]


def summaries_for(channels: Sequence[str]) -> tuple[Summary, ...]:
    """The authors' per-feature summaries that ``channels`` cover, in schema order.

    Softmax features (``ss``, ``chi``, ``phi``, ``psi``) give one summary when all their
    channels are scored; every other channel is its own summary.
    """
    chosen = set(channels)
    out: list[Summary] = []
    for feature in RESIDUE_FEATURES + PAIR_FEATURES:
        if feature.activation == "softmax" and feature.width > 1:
            if set(feature.channels) <= chosen:
                out.append(Summary(feature.name, feature.channels))
        else:
            out.extend(Summary(c, (c,)) for c in feature.channels if c in chosen)
    return tuple(out)


def score_columns(properties: Sequence[str]) -> list[str]:
    """Names of the score columns that scoring ``properties`` gives (as ``seqdance score``):
    channels, multi-channel summaries, then the combinations when there are 2+ summaries."""
    channels = ordered_channels(properties)
    summaries = summaries_for(channels)
    names = list(dict.fromkeys([*channels, *(s.name for s in summaries)]))
    if len(summaries) >= 2:
        names += [f"{p}_{c}" for p in ("raw", "norm") for c in COMBINATIONS]
    return names


@dataclass
class MutationScores:
    """Scores of N mutants of one wild type.

    channels : names of the scored channels (schema order); ``channel_scores`` (N, C).
    summaries : the per-feature summaries; ``summary_scores`` (N, S).
    combined : name -> (N,), e.g. ``norm_geometric_mean`` (empty with fewer than 2 summaries).
    """

    channels: tuple[str, ...]
    channel_scores: np.ndarray
    summaries: tuple[Summary, ...]
    summary_scores: np.ndarray
    combined: dict[str, np.ndarray] = field(default_factory=dict)

    def columns(self) -> dict[str, np.ndarray]:
        """Output columns in order: channels, multi-channel summaries, combinations."""
        cols = {name: self.channel_scores[:, i] for i, name in enumerate(self.channels)}
        for j, summary in enumerate(self.summaries):
            cols.setdefault(summary.name, self.summary_scores[:, j])
        cols.update(self.combined)
        return cols

    def frame(self, index: Sequence[str] | None = None) -> pd.DataFrame:
        """The :meth:`columns` as a table, one row per mutant (``index``: e.g. their names)."""
        table = pd.DataFrame(self.columns())
        if index is not None:
            if len(index) != len(table):
                raise SeqDanceError(f"{len(index)} row names for {len(table)} mutants")
            table.index = pd.Index(list(index), name="mutant")
        return table


def summarise_scores(
    channels: Sequence[str], channel_scores: np.ndarray, *, combinations: bool = True
) -> MutationScores:
    """Per-feature summaries and, with 2 or more summaries, their combinations.

    Combinations (authors' notebook): ``raw_*`` over the summaries as they are,
    ``norm_*`` over the summaries quantile-normalised across the N mutants; each of
    mean, max, weighted mean and geometric mean.

    Parameters
    ----------
    channels : sequence of str
        The C scored channels, in the order of ``channel_scores``' columns.
    channel_scores : ndarray, shape=(N, C)
    """
    channels = tuple(channels)
    col = {c: i for i, c in enumerate(channels)}
    summaries = summaries_for(channels)
    summary_scores = np.stack(
        [channel_scores[:, [col[c] for c in s.channels]].mean(axis=1) for s in summaries], axis=1
    )  # (N, S)
    combined: dict[str, np.ndarray] = {}
    if combinations and len(summaries) >= 2 and len(channel_scores) > 0:
        for prefix, values in (
            ("raw", summary_scores),
            ("norm", quantile_normalize(summary_scores)),
        ):
            for name, value in combine(values).items():
                combined[f"{prefix}_{name}"] = value
    return MutationScores(channels, channel_scores, summaries, summary_scores, combined)
