"""Frames per second of the native contact detector against the naive per-frame reference.

Systems (real trajectories from the shared data folder):
- 3tvj_I: 531 atoms, 10 frames;
- 5xnd: 1,627 protein atoms (1,629 with two Ca ions), 20 frames;
- 5xnd x2: two copies of 5xnd as chains A and B (3,254 protein atoms), chain B rotated
  180 degrees about z and moved along x until the copies touch (every frame), so the
  frames carry inter-chain contacts too.

The fast detector loops over the in-memory frames ``--repeat`` times (file reading
excluded; reported separately as end-to-end ``detect_contacts`` + TSV writing for 5xnd).
The naive reference runs once over the same frames. Best of ``--trials`` timings.

Usage: python benchmarks/bench_contacts.py [--data /work/shared/data/md] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import mdtraj as md
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from naive_contacts import NaiveContacts  # noqa: E402

from seqdance.features.contact_detector import ContactDetector  # noqa: E402
from seqdance.features.contacts import detect_contacts  # noqa: E402
from seqdance.features.getcontacts import write_contacts  # noqa: E402
from seqdance.features.topology import load_named_topology  # noqa: E402


def two_copies(traj: md.Trajectory, gap: float = 0.35) -> tuple[md.Trajectory, float]:
    """Chain A = ``traj``; chain B = ``traj`` turned 180 degrees about z, moved along x to touch.

    ``gap`` (nm) is the closest heavy-atom distance wanted between the copies in frame 0.
    """
    protein = traj.atom_slice(traj.topology.select("protein"))
    xyz = protein.xyz - protein.xyz[0].mean(axis=0)  # (F, N, 3), frame-0 centre at origin
    turned = xyz * np.array([-1.0, -1.0, 1.0], dtype=np.float32)
    heavy = protein.topology.select("not element H")
    shift = 0.0
    for shift in np.arange(0.0, 20.0, 0.05):  # nm: move B out until the copies just touch
        moved = turned[0, heavy] + np.array([shift, 0, 0], dtype=np.float32)
        d = np.linalg.norm(xyz[0, heavy][:, None] - moved[None], axis=-1)
        if d.min() >= gap:
            break
    top_b = protein.topology.copy()
    for chain in top_b.chains:
        chain.chain_id = "B"
    top = protein.topology.join(top_b)
    both = np.concatenate([xyz, turned + np.array([shift, 0, 0], dtype=np.float32)], axis=1)
    return md.Trajectory(both, top), float(shift)


def best_of(fn, trials: int) -> float:
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_system(name, top, xyz, bond_xyz, repeat, trials) -> dict:
    fast = ContactDetector(top, xyz[0], bond_xyz=bond_xyz)
    n_lines = len(fast.detect(xyz))
    fast_s = best_of(lambda: [fast.detect(xyz) for _ in range(repeat)], trials)
    fast_fps = repeat * len(xyz) / fast_s
    naive = NaiveContacts(top, xyz[0], bond_xyz=bond_xyz)
    naive_s = best_of(lambda: naive.detect(xyz), 1)
    naive_fps = len(xyz) / naive_s
    same = set(fast.detect(xyz)) == naive.detect(xyz)
    row = dict(
        system=name,
        atoms=top.n_atoms,
        frames=len(xyz),
        lines_per_frame=n_lines / len(xyz),
        fast_fps=fast_fps,
        naive_fps=naive_fps,
        speedup=fast_fps / naive_fps,
        equal=same,
    )
    print(
        f"{name:10s} {top.n_atoms:6d} atoms {len(xyz):3d} frames "
        f"{row['lines_per_frame']:7.0f} lines/frame | fast {fast_fps:8.1f} frames/s | "
        f"naive {naive_fps:6.2f} frames/s | x{row['speedup']:.0f} | same lines: {same}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/md"))
    parser.add_argument("--repeat", type=int, default=20, help="passes over the frames (fast)")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; numpy {np.__version__}; mdtraj {md.__version__}")

    systems = []
    tvj_top = args.data / "3tvj_I" / "3tvj_I.pdb"
    top = load_named_topology(tvj_top)
    tvj = md.load(str(args.data / "3tvj_I" / "3tvj_I_10frames.dcd"), top=top)
    pdb_xyz = md.load_pdb(str(tvj_top), standard_names=False).xyz[0]
    systems.append(("3tvj_I", top, tvj.xyz, pdb_xyz))

    xnd_top = args.data / "5xnd" / "5xnd_topology.pdb"
    xnd_trj = args.data / "5xnd" / "5xnd_trajectory.dcd"
    top = load_named_topology(xnd_top)
    xnd = md.load(str(xnd_trj), top=top)
    pdb_xyz = md.load_pdb(str(xnd_top), standard_names=False).xyz[0]
    systems.append(("5xnd", top, xnd.xyz, pdb_xyz))

    double, shift = two_copies(xnd)
    print(f"5xnd x2: chain B turned and shifted {shift:.2f} nm along x")
    systems.append(("5xnd x2", double.topology, double.xyz, None))

    for name, top, xyz, bond_xyz in systems:
        bench_system(name, top, xyz, bond_xyz, args.repeat, args.trials)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "5xnd.tsv"

        def end_to_end():
            header, lines = detect_contacts(xnd_top, xnd_trj)
            write_contacts(out, header, lines)

        seconds = best_of(end_to_end, args.trials)
        print(
            f"end to end (read PDB + DCD, detect, write TSV), 5xnd 20 frames: "
            f"{seconds * 1000:.0f} ms ({20 / seconds:.0f} frames/s incl. setup)"
        )


if __name__ == "__main__":
    main()
