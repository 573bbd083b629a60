"""Cost of writing HDF5 through ``seqdance.utils.io.h5_output`` (a Python file object that
latches write failures) against h5py's own sec2 driver on the same arrays.

    PYTHONPATH=src python benchmarks/bench_h5_output.py [--arrays 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from seqdance.utils.io import h5_output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arrays", type=int, default=40, help="(300, 300, 13) float32 arrays")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    arrays = [rng.random((300, 300, 13), dtype=np.float32) for _ in range(args.arrays)]
    size = sum(a.nbytes for a in arrays) / 1e6

    def plain(path: Path) -> None:
        with h5py.File(path, "w") as h5:
            for i, a in enumerate(arrays):
                h5.create_dataset(str(i), data=a)

    def latched(path: Path) -> None:
        with h5_output(path) as h5:
            for i, a in enumerate(arrays):
                h5.create_dataset(str(i), data=a)

    with tempfile.TemporaryDirectory() as folder:
        best = {}
        for _ in range(args.repeats):
            for fn in (plain, latched):
                start = time.perf_counter()
                fn(Path(folder) / f"{fn.__name__}.h5")
                took = time.perf_counter() - start
                best[fn.__name__] = min(best.get(fn.__name__, took), took)
        with h5py.File(Path(folder) / "plain.h5") as a, h5py.File(Path(folder) / "latched.h5") as b:
            same = all(np.array_equal(a[k][()], b[k][()]) for k in a)
    for name, took in best.items():
        print(f"{name:8s} {size:7.1f} MB  best of {args.repeats}: {took:.3f} s")
    print(f"same values: {same}")


if __name__ == "__main__":
    main()
