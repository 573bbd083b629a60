"""Long sequences: peak memory, time and disk of windowed ``seqdance predict`` against L.

    python benchmarks/long_sequence.py --lengths 2000 4000 8000 [--arch 35M] [--window 1022]
        [--pair-dtype float16] [--pairs all] [--threads 2] [--keep DIR]

For each L, one random sequence (seed L) is predicted by ``seqdance predict --window`` in a
fresh process (``python -m seqdance``) with a model of the architecture, random weights
(seed 0) saved in the published layout (config.json + model.safetensors). Peak memory is
the child's resident high-water mark (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``,
one child per run, so the maximum is that run's); disk is the size of the output folder.
Random weights are fine: cost does not depend on the values. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def save_model(arch: str, folder: Path) -> Path:
    import torch

    from seqdance.model import SeqDanceConfig, SeqDanceModel, get_architecture

    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=get_architecture(arch))).eval()
    return model.save_pretrained(folder)


def run_one(length: int, model_dir: Path, work: Path, args) -> dict:
    rng = random.Random(length)
    fasta = work / f"L{length}.fasta"
    fasta.write_text(f">L{length}\n" + "".join(rng.choice(AMINO) for _ in range(length)) + "\n")
    out = work / f"out{length}"
    command = [sys.executable, "-m", "seqdance", "predict", str(fasta), "-m", str(model_dir),
               "-o", str(out), "--device", "cpu", "--no-progress", "--window", str(args.window),
               "--token-budget", str(args.token_budget), "--pairs", args.pairs,
               "--pair-dtype", args.pair_dtype]  # fmt: skip
    if args.pair_band is not None:
        command += ["--pair-band", str(args.pair_band)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # GiB (Linux: KiB)
    disk = sum(p.stat().st_size for p in out.iterdir()) / 1024**3
    return {"L": length, "seconds": seconds, "peak": peak, "disk": disk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--arch", default="35M")
    parser.add_argument("--window", type=int, default=1022)
    parser.add_argument("--token-budget", type=int, default=1024)
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--pair-band", type=int, default=None)
    parser.add_argument("--pair-dtype", default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="work folder (kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = save_model(args.arch, work / "model")
        setup = (f"--window {args.window}, --token-budget {args.token_budget}, --pairs "
                 f"{args.pairs}, --pair-dtype {args.pair_dtype}")  # fmt: skip
        print(f"{platform.node()}, {os.cpu_count()} cores, {args.arch} random weights, {setup}, "
              f"OMP_NUM_THREADS={args.threads}\n")  # fmt: skip
        print("| L | time | peak RSS | disk |\n|---|---|---|---|")
        for length in args.lengths:
            # each length in its own child; RUSAGE_CHILDREN keeps the largest child so far, so
            # lengths are run in increasing order and each is measured by a fresh parent
            if len(args.lengths) > 1:
                sub = [sys.executable, __file__, "--lengths", str(length), "--arch", args.arch,
                       "--window", str(args.window), "--token-budget", str(args.token_budget),
                       "--pairs", args.pairs, "--pair-dtype", args.pair_dtype,
                       "--threads", str(args.threads),
                       "--keep", str(work / f"run{length}")]  # fmt: skip
                if args.pair_band is not None:
                    sub += ["--pair-band", str(args.pair_band)]
                lines = subprocess.run(sub, check=True, capture_output=True, text=True).stdout
                print(lines.strip().splitlines()[-1], flush=True)
                continue
            r = run_one(length, model_dir, work, args)
            print(f"| {r['L']:,} | {r['seconds']:.0f} s | {r['peak']:.2f} GiB | "
                  f"{r['disk']:.2f} GiB |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
