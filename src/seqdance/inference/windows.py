"""Overlapping windows for sequences longer than one forward pass takes (1,022 residues).

A long sequence is cut into the fewest windows of ``width`` residues whose neighbours
overlap by at least ``min_overlap`` residues, spread evenly from the N- to the C-terminus.
Each window is predicted on its own (with its own ``<cls>``/``<eos>``) and the windows are
merged by a weighted mean: a residue's weight in a window is its distance (in residues,
counting from 1) to the nearest *cut* edge of that window; edges that are true sequence
ends do not count, so the termini keep full weight. Residues far from a cut dominate,
and the weights fall linearly to 1 at the cuts. Pair (i, j) uses the product of the two
weights, over the windows that hold both residues; pairs that no window holds are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqdance.model.config import MAX_RESIDUES

DEFAULT_MIN_OVERLAP = 256


@dataclass(frozen=True)
class Window:
    """Residues ``start:stop`` (0-based, stop exclusive) of a sequence of ``length``."""

    start: int
    stop: int
    length: int

    def weights(self) -> np.ndarray:
        """Merge weight of each residue of the window, shape=(stop - start,)."""
        pos = np.arange(self.start, self.stop)
        big = self.stop - self.start + 1
        left = pos - self.start + 1 if self.start > 0 else np.full(pos.shape, big)
        right = self.stop - pos if self.stop < self.length else np.full(pos.shape, big)
        return np.minimum(left, right).astype(np.float64)


def plan_windows(
    length: int, width: int = MAX_RESIDUES, min_overlap: int = DEFAULT_MIN_OVERLAP
) -> list[Window]:
    """The windows that cover a sequence of ``length`` residues (one when it fits)."""
    if length <= width:
        return [Window(0, length, length)]
    if not 0 <= min_overlap < width:
        raise ValueError(f"overlap {min_overlap} must be in [0, {width})")
    count = math.ceil((length - min_overlap) / (width - min_overlap))
    starts = np.rint(np.linspace(0, length - width, count)).astype(int)
    return [Window(int(s), int(s) + width, length) for s in starts]


def merge_residues(windows: list[Window], values: list[np.ndarray]) -> np.ndarray:
    """Weighted mean of per-window residue arrays.

    Parameters
    ----------
    windows : list of Window
    values : list of ndarray, shape=(stop - start, ...) each

    Returns
    -------
    ndarray, shape=(length, ...)
    """
    if len(windows) == 1:
        return values[0]
    length = windows[0].length
    total = np.zeros((length, *values[0].shape[1:]), dtype=np.float64)
    weight = np.zeros(length, dtype=np.float64)
    for win, val in zip(windows, values, strict=True):
        w = win.weights()
        total[win.start : win.stop] += w.reshape(-1, *([1] * (val.ndim - 1))) * val
        weight[win.start : win.stop] += w
    return (total / weight.reshape(-1, *([1] * (total.ndim - 1)))).astype(values[0].dtype)


def merge_pairs(windows: list[Window], values: list[np.ndarray], axes: tuple[int, int] = (0, 1)):
    """Weighted mean of per-window pair arrays; pairs no window holds are NaN.

    Parameters
    ----------
    windows : list of Window
    values : list of ndarray
        Each has the window's residues on ``axes`` (e.g. shape=(n, n, C) with axes (0, 1),
        or (layers, heads, n, n) with axes (2, 3)).

    Returns
    -------
    ndarray, the same shape with ``length`` on ``axes``.
    """
    if len(windows) == 1:
        return values[0]
    a0, a1 = axes
    length = windows[0].length
    shape = list(values[0].shape)
    shape[a0] = shape[a1] = length
    total = np.zeros(shape, dtype=np.float32)  # can be large: (layers, heads, L, L) maps
    weight = np.zeros((length, length), dtype=np.float64)
    expand = [1] * len(shape)
    for win, val in zip(windows, values, strict=True):
        w = win.weights()
        w2 = np.outer(w, w)  # (n, n)
        index = [slice(None)] * len(shape)
        index[a0] = index[a1] = slice(win.start, win.stop)
        expand_w = expand.copy()
        expand_w[a0] = expand_w[a1] = w.size
        total[tuple(index)] += (w2.reshape(expand_w) * val).astype(np.float32)
        weight[win.start : win.stop, win.start : win.stop] += w2
    with np.errstate(invalid="ignore", divide="ignore"):
        weight[weight == 0] = np.nan
        expand_w = expand.copy()
        expand_w[a0] = expand_w[a1] = length
        return (total / weight.reshape(expand_w)).astype(values[0].dtype)
