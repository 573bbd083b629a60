"""Shrake-Rupley solvent accessible surface area, MDTraj's definition, compiled with Numba.

The definition is MDTraj's ``shrake_rupley`` (``mdtraj/geometry/src/sasa.cpp``), reproduced
operation by operation in float32 so that the numbers are the same:

* each atom is a sphere of radius ``r_i = r_vdw(element) + probe`` (MDTraj's radii table,
  probe 0.14 nm; hydrogens count with their own radius, 0.12 nm, like every other atom);
* ``n_sphere_points`` (960) points on the unit sphere from MDTraj's golden-section spiral,
  scaled by ``r_i`` and centred on atom ``i``;
* a point is accessible when it lies inside no other atom's sphere: squared distance to the
  atom ``j`` not below ``r_j^2``; only atoms ``j`` with ``|x_i - x_j|^2 < (r_i + r_j)^2``
  can cover it;
* atom area ``= n_accessible * (4 pi / n_sphere_points) * r_i * r_i``; group (residue) area =
  the float32 sum of its atoms' areas in atom order.

What differs is only how the answer is found: candidate neighbours come from a cell grid
(cells as wide as the largest ``r_i + r_j``) instead of a test against every atom, and the
neighbour that covered the previous point is tried first (most points of a buried patch are
covered by the same atom). Neither changes which points are accessible, so the counts are
MDTraj's counts. Each frame is computed from zero and on its own, so a frame's areas do not
depend on the other frames of the call, the number of threads or how a trajectory is
chunked. (MDTraj's multi-frame call starts each frame from the previous frame's per-atom
areas in a reused buffer, which adds ~1e-3 relative to every frame after the first one
computed by a thread; called one frame at a time, MDTraj gives the numbers computed here.)

:func:`shrake_rupley` is the pure kernel (arrays in, arrays out); :func:`atomic_radii` and
:func:`residue_groups` read what it needs from an MDTraj topology.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

PROBE_RADIUS = 0.14  # nm, MDTraj's default
N_SPHERE_POINTS = 960  # MDTraj's default


# ----------------------------------------------------------------------------- inputs


def sphere_points(n_points: int = N_SPHERE_POINTS) -> np.ndarray:
    """MDTraj's golden-section spiral on the unit sphere, shape (n_points, 3), float32.

    Evaluated with the C code's types: float32 products ``i * offset`` and ``i * inc``,
    double sums, square root, sine and cosine, each result rounded to float32.
    """
    if n_points < 1:
        raise ValueError(f"n_sphere_points must be >= 1 (got {n_points})")
    f32 = np.float32
    inc = f32(math.pi * (3.0 - math.sqrt(5.0)))
    offset = f32(2.0 / n_points)
    points = np.empty((n_points, 3), dtype=np.float32)
    for i in range(n_points):
        y = f32(float(f32(i) * offset) - 1.0 + float(offset) / 2.0)
        r = f32(math.sqrt(1.0 - float(y * y)))
        phi = float(f32(i) * inc)
        points[i] = (f32(math.cos(phi) * float(r)), y, f32(math.sin(phi) * float(r)))
    return points


def atomic_radii(topology, change_radii: dict[str, float] | None = None) -> np.ndarray:
    """Van der Waals radius (nm) of each atom of an MDTraj topology: MDTraj's table by element.

    Returns float32 (n_atoms,); the probe is added by :func:`shrake_rupley`.
    """
    from mdtraj.geometry.sasa import _ATOMIC_RADII

    table = {**_ATOMIC_RADII, **(change_radii or {})}
    radii = []
    for atom in topology.atoms:
        symbol = getattr(atom.element, "symbol", None)
        if symbol not in table:
            raise ValueError(f"atom {atom} has no atomic radius (element {symbol!r})")
        radii.append(table[symbol])
    return np.asarray(radii, dtype=np.float32)


def residue_groups(topology) -> np.ndarray:
    """Residue index of each atom (MDTraj's ``mode='residue'`` mapping), int64 (n_atoms,)."""
    return np.fromiter((a.residue.index for a in topology.atoms), np.int64, topology.n_atoms)


def _thread_count(threads: int | None, n_frames: int) -> int:
    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            threads = os.cpu_count() or 1
    return max(1, min(int(threads), n_frames))


# ----------------------------------------------------------------------------- kernel


def shrake_rupley(
    xyz: np.ndarray,
    radii: np.ndarray,
    groups: np.ndarray | None = None,
    n_groups: int | None = None,
    probe_radius: float = PROBE_RADIUS,
    n_sphere_points: int = N_SPHERE_POINTS,
    threads: int | None = None,
) -> np.ndarray:
    """Accessible surface area of each atom, or of each group of atoms, in each frame.

    Parameters
    ----------
    xyz : np.ndarray, shape=(n_frames, n_atoms, 3)
        Coordinates in nm (converted to float32, as MDTraj does).
    radii : np.ndarray, shape=(n_atoms,)
        Van der Waals radii in nm (:func:`atomic_radii`); ``probe_radius`` is added in
        float32, as in MDTraj.
    groups : np.ndarray, shape=(n_atoms,), optional
        Group (e.g. residue, :func:`residue_groups`) of each atom, ``0 .. n_groups - 1``.
        Without it, per-atom areas are returned.
    n_groups : int, optional
        Number of groups (default ``groups.max() + 1``).
    threads : int, optional
        Frames computed in parallel (default: the CPUs this process may use). The result
        does not depend on it.

    Returns
    -------
    areas : np.ndarray, shape=(n_frames, n_atoms) or (n_frames, n_groups), float32, nm^2
    """
    coords = np.ascontiguousarray(xyz, dtype=np.float32)
    if coords.ndim != 3 or coords.shape[2] != 3:
        raise ValueError(f"xyz must have shape (n_frames, n_atoms, 3), got {coords.shape}")
    n_frames, n_atoms = coords.shape[:2]
    radii = np.asarray(radii, dtype=np.float32)
    if radii.shape != (n_atoms,):
        raise ValueError(f"radii must have shape ({n_atoms},), got {radii.shape}")
    if groups is None:
        group_of = np.arange(n_atoms, dtype=np.int64)
        n_out = n_atoms
    else:
        group_of = np.asarray(groups, dtype=np.int64)
        if group_of.shape != (n_atoms,):
            raise ValueError(f"groups must have shape ({n_atoms},), got {group_of.shape}")
        n_out = int(n_groups) if n_groups is not None else int(group_of.max(initial=-1)) + 1
        if n_atoms and (group_of.min() < 0 or group_of.max() >= n_out):
            raise ValueError(f"group indices must lie in 0 .. {n_out - 1}")
    out = np.zeros((n_frames, n_out), dtype=np.float32)
    if n_frames == 0 or n_atoms == 0:
        return out
    if not np.isfinite(coords).all():
        raise ValueError("xyz has non-finite coordinates")
    sphere_radii = radii + np.float32(probe_radius)  # (N,) float32, as MDTraj
    points = sphere_points(n_sphere_points)  # (P, 3)
    constant = np.float32(4.0 * math.pi / n_sphere_points)

    def run(start: int, stop: int) -> None:
        _frames(coords, sphere_radii, points, constant, group_of, out, start, stop)

    n_threads = _thread_count(threads, n_frames)
    if n_threads == 1:
        run(0, n_frames)
    else:  # one frame per task: every frame is computed alone, in any order
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(lambda f: run(f, f + 1), range(n_frames)))
    return out


@njit(nogil=True, cache=True)
def _frames(xyz, radii, points, constant, group_of, out, start, stop):  # pragma: no cover
    """Frames ``start .. stop - 1`` of ``xyz`` (F, N, 3) -> group areas in ``out`` (F, G)."""
    n_atoms = xyz.shape[1]
    areas = np.empty(n_atoms, dtype=np.float32)
    for f in range(start, stop):
        _frame(xyz[f], radii, points, constant, areas)
        row = out[f]
        for i in range(n_atoms):  # float32 sums in atom order, as MDTraj
            row[group_of[i]] += areas[i]


@njit(nogil=True, cache=True)
def _frame(x, radii, points, constant, areas):  # pragma: no cover
    """Per-atom accessible area of one frame ``x`` (N, 3) float32 into ``areas`` (N,)."""
    n_atoms = x.shape[0]
    n_points = points.shape[0]

    # cell grid, cells at least as wide as the largest r_i + r_j
    r_max = np.float32(0.0)
    for i in range(n_atoms):
        if radii[i] > r_max:
            r_max = radii[i]
    lo = np.empty(3, dtype=np.float64)
    hi = np.empty(3, dtype=np.float64)
    for d in range(3):
        lo[d] = x[0, d]
        hi[d] = x[0, d]
    for i in range(n_atoms):
        for d in range(3):
            v = np.float64(x[i, d])
            if v < lo[d]:
                lo[d] = v
            if v > hi[d]:
                hi[d] = v
    width = 2.0 * np.float64(r_max) * 1.0001 + 1e-6
    dims = np.empty(3, dtype=np.int64)
    while True:  # widen cells until the grid has at most ~4 cells per atom
        total = 1
        for d in range(3):
            dims[d] = int((hi[d] - lo[d]) / width) + 1
            total *= dims[d]
        if total <= 4 * n_atoms + 64:
            break
        width *= 1.5
    cell_of = np.empty(n_atoms, dtype=np.int64)
    cx = np.empty(n_atoms, dtype=np.int64)
    cy = np.empty(n_atoms, dtype=np.int64)
    cz = np.empty(n_atoms, dtype=np.int64)
    counts = np.zeros(total + 1, dtype=np.int64)
    for i in range(n_atoms):
        a = min(int((np.float64(x[i, 0]) - lo[0]) / width), dims[0] - 1)
        b = min(int((np.float64(x[i, 1]) - lo[1]) / width), dims[1] - 1)
        c = min(int((np.float64(x[i, 2]) - lo[2]) / width), dims[2] - 1)
        cx[i], cy[i], cz[i] = a, b, c
        cell_of[i] = (a * dims[1] + b) * dims[2] + c
        counts[cell_of[i] + 1] += 1
    for k in range(total):
        counts[k + 1] += counts[k]
    members = np.empty(n_atoms, dtype=np.int64)
    fill = counts[:total].copy()
    for i in range(n_atoms):
        members[fill[cell_of[i]]] = i
        fill[cell_of[i]] += 1

    # neighbour buffers: coordinates and squared radii, closest first
    nb_idx = np.empty(n_atoms, dtype=np.int64)
    nb_d2 = np.empty(n_atoms, dtype=np.float32)
    nbx = np.empty(n_atoms, dtype=np.float32)
    nby = np.empty(n_atoms, dtype=np.float32)
    nbz = np.empty(n_atoms, dtype=np.float32)
    nbr2 = np.empty(n_atoms, dtype=np.float32)
    for i in range(n_atoms):
        xi, yi, zi = x[i, 0], x[i, 1], x[i, 2]
        ri = radii[i]
        n_nb = 0
        for a in range(max(cx[i] - 1, 0), min(cx[i] + 2, dims[0])):
            for b in range(max(cy[i] - 1, 0), min(cy[i] + 2, dims[1])):
                for c in range(max(cz[i] - 1, 0), min(cz[i] + 2, dims[2])):
                    cell = (a * dims[1] + b) * dims[2] + c
                    for m in range(counts[cell], counts[cell + 1]):
                        j = members[m]
                        if j == i:
                            continue
                        dx = xi - x[j, 0]
                        dy = yi - x[j, 1]
                        dz = zi - x[j, 2]
                        r2 = (dx * dx + dy * dy) + dz * dz
                        cut = ri + radii[j]
                        if r2 < cut * cut:
                            nb_idx[n_nb] = j
                            nb_d2[n_nb] = r2
                            n_nb += 1
        order = np.argsort(nb_d2[:n_nb], kind="mergesort")
        for k in range(n_nb):
            j = nb_idx[order[k]]
            nbx[k] = x[j, 0]
            nby[k] = x[j, 1]
            nbz[k] = x[j, 2]
            nbr2[k] = radii[j] * radii[j]

        accessible = 0
        last = 0
        for p in range(n_points):
            px = xi + ri * points[p, 0]
            py = yi + ri * points[p, 1]
            pz = zi + ri * points[p, 2]
            covered = False
            for t in range(n_nb):
                k = last + t
                if k >= n_nb:
                    k -= n_nb
                dx = px - nbx[k]
                dy = py - nby[k]
                dz = pz - nbz[k]
                if (dx * dx + dy * dy) + dz * dz < nbr2[k]:
                    last = k
                    covered = True
                    break
            if not covered:
                accessible += 1
        areas[i] = np.float32(accessible) * ((constant * ri) * ri)
