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

What differs is only how the answer is found. Candidate pairs come from a cell grid with a
half shell of cells (each pair tested once, as MDTraj tests it) instead of a test against
every atom. The sphere points are grouped into patches of at most ``PATCH_WIDTH`` (32)
neighbouring points. For atom ``i`` each neighbour ``j`` covers the cap of directions
``u.e_ij > cos t_ij``; widened and narrowed by a bound on the float32 rounding of the exact
test, the cap either surely covers a whole patch (its points are not tested: the early exit,
most patches of a buried atom end here with their closest neighbours), surely misses it (``j``
is not tested there), or may cover part of it (its points are tested exactly against every
such neighbour, vectorised over the patch; measured faster than a per-point early exit with
the last covering neighbour tried first, MDTraj's order). Only the exact float32 test
decides a point, so the counts are MDTraj's counts.

Each frame is computed from zero and on its own, so a frame's areas do not depend on the
other frames of the call, the number of threads or how a trajectory is chunked. (MDTraj's
multi-frame call starts each frame from the previous frame's per-atom areas in a reused
buffer, which adds ~1e-3 relative to every frame after the first one computed by a thread;
called one frame at a time, MDTraj gives the numbers computed here.)

:func:`shrake_rupley` is the pure kernel (arrays in, arrays out); :func:`atomic_radii` and
:func:`residue_groups` read what it needs from an MDTraj topology.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from numba import njit

PROBE_RADIUS = 0.14  # nm, MDTraj's default
N_SPHERE_POINTS = 960  # MDTraj's default
N_PATCHES = 32  # sphere points are grouped into this many patches (speed only)
MIN_CAP_DISTANCE = 0.05  # nm: closer neighbours are tested at every point (speed only)
ROUNDING_SLACK = 4e-6  # nm^2 per nm of coordinate range: margin for float32 rounding
CLASSIFY_MARGIN = 4e-6  # cosine margin for the float32 patch classification
PATCH_WIDTH = 32  # points per patch, padded: a fixed loop length the compiler vectorises


# ----------------------------------------------------------------------------- inputs


def sphere_points(n_points: int = N_SPHERE_POINTS) -> np.ndarray:
    """MDTraj's golden-section spiral on the unit sphere, shape (n_points, 3), float32 (a copy)."""
    return _sphere_points(int(n_points)).copy()


@lru_cache(maxsize=8)
def _sphere_points(n_points: int) -> np.ndarray:
    """The spiral of :func:`sphere_points`, cached.

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


@lru_cache(maxsize=8)
def _patch_geometry(n_points: int, n_patches: int):
    """:func:`_patches` of MDTraj's ``n_points`` spiral, cached."""
    return _patches(_sphere_points(n_points), n_patches)


def _patches(points: np.ndarray, n_patches: int):
    """Sphere points in patches of at most ``PATCH_WIDTH`` neighbouring points.

    Points go to the nearest of ``n_patches`` spiral directions; a group larger than
    ``PATCH_WIDTH`` is cut into consecutive pieces. Returns the points of each patch padded
    with copies of its last point (K, 3, PATCH_WIDTH) float32, the number of real points per
    patch (K,), the patch centres (K, 3) float64 (mean direction of its points) and the cosine
    and sine of each patch's angular radius (largest angle from the centre to one of its
    points, plus 1e-9 rad).
    """
    n_patches = max(1, min(n_patches, len(points)))
    seeds = sphere_points(n_patches).astype(np.float64)
    unit = points.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    owner = np.argmax(unit @ seeds.T, axis=1)  # (P,)
    groups = []
    for q in range(n_patches):
        members = np.flatnonzero(owner == q)
        groups.extend(np.array_split(members, -(-len(members) // PATCH_WIDTH)))
    groups = [g for g in groups if len(g)]
    patch_points = np.empty((len(groups), 3, PATCH_WIDTH), dtype=np.float32)
    count = np.empty(len(groups), dtype=np.int64)
    centres = np.empty((len(groups), 3))
    alpha = np.empty(len(groups))
    for q, members in enumerate(groups):
        padded = np.concatenate([members, np.full(PATCH_WIDTH - len(members), members[-1])])
        patch_points[q] = points[padded].T
        count[q] = len(members)
        centre = unit[members].sum(axis=0)
        centres[q] = centre / np.linalg.norm(centre)
        alpha[q] = np.arccos(np.clip(unit[members] @ centres[q], -1.0, 1.0)).max()
    alpha = np.minimum(alpha + 1e-9, np.pi)
    return patch_points, count, centres, np.cos(alpha), np.sin(alpha)


_OPENMP: list = []  # a cached threadpoolctl controller of the loaded OpenMP runtimes


def _openmp_threads() -> int | None:
    """The thread limit of the loaded OpenMP runtimes (what ``OMP_NUM_THREADS`` and
    ``threadpoolctl.threadpool_limits`` set), or None when none is loaded."""
    from threadpoolctl import ThreadpoolController

    if not _OPENMP or not _OPENMP[0].lib_controllers:
        _OPENMP[:] = [ThreadpoolController().select(user_api="openmp")]
    libs = _OPENMP[0].lib_controllers
    return min(lib.num_threads for lib in libs) if libs else None


def _thread_count(threads: int | None, n_frames: int) -> int:
    """``threads``; else the OpenMP thread limit; else ``OMP_NUM_THREADS``; else the CPUs."""
    if threads is None:
        threads = _openmp_threads()
    if threads is None:
        try:
            threads = int(os.environ.get("OMP_NUM_THREADS", ""))
        except ValueError:
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
        Frames computed in parallel (default: the OpenMP thread limit, which follows
        ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits`` as in a dataset-build
        worker; else the CPUs this process may use). The result does not depend on it.

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
    geometry = _patch_geometry(int(n_sphere_points), N_PATCHES)
    constant = np.float32(4.0 * math.pi / n_sphere_points)

    def run(start: int, stop: int) -> None:
        _frames(coords, sphere_radii, geometry, constant, group_of, out, start, stop)

    n_threads = _thread_count(threads, n_frames)
    if n_threads == 1:
        run(0, n_frames)
    else:  # one frame per task: every frame is computed alone, in any order
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(lambda f: run(f, f + 1), range(n_frames)))
    return out


@njit(nogil=True, cache=True)
def _frames(xyz, radii, geometry, constant, group_of, out, start, stop):  # pragma: no cover
    """Frames ``start .. stop - 1`` of ``xyz`` (F, N, 3) -> group areas in ``out`` (F, G)."""
    n_atoms = xyz.shape[1]
    areas = np.empty(n_atoms, dtype=np.float32)
    for f in range(start, stop):
        _frame(xyz[f], radii, geometry, constant, areas)
        row = out[f]
        for i in range(n_atoms):  # float32 sums in atom order, as MDTraj
            row[group_of[i]] += areas[i]


@njit(nogil=True, cache=True)
def _neighbour_pairs(x, radii):  # pragma: no cover
    """Pairs ``i < j`` with ``|x_i - x_j|^2 < (r_i + r_j)^2``, evaluated as MDTraj does (float32).

    A cell grid (cells half as wide as the largest ``r_i + r_j``) and a half shell of
    neighbouring cells test every pair of nearby atoms once. Returns ``(pair_i, pair_j,
    n_pairs)``.
    """
    n_atoms = x.shape[0]
    r_max = np.float64(0.0)
    lo = np.empty(3, dtype=np.float64)
    hi = np.empty(3, dtype=np.float64)
    for d in range(3):
        lo[d] = x[0, d]
        hi[d] = x[0, d]
    for i in range(n_atoms):
        r_max = max(r_max, np.float64(radii[i]))
        for d in range(3):
            v = np.float64(x[i, d])
            lo[d] = min(lo[d], v)
            hi[d] = max(hi[d], v)
    width = (2.0 * r_max * 1.0001 + 1e-6) / 2.0  # two cells reach the largest cutoff
    dims = np.empty(3, dtype=np.int64)
    while True:  # widen cells until the grid has at most ~8 cells per atom
        cells = 1.0  # counted in float64: no integer overflow for far-apart atoms
        for d in range(3):
            cells *= math.floor((hi[d] - lo[d]) / width) + 1.0
        if cells <= 8.0 * n_atoms + 125.0:
            break
        width *= 1.5
    total = 1
    for d in range(3):
        dims[d] = int((hi[d] - lo[d]) / width) + 1
        total *= dims[d]
    reach = int(math.ceil(2.0 * r_max * 1.0001 / width))  # cells to search each way
    cell = np.empty((n_atoms, 3), dtype=np.int64)
    cell_of = np.empty(n_atoms, dtype=np.int64)
    start = np.zeros(total + 1, dtype=np.int64)
    for i in range(n_atoms):
        for d in range(3):
            cell[i, d] = min(int((np.float64(x[i, d]) - lo[d]) / width), dims[d] - 1)
        cell_of[i] = (cell[i, 0] * dims[1] + cell[i, 1]) * dims[2] + cell[i, 2]
        start[cell_of[i] + 1] += 1
    for c in range(total):
        start[c + 1] += start[c]
    members = np.empty(n_atoms, dtype=np.int64)
    fill = start[:total].copy()
    for i in range(n_atoms):
        members[fill[cell_of[i]]] = i
        fill[cell_of[i]] += 1

    xs = np.empty(n_atoms, dtype=np.float32)  # coordinates and radii in cell order
    ys = np.empty(n_atoms, dtype=np.float32)
    zs = np.empty(n_atoms, dtype=np.float32)
    rs = np.empty(n_atoms, dtype=np.float32)
    for m in range(n_atoms):
        i = members[m]
        xs[m], ys[m], zs[m], rs[m] = x[i, 0], x[i, 1], x[i, 2], radii[i]

    capacity = 64 * n_atoms + 64
    pair_i = np.empty(capacity, dtype=np.int64)
    pair_j = np.empty(capacity, dtype=np.int64)
    n_pairs = 0
    for a in range(dims[0]):
        for b in range(dims[1]):
            for c in range(dims[2]):
                here = (a * dims[1] + b) * dims[2] + c
                if start[here] == start[here + 1]:
                    continue
                for oa in range(0, reach + 1):
                    if a + oa >= dims[0]:
                        break
                    b_lo = -reach if oa > 0 else 0
                    for ob in range(b_lo, reach + 1):
                        if b + ob < 0 or b + ob >= dims[1]:
                            continue
                        c_lo = -reach if (oa > 0 or ob > 0) else 0
                        base = ((a + oa) * dims[1] + b + ob) * dims[2]
                        # cells c + c_lo .. c + reach of this row are contiguous in memory
                        lo_c = max(c + c_lo, 0)
                        hi_c = min(c + reach, dims[2] - 1)
                        row_end = start[base + hi_c + 1]
                        for m in range(start[here], start[here + 1]):
                            xi, yi, zi, ri = xs[m], ys[m], zs[m], rs[m]
                            row_start = start[base + lo_c]
                            if oa == 0 and ob == 0:
                                row_start = m + 1  # same row: cells c.., atoms after m
                            if n_pairs + (row_end - row_start) > capacity:
                                capacity = 2 * capacity + (row_end - row_start)
                                grown = np.empty(capacity, dtype=np.int64)
                                grown[:n_pairs] = pair_i[:n_pairs]
                                pair_i = grown
                                grown = np.empty(capacity, dtype=np.int64)
                                grown[:n_pairs] = pair_j[:n_pairs]
                                pair_j = grown
                            for n in range(row_start, row_end):  # branch-free append
                                dx = xi - xs[n]
                                dy = yi - ys[n]
                                dz = zi - zs[n]
                                cut = ri + rs[n]
                                pair_i[n_pairs] = m
                                pair_j[n_pairs] = n
                                n_pairs += (dx * dx + dy * dy) + dz * dz < cut * cut
    for p in range(n_pairs):  # back to the caller's atom numbers
        pair_i[p] = members[pair_i[p]]
        pair_j[p] = members[pair_j[p]]
    return pair_i, pair_j, n_pairs


@njit(nogil=True, cache=True)
def _frame(x, radii, geometry, constant, areas):  # pragma: no cover
    """Per-atom accessible area of one frame ``x`` (N, 3) float32 into ``areas`` (N,)."""
    patch_points, patch_count, centres, patch_cos, patch_sin = geometry
    n_atoms = x.shape[0]
    n_patches = centres.shape[0]

    # neighbour lists (CSR), both directions of every pair
    pair_i, pair_j, n_pairs = _neighbour_pairs(x, radii)
    first = np.zeros(n_atoms + 1, dtype=np.int64)
    for p in range(n_pairs):
        first[pair_i[p] + 1] += 1
        first[pair_j[p] + 1] += 1
    for i in range(n_atoms):
        first[i + 1] += first[i]
    nb_all = np.empty(2 * n_pairs, dtype=np.int64)
    fill = first[:n_atoms].copy()
    for p in range(n_pairs):
        i, j = pair_i[p], pair_j[p]
        nb_all[fill[i]] = j
        fill[i] += 1
        nb_all[fill[j]] = i
        fill[j] += 1

    x_max = 0.0
    for i in range(n_atoms):
        for d in range(3):
            x_max = max(x_max, abs(np.float64(x[i, d])))
    tolerance = ROUNDING_SLACK * (x_max + 1.0)  # nm^2, bound on the exact test's rounding

    n_max = 0
    for i in range(n_atoms):
        n_max = max(n_max, first[i + 1] - first[i])
    nbx = np.empty(n_max, dtype=np.float32)  # neighbour coordinates and radii
    nby = np.empty(n_max, dtype=np.float32)
    nbz = np.empty(n_max, dtype=np.float32)
    nbr = np.empty(n_max, dtype=np.float32)
    # caps in float32, widened (outer) or narrowed (inner) by CLASSIFY_MARGIN
    ex = np.empty(n_max, dtype=np.float32)  # unit vector from atom i to the neighbour
    ey = np.empty(n_max, dtype=np.float32)
    ez = np.empty(n_max, dtype=np.float32)
    cos_in = np.empty(n_max, dtype=np.float32)  # cap surely covered: u.e > cos_in
    sin_in = np.empty(n_max, dtype=np.float32)
    cos_out = np.empty(n_max, dtype=np.float32)  # cap possibly covered: u.e > cos_out
    sin_out = np.empty(n_max, dtype=np.float32)
    meets = np.empty(n_max, dtype=np.bool_)
    cand = np.empty(n_max, dtype=np.int64)
    place = np.empty((3, PATCH_WIDTH), dtype=np.float32)  # sphere points of atom i, one patch
    hit = np.empty(PATCH_WIDTH, dtype=np.bool_)
    cen = centres.astype(np.float32)
    pcos = patch_cos.astype(np.float32)
    psin = patch_sin.astype(np.float32)
    margin = np.float32(CLASSIFY_MARGIN)

    for i in range(n_atoms):
        xi, yi, zi = x[i, 0], x[i, 1], x[i, 2]
        ri = radii[i]
        ri64 = np.float64(ri)
        n_nb = first[i + 1] - first[i]
        for k in range(n_nb):  # gather
            j = nb_all[first[i] + k]
            nbx[k] = x[j, 0]
            nby[k] = x[j, 1]
            nbz[k] = x[j, 2]
            nbr[k] = radii[j]
        for k in range(n_nb):  # caps, branch-free, in float64
            dx = np.float64(nbx[k]) - np.float64(xi)
            dy = np.float64(nby[k]) - np.float64(yi)
            dz = np.float64(nbz[k]) - np.float64(zi)
            dist = math.sqrt(dx * dx + dy * dy + dz * dz)
            near = dist < MIN_CAP_DISTANCE  # too close for a safe cap: test every point
            inv = 1.0 / max(dist, MIN_CAP_DISTANCE)
            ex[k] = dx * inv
            ey[k] = dy * inv
            ez[k] = dz * inv
            rj64 = np.float64(nbr[k])
            half = 0.5 * inv / ri64
            cos_t = (ri64 * ri64 + dist * dist - rj64 * rj64) * half
            slack = tolerance * half  # rounding of the exact test, as a cosine
            c_out = min(max(cos_t - slack, -1.0), 1.0)
            c_out = -2.0 if near else c_out  # -2: a candidate for every patch
            cos_out[k] = c_out
            sin_out[k] = math.sqrt(max(1.0 - c_out * c_out, 0.0))
            c_in = cos_t + slack
            c_in = -1e30 if c_in < -1.0 else c_in  # atom i inside atom j: all covered
            c_in = 2.0 if (c_in >= 1.0 or near) else c_in  # 2: never surely covers
            cos_in[k] = c_in
            sin_in[k] = math.sqrt(max(1.0 - c_in * c_in, 0.0))

        accessible = 0
        for q in range(n_patches):
            ca, sa = pcos[q], psin[q]
            cx, cy, cz = cen[q, 0], cen[q, 1], cen[q, 2]
            # full: one neighbour surely covers the patch, angle(c, e) + alpha < theta_in;
            # meets: its outer cap meets the patch, angle(c, e) - alpha < theta_out
            n_full = 0
            for k in range(n_nb):  # vectorised
                dot = ex[k] * cx + ey[k] * cy + ez[k] * cz
                n_full += (cos_in[k] < ca) & (dot > cos_in[k] * ca + sin_in[k] * sa + margin)
                meets[k] = (cos_out[k] <= -ca) | (dot > cos_out[k] * ca - sin_out[k] * sa - margin)
            if n_full > 0:
                continue
            n_cand = 0
            for k in range(n_nb):
                cand[n_cand] = k
                n_cand += meets[k]
            if n_cand == 0:
                accessible += patch_count[q]
                continue
            for p in range(PATCH_WIDTH):  # MDTraj's sphere points of atom i, float32
                place[0, p] = xi + ri * patch_points[q, 0, p]
                place[1, p] = yi + ri * patch_points[q, 1, p]
                place[2, p] = zi + ri * patch_points[q, 2, p]
                hit[p] = False
            for t in range(n_cand):
                k = cand[t]
                qx, qy, qz, r2 = nbx[k], nby[k], nbz[k], nbr[k] * nbr[k]
                for p in range(PATCH_WIDTH):  # vectorised: a fixed trip count
                    dx32 = place[0, p] - qx
                    dy32 = place[1, p] - qy
                    dz32 = place[2, p] - qz
                    hit[p] |= (dx32 * dx32 + dy32 * dy32) + dz32 * dz32 < r2
            for p in range(patch_count[q]):  # the real points, not the padding
                accessible += not hit[p]
        areas[i] = np.float32(accessible) * ((constant * ri) * ri)
