"""int8 engines against float32 torch, on the CPU: torch dynamic quantization and ONNX Runtime.

    python benchmarks/onnx_int8.py [--arch 35M] [--max-variants 30] [--threads 2] [--repeat 3]
                                   [--scan-positions 20] [--models 35M,tiny]

Engines, all in one process and timed interleaved (the order rotates every repeat):

- ``fp32 torch``: the model as loaded (the reference);
- ``int8 torch``: :func:`seqdance.model.quantize.quantize_int8` (what ``--int8`` runs);
- ``int8 ORT``: the trunk exported to ONNX, quantized by ONNX Runtime's ``quantize_dynamic``
  (per-channel int8 MatMul/Gemm weights), run by ONNX Runtime
  (:func:`seqdance.model.onnx_trunk.onnx_model`);
- ``fp32 ORT``: the same ONNX graph unquantized (a reference for the exporter and runtime).

For each model (``--arch`` random, seed 0, and the tiny test architecture with random head
biases) the parity numbers are those of ``benchmarks/int8_parity.py`` (per-channel Spearman
of the 63 channel scores on the bundled ProteinGym assays, Pearson of the 50 residue
properties, maximum absolute differences), and time and peak RSS of the scoring are ratios
to ``fp32 torch`` (medians over ``--repeat`` interleaved runs). Then a scan-like workload at
``--arch``: all 19 substitutions at ``--scan-positions`` evenly spaced positions of the
TEM-1 wild type (tests/data/scoring/blat_ecolx_wt.fasta), residue channels and all 63
channels, timed the same way, with the Spearman of its scores to float32.

Prints one JSON object and Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8_parity import GYM, TINY, build, peak_mib, peak_reset  # noqa: E402

from seqdance.benchmark.assays import read_proteingym_folder, subsample  # noqa: E402
from seqdance.inference.fasta import read_fasta  # noqa: E402
from seqdance.inference.mutations import build_mutant_set  # noqa: E402
from seqdance.inference.predict import iter_outputs  # noqa: E402
from seqdance.inference.scan import mutant_sequence, scan_mutants  # noqa: E402
from seqdance.inference.score import score_sequences  # noqa: E402
from seqdance.model.config import get_architecture  # noqa: E402
from seqdance.model.onnx_trunk import onnx_model  # noqa: E402
from seqdance.model.quantize import quantize_int8  # noqa: E402
from seqdance.schema import RESIDUE_CHANNELS, resolve_properties  # noqa: E402

TEM1 = GYM.parent / "blat_ecolx_wt.fasta"
ENGINES = {
    "fp32 torch": lambda m: m,
    "int8 torch": lambda m: quantize_int8(m, "torch"),
    "int8 ORT": lambda m: onnx_model(m, int8=True),
    "fp32 ORT": lambda m: onnx_model(m, int8=False),
}


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def timed(fn) -> tuple[object, float, float]:
    peak_reset()
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start, peak_mib()


def interleaved(models: dict, fn, repeat: int) -> dict:
    """``fn(model)`` for every engine, ``repeat`` rounds with the order rotated each round:
    the first round's value, median seconds and peak MiB per engine."""
    names = list(models)
    out = {n: {"seconds": [], "peak": []} for n in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            value, seconds, peak = timed(lambda m=models[name]: fn(m))
            out[name].setdefault("value", value)
            out[name]["seconds"].append(seconds)
            out[name]["peak"].append(peak)
    for name in names:
        out[name]["median_s"] = statistics.median(out[name]["seconds"])
        out[name]["peak_mib"] = statistics.median(out[name]["peak"])
    return out


def spearman_per_channel(ref: list[np.ndarray], got: list[np.ndarray]) -> np.ndarray:
    return np.asarray([spearmanr(a[:, c], b[:, c])[0]
                       for a, b in zip(ref, got, strict=True) for c in range(a.shape[1])],
                      float)  # fmt: skip


def parity(ref: dict, got: dict) -> dict:
    rho = spearman_per_channel(ref["scores"], got["scores"])
    a_res, b_res = np.concatenate(ref["residues"]), np.concatenate(got["residues"])
    r = np.asarray([pearsonr(a_res[:, c], b_res[:, c])[0] for c in range(a_res.shape[1])])
    pairs = list(zip(ref["scores"], got["scores"], strict=True))
    return {
        "spearman_min": float(np.nanmin(rho)),
        "spearman_median": float(np.nanmedian(rho)),
        "channels_below_0.99": int(np.sum(rho < 0.99)),
        "channels": int(rho.size),
        "score_max_abs_diff": float(max(np.abs(a - b).max() for a, b in pairs)),
        "residue_pearson_min": float(np.nanmin(r)),
        "residue_max_abs_diff": float(np.abs(a_res - b_res).max()),
    }  # fmt: skip


def gym_assays(max_variants: int) -> list[tuple[str, list[str]]]:
    assays = []
    for assay in read_proteingym_folder(GYM):
        assay = subsample(assay, max_variants)
        mutants = build_mutant_set(assay.wild_type, assay.mutants, assay.mutated_sequences,
                                   assay.offset, first_row=None)  # fmt: skip
        assays.append((assay.wild_type, list(mutants.sequences)))
    return assays


def engines_of(model) -> tuple[dict, dict]:
    """Every engine of ``model`` and the seconds each took to build (export, quantize)."""
    models, build_s = {}, {}
    for name, make in ENGINES.items():
        start = time.perf_counter()
        models[name] = make(model)
        build_s[name] = time.perf_counter() - start
    return models, build_s


def compare_model(label: str, model, assays, channels, repeat: int) -> list[dict]:
    models, build_s = engines_of(model)

    def run(m):
        scores = [score_sequences(m, wt, seqs, channels) for wt, seqs in assays]
        residues = [o.residue for _, o in iter_outputs(m, [wt for wt, _ in assays], pair=False)]
        return {"scores": scores, "residues": residues}

    for m in models.values():  # warm-up: the ONNX pair graph is built on first use
        score_sequences(m, assays[0][0], assays[0][1][:1], channels)
    res = interleaved(models, run, repeat)
    ref = res["fp32 torch"]
    rows = []
    for name in models:
        row = {"model": label, "engine": name, "load": load(), "build_s": build_s[name]}
        row.update(parity(ref["value"], res[name]["value"]))
        row.update(seconds=res[name]["median_s"], all_seconds=res[name]["seconds"],
                   time_ratio=res[name]["median_s"] / ref["median_s"],
                   peak_mib=res[name]["peak_mib"],
                   peak_ratio=res[name]["peak_mib"] / ref["peak_mib"])  # fmt: skip
        rows.append(row)
    return rows


def scan_workload(model, positions: int, repeat: int) -> list[dict]:
    """Score all 19 substitutions at ``positions`` evenly spaced positions of TEM-1."""
    (record,) = list(read_fasta(TEM1))
    wt = record.sequence
    picked = np.linspace(0, len(wt) - 1, positions).round().astype(int).tolist()
    seqs = [mutant_sequence(wt, m) for m in scan_mutants(wt, picked)]
    models = {n: m for n, m in engines_of(model)[0].items() if n != "fp32 ORT"}
    rows = []
    for kind, channels in (("residue (50)", list(RESIDUE_CHANNELS)),
                           ("all 63", resolve_properties(None))):  # fmt: skip
        for m in models.values():
            score_sequences(m, wt, seqs[:1], channels)  # warm-up
        res = interleaved(models, lambda m, c=channels: score_sequences(m, wt, seqs, c), repeat)
        ref = res["fp32 torch"]
        for name in models:
            rho = spearman_per_channel([ref["value"]], [res[name]["value"]])
            rows.append({"channels": kind, "engine": name, "mutants": len(seqs),
                         "length": len(wt), "load": load(),
                         "seconds": res[name]["median_s"], "all_seconds": res[name]["seconds"],
                         "speedup": ref["median_s"] / res[name]["median_s"],
                         "spearman_min": float(np.nanmin(rho)),
                         "spearman_median": float(np.nanmedian(rho)),
                         "channels_below_0.99": int(np.sum(rho < 0.99))})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="35M")
    parser.add_argument("--models", default="35M,tiny", help="parity rows: arch name, tiny, none")
    parser.add_argument("--max-variants", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scan-positions", type=int, default=20, help="0: no scan workload")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["SEQDANCE_THREADS"] = str(args.threads)  # the ORT sessions' thread count
    channels = resolve_properties(None)
    assays = gym_assays(args.max_variants)
    wanted = args.models.split(",")
    rows, scan = [], []
    with torch.inference_mode():
        big = build(get_architecture(args.arch), False)
        if args.arch in wanted:
            rows += compare_model(f"{args.arch} (random)", big, assays, channels, args.repeat)
        if args.scan_positions:
            scan = scan_workload(big, args.scan_positions, args.repeat)
        if "tiny" in wanted:
            rows += compare_model("tiny (random heads)", build(TINY, True), assays, channels,
                                  args.repeat)  # fmt: skip
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": args.threads, "torch": torch.__version__,
                      "onnxruntime": __import__("onnxruntime").__version__,
                      "command": " ".join(["python", *sys.argv]), "rows": rows,
                      "scan": scan}))  # fmt: skip
    print("\n| model | engine | Spearman min (median) | channels < 0.99 | score max abs diff | "
          "residue Pearson min | residue max abs diff | time / fp32 torch (median s) | "
          "peak RSS / fp32 torch | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['engine']} | {r['spearman_min']:.3f} "
              f"({r['spearman_median']:.3f}) | {r['channels_below_0.99']}/{r['channels']} | "
              f"{r['score_max_abs_diff']:.3g} | {r['residue_pearson_min']:.4f} | "
              f"{r['residue_max_abs_diff']:.3g} | {r['time_ratio']:.2f} ({r['seconds']:.1f} s) | "
              f"{r['peak_ratio']:.2f} | {r['load']} |")  # fmt: skip
    if scan:
        print("\n| channels | engine | median s | speed-up vs fp32 torch | Spearman min (median) "
              "| channels < 0.99 | load |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for r in scan:
            print(f"| {r['channels']} | {r['engine']} | {r['seconds']:.1f} | {r['speedup']:.2f} "
                  f"| {r['spearman_min']:.3f} ({r['spearman_median']:.3f}) | "
                  f"{r['channels_below_0.99']}/{r['channels'].split()[-1].strip('()')} | "
                  f"{r['load']} |")  # fmt: skip


if __name__ == "__main__":
    main()
