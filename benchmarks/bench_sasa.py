"""Benchmark the SASA kernel (seqdance.features.sasa) against ``mdtraj.shrake_rupley``.

Cases: 5xnd (1,627 protein atoms, the shared data's 20-frame trajectory), adenylate kinase
(3,341 atoms: MDAnalysisTests' ``adk.psf`` + ``adk_dims.dcd``) and a 13,364-atom system of four
adenylate kinase copies as chains A-D (built by this script, 8 nm apart).

    python benchmarks/bench_sasa.py --data ../shared/data/md \\
        --adk-psf adk.psf --adk-dcd adk_dims.dcd --frames 10 --repeat 3

(``pip install MDAnalysisTests`` and leave out ``--adk-*`` to take its files; the package is a
benchmark-only input, not a dependency.) Both implementations run on the same frames,
interleaved, with 1 thread (MDTraj's OpenMP limited with threadpoolctl) and with 2; the best
of ``--repeat`` counts. Every case also reports the largest per-residue difference from MDTraj
called one frame at a time (its definition; see docs/md-features.md) and, with
``--numpy``, a vectorised numpy version (cKDTree neighbours, all points x neighbours per atom)
on the first case, the alternative that the compiled kernel was chosen over. Prints
Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_md_features import tiled  # same folder: copies of a protein as chains


def adk_files(psf: Path | None, dcd: Path | None) -> tuple[Path, Path]:
    if psf is not None and dcd is not None:
        return psf, dcd
    from MDAnalysisTests.datafiles import DCD, PSF  # benchmark-only

    return Path(PSF), Path(DCD)


def numpy_sasa(xyz: np.ndarray, radii: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Vectorised numpy Shrake-Rupley of one frame (the alternative that was measured)."""
    from scipy.spatial import cKDTree

    r = radii + np.float32(0.14)
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(2 * float(r.max()), output_type="ndarray")
    d = xyz[pairs[:, 0]] - xyz[pairs[:, 1]]
    keep = (d * d).sum(1) < (r[pairs[:, 0]] + r[pairs[:, 1]]) ** 2
    pairs = pairs[keep]
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    start = np.searchsorted(both[:, 0], np.arange(len(xyz) + 1))
    constant = np.float32(4 * np.pi / len(points))
    out = np.empty(len(xyz), np.float32)
    for i in range(len(xyz)):
        nb = both[start[i] : start[i + 1], 1]
        p = xyz[i] + r[i] * points  # (P, 3)
        q = p[:, None, :] - xyz[nb][None]  # (P, M, 3)
        covered = ((q * q).sum(-1) < (r[nb] ** 2)[None]).any(1)
        out[i] = np.float32((~covered).sum()) * (constant * r[i] * r[i])
    return out


def seconds(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run_case(name: str, top: Path, trj: Path, frames: int, repeat: int, numpy_too: bool) -> None:
    import mdtraj as md
    from threadpoolctl import threadpool_limits

    from seqdance.features.sasa import atomic_radii, residue_groups, shrake_rupley, sphere_points

    traj = md.load(str(trj), top=str(top))[:frames]
    traj = traj.atom_slice(traj.topology.select("protein"))
    radii, groups = atomic_radii(traj.topology), residue_groups(traj.topology)
    n_res, f = traj.n_residues, traj.n_frames
    shrake_rupley(traj.xyz[:1], radii, groups, n_res, threads=1)  # compile or load the cache
    times: dict[str, list[float]] = {key: [] for key in ("md1", "ours1", "md2", "ours2")}
    for _ in range(repeat):  # interleaved
        for n in (1, 2):
            with threadpool_limits(n, user_api="openmp"):
                times[f"md{n}"].append(seconds(md.shrake_rupley, traj, mode="residue"))
            times[f"ours{n}"].append(
                seconds(shrake_rupley, traj.xyz, radii, groups, n_res, threads=n)
            )
    ms = {key: 1000 * min(v) / f for key, v in times.items()}
    ours = shrake_rupley(traj.xyz, radii, groups, n_res)
    ref = np.concatenate([md.shrake_rupley(traj[i], mode="residue") for i in range(f)])
    print(
        f"| {name} | {traj.n_atoms} | {f} | {ms['md1']:.1f} | {ms['ours1']:.2f} | "
        f"{ms['md1'] / ms['ours1']:.1f}x | {ms['md2']:.1f} | {ms['ours2']:.2f} | "
        f"{ms['md2'] / ms['ours2']:.1f}x | {np.abs(ours - ref).max():.1e} |"
    )
    if numpy_too:
        numpy_ms = 1000 * seconds(numpy_sasa, traj.xyz[0], radii, sphere_points())
        print(
            f"| {name}: numpy vectorised, 1 frame | {traj.n_atoms} | 1 | {ms['md1']:.1f} | "
            f"{numpy_ms:.1f} | {ms['md1'] / numpy_ms:.2f}x | | | | |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared data md/ (5xnd/)")
    parser.add_argument("--adk-psf", type=Path)
    parser.add_argument("--adk-dcd", type=Path)
    parser.add_argument("--frames", type=int, default=10, help="frames per case")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; best counts")
    parser.add_argument("--numpy", action="store_true", help="also time the numpy version")
    args = parser.parse_args()

    import mdtraj as md
    import numba

    adk_psf, adk_dcd = adk_files(args.adk_psf, args.adk_dcd)
    xnd = args.data / "5xnd"
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("5xnd", xnd / "5xnd_topology.pdb", xnd / "5xnd_trajectory.dcd"),
            ("adenylate kinase", adk_psf, adk_dcd),
            ("adenylate kinase x4", *tiled(adk_psf, adk_dcd, 4, Path(tmp), args.frames)),
        ]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, MDTraj {md.__version__}, numba {numba.__version__}, "
            f"frames {args.frames}, best of {args.repeat}"
        )
        print(
            "| case | atoms | frames | MDTraj 1 thread ms/frame | ours 1 thread | ratio | "
            "MDTraj 2 threads | ours 2 threads | ratio | max abs diff vs MDTraj (nm^2) |"
        )
        print("|---" * 10 + "|")
        for k, (name, top, trj) in enumerate(cases):
            run_case(name, top, trj, args.frames, args.repeat, args.numpy and k == 0)


if __name__ == "__main__":
    main()
