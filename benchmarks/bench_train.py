"""Training-step time and peak memory: seqdance's step vs a naive step, 35M architecture, CPU.

One step = forward (pair head included) + loss + backward + gradient clipping + AdamW update.

- ``ours``: what ``seqdance train`` runs: ``SeqDanceModel`` (one-kernel GELU in the trunk's
  feed-forward blocks) whose trunk attention
  (``seqdance.model.attention.AttentionReadout``) adds each layer's maps into the pair logits and
  keeps none for the backward pass, called with ``lean_backward=True``
  (``seqdance.model.pair_grad``: pair head in row blocks with a hand-written backward that
  keeps one (N, N, A) tensor), the vectorised masked per-protein RMSE loss of
  ``seqdance.model.loss`` and fused AdamW.
- ``model``: the same, but plain autograd through ``SeqDanceModel.forward`` (the inference
  forward), for reference.
- ``naive``: the same weights through ``benchmarks/naive_model.py``'s forward, which builds the
  full (B, T, T, 2E) pair tensor and the (B, T, T, A) attention stack, with gradients, on the
  stock ``transformers`` trunk (eager attention returning all maps, ESM's GELU written as
  five tensor operations), a loss that loops over proteins and features in Python with
  boolean indexing, and the default (per-tensor) AdamW: the authors' step, written plainly.

Each (variant, tokens) runs in a fresh subprocess so that its peak RSS is its own. Wall time is
the best of ``--repeats`` steps after a warm-up; CPU time (user + system of all threads) is
reported too. One thread by default: on a shared machine, a second OpenMP thread spin-waits
whenever the other is descheduled, which inflates both wall and CPU time unpredictably; with
one thread the CPU time is the work done.

    python benchmarks/bench_train.py                      # the table in docs/benchmarks.md
    python benchmarks/bench_train.py --one ours 256 2 3   # one measurement, JSON
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (variant, tokens, batch); the naive step at 1,024 tokens needs ~15 GiB (the (T, T, 2E) tensor
# alone is 4 GB, its gradient another 4 GB)
CASES = [
    ("ours", 256, 2), ("model", 256, 2), ("naive", 256, 2),
    ("ours", 512, 1), ("model", 512, 1), ("naive", 512, 1),
    ("ours", 1024, 1), ("naive", 1024, 1),
]  # fmt: skip


def make_batch(tokens: int, batch: int, seed: int = 0):
    """Random tokens and targets of MD proteins (NMA channels -1), special tokens -1."""
    import torch

    from seqdance.schema import MISSING, output_slice

    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, 24, (batch, tokens), generator=gen)  # (B, T)
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    res = torch.rand(batch, tokens, 50, generator=gen)  # (B, T, 50)
    pair = torch.rand(batch, tokens, tokens, 13, generator=gen)  # (B, T, T, 13)
    res[..., output_slice("residue", "nma")] = MISSING
    pair[..., output_slice("pair", "nma")] = MISSING
    for t in (res, pair):
        t[:, [0, -1]] = MISSING
    pair[:, :, [0, -1]] = MISSING
    return input_ids, torch.ones_like(input_ids), res, pair


def naive_loss(residue, pair, res_t, pair_t):
    """Per-protein, per-feature masked RMSE with Python loops (the straightforward way)."""
    import torch

    from seqdance.schema import MISSING, PAIR_FEATURES, RESIDUE_FEATURES

    total = 0.0
    for pred, target, features in ((residue, res_t, RESIDUE_FEATURES),
                                   (pair, pair_t, PAIR_FEATURES)):  # fmt: skip
        for f in features:
            values = []
            for b in range(pred.shape[0]):
                p, t = pred[b][..., f.slice], target[b][..., f.slice]
                keep = t != MISSING
                if keep.any():
                    values.append(torch.sqrt(((p[keep] - t[keep]) ** 2).mean()))
            if values:
                total = total + torch.stack(values).mean()
    return total


def measure(variant: str, tokens: int, batch: int, repeats: int, threads: int = 1,
            trunk_dropout: float | None = None) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from naive_model import naive_forward, stock_trunk

    from seqdance.model.config import SeqDanceConfig
    from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
    from seqdance.model.seqdance import SeqDanceModel
    from seqdance.train.config import OptimConfig
    from seqdance.train.loop import build_optimizer

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    # ESM2-35M, random init; trunk dropout None: the authors' (0.1, as the heads)
    model = SeqDanceModel(SeqDanceConfig(trunk_dropout=trunk_dropout)).train()
    model.esm2.contact_head.requires_grad_(False)
    trunk = None
    if variant == "naive":  # the stock transformers trunk (eager maps, five-operation GELU)
        trunk = stock_trunk(model)
        trunk.contact_head.requires_grad_(False)
        del model.esm2  # the naive step trains the stock trunk's copy of the weights
    params = [p for p in model.parameters() if p.requires_grad]
    if trunk is not None:
        params += [p for p in trunk.parameters() if p.requires_grad]
    if variant == "naive":  # the textbook optimizer: a loop of small kernels per tensor
        optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    else:  # what seqdance train builds: the same AdamW with the fused kernel
        optimizer = build_optimizer(params, OptimConfig())
    input_ids, mask, res_t, pair_t = make_batch(tokens, batch)
    forward = naive_forward.__wrapped__  # the reference forward without its no_grad
    trainer = functools.partial(model, lean_backward=True)  # the training step's forward

    def step() -> float:
        if variant in ("ours", "model"):
            out = (trainer if variant == "ours" else model)(input_ids, mask)
            loss, _ = masked_rmse_loss(out.residue, out.pair, SeqDanceTargets(res_t, pair_t))
        else:
            residue, pair, _ = forward(model, input_ids, mask, trunk)
            loss = naive_loss(residue, pair, res_t, pair_t)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, 0.5)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # model, data, libraries
    step()  # warm-up (allocator, optimizer state)
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "tokens": tokens,
        "batch": batch,
        "seconds_per_step": min(times),
        "cpu_seconds_per_step": min(cpu),  # user + system, all threads: robust to other load
        "peak_rss_gib": peak_kib / 2**20,
        "step_gib": (peak_kib - base_kib) / 2**20,  # peak growth over the step (incl. AdamW)
        "threads": torch.get_num_threads(),
        "trunk_dropout": model.config.trunk_dropout_rate,  # the naive trunk: the same
    }


def _time(row: dict) -> str:
    return f"{row['seconds_per_step']:.2f} ({row['cpu_seconds_per_step']:.1f})"


def _mem(row: dict) -> str:
    return f"{row['peak_rss_gib']:.2f} GiB ({row['step_gib']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=4, metavar=("VARIANT", "TOKENS", "BATCH", "REPEATS"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--trunk-dropout", type=float, default=None,
                        help="trunk dropout (default: the authors', 0.1 for SeqDance)")
    args = parser.parse_args()
    if args.one:
        variant, tokens, batch, repeats = args.one
        row = measure(variant, int(tokens), int(batch), int(repeats), args.threads,
                      args.trunk_dropout)  # fmt: skip
        print(json.dumps(row))
        return
    rows = {}
    for variant, tokens, batch in CASES:
        if args.only and variant not in args.only:
            continue
        cmd = [sys.executable, __file__, "--one", variant, str(tokens), str(batch),
               str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"{variant} {tokens}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows[(variant, tokens)] = row
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(
        "| tokens x batch | ours s/step | model (autograd) s/step | naive s/step | speed-up "
        "vs naive | ours peak RSS | model peak RSS | naive peak RSS | memory ratio vs naive |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for _, tokens, batch in (c for c in CASES if c[0] == "ours"):
        ours, naive = rows.get(("ours", tokens)), rows.get(("naive", tokens))
        model = rows.get(("model", tokens))
        if ours is None:
            continue
        m_time = _time(model) if model else "-"
        m_mem = _mem(model) if model else "-"
        if naive is None:
            n_time, n_mem, speed, ratio = "not run", "est. >= 15 GiB", "-", "-"
        else:
            n_time = _time(naive)
            n_mem = _mem(naive)
            speed = f"{naive['cpu_seconds_per_step'] / ours['cpu_seconds_per_step']:.1f}x"
            ratio = f"{ours['step_gib'] / naive['step_gib']:.2f}"
        print(
            f"| {tokens} x {batch} | {_time(ours)} | {m_time} | {n_time} | "
            f"{speed} | {_mem(ours)} | {m_mem} | {n_mem} | {ratio} |"
        )


if __name__ == "__main__":
    main()
