"""Kernels of the MD features: pure array functions and streaming accumulators.

:func:`seqdance.features.md.md_features` feeds them chunk by chunk. Accumulators that sum
in floating point see fixed blocks of frames (:class:`FixedBlocks`), so the output is the
same to the last bit for any chunk size, thread count or scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from seqdance.schema import DSSP_CODES, N_ANGLE_BINS

# 13 edges, -pi .. pi in steps of 30 degrees (radians, as MDTraj returns dihedrals)
ANGLE_EDGES = np.array([np.pi * (-1.0 + i / 6.0) for i in range(N_ANGLE_BINS + 1)])
DEFAULT_CHUNK = 100  # frames per chunk


def angle_bin_counts(angles: np.ndarray, edges: np.ndarray = ANGLE_EDGES) -> np.ndarray:
    """Histogram of each column of ``angles`` over ``edges``, like ``numpy.histogram``.

    Parameters
    ----------
    angles : np.ndarray, shape=(n_frames, n_angles)
        Dihedral angles in radians.
    edges : np.ndarray, shape=(n_bins + 1,)
        Increasing bin edges. Bins are ``[e_k, e_k+1)`` except the last, ``[e_-2, e_-1]``;
        values outside ``[e_0, e_-1]`` and NaN are not counted.

    Returns
    -------
    counts : np.ndarray, shape=(n_angles, n_bins), int64
    """
    values = np.asarray(angles, dtype=np.float64)  # (F, M)
    n_bins = len(edges) - 1
    bins = np.searchsorted(edges, values, side="right") - 1  # (F, M)
    bins[values == edges[-1]] = n_bins - 1
    valid = (values >= edges[0]) & (values <= edges[-1])  # NaN compares False
    cols = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    counts = np.zeros((values.shape[1], n_bins), dtype=np.int64)
    np.add.at(counts, (cols[valid], bins[valid]), 1)
    return counts


def dssp_class_counts(codes: np.ndarray, classes: Iterable[str] = DSSP_CODES) -> np.ndarray:
    """Frames in each DSSP class per residue.

    Parameters
    ----------
    codes : np.ndarray, shape=(n_frames, n_residues), str
        MDTraj ``compute_dssp(simplified=False)`` codes.
    classes : iterable of str
        Codes to count, in output order (default ``B E H I G S T`` and ``' '``).

    Returns
    -------
    counts : np.ndarray, shape=(n_residues, n_classes), int64
    """
    codes = np.asarray(codes)
    return np.stack([(codes == c).sum(axis=0) for c in classes], axis=1).astype(np.int64)


class RunningMoments:
    """Mean and population standard deviation of each column, fed in chunks of rows.

    Chunks are merged with the pairwise update of Chan et al., exact up to rounding.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None  # (M,)
        self.m2: np.ndarray | None = None  # (M,) sum of squared deviations

    def update(self, values: np.ndarray) -> None:
        """Add rows ``values`` of shape (n_rows, M)."""
        x = np.asarray(values, dtype=np.float64)  # (F, M)
        nb = len(x)
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n)


class TraceCovariance:
    """Streaming C-alpha coordinate covariance reduced to residues by 3x3-block traces.

    For coordinates ``x`` of shape (n_frames, N, 3), the reduced covariance is
    ``C_ij = sum_a cov(x_ia, x_ja)``: the trace of block (i, j) of the 3N x 3N covariance
    (the normalisation ``1/n`` or ``1/(n-1)`` cancels in the correlation). Only the N x N
    sum of squared deviations is kept, merged across chunks as in :class:`RunningMoments`.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None  # (N, 3)
        self.m2: np.ndarray | None = None  # (N, N)

    def update(self, xyz: np.ndarray) -> None:
        """Add frames ``xyz`` of shape (n_frames, N, 3)."""
        x = np.asarray(xyz, dtype=np.float64)  # (F, N, 3)
        nb, n_atoms = x.shape[0], x.shape[1]
        if nb == 0:
            return
        mean_b = x.mean(axis=0)  # (N, 3)
        y = (x - mean_b).transpose(0, 2, 1).reshape(nb * 3, n_atoms)  # (3F, N)
        m2_b = y.T @ y  # (N, N)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean  # (N, 3)
        # in place, in the order of m2 + m2_b + (delta delta^T) c: the same bits, no
        # (N, N) temporaries beyond m2_b and the outer product
        self.m2 += m2_b
        del m2_b
        outer = delta @ delta.T  # (N, N)
        outer *= self.n * nb / n
        self.m2 += outer
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    def rmsf(self) -> np.ndarray:
        """Root mean square fluctuation about the mean position, shape (N,)."""
        return np.sqrt(np.diag(self.m2) / self.n)

    def correlation(self, dtype=np.float64, rows_per_block: int = 256) -> np.ndarray:
        """``C_ij / sqrt(C_ii C_jj)``, shape (N, N); NaN for an atom that never moves.

        Computed in float64 a block of rows at a time and stored as ``dtype`` (float32:
        each value the float64 one correctly rounded), so no second (N, N) float64 array
        is made beside the sums.
        """
        msf = np.diag(self.m2)  # (N,)
        n = len(msf)
        out = np.empty((n, n), dtype=dtype)
        for start in range(0, n, rows_per_block):
            block = slice(start, start + rows_per_block)
            tmp = np.outer(msf[block], msf)  # (B, N)
            np.sqrt(tmp, out=tmp)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(self.m2[block], tmp, out=tmp)
            out[block] = tmp
        return out


class SparsePairCounts:
    """Integer counts of (channel, row, column) cells summed over chunks, held sparse.

    Contact lines touch a few cells per residue, so the sums are kept as sorted flat cell
    indices with int64 counts: memory grows with the cells ever seen, not with N^2 per
    channel. :meth:`dense` gives one channel as the float64 (N, N) array of mean counts per
    frame, the same bits as dense float64 sums divided by the frame count (integer sums
    are exact in both).
    """

    def __init__(self, n_channels: int, n: int) -> None:
        self.n_channels, self.n = n_channels, n
        self.cells = np.zeros(0, dtype=np.int64)  # (M,) sorted flat (k, i, j) indices
        self.counts = np.zeros(0, dtype=np.int64)  # (M,)

    def update(self, k: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
        """Add one to each cell ``(k[m], i[m], j[m])`` (int arrays of shape (M,))."""
        if len(k) == 0:
            return
        flat = (np.asarray(k, np.int64) * self.n + i) * self.n + j  # (M,)
        cells = np.concatenate([self.cells, flat])
        counts = np.concatenate([self.counts, np.ones(len(flat), dtype=np.int64)])
        self.cells, inverse = np.unique(cells, return_inverse=True)
        self.counts = np.bincount(inverse.ravel(), weights=counts, minlength=len(self.cells))
        self.counts = self.counts.astype(np.int64)

    def dense(self, channel: int, rows: np.ndarray, n_frames: int, dtype=np.float64) -> np.ndarray:
        """Mean count per frame of one channel on ``rows`` x ``rows``, (R, R) ``dtype``
        (each value divided in float64, then stored: float32 is the float64 value rounded)."""
        size = self.n * self.n
        lo, hi = np.searchsorted(self.cells, [channel * size, (channel + 1) * size])
        flat, counts = self.cells[lo:hi] - channel * size, self.counts[lo:hi]
        rows = np.asarray(rows, dtype=np.int64)
        where = np.full(self.n, -1, dtype=np.int64)  # row of each residue, -1: not a row
        where[rows] = np.arange(len(rows))
        i, j = where[flat // self.n], where[flat % self.n]
        keep = (i >= 0) & (j >= 0)
        out = np.zeros((len(rows), len(rows)), dtype=dtype)
        out[i[keep], j[keep]] = counts[keep] / n_frames
        return out


class FixedBlocks:
    """Feeds rows to a chunked accumulator in blocks of ``block`` rows, whatever the chunks.

    :class:`RunningMoments` and :class:`TraceCovariance` merge chunks exactly only up to
    rounding, so their last bits depend on where the chunks end. Fed through this buffer
    they always see the same blocks (rows ``0 .. block - 1``, ``block .. 2 block - 1``, ...,
    then the rest), so the result depends on the rows alone: the same bytes for any chunk
    size. Call :meth:`flush` after the last rows.
    """

    def __init__(self, target, block: int = DEFAULT_CHUNK) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1 (got {block})")
        self.target = target
        self.block = block
        self._rows: list[np.ndarray] = []
        self._n = 0

    def update(self, values: np.ndarray) -> None:
        """Add rows ``values`` of shape (n_rows, ...)."""
        values = np.asarray(values)
        if len(values) == 0:
            return
        self._rows.append(values)
        self._n += len(values)
        if self._n >= self.block:
            rows = np.concatenate(self._rows)
            n_full = (len(rows) // self.block) * self.block
            for start in range(0, n_full, self.block):
                self.target.update(rows[start : start + self.block])
            self._rows = [rows[n_full:]] if n_full < len(rows) else []
            self._n = len(rows) - n_full

    def flush(self) -> None:
        """Pass on the rows of the last, partial block."""
        if self._n:
            self.target.update(np.concatenate(self._rows))
        self._rows, self._n = [], 0


def correlation_reference(xyz: np.ndarray) -> np.ndarray:
    """Slow reference for :class:`TraceCovariance`: full 3N x 3N covariance, then traces.

    ``xyz`` (n_frames, N, 3) -> correlation (N, N).
    """
    n_frames, n = xyz.shape[:2]
    cov3 = np.cov(np.asarray(xyz, dtype=np.float64).reshape(n_frames, 3 * n), rowvar=False)
    cov = np.trace(cov3.reshape(n, 3, n, 3), axis1=1, axis2=3)  # (N, N)
    msf = np.diag(cov)
    return cov / np.sqrt(np.outer(msf, msf))
