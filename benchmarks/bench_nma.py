"""Benchmark `seqdance features nma`: a batch of real structures with 1 and 2 workers, and
the time of each step on the largest structure (the ANM eigendecomposition should dominate).

    python benchmarks/bench_nma.py ../shared/data/structures/proteingym_af2 --workers 1 2

Prints Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np


def batch_time(files: list[Path], workers: int) -> tuple[float, int]:
    from seqdance.features.nma import extract_nma_file
    from seqdance.utils.parallel import run_batch

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        results = run_batch(partial(extract_nma_file, out_dir=out), files, workers, progress=False)
        return time.perf_counter() - start, sum(r.ok for r in results)


def step_times(path: Path) -> dict[str, float]:
    import prody

    from seqdance.features import nma
    from seqdance.features.structure import read_calphas

    times: dict[str, float] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        value = fn(*args)
        times[name] = time.perf_counter() - start
        return value

    calphas = timed("read structure", read_calphas, path)
    kirchhoff = timed("Kirchhoff matrix", nma.kirchhoff_matrix, calphas.coords)
    hessian = timed("Hessian matrix", nma.hessian_matrix, calphas.coords)
    gvals, gvecs = timed("GNM modes (N x N eigh)", nma._modes, prody.GNM, kirchhoff, "setKirchhoff")
    timed("GNM bands", lambda: nma.gnm_band_fluctuations(gvals, gvecs, nma.band_split(gvals)))
    avals, avecs = timed("ANM modes (3N x 3N eigh)", nma._modes, prody.ANM, hessian, "setHessian")
    timed("ANM band correlations", lambda: nma.anm_band_correlations(
        avals, avecs, nma.band_split(avals)))  # fmt: skip
    times["N"] = len(calphas)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", type=Path, help="structure to profile (default: largest)")
    args = parser.parse_args()

    files = sorted(args.folder.glob("*.pdb")) + sorted(args.folder.glob("*.cif"))
    sizes = {f: sum(1 for line in open(f) if line.startswith("ATOM") and line[12:16] == " CA ")
             for f in files}  # fmt: skip
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{len(files)} structures, {sum(sizes.values())} residues, "
          f"median {int(np.median(list(sizes.values())))}, max {max(sizes.values())}")  # fmt: skip
    print("\n| workers | wall time (s) | structures/min | written |\n|---|---|---|---|")
    for workers in args.workers:
        seconds, ok = batch_time(files, workers)
        print(
            f"| {workers} | {seconds:.1f} | {60 * len(files) / seconds:.1f} | {ok}/{len(files)} |"
        )

    target = args.profile or max(sizes, key=sizes.get)
    times = step_times(target)
    n = times.pop("N")
    total = sum(times.values())
    print(f"\nSteps on {target.name} (N = {n} C-alpha, Hessian {3 * n} x {3 * n}):\n")
    print("| step | seconds | share |\n|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f}% |")


if __name__ == "__main__":
    main()
