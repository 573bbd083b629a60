"""Zero-shot scoring speed: ``seqdance.inference.score`` against a naive loop.

    python benchmarks/bench_score.py [--mutants 16] [--arch 35M] [--threads 2]

Same random weights (seed 0) for every variant; TEM-1 (263 residues) with evenly spaced
single mutants of the Stiffler 2015 scan. Variants:

- naive: the wild type once, then one mutant per forward pass of
  ``benchmarks/naive_model.py`` (full (T, T, 2E) pair tensor, all 63 outputs), scores in
  float64 numpy;
- fast, all 63 properties: ``score_sequences`` (batched mutants, memory-efficient pair head);
- fast, ``sasa_mean,psi``: residue channels only (no pair head, fused attention), in fp32
  and bf16;
- bf16 (what ``--dtype bf16`` does): differential inference
  (``seqdance.model.differential``: the wild type in fp32, each mutant's trunk Linears
  in bf16 on its difference from the wild type), compared with fp32 by Spearman over the
  mutants, per channel and for every combined column; for reference the same agreement of
  plain trunk autocast (``SeqDanceModel.forward(trunk_autocast=bfloat16)``, the path
  before differential inference); and all three against an all but exact float64
  reference (``exact_scores``), which shows how much of the fp32-vs-bf16 gap is fp32's own
  rounding.

Random weights are fine for speed; the bf16 agreement is reported for them too. Prints
one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_TEM1 = Path("/work/shared/data/dms/blat_ecolx/BLAT_ECOLX_Ranganathan2015.csv")
TEST_TEM1 = ROOT / "tests/data/scoring/blat_ecolx_30.csv"
TEM1_FASTA = ROOT / "tests/data/scoring/blat_ecolx_wt.fasta"


def _naive_forward():
    spec = importlib.util.spec_from_file_location("naive_model", HERE / "naive_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.naive_forward


def naive_scores(model, wild_type: str, sequences: list[str]) -> np.ndarray:
    """(N, 63) scores, one mutant per naive forward pass."""
    from seqdance.model.alphabet import batch_encode

    forward = _naive_forward()

    def outputs(seq):
        ids, mask = batch_encode([seq])
        res, pair, _ = forward(model, ids, mask)
        return res[0, 1:-1].double().numpy(), pair[0, 1:-1, 1:-1].double().numpy()

    res_wt, pair_wt = outputs(wild_type)
    rows = []
    for seq in sequences:
        res, pair = outputs(seq)
        r = (np.abs(res - res_wt) / (np.abs(res_wt) + 0.01)).mean(axis=0)
        p = (np.abs(pair - pair_wt) / (np.abs(pair_wt) + 0.01)).mean(axis=(0, 1))
        rows.append(np.concatenate([r, p]))
    return np.stack(rows)


def _agreement(low: np.ndarray, fp32: np.ndarray, channels) -> dict:
    """Spearman of low-precision scores with fp32 ones over the mutants: per channel
    (min, median, how many below 0.99) and per combined column; relative score errors."""
    from scipy.stats import spearmanr

    from seqdance.inference.summaries import summarise_scores

    rhos = np.array([spearmanr(low[:, c], fp32[:, c]).statistic for c in range(fp32.shape[1])])
    want, got = summarise_scores(channels, fp32).combined, summarise_scores(channels, low).combined
    rel = np.abs(low - fp32) / np.maximum(np.abs(fp32), 1e-12)
    return {
        "spearman_min": float(np.nanmin(rhos)),
        "spearman_median": float(np.nanmedian(rhos)),
        "channels_below_0.99": int((rhos < 0.99).sum()),
        "combined": {k: float(spearmanr(want[k], got[k]).statistic) for k in want},
        "max_rel_diff": float(rel.max()),
        "median_rel_diff": float(np.median(rel)),
    }


def exact_scores(model, wild_type: str, sequences: list[str], token_budget: int) -> np.ndarray:
    """(N, 63) scores of a float64 copy of ``model`` by differential inference with every
    product in float64: the float64 wild type plus float64 differences, an all but exact
    reference (float64 rounding is ~1e-16) against which fp32 and bf16 are both measured."""
    import copy

    import torch

    from seqdance.inference.relative_change import reduce_changes
    from seqdance.model.alphabet import batch_encode, encode
    from seqdance.model.differential import differential_forward, wild_type_activations

    exact = copy.deepcopy(model).double()
    reference, wt = wild_type_activations(exact, torch.tensor(encode(wild_type)))
    real = slice(1, len(wild_type) + 1)
    batch = max(1, token_budget // (len(wild_type) + 2))
    parts = []
    for i in range(0, len(sequences), batch):
        ids, _ = batch_encode(sequences[i : i + batch])
        out = differential_forward(exact, reference, ids, dtype=None)
        parts.append(
            reduce_changes(
                out.residue[:, real],
                out.pair[:, real, real],
                wt.residue[0, real],
                wt.pair[0, real, real],
                0.01,
            )  # fmt: skip
        )
    return np.concatenate(parts)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=16)
    parser.add_argument("--arch", default="35M")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--token-budget", type=int, default=4096)
    args = parser.parse_args()

    import pandas as pd
    import torch

    from seqdance.inference.fasta import read_fasta
    from seqdance.inference.mutations import build_mutant_set
    from seqdance.inference.options import ScoreOptions
    from seqdance.inference.outputs import scored_outputs, split_channels
    from seqdance.inference.relative_change import reduce_changes
    from seqdance.inference.score import score_sequences
    from seqdance.model import SeqDanceConfig, SeqDanceModel, get_architecture
    from seqdance.schema import resolve_properties

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=get_architecture(args.arch))).eval()
    wild_type = read_fasta(TEM1_FASTA)[0].sequence
    table = pd.read_csv(SHARED_TEM1 if SHARED_TEM1.is_file() else TEST_TEM1, encoding="utf-8-sig")
    pick = np.linspace(0, len(table) - 1, args.mutants).round().astype(int)
    mutants = build_mutant_set(wild_type, table["mutant"].iloc[pick].tolist(), offset=24)
    seqs = list(mutants.sequences)
    all63 = resolve_properties(None)
    residue = resolve_properties("sasa_mean,psi")
    budget = args.token_budget
    fp32_options = ScoreOptions(token_budget=budget)
    bf16_options = ScoreOptions(token_budget=budget, autocast=torch.bfloat16)

    with torch.no_grad():
        # warm-up (allocator, kernels) on 2 mutants, not timed
        score_sequences(model, wild_type, seqs[:2], all63, fp32_options)
        naive, t_naive = timed(lambda: naive_scores(model, wild_type, seqs))
        fast, t_fast = timed(
            lambda: score_sequences(model, wild_type, seqs, all63, fp32_options)
        )
        res, t_res = timed(
            lambda: score_sequences(model, wild_type, seqs, residue, fp32_options)
        )
        bf16, t_bf16 = timed(
            lambda: score_sequences(model, wild_type, seqs, all63, bf16_options)
        )
        bf16_res, t_bf16_res = timed(
            lambda: score_sequences(model, wild_type, seqs, residue, bf16_options)
        )
        # plain trunk autocast (the path before differential inference), batched as
        # score_sequences batches
        res_idx, pair_idx = split_channels(all63)
        batch = max(1, budget // (len(wild_type) + 2))

        def plain_autocast():
            wt_res, wt_pair = scored_outputs(model, [wild_type], res_idx, pair_idx, torch.bfloat16)
            parts = []
            for i in range(0, len(seqs), batch):
                chunk = seqs[i : i + batch]
                res, pair = scored_outputs(model, chunk, res_idx, pair_idx, torch.bfloat16)
                parts.append(reduce_changes(res, pair, wt_res[0], wt_pair[0], 0.01))
            return np.concatenate(parts)

        plain, t_plain = timed(plain_autocast)
        exact, t_exact = timed(lambda: exact_scores(model, wild_type, seqs, budget))
    rel = np.abs(fast - naive) / np.maximum(np.abs(naive), 1e-12)
    versus_exact = {
        name: _agreement(x, exact, all63)
        for name, x in (("fp32", fast), ("bf16", bf16), ("plain", plain))
    }
    agreement = {name: _agreement(x, fast, all63) for name, x in (("bf16", bf16), ("plain", plain))}
    n = len(seqs)
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": torch.get_num_threads(),
        "arch": model.config.arch.name,
        "length": len(wild_type),
        "mutants": n,
        "naive_s": t_naive,
        "fast_all63_s": t_fast,
        "fast_sasa_mean_psi_s": t_res,
        "bf16_all63_s": t_bf16,
        "bf16_sasa_mean_psi_s": t_bf16_res,
        "plain_autocast_all63_s": t_plain,
        "naive_variants_per_s": n / t_naive,
        "fast_all63_variants_per_s": n / t_fast,
        "fast_sasa_mean_psi_variants_per_s": n / t_res,
        "bf16_all63_variants_per_s": n / t_bf16,
        "bf16_sasa_mean_psi_variants_per_s": n / t_bf16_res,
        "speedup_all63": t_naive / t_fast,
        "speedup_sasa_mean_psi": t_naive / t_res,
        "max_rel_diff_fast_vs_naive": float(rel.max()),
        "bf16_vs_fp32": agreement["bf16"],
        "plain_autocast_vs_fp32": agreement["plain"],
        "exact_float64_s": t_exact,
        "fp32_vs_exact": versus_exact["fp32"],
        "bf16_vs_exact": versus_exact["bf16"],
        "plain_autocast_vs_exact": versus_exact["plain"],
    }
    print(json.dumps(report, indent=2))
    print()
    print("| variant | s | variants/s | speed-up vs naive |")
    print("|---|---|---|---|")
    print(f"| naive loop (all 63) | {t_naive:.1f} | {n / t_naive:.2f} | 1.00x |")
    print(f"| fast, all 63 | {t_fast:.1f} | {n / t_fast:.2f} | {t_naive / t_fast:.2f}x |")
    print(f"| fast, sasa_mean,psi | {t_res:.1f} | {n / t_res:.2f} | {t_naive / t_res:.2f}x |")
    print(f"| fast, all 63, bf16 | {t_bf16:.1f} | {n / t_bf16:.2f} | {t_naive / t_bf16:.2f}x |")
    print(
        f"| fast, sasa_mean,psi, bf16 | {t_bf16_res:.1f} | {n / t_bf16_res:.2f} "
        f"| {t_naive / t_bf16_res:.2f}x |"
    )
    print(
        f"| all 63, plain trunk autocast (before) | {t_plain:.1f} | {n / t_plain:.2f} "
        f"| {t_naive / t_plain:.2f}x |"
    )
    print()
    print("| bf16 vs fp32 (Spearman over mutants) | per-channel min | median | < 0.99 "
          "| norm_geometric_mean | max rel. score diff |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, a in (("differential (--dtype bf16)", agreement["bf16"]),
                    ("plain trunk autocast", agreement["plain"])):  # fmt: skip
        print(
            f"| {name} | {a['spearman_min']:.4f} | {a['spearman_median']:.4f} "
            f"| {a['channels_below_0.99']} | {a['combined']['norm_geometric_mean']:.4f} "
            f"| {a['max_rel_diff']:.3f} |"
        )
    print()
    print("| vs the float64 reference (Spearman over mutants) | per-channel min | median "
          "| < 0.99 | norm_geometric_mean | median rel. score diff |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, a in (("fp32 (the default path)", versus_exact["fp32"]),
                    ("bf16, differential (--dtype bf16)", versus_exact["bf16"]),
                    ("bf16, plain trunk autocast", versus_exact["plain"])):  # fmt: skip
        print(
            f"| {name} | {a['spearman_min']:.4f} | {a['spearman_median']:.4f} "
            f"| {a['channels_below_0.99']} | {a['combined']['norm_geometric_mean']:.4f} "
            f"| {a['median_rel_diff']:.2e} |"
        )


if __name__ == "__main__":
    main()
