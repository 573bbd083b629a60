"""Benchmark `seqdance features md`: whole-command time per frame, the share of each step, and
the speed-up over a baseline checkout (e.g. before the SASA kernel).

Cases: 5xnd (1,627 protein atoms, 20 frames, GetContacts' test trajectory), adenylate kinase
(3,341 atoms, MDAnalysisTests' ``adk.psf`` + ``adk_dims.dcd``, 98 frames; a benchmark-only
input), four adenylate kinase copies as chains A-D 8 nm apart (13,364 atoms, first
``--frames`` frames, built by the script), and optionally 3tvj_I (531 atoms, 10 frames).

    git archive main src | tar -x -C /tmp/base   # the code before, for --baseline-src
    python benchmarks/bench_md_features.py ../shared/data/md --adk-psf adk.psf \\
        --adk-dcd adk_dims.dcd --baseline-src /tmp/base/src --repeat 2 --scaling

Every run is a fresh process (``OMP_NUM_THREADS=1``: the cost per core) that makes the
library call the command makes (``md_features`` then ``write_md_features``, native
interaction detector) once to warm up, as a dataset-build worker is after its first protein,
then times it; new and baseline runs alternate and the best of ``--repeat`` counts. The step
shares come from ``MDFeatures.timings``. ``--scaling`` runs the 5xnd and adenylate kinase
cases in 1 and in 2 concurrent processes and reports frames per second. Prints Markdown rows
for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("read", "superpose", "sasa", "dssp", "angles", "covariance", "contacts")


def tiled(top: Path, trj: Path, copies: int, out_dir: Path, frames: int) -> tuple[Path, Path]:
    """``copies`` copies of a protein as chains A, B, ... 8 nm apart in x (real PDB + DCD)."""
    import mdtraj as md
    import numpy as np

    traj = md.load(str(trj), top=str(top))[:frames]
    protein = traj.atom_slice(traj.topology.select("protein"))
    whole = protein
    for k in range(1, copies):
        other = protein[:]
        other.xyz = protein.xyz + np.array([8.0 * k, 0.0, 0.0], dtype=np.float32)
        whole = whole.stack(other)
    for chain, chain_id in zip(whole.topology.chains, "ABCDEFGH", strict=False):
        chain.chain_id = chain_id
    top_out, trj_out = out_dir / f"tiled_x{copies}.pdb", out_dir / f"tiled_x{copies}.dcd"
    whole[0].save_pdb(str(top_out))
    whole.save_dcd(str(trj_out))
    return top_out, trj_out


def one_run(top: str, trj: str, start_at: float, loops: int) -> None:
    """Child process: ``loops`` ``features md`` library calls from ``start_at`` (epoch s), JSON."""
    import mdtraj as md

    from seqdance.features.md import md_features, write_md_features

    with tempfile.TemporaryDirectory() as out:
        # a warm process, as a dataset-build worker is after its first protein (imports,
        # the compiled SASA kernel loaded from Numba's cache: ~2.5 s once per process)
        first = time.perf_counter()
        write_md_features(md_features(top, trj), Path(out) / "warm")
        first = time.perf_counter() - first
        time.sleep(max(0.0, start_at - time.time()))  # concurrent children start together
        start = time.perf_counter()
        for _ in range(loops):
            features = md_features(top, trj)
            write_md_features(features, Path(out) / "case")
        total = time.perf_counter() - start
    n_atoms = md.load_topology(top).select("protein").size
    print(
        json.dumps(
            {
                "total": total,
                "first": first,
                "frames": features.n_frames * loops,
                "atoms": int(n_atoms),
                "residues": len(features.sequence),
                "steps": features.timings,
            }
        )
    )


def spawn(
    src: Path, top: Path, trj: Path, start_at: float = 0.0, loops: int = 1
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(src))
    args = [sys.executable, __file__, "--one", str(top), str(trj), str(start_at), str(loops)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def collect(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"error: benchmark child failed ({proc.args})")
    return json.loads(out.decode().strip().splitlines()[-1])


def best(src: Path, top: Path, trj: Path, runs: list[dict]) -> dict:
    runs.append(collect(spawn(src, top, trj)))
    return min(runs, key=lambda r: r["total"])


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        one_run(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with 5xnd/ and 3tvj_I/ (shared data md/)")
    parser.add_argument("--adk-psf", type=Path, required=True)
    parser.add_argument("--adk-dcd", type=Path, required=True)
    parser.add_argument("--baseline-src", type=Path, help="src/ of the code to compare with")
    parser.add_argument("--frames", type=int, default=10, help="frames of the 13k-atom case")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best counts")
    parser.add_argument("--scaling", action="store_true", help="1 vs 2 concurrent processes")
    args = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"

    xnd = args.data / "5xnd"
    cases = []
    tvj = args.data / "3tvj_I"
    if tvj.is_dir():
        cases.append(("3tvj_I", tvj / "3tvj_I.pdb", tvj / "3tvj_I_10frames.dcd"))
    cases.append(("5xnd", xnd / "5xnd_topology.pdb", xnd / "5xnd_trajectory.dcd"))
    cases.append(("adenylate kinase", args.adk_psf, args.adk_dcd))
    with tempfile.TemporaryDirectory() as tmp:
        x4 = tiled(args.adk_psf, args.adk_dcd, 4, Path(tmp), args.frames)
        cases.append(("adenylate kinase x4", *x4))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
        print(
            "| case | atoms | residues | frames | baseline ms/frame | ms/frame | speed-up | "
            + " | ".join(STEPS)
            + " |"
        )
        print("|---" * (7 + len(STEPS)) + "|")
        for name, top, trj in cases:
            new_runs: list[dict] = []
            old_runs: list[dict] = []
            for _ in range(args.repeat):  # alternate new and baseline
                new = best(src, top, trj, new_runs)
                if args.baseline_src is not None:
                    old = best(args.baseline_src, top, trj, old_runs)
            per = 1000 * new["total"] / new["frames"]
            shares = " | ".join(f"{100 * new['steps'][s] / new['total']:.0f}%" for s in STEPS)
            if args.baseline_src is not None:
                old_per = 1000 * old["total"] / old["frames"]
                base = f"{old_per:.0f} | {per:.1f} | {old_per / per:.1f}x"
            else:
                base = f"- | {per:.1f} | -"
            print(
                f"| {name} | {new['atoms']} | {new['residues']} | {new['frames']} | {base} | "
                f"{shares} |"
            )
        if args.scaling:
            print()
            print("| case | code | 1 process frames/s | 2 processes frames/s | scaling |")
            print("|---|---|---|---|---|")
            codes = [("new", src)]
            if args.baseline_src is not None:
                codes.append(("baseline", args.baseline_src))
            for name, top, trj in cases:
                if name not in ("5xnd", "adenylate kinase"):
                    continue
                for label, code in codes:
                    loops = 3 if label == "new" else 1  # runs of several seconds each
                    rate = {}
                    for n in (1, 2):
                        start_at = time.time() + 30.0  # after every child's warm-up call
                        procs = [spawn(code, top, trj, start_at, loops) for _ in range(n)]
                        results = [collect(p) for p in procs]
                        # frames per second of all processes together, from the common start
                        rate[n] = sum(r["frames"] for r in results) / max(
                            r["total"] for r in results
                        )
                    print(
                        f"| {name} | {label} | {rate[1]:.1f} | {rate[2]:.1f} | "
                        f"{rate[2] / rate[1]:.2f}x |"
                    )


if __name__ == "__main__":
    main()
