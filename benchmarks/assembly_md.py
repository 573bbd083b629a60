"""Benchmark `seqdance features md` on large assemblies: time per frame and peak memory.

An assembly of ``--copies`` copies of 5xnd (1,629 atoms: 1,627 protein atoms and two
calcium ions, 110 residues; ``tests/data/md/5xnd``) on a grid 8 nm apart: 32 copies are
52,128 atoms (3,520 residue rows), 62 copies 100,998 atoms (6,820 rows). The trajectory is
its 6 frames twice (``--frames`` frames in all). The copies are told apart by segment IDs
P000, P001 ... with blank chain IDs (a layout the code before issue 28 also reads);
``--wrapped`` writes the chain letters A .. Z, A .. wrapped after Z with TER records
instead (only the code after issue 28 reads it).

Every case is a fresh process (``OMP_NUM_THREADS=1``) that makes the library calls of the
command (``md_features`` with the native contact detector, then ``write_md_features``)
once; its peak resident memory (``ru_maxrss``) is the peak of the whole command. With
``--src`` the child imports that source tree: ``git archive 4cd49df src | tar -x -C
/tmp/before`` gives the code before the precision change. Prints one Markdown row per case.

    python benchmarks/assembly_md.py --copies 32 62 --label after
    python benchmarks/assembly_md.py --copies 32 62 --label before --src /tmp/before/src
    python benchmarks/assembly_md.py --copies 32 62 --label after --pair-dtype float32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XND = ROOT / "tests" / "data" / "md" / "5xnd"
SPACING_NM = 8.0


def build(copies: int, frames: int, out: Path, wrapped: bool) -> tuple[Path, Path]:
    """Assembly PDB (first frame) and DCD of ``copies`` copies of 5xnd."""
    import mdtraj as md
    import numpy as np

    traj = md.load(str(XND / "5xnd_6frames.dcd"), top=str(XND / "5xnd_topology.pdb"))
    while traj.n_frames < frames:
        traj = traj.join(traj)
    traj = traj[:frames]
    side = int(np.ceil(copies ** (1 / 3)))
    xyz = []
    for k in range(copies):
        shift = np.array([k % side, (k // side) % side, k // side**2], np.float32) * SPACING_NM
        xyz.append(traj.xyz + shift)
    xyz = np.concatenate(xyz, axis=1)  # (F, copies * n, 3)
    edge = (side + 2) * 80.0  # Angstrom: no copy meets another image
    lines = [f"CRYST1{edge:9.3f}{edge:9.3f}{edge:9.3f}  90.00  90.00  90.00 P 1           1"]
    atoms = list(traj.topology.atoms)
    serial = 0
    for k in range(copies):
        chain = chr(65 + k % 26) if wrapped else " "
        segid = f"P{k:03d}"
        for atom in atoms:
            serial += 1
            x, y, z = xyz[0, k * len(atoms) + atom.index] * 10
            name = atom.name if len(atom.name) == 4 else f" {atom.name:<3}"
            record = "ATOM  " if atom.residue.is_protein else "HETATM"
            lines.append(
                f"{record}{serial % 100000:5d} {name} {atom.residue.name:>3} {chain}"
                f"{atom.residue.resSeq:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00      "
                f"{segid:<4}{atom.element.symbol:>2}"
            )
        lines.append("TER")
    lines.append("END")
    top = out / f"assembly_x{copies}{'_wrapped' if wrapped else ''}.pdb"
    top.write_text("\n".join(lines) + "\n")
    trj = out / f"assembly_x{copies}.dcd"
    if not trj.exists():
        import mdtraj.formats

        with mdtraj.formats.DCDTrajectoryFile(str(trj), "w") as fh:
            box = np.full((frames, 3), edge)
            fh.write(xyz * 10, cell_lengths=box, cell_angles=np.full((frames, 3), 90.0))
    return top, trj


def child(top: str, trj: str, out: str, pair_dtype: str) -> None:
    """One command's library calls; prints JSON (wall time, peak RSS, rows)."""
    import resource

    from seqdance.features.md import md_features, write_md_features

    start = time.perf_counter()
    features = (
        md_features(top, trj, pair_dtype=pair_dtype)
        if pair_dtype != "float64"
        else (md_features(top, trj))
    )  # the code before has no pair_dtype
    write_md_features(features, out)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "wall": wall,
                "frames": features.n_frames,
                "rows": len(features.residues),
                "peak_mib": peak_kib / 1024,
                "dtype": str(features.pair["vdw"].dtype),
                "timings": features.timings,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[32, 62])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="source tree to import")
    parser.add_argument("--label", default="after")
    parser.add_argument("--wrapped", action="store_true", help="wrapped chain letters + TER")
    parser.add_argument("--memory-limit-gb", type=float, default=14.0, help="child's address space")
    parser.add_argument("--pair-dtype", default="float64", help="float64 or float32 (after only)")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child(*args._child)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(args.src.resolve()))
    limit = int(args.memory_limit_gb * 2**30)
    with tempfile.TemporaryDirectory() as tmp:
        for copies in args.copies:
            top, trj = build(copies, args.frames, Path(tmp), args.wrapped)
            out = str(Path(tmp) / "out")
            cmd = [sys.executable, __file__, "--_child", str(top), str(trj), out, args.pair_dtype]
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True,
                preexec_fn=lambda: __import__("resource").setrlimit(
                    __import__("resource").RLIMIT_AS, (limit, limit)
                ),
            )  # fmt: skip
            n_atoms = copies * 1629
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {args.label} | {copies} | {n_atoms:,} | - | - | - | failed: {last} |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {args.label} | {copies} | {n_atoms:,} | {r['rows']:,} | "
                f"{1000 * r['wall'] / r['frames']:.0f} | {r['peak_mib']:,.0f} | {r['dtype']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
