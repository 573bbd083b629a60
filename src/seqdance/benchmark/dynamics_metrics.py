"""Pure metric kernels of the dynamics benchmark (NumPy only, no model, no files).

Correlations of predicted against MD residue properties, precision of the top-L predicted
contacts, correlations of pair maps, and the median over proteins with a bootstrap standard
error. Every kernel returns NaN where the metric is undefined (fewer than 3 values, a
constant array, no true contact), never raises on such input.
"""

from __future__ import annotations

import numpy as np

MIN_VALUES = 3  # a correlation of fewer values is reported as NaN


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values`` (n,), ties given the mean of their ranks (as Spearman needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    stops = np.r_[starts[1:], len(values)]
    mean_rank = (starts + stops + 1) / 2.0  # mean of ranks start+1 .. stop
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, stops - starts)
    return ranks


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays (n,); NaN if n < 3 or either is constant."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"arrays of different shapes {x.shape} and {y.shape}")
    if len(x) < MIN_VALUES:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = np.sqrt(dx @ dx), np.sqrt(dy @ dy)
    if sx == 0 or sy == 0:
        return float("nan")
    return float(np.clip((dx @ dy) / (sx * sy), -1.0, 1.0))


def spearman_r(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation (Pearson of average ranks) of two 1-D arrays (n,)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"arrays of different shapes {x.shape} and {y.shape}")
    if len(x) < MIN_VALUES:
        return float("nan")
    return pearson_r(rank_average(x), rank_average(y))


def upper_pairs(n: int, min_separation: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pairs i < j with j - i >= ``min_separation``."""
    i, j = np.triu_indices(n, k=max(1, min_separation))
    return i, j


def top_l_precision(
    predicted: np.ndarray,
    true_contact: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    min_separation: int = 6,
    top: int | None = None,
) -> float:
    """Fraction of true contacts among the ``top`` (default L) highest predicted pairs.

    Parameters
    ----------
    predicted : (L, L) predicted contact strength (only the order matters).
    true_contact : (L, L) bool, the MD contact of each pair.
    valid : (L, L) bool, pairs with an MD value (default: all).
    min_separation : pairs closer than this in sequence (j - i) are left out.
    top : how many pairs to take (default L); fewer when fewer pairs qualify.

    Returns NaN when no valid pair qualifies or when no qualifying pair is a true contact.
    Ties in ``predicted`` are broken by pair order (row-major), so the result is deterministic.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    n = predicted.shape[0]
    i, j = upper_pairs(n, min_separation)
    keep = np.ones(len(i), dtype=bool) if valid is None else np.asarray(valid)[i, j]
    i, j = i[keep], j[keep]
    truth = np.asarray(true_contact, dtype=bool)[i, j]
    if len(i) == 0 or not truth.any():
        return float("nan")
    k = min(n if top is None else top, len(i))
    order = np.argsort(-predicted[i, j], kind="stable")[:k]
    return float(truth[order].mean())


def median_with_se(values: np.ndarray, samples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Median of the finite ``values`` (n,) and its bootstrap standard error.

    The SE is the standard deviation (ddof=1) of the medians of ``samples`` resamples with
    replacement, drawn by ``numpy.random.default_rng(seed)``; NaN with fewer than 2 values.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    median = float(np.median(values))
    if len(values) < 2 or samples < 2:
        return median, float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(samples, len(values)))  # (S, n)
    medians = np.median(values[draws], axis=1)  # (S,)
    return median, float(np.std(medians, ddof=1))


def identity_bin(identity: float) -> str:
    """The leakage bin of a highest sequence identity in percent (NaN: ``unknown``)."""
    if not np.isfinite(identity):
        return "unknown"
    if identity < 30:
        return "<30%"
    if identity <= 50:
        return "30-50%"
    return ">50%"


IDENTITY_BINS = ("<30%", "30-50%", ">50%", "unknown")
