"""Saturation-scan speed: ``seqdance scan`` against scoring the same mutants one per forward.

    python benchmarks/bench_scan.py [--arch 35M] [--positions 16] [--threads 2]

Random weights (seed 0) of the given architecture, fp32, CPU. Proteins: CcdB (CCDB_ECOLI,
101 residues) and TEM-1 (BLAT_ECOLX, 263 residues). For each protein and for all 63
properties and residue-only ``sasa_mean,psi``:

- scan: ``seqdance.inference.scan.run_scan`` (blocks of 8 positions, mutants batched by a
  4,096-token budget, the wild type once per block) over the first ``--positions``
  positions (all 19 substitutions each; 0 = the whole protein);
- one per forward: ``score_sequences`` on the same mutants with a token budget of one
  sequence (the wild type once, then one mutant per forward pass).

Both give the same scores (checked). Prints one JSON object and a Markdown table with the
measured times and the full-scan time extrapolated from the per-mutant time.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEM1_FASTA = ROOT / "tests/data/scoring/blat_ecolx_wt.fasta"
CCDB_FASTA = Path("/work/shared/data/dms/proteingym_single/CCDB_ECOLI_Adkar_2012.fasta")
PROPERTY_SETS = {"all 63": None, "sasa_mean,psi": "sasa_mean,psi"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="35M")
    parser.add_argument("--positions", type=int, default=16, help="0 = whole protein")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--protein", choices=["ccdb", "tem1"], help="only this protein")
    parser.add_argument("--properties", choices=list(PROPERTY_SETS), help="only this set")
    args = parser.parse_args()

    import torch

    from seqdance.inference.fasta import read_fasta
    from seqdance.inference.options import ScoreOptions
    from seqdance.inference.scan import mutant_sequence, run_scan, scan_mutants
    from seqdance.inference.score import score_sequences
    from seqdance.inference.summaries import ordered_channels
    from seqdance.model import SeqDanceConfig, SeqDanceModel
    from seqdance.model.config import get_architecture
    from seqdance.schema import resolve_properties

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=get_architecture(args.arch))).eval()
    proteins = {
        "CcdB (101)": read_fasta(CCDB_FASTA)[0].sequence,
        "TEM-1 (263)": read_fasta(TEM1_FASTA)[0].sequence,
    }
    if args.protein:
        proteins = {k: v for k, v in proteins.items() if k.lower().startswith(args.protein[:3])}
    results = []
    for protein, wild_type in proteins.items():
        n_pos = len(wild_type) if args.positions == 0 else min(args.positions, len(wild_type))
        positions = list(range(n_pos))
        mutants = [mutant_sequence(wild_type, m) for m in scan_mutants(wild_type, positions)]
        # warm-up (allocations, thread pools)
        score_sequences(model, wild_type, mutants[:2], ["sasa_mean"])
        for label, props in PROPERTY_SETS.items():
            if args.properties and label != args.properties:
                continue
            channels = ordered_channels(resolve_properties(props))
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                scan = run_scan(model, wild_type, tmp, channels, positions=positions)
                t_scan = time.perf_counter() - start
            start = time.perf_counter()
            single = score_sequences(
                model, wild_type, mutants, channels, ScoreOptions(token_budget=len(wild_type) + 2)
            )
            t_single = time.perf_counter() - start
            got = scan.table[list(channels)].to_numpy()
            diff = float(np.max(np.abs(got - single) / (np.abs(single) + 1e-12)))
            full = 19 * len(wild_type)
            row = {
                "protein": protein,
                "properties": label,
                "mutants": len(mutants),
                "scan_s": t_scan,
                "one_per_forward_s": t_single,
                "speedup": t_single / t_scan,
                "full_scan_mutants": full,
                "full_scan_s_extrapolated": t_scan / len(mutants) * full,
                "full_one_per_forward_s_extrapolated": t_single / len(mutants) * full,
                "max_rel_diff": diff,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "arch": args.arch,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps({"meta": meta, "results": results}))
    print("\n| protein | properties | mutants | scan s | one per forward s | speed-up | "
          "full scan (extrapolated) | one per forward (extrapolated) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['protein']} | {r['properties']} | {r['mutants']} | {r['scan_s']:.1f} | "
            f"{r['one_per_forward_s']:.1f} | {r['speedup']:.2f}x | "
            f"{r['full_scan_s_extrapolated'] / 60:.1f} min | "
            f"{r['full_one_per_forward_s_extrapolated'] / 60:.1f} min |"
        )


if __name__ == "__main__":
    main()
