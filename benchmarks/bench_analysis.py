"""Benchmark: vectorised attention metrics vs a per-map loop (scipy), 35M-sized map stacks.

    python benchmarks/bench_analysis.py [--lengths 128 256 512] [--maps 240] [--loop-maps 12]

Random attention maps (A maps of L x L) against the 11 MD pair properties (9 interactions,
their sum, corr) of random stored features; the loop reference is timed on --loop-maps maps
and scaled to A. Prints one line per length and checks that both agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import rankdata, spearmanr

from seqdance.analysis.attention_metrics import attention_metrics, pair_properties
from seqdance.schema import MD_PAIR_CHANNELS


def loop_reference(maps, props, length):
    far = np.abs(np.subtract.outer(np.arange(length), np.arange(length))) > 2
    out = {}
    for name, prop in props.items():
        value = prop.values[far]
        ok = np.isfinite(value)
        v = value[ok]
        for k, attention in enumerate(maps):
            att = attention[far][ok]
            best = np.argsort(-att, kind="stable")[:length]
            rest = np.setdiff1d(np.arange(len(v)), best)
            ratio = np.abs(v[best]).mean() / (np.abs(v[rest]).mean() + 1e-8)
            out[(name, "top_l_ratio", k)] = ratio
            if prop.kind == "correlation":
                out[(name, "spearman_pos", k)] = spearmanr(att[v > 0], v[v > 0])[0]
                out[(name, "spearman_neg", k)] = spearmanr(att[v < 0], v[v < 0])[0]
            else:
                keep = (v == 0) | (v >= 0.01)
                pos = v[keep] > 0
                ranks = rankdata(att[keep])
                n_pos, n_neg = pos.sum(), (~pos).sum()
                u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
                out[(name, "auroc", k)] = u / (n_pos * n_neg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--maps", type=int, default=240)
    parser.add_argument("--loop-maps", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for length in args.lengths:
        maps = rng.random((args.maps, length, length), dtype=np.float32)  # (A, L, L)
        maps /= maps.sum(-1, keepdims=True)
        stored = rng.uniform(0, 1, (length, length, len(MD_PAIR_CHANNELS)))
        stored[..., :9] *= rng.random((length, length, 9)) < 0.2  # sparse interactions
        stored[..., 9] = rng.uniform(-1, 1, (length, length))  # corr
        props = pair_properties(stored, MD_PAIR_CHANNELS)
        start = time.perf_counter()
        fast = attention_metrics(maps, props)
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        slow = loop_reference(maps[: args.loop_maps], props, length)
        slow_s = (time.perf_counter() - start) * args.maps / args.loop_maps
        worst = max(
            abs(fast[(name, metric)][k] - value) for (name, metric, k), value in slow.items()
        )
        print(
            f"L={length:5d} A={args.maps}: vectorised {fast_s:7.2f} s, per-map loop "
            f"{slow_s:8.2f} s (scaled from {args.loop_maps} maps), speed-up "
            f"{slow_s / fast_s:5.1f}x, max |difference| {worst:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
