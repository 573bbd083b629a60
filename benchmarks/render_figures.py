"""Render every figure the package makes at several protein lengths, for looking at them.

    PYTHONPATH=src python benchmarks/render_figures.py --out out/figures --sizes 30,300,1000

A tiny model with random weights stands in for a trained one (the figures' layout, not their
values, is what this checks); the scan heat map and the analyses get random tables of the
right shape. Files: OUT/L{n}/{figure}.{fmt}, plus OUT/md/ for the MD features of the bundled
3tvj_I trajectory and OUT/other/ for the figures whose size does not follow a protein length.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqdance.analysis.plots import attention_heatmaps, prediction_scatter
from seqdance.benchmark.run import BenchmarkResult, plot_summary
from seqdance.demo.features import md_output_arrays
from seqdance.demo.figures import plot_score_scatter, plot_training_curve
from seqdance.features.md import md_features
from seqdance.inference import explain, explain_plots
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.plots import plot_pairs, plot_profiles
from seqdance.inference.predict import predict
from seqdance.inference.scan import HEATMAP_ORDER, plot_scan
from seqdance.model import Esm2Architecture, SeqDanceConfig, SeqDanceModel
from seqdance.schema import resolve_properties
from seqdance.utils.figures import figure_name

ROOT = Path(__file__).resolve().parents[1]
TINY = Esm2Architecture("tiny", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64)
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def tiny_model(seed: int = 7) -> SeqDanceModel:
    torch.manual_seed(seed)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY)).eval()
    with torch.no_grad():  # spread the heads' outputs so that the maps are not flat
        for name, param in model.named_parameters():
            if "head" in name and name.endswith("bias"):
                param.normal_(0, 0.3)
    return model


def random_sequence(n: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list(AMINO), n))


def length_figures(model, n: int, out: Path, fmt: str, rng) -> list[Path]:
    seq = random_sequence(n, rng)
    (result,) = predict(model, [seq])
    files = [
        plot_profiles(out / figure_name("predict.profiles", fmt), f"random {n}", result.residue),
        plot_pairs(out / figure_name("predict.pairs", fmt), f"random {n}", result.pair),
    ]
    a, b = n // 3, (2 * n) // 3
    mutant = f"{seq[a]}{a + 1}{'AG'[seq[a] == 'A']}:{seq[b]}{b + 1}{'WA'[seq[b] == 'W']}"
    mutants = build_mutant_set(seq, [mutant], None, 1, first_row=None)
    ex = explain.explain_mutants(model, mutants, resolve_properties(None))
    stem = explain.file_stem(ex.mutants[0])
    profiles = out / figure_name(f"explain_{stem}_profiles", fmt)
    files.append(explain_plots.plot_change_profiles(ex, 0, profiles, seq))
    pairs = out / figure_name(f"explain_{stem}_pairs", fmt)
    files.append(explain_plots.plot_pair_maps(ex, 0, pairs))
    rows = [
        (i + 1, seq[i], aa, f"{seq[i]}{i + 1}{aa}") for i in range(n) for aa in HEATMAP_ORDER
        if aa != seq[i]
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["position", "wt", "mt", "mutant"])
    table["norm_geometric_mean"] = rng.gamma(2.0, 0.05, len(table))
    files += plot_scan(table, out, ["norm_geometric_mean"], f"random {n}", fmt=fmt)
    measured = rng.normal(size=n)
    split = np.where(rng.random(n) < 0.8, "train", "test")
    files.append(
        prediction_scatter(measured, measured + rng.normal(0, 0.6, n), split, "rmsf_nor",
                           f"{n} proteins", out / figure_name("predictions", fmt))
    )  # fmt: skip
    files.append(
        plot_score_scatter(out / figure_name("score_scatter", fmt), rng.gamma(2, 0.1, n),
                           rng.normal(size=n), f"random assay of {n} variants")
    )  # fmt: skip
    return files


def md_figures(out: Path, fmt: str) -> list[Path]:
    data = ROOT / "tests/data/md/3tvj_I"
    md = md_features(data / "3tvj_I.pdb", data / "3tvj_I_10frames.dcd")
    residue, pair = md_output_arrays(md, symmetric=True)
    numbers = md.residues["resid"].to_numpy()
    title = f"3tvj_I: features from its MD trajectory ({md.n_frames} frames)"
    return [
        plot_profiles(out / figure_name("md_profiles", fmt), title, residue, numbers),
        plot_pairs(out / figure_name("md_pairs", fmt), title, pair, numbers,
                   interaction_label="mean contacts per frame, both cells"),
    ]  # fmt: skip


def other_figures(out: Path, fmt: str, rng) -> list[Path]:
    files = []
    for layers, heads in ((2, 4), (12, 20)):
        rows = [
            (prop, metric, layer, head, rng.random())
            for prop, metrics in (("corr", ("top_l_ratio", "spearman_pos", "spearman_neg")),
                                  ("vdw", ("top_l_ratio", "auroc")))
            for metric in metrics for layer in range(layers) for head in range(heads)
        ]  # fmt: skip
        summary = pd.DataFrame(rows, columns=["property", "metric", "layer", "head", "value"])
        name = figure_name(f"attention_heatmaps_{layers}x{heads}", fmt)
        files.append(attention_heatmaps(summary, layers, heads, out / name))
    log = [
        {"step": s, "loss": 40 * np.exp(-s / 20) + 2,
         "groups": {"ATLAS": 30 * np.exp(-s / 15) + 1.5, "IDRome": 50 * np.exp(-s / 25) + 3}}
        for s in range(0, 200, 10)
    ]  # fmt: skip
    files.append(plot_training_curve(out / figure_name("training_curve", fmt), log))
    props = ["sasa_mean", "rmsf_nor", "corr", "vdw", "norm_geometric_mean"]
    rows = [
        {"assay": f"A{k}", "property": p, "spearman": rng.normal(0.1, 0.15)}
        for k in range(12) for p in props
    ]  # fmt: skip
    medians = [
        {"property": p, "spearman": float(np.median([r["spearman"] for r in rows
                                                     if r["property"] == p]))}
        for p in props
    ]  # fmt: skip
    result = BenchmarkResult(rows=rows, medians=medians, skipped=[])
    files.append(plot_summary(result, out / figure_name("benchmark_summary", fmt)))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/figures"))
    parser.add_argument("--sizes", default="30,300,1000")
    parser.add_argument("--format", default="png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    model = tiny_model()
    start = time.perf_counter()
    files = []
    for n in (int(s) for s in args.sizes.split(",")):
        (args.out / f"L{n}").mkdir(parents=True, exist_ok=True)
        files += length_figures(model, n, args.out / f"L{n}", args.format, rng)
    (args.out / "md").mkdir(parents=True, exist_ok=True)
    files += md_figures(args.out / "md", args.format)
    (args.out / "other").mkdir(parents=True, exist_ok=True)
    files += other_figures(args.out / "other", args.format, rng)
    for path in files:
        print(path)
    print(f"{len(files)} figures in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
