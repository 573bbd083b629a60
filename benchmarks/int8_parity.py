"""int8 (dynamic quantization of the trunk's Linear layers) against float32, on the CPU.

    python benchmarks/int8_parity.py [--arch 35M] [--max-variants 40] [--threads 2]
                                     [--engine onnx|torch]

``--engine``: the int8 engine (:func:`seqdance.model.quantize.quantize_int8`; ``onnx``, what
``--int8`` runs, or ``torch``). ``benchmarks/onnx_int8.py`` runs every engine in one process.

For each model (``--arch`` with random weights, seed 0, in the published layout; and the
tiny test architecture with random head biases, as a second, small case) and each bundled
ProteinGym assay (tests/data/scoring/proteingym, first ``--max-variants`` variants):

- the channel scores of ``score_sequences`` (all 63 channels) in float32 and int8: per-channel
  Spearman between the two (the minimum over channels and assays is the parity number;
  goal >= 0.99), and the maximum absolute difference;
- the wild types' predicted residue properties (50 channels): Pearson per channel (minimum
  reported; goal >= 0.99) and the maximum absolute difference;
- time of the scoring and peak resident memory (VmHWM, reset before each variant) in the
  same run, as int8 / float32 ratios.

Prints one JSON object and a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from seqdance.benchmark.assays import read_proteingym_folder, subsample
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.predict import iter_outputs
from seqdance.inference.score import score_sequences
from seqdance.model.config import Esm2Architecture, get_architecture
from seqdance.model.quantize import quantize_int8
from seqdance.model.seqdance import SeqDanceConfig, SeqDanceModel
from seqdance.schema import resolve_properties

GYM = Path(__file__).resolve().parents[1] / "tests" / "data" / "scoring" / "proteingym"
TINY = Esm2Architecture("tiny", 2, 32, 4, 64)


def peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(arch, head_biases: bool) -> SeqDanceModel:
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=arch)).eval()
    if head_biases:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if not name.startswith("esm2") and name.endswith("bias"):
                    param.normal_(0, 0.3)
    return model


def measure(model, assays, channels) -> dict:
    peak_reset()
    start = time.perf_counter()
    scores = [score_sequences(model, wt, seqs, channels) for wt, seqs in assays]
    seconds = time.perf_counter() - start
    residues = [o.residue for _, o in iter_outputs(model, [wt for wt, _ in assays], pair=False)]
    return {"scores": scores, "residues": residues, "seconds": seconds, "peak": peak_mib()}


def compare(name: str, model, assays, channels, engine: str = "onnx") -> dict:
    with torch.inference_mode():
        fp32 = measure(model, assays, channels)
        int8 = measure(quantize_int8(model, engine), assays, channels)
    rho = [spearmanr(a[:, c], b[:, c])[0]
           for a, b in zip(fp32["scores"], int8["scores"], strict=True)
           for c in range(a.shape[1])]  # fmt: skip
    a_res, b_res = np.concatenate(fp32["residues"]), np.concatenate(int8["residues"])
    r = [pearsonr(a_res[:, c], b_res[:, c])[0] for c in range(a_res.shape[1])]
    rho, r = np.asarray(rho, float), np.asarray(r, float)
    return {
        "model": name,
        "spearman_min": float(np.nanmin(rho)),
        "spearman_median": float(np.nanmedian(rho)),
        "channels_below_0.99": int(np.sum(rho < 0.99)),
        "channels": int(rho.size),
        "score_max_abs_diff": float(
            max(np.abs(a - b).max() for a, b in zip(fp32["scores"], int8["scores"], strict=True))
        ),
        "residue_pearson_min": float(np.nanmin(r)),
        "residue_max_abs_diff": float(np.abs(a_res - b_res).max()),
        "fp32_seconds": fp32["seconds"],
        "int8_seconds": int8["seconds"],
        "time_ratio": int8["seconds"] / fp32["seconds"],
        "peak_ratio": int8["peak"] / fp32["peak"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="35M")
    parser.add_argument("--max-variants", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=["onnx", "torch"], default="onnx")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    channels = resolve_properties(None)
    assays = []
    for assay in read_proteingym_folder(GYM):
        assay = subsample(assay, args.max_variants)
        mutants = build_mutant_set(assay.wild_type, assay.mutants, assay.mutated_sequences,
                                   assay.offset, first_row=None)  # fmt: skip
        assays.append((assay.wild_type, list(mutants.sequences)))
    big = build(get_architecture(args.arch), False)
    rows = [
        compare(f"{args.arch} (random)", big, assays, channels, args.engine),
        compare("tiny (random heads)", build(TINY, True), assays, channels, args.engine),
    ]
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": args.threads, "torch": torch.__version__, "engine": args.engine,
                      "command": " ".join(["python", *sys.argv]), "rows": rows}))  # fmt: skip
    print(
        "\n| model | Spearman min (median) | channels < 0.99 | score max abs diff | "
        "residue Pearson min | residue max abs diff | time int8/fp32 | peak RSS int8/fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['spearman_min']:.3f} ({r['spearman_median']:.3f}) | "
              f"{r['channels_below_0.99']}/{r['channels']} | {r['score_max_abs_diff']:.3g} | "
              f"{r['residue_pearson_min']:.4f} | {r['residue_max_abs_diff']:.3g} | "
              f"{r['time_ratio']:.2f} ({r['int8_seconds']:.1f} s / {r['fp32_seconds']:.1f} s) | "
              f"{r['peak_ratio']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
