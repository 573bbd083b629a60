"""Substitutions per second of sharded scoring on every rank of a torchrun job.

    torchrun --nproc_per_node N benchmarks/gpu_throughput.py ARCH PROPERTIES [SECONDS] [LENGTH]

ARCH: 35M, 650M, ... (random weights, seed 0, in the published shapes) or ``tiny``;
PROPERTIES: ``all`` (63 channels) or ``residue`` (the 50 residue channels: no pair head).
Each rank scores its own blocks of 152 substitutions of one LENGTH-residue protein
(``score_sequences``, the scorer of ``seqdance score`` and ``scan``; bf16 differential on
GPUs, fp32 on CPUs) for SECONDS after one warm-up block; rank 0 prints one JSON line: the
summed rate, the largest peak memory and the extrapolated time for ProteinGym's 2.5 million
substitutions.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.distributed as dist

from seqdance.inference.options import ScoreOptions
from seqdance.inference.score import score_sequences
from seqdance.model.config import Esm2Architecture, get_architecture
from seqdance.model.seqdance import SeqDanceConfig, SeqDanceModel
from seqdance.schema import RESIDUE_CHANNELS, resolve_properties

PROTEINGYM_SUBSTITUTIONS = 2_500_000
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def main() -> None:
    arch_name, props = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    length = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    dist.init_process_group("gloo")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    arch = (Esm2Architecture("tiny", 2, 32, 4, 64) if arch_name == "tiny"
            else get_architecture(arch_name))  # fmt: skip
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=arch)).eval().to(device)
    channels = resolve_properties(None)
    if props == "residue":
        channels = tuple(c for c in channels if c in set(RESIDUE_CHANNELS))
    options = ScoreOptions(autocast=torch.bfloat16 if cuda else None,
                           residues_only=props == "residue")  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    wt = "".join(AMINO[i] for i in torch.randint(0, 20, (length,), generator=gen).tolist())

    def block(k: int) -> list[str]:  # the 19 substitutions at 8 positions
        out = []
        for p in range((k * 8) % length, (k * 8) % length + 8):
            p %= length
            out += [wt[:p] + a + wt[p + 1 :] for a in AMINO if a != wt[p]]
        return out

    with torch.inference_mode():
        score_sequences(model, wt, block(rank), channels, options)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        done, k, start = 0, rank, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += len(block(k))
            score_sequences(model, wt, block(k), channels, options)
            k += world
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    rows: list = [None] * world
    dist.all_gather_object(rows, (done / elapsed, peak))
    if rank == 0:
        rate = sum(r[0] for r in rows)
        print(json.dumps({
            "case": "throughput", "arch": arch_name, "properties": props, "ranks": world,
            "length": length, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "subs_per_s": rate, "peak_gib": max(r[1] for r in rows),
            "hours_for_2.5M": PROTEINGYM_SUBSTITUTIONS / rate / 3600,
        }), flush=True)  # fmt: skip
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
