"""Benchmark the training dataset: build throughput (proteins per minute, 1 and 2 workers) and
loading throughput (items/s, batches/s) of the torch Dataset.

    python benchmarks/bench_dataset.py ../shared/data --workers 1 2

Builds, in a temporary folder, (a) an NMA dataset of the first N mega-scale wild-type
structures, (b) an MD dataset of 3tvj_I (10 frames) and 5xnd (20 frames), each repeated
under several names; then times a loader over AF2 models of ProteinGym targets (long
proteins, cropped to 256 tokens). Prints Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def write_manifest(path: Path, rows: list[str]) -> Path:
    path.write_text(
        "name,source,kind,topology,trajectory,structure,label\n" + "\n".join(rows) + "\n"
    )
    return path


def timed_build(manifest: Path, out: Path, workers: int) -> tuple[float, int]:
    from seqdance.data.build import BuildConfig, build_dataset

    start = time.perf_counter()
    report = build_dataset(manifest, out, BuildConfig(workers=workers, progress=False))
    elapsed = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"build failed: {report.failed}")
    return elapsed, len(report.built)


def loader_rates(
    root: Path, crop: int, batch_size: int, workers: int, n_items: int
) -> tuple[float, float]:
    import torch

    from seqdance.data.dataset import DatasetConfig, ProteinDataset, group_loaders

    ds = ProteinDataset(root, config=DatasetConfig(crop_size=crop))
    torch.manual_seed(0)
    start = time.perf_counter()
    for i in range(n_items):
        ds[i % len(ds)]
    items_per_s = n_items / (time.perf_counter() - start)

    loader = next(iter(group_loaders(ds, batch_size=batch_size, num_workers=workers).values()))
    it = iter(loader)
    next(it)  # start the workers
    n_batches = max(1, n_items // batch_size)
    start = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    return items_per_s, n_batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n-nma", type=int, default=97)
    parser.add_argument("--md-copies", type=int, default=4)
    parser.add_argument("--n-loader", type=int, default=16, help="AF2 structures for the loader")
    args = parser.parse_args()

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    nma_files = sorted((args.data / "structures" / "megascale_wildtypes").glob("*.pdb"))[
        : args.n_nma
    ]
    nma_rows = [f"{p.stem},proteinflow_pdb,nma,,,{p},train" for p in nma_files]
    md = args.data / "md"
    md_rows = []
    for k in range(args.md_copies):
        md_rows.append(
            f"tvj{k},ATLAS,md,{md / '3tvj_I/3tvj_I.pdb'},{md / '3tvj_I/3tvj_I_10frames.dcd'},,train"
        )
        xnd = md / "5xnd"
        md_rows.append(
            f"xnd{k},ATLAS,md,{xnd / '5xnd_topology.pdb'},{xnd / '5xnd_trajectory.dcd'},,train"
        )

    print(f"machine: {machine}")
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, file cache
        warm = write_manifest(Path(tmp) / "w.csv", [nma_rows[0], md_rows[0]])
        timed_build(warm, Path(tmp) / "w", 1)
    print("| data | proteins | workers | seconds | proteins/min |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, rows in (
            ("NMA mega-scale wild types (34-72 res.)", nma_rows),
            ("MD 3tvj_I (38 res., 10 fr.) + 5xnd (110 res., 20 fr.)", md_rows),
        ):
            for workers in args.workers:
                out = tmp / f"{label[:3]}_{workers}"
                manifest = write_manifest(tmp / f"{label[:3]}.csv", rows)
                seconds, n = timed_build(manifest, out, workers)
                print(f"| {label} | {n} | {workers} | {seconds:.1f} | {60 * n / seconds:.0f} |")

        af2 = sorted((args.data / "structures" / "proteingym_af2").glob("*.pdb"))[: args.n_loader]
        manifest = write_manifest(
            tmp / "af2.csv", [f"{p.stem},proteinflow_pdb,nma,,,{p},train" for p in af2]
        )
        timed_build(manifest, tmp / "af2", max(args.workers))
        from seqdance.data.dataset import ProteinDataset

        lengths = ProteinDataset(tmp / "af2").index["length"]
        print(
            f"\nloader over {len(af2)} AF2 models ({lengths.min()}-{lengths.max()} residues, "
            f"median {int(lengths.median())}):"
        )
        print("| crop (tokens) | batch | loader workers | items/s (one process) | batches/s |")
        print("|---|---|---|---|---|")
        for crop, batch in ((256, 16), (1024, 2)):
            for workers in (0, 2):
                items, batches = loader_rates(tmp / "af2", crop, batch, workers, 64)
                print(f"| {crop} | {batch} | {workers} | {items:.0f} | {batches:.1f} |")


if __name__ == "__main__":
    main()
