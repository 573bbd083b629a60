"""Time and size of the two figures ``predict --plots`` draws per record, at several lengths.

    PYTHONPATH=src python benchmarks/bench_figures.py --sizes 30,300,1000 --repeat 3

Random outputs of the right shapes; the best of ``--repeat`` runs per figure. Runs against
whichever ``seqdance`` is on the path (the function signatures are those of every version
that has ``plot_profiles(path, id, residue)`` and ``plot_pairs(path, id, pair)``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from seqdance.inference.plots import plot_pairs, plot_profiles
from seqdance.schema import N_PAIR_OUTPUTS, N_RESIDUE_OUTPUTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,300,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", default="png")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print("| L | figure | seconds (best) | file size (kB) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            residue = rng.random((n, N_RESIDUE_OUTPUTS))
            pair = rng.random((n, n, N_PAIR_OUTPUTS)).astype(np.float32)
            for name, draw, data in (("profiles", plot_profiles, residue),
                                     ("pairs", plot_pairs, pair)):  # fmt: skip
                path = Path(tmp) / f"r.{name}.{args.format}"
                best = np.inf
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    draw(path, "r", data)
                    best = min(best, time.perf_counter() - start)
                size = path.stat().st_size / 1e3
                print(f"| {n} | {name} | {best:.2f} | {size:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
