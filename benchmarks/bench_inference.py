"""Inference benchmark: memory-efficient model vs the naive formulation, and throughput.

    python benchmarks/bench_inference.py compare [--length 1022] [--arch 35M]
    python benchmarks/bench_inference.py throughput [--lengths 100 300 1000]

``compare`` runs each variant in a fresh subprocess (same random weights: seed 0; same
random sequence) and reports wall time of one forward pass and the process's peak
resident memory (``resource.getrusage`` maxrss), and checks the two agree.
``throughput`` reports sequences per second of ``seqdance.inference.predict`` (pair head on,
and residue head only) for batches of equal-length random sequences.
Random weights are fine: the cost does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def random_sequence(length: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(AMINO) for _ in range(length))


def build_model(arch: str):
    import torch

    from seqdance.model import SeqDanceConfig, SeqDanceModel, get_architecture

    torch.manual_seed(0)
    return SeqDanceModel(SeqDanceConfig(arch=get_architecture(arch))).eval()


def run_variant(variant: str, length: int, arch: str, out: str) -> None:
    """Child process: one forward pass of ``variant``; prints a JSON line."""
    import numpy as np
    import torch

    from seqdance.model.alphabet import batch_encode

    model = build_model(arch)
    ids, mask = batch_encode([random_sequence(length)])
    warm_ids, warm_mask = batch_encode([random_sequence(16, seed=1)])
    with torch.no_grad():
        if variant == "naive":
            sys.path.insert(0, str(HERE))
            from naive_model import naive_forward, stock_trunk

            trunk = stock_trunk(model)  # transformers' EsmModel, eager attention
            del model.esm2  # only the heads are used
            naive_forward(model, warm_ids, warm_mask, trunk)
            start = time.perf_counter()
            residue, pair, _ = naive_forward(model, ids, mask, trunk)
        else:
            model(warm_ids, warm_mask)
            start = time.perf_counter()
            result = model(ids, mask)
            residue, pair = result.residue, result.pair
        seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.savez(out, residue=residue[0].numpy(), pair=pair[0].numpy())
    print(json.dumps({"variant": variant, "seconds": seconds, "peak_gb": peak_kb / 1024**2}))


def compare(length: int, arch: str) -> None:
    import numpy as np

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("efficient", "naive"):
            out = os.path.join(tmp, f"{variant}.npz")
            cmd = [sys.executable, __file__, "_child", variant, str(length), arch, out]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[variant] = json.loads(line.strip().splitlines()[-1])
            results[variant]["arrays"] = dict(np.load(out))
    eff, naive = results["efficient"], results["naive"]
    diff = max(
        float(np.abs(eff["arrays"][k] - naive["arrays"][k]).max()) for k in ("residue", "pair")
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"one sequence of {length} residues, {arch}, CPU, fp32, random weights (seed 0)\n")
    print("| variant | wall time (s) | peak memory (GB) |")
    print("|---|---|---|")
    for name, r in (("naive (full pair tensor, stacked maps)", naive), ("seqdance", eff)):
        print(f"| {name} | {r['seconds']:.1f} | {r['peak_gb']:.2f} |")
    print(
        f"| ratio seqdance / naive | {eff['seconds'] / naive['seconds']:.2f} "
        f"| {eff['peak_gb'] / naive['peak_gb']:.2f} |"
    )
    print(f"\nmax |difference| of the outputs: {diff:.2e}")


def throughput(lengths: list[int], arch: str, counts: dict[int, int]) -> None:
    import torch

    from seqdance.inference.predict import predict

    model = build_model(arch)
    predict(model, [random_sequence(16)])  # warm-up
    print(f"{arch}, CPU, fp32, torch threads {torch.get_num_threads()}\n")
    print("| length | sequences | pair + residue (seq/s) | residue only (seq/s) |")
    print("|---|---|---|---|")
    for length in lengths:
        n = counts.get(length, max(1, 2000 // length))
        seqs = [random_sequence(length, seed=i) for i in range(n)]
        rates = []
        for pair in (True, False):
            start = time.perf_counter()
            predict(model, seqs, pair=pair)
            rates.append(n / (time.perf_counter() - start))
        print(f"| {length} | {n} | {rates[0]:.2f} | {rates[1]:.2f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _, _, variant, length, arch, out = sys.argv
        run_variant(variant, int(length), arch, out)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    cmp_parser = sub.add_parser("compare")
    cmp_parser.add_argument("--length", type=int, default=1022)
    cmp_parser.add_argument("--arch", default="35M")
    thr = sub.add_parser("throughput")
    thr.add_argument("--lengths", type=int, nargs="+", default=[100, 300, 1000])
    thr.add_argument("--arch", default="35M")
    args = parser.parse_args()
    if args.mode == "compare":
        compare(args.length, args.arch)
    else:
        throughput(args.lengths, args.arch, {100: 16, 300: 8, 1000: 2})


if __name__ == "__main__":
    main()
