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


# -- streaming merges: one window at a time, memory bounded by the window ------------------
class ResidueMerge:
    """:func:`merge_residues` accumulated window by window (in plan order); same values.

    Memory: the (length, ...) float64 sums; no window is kept once added.
    """

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows
        self.next = 0
        self.total: np.ndarray | None = None
        self.weight = np.zeros(windows[0].length, dtype=np.float64)
        self.single: np.ndarray | None = None

    def add(self, k: int, values: np.ndarray) -> None:
        """Add window ``k``'s array, shape=(stop - start, ...); windows come in plan order."""
        if k != self.next:
            raise ValueError(f"window {k} added before window {self.next}")
        self.next += 1
        if len(self.windows) == 1:
            self.single = values
            return
        win = self.windows[k]
        if self.total is None:
            self.total = np.zeros((win.length, *values.shape[1:]), dtype=np.float64)
            self.dtype = values.dtype
        w = win.weights()
        self.total[win.start : win.stop] += w.reshape(-1, *([1] * (values.ndim - 1))) * values
        self.weight[win.start : win.stop] += w

    def result(self) -> np.ndarray:
        """The merged array, shape=(length, ...), in the windows' dtype."""
        if self.next != len(self.windows):
            raise ValueError(f"{len(self.windows) - self.next} windows not added yet")
        if self.single is not None:
            return self.single
        assert self.total is not None
        shape = (-1, *([1] * (self.total.ndim - 1)))
        return (self.total / self.weight.reshape(shape)).astype(self.dtype)


@dataclass(frozen=True)
class PairBlock:
    """Finished merged pairs: rows ``row0 : row0 + n`` x columns ``col0 : col0 + m``.

    ``values`` has shape=(n, m, C); pairs outside the block (in these rows) are NaN.
    """

    row0: int
    col0: int
    values: np.ndarray


class PairMerge:
    """:func:`merge_pairs` (axes (0, 1)) as row blocks, finished as the windows arrive.

    Windows are added in plan order. Once window k is in, no later window holds the rows
    before window k + 1's start: those rows are merged (from the windows still held) and
    returned as a :class:`PairBlock`, and windows that hold no unfinished row are dropped.
    At most the windows overlapping one row block are held, so memory depends on the window,
    not on the sequence length. Values equal :func:`merge_pairs` element by element (same
    float32 sums in the same order, the same float64 division). ``band`` N keeps only pairs
    with |i - j| <= N (the others are left out of the blocks, or NaN inside them).
    """

    def __init__(self, windows: list[Window], band: int | None = None) -> None:
        self.windows = windows
        self.band = band
        self.next = 0
        self.row = 0  # first unfinished row
        self.held: list[tuple[Window, np.ndarray]] = []

    def add(self, k: int, values: np.ndarray) -> list[PairBlock]:
        """Add window ``k``'s pairs, shape=(n, n, C); return the row blocks it finishes."""
        if k != self.next:
            raise ValueError(f"window {k} added before window {self.next}")
        self.next += 1
        win = self.windows[k]
        if len(self.windows) == 1:  # one window: the values as they are (as merge_pairs)
            return [self._banded(PairBlock(0, 0, values))]
        self.held.append((win, values))
        stop = self.windows[k + 1].start if k + 1 < len(self.windows) else win.length
        if stop <= self.row:
            return []
        block = self._merge(self.row, stop)
        self.row = stop
        self.held = [(w, v) for w, v in self.held if w.stop > stop]
        return [self._banded(block)]

    def _merge(self, r0: int, r1: int) -> PairBlock:
        parts = [(w, v) for w, v in self.held if w.start < r1 and w.stop > r0]
        c0 = min(w.start for w, _ in parts)
        c1 = max(w.stop for w, _ in parts)
        if self.band is not None:
            c0, c1 = max(c0, r0 - self.band), min(c1, r1 + self.band)
        channels = parts[0][1].shape[2:]
        total = np.zeros((r1 - r0, c1 - c0, *channels), dtype=np.float32)
        weight = np.zeros((r1 - r0, c1 - c0), dtype=np.float64)
        for win, val in parts:
            w = win.weights()
            a, b = max(r0, win.start), min(r1, win.stop)  # rows of this window in the block
            ca, cb = max(c0, win.start), min(c1, win.stop)
            w2 = np.outer(w[a - win.start : b - win.start], w[ca - win.start : cb - win.start])
            sub = val[a - win.start : b - win.start, ca - win.start : cb - win.start]
            expand = w2.reshape(*w2.shape, *([1] * len(channels)))
            total[a - r0 : b - r0, ca - c0 : cb - c0] += (expand * sub).astype(np.float32)
            weight[a - r0 : b - r0, ca - c0 : cb - c0] += w2
        with np.errstate(invalid="ignore", divide="ignore"):
            weight[weight == 0] = np.nan
            merged = total / weight.reshape(*weight.shape, *([1] * len(channels)))
        return PairBlock(r0, c0, merged.astype(parts[0][1].dtype))

    def _banded(self, block: PairBlock) -> PairBlock:
        if self.band is None:
            return block
        n, m = block.values.shape[:2]
        rows = np.arange(block.row0, block.row0 + n)[:, None]
        c0 = max(block.col0, block.row0 - self.band)
        c1 = min(block.col0 + m, block.row0 + n + self.band)
        cols = np.arange(c0, c1)[None, :]
        values = block.values[:, c0 - block.col0 : c1 - block.col0].copy()
        values[np.abs(rows - cols) > self.band] = np.nan
        return PairBlock(block.row0, c0, values)
