"""Benchmark `seqdance features md`: whole-command time per frame and the share of each step.

Cases: 5xnd (1,629 atoms, 20 frames, GetContacts' test trajectory), a ~3,300-atom system
built from it (two copies of 5xnd as chains A and B, the second shifted by 6 nm, so twice
the atoms with the same dynamics), and optionally 3tvj_I (531 atoms, 10 frames).

    python benchmarks/bench_md_features.py ../shared/data/md --repeat 3

Each case runs the library call the command makes (``md_features`` then
``write_md_features``) with the native interaction detector; the step shares come from
``MDFeatures.timings``. Prints Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def make_two_copies(top: Path, trj: Path, out_dir: Path) -> tuple[Path, Path]:
    """Two copies of a protein as separate chains (second shifted by 6 nm in x), real files."""
    import mdtraj as md
    import numpy as np

    traj = md.load(str(trj), top=str(top))
    protein = traj.atom_slice(traj.topology.select("protein"))
    other = protein[:]
    other.xyz = protein.xyz + np.array([6.0, 0.0, 0.0], dtype=np.float32)
    both = protein.stack(other)
    for chain, chain_id in zip(both.topology.chains, "AB", strict=True):
        chain.chain_id = chain_id
    top_out, trj_out = out_dir / "5xnd_x2.pdb", out_dir / "5xnd_x2.dcd"
    both[0].save_pdb(str(top_out))
    both.save_dcd(str(trj_out))
    return top_out, trj_out


def run_case(top: Path, trj: Path, repeat: int) -> tuple[float, int, int, int, dict[str, float]]:
    from seqdance.features.md import md_features, write_md_features

    best, best_steps = float("inf"), {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            features = md_features(top, trj)
            write_md_features(features, Path(out) / "case")
            elapsed = time.perf_counter() - start
        if elapsed < best:
            best, best_steps = elapsed, dict(features.timings)
    import mdtraj as md

    n_atoms = md.load_topology(str(top)).select("protein").size
    return best, features.n_frames, n_atoms, len(features.sequence), best_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with 5xnd/ and 3tvj_I/ (shared data md/)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    args = parser.parse_args()

    xnd_top = args.data / "5xnd" / "5xnd_topology.pdb"
    xnd_trj = args.data / "5xnd" / "5xnd_trajectory.dcd"
    cases = []
    tvj = args.data / "3tvj_I"
    if tvj.is_dir():
        cases.append(("3tvj_I", tvj / "3tvj_I.pdb", tvj / "3tvj_I_10frames.dcd"))
    cases.append(("5xnd", xnd_top, xnd_trj))
    with tempfile.TemporaryDirectory() as tmp:
        cases.append(("5xnd x2 (chains A+B)", *make_two_copies(xnd_top, xnd_trj, Path(tmp))))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
        steps_order = ("read", "superpose", "sasa", "dssp", "angles", "covariance", "contacts")
        print(
            "| case | atoms | residues | frames | total s | ms/frame | "
            + " | ".join(steps_order)
            + " |"
        )
        print("|---" * (6 + len(steps_order)) + "|")
        for name, top, trj in cases:
            total, n_frames, n_atoms, n_res, steps = run_case(top, trj, args.repeat)
            shares = " | ".join(f"{100 * steps[s] / total:.0f}%" for s in steps_order)
            print(
                f"| {name} | {n_atoms} | {n_res} | {n_frames} | {total:.2f} | "
                f"{1000 * total / n_frames:.0f} | {shares} |"
            )


if __name__ == "__main__":
    main()
