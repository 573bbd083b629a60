"""One GPU measurement of benchmarks/gpu_check.sh, printed as a JSON line.

    python benchmarks/gpu_check.py predict VARIANT LENGTH          # ours | naive
    python benchmarks/gpu_check.py train VARIANT TOKENS BATCH DTYPE  # ours | naive; bf16 | fp16
    python benchmarks/gpu_check.py largest TOKENS DTYPE MAX_BATCH  # ours: largest batch that fits

``ours`` is what seqdance runs (``SeqDanceModel`` for predict; for training
``SeqDanceModel.forward(lean_backward=True)`` under autocast, the masked RMSE loss, clipping,
fused AdamW, a gradient scaler for fp16); ``naive`` the same weights through
benchmarks/naive_model.py on the stock ``transformers`` trunk (eager attention returning every
map, the full pair tensor) with the default AdamW. ESM2-35M with random weights (seed 0),
random MD-like targets. Peak memory is
``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS on the CPU.
``SEQDANCE_GPU_CHECK_ARCH`` (default 35M) picks the architecture (the CPU smoke test uses a
tiny one).
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from naive_model import naive_forward, stock_trunk  # noqa: E402

from seqdance.model import Esm2Architecture, SeqDanceConfig, SeqDanceModel  # noqa: E402
from seqdance.model.config import get_architecture  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def architecture():
    name = os.environ.get("SEQDANCE_GPU_CHECK_ARCH", "35M")
    if name == "tiny":
        return Esm2Architecture("tiny", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64)
    return get_architecture(name)


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def peak_gib() -> float:
    if DEVICE.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def build(train: bool) -> SeqDanceModel:
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=architecture())).to(DEVICE)
    model.esm2.contact_head.requires_grad_(False)
    return model.train(train)


def batch(tokens: int, size: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 24, (size, tokens), generator=gen)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    return ids.to(DEVICE), mask.to(DEVICE)


def predict(variant: str, length: int) -> dict:
    model = build(train=False)
    ids, mask = batch(length + 2, 1)
    with torch.no_grad():
        if variant == "naive":
            trunk = stock_trunk(model)
            del model.esm2

            def run():
                return naive_forward(model, ids, mask, trunk)[1]
        else:

            def run():
                return model(ids, mask).pair

        run()  # warm-up
        sync()
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        pair = run()
        sync()
        seconds = time.perf_counter() - start
    checksum = float(pair[0, 1:-1, 1:-1].double().mean())
    return {"case": "predict", "variant": variant, "length": length, "seconds": seconds,
            "peak_gib": peak_gib(), "pair_mean": checksum}  # fmt: skip


def train_step_fn(variant: str, tokens: int, size: int, dtype_name: str):
    """A closure running one training step; returns it and the model."""
    from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
    from seqdance.train.config import OptimConfig
    from seqdance.train.loop import build_optimizer

    dtype = DTYPES[dtype_name]
    model = build(train=True)
    ids, mask = batch(tokens, size)
    gen = torch.Generator().manual_seed(1)
    res_t = torch.rand(size, tokens, 50, generator=gen).to(DEVICE)
    pair_t = torch.rand(size, tokens, tokens, 13, generator=gen).to(DEVICE)
    targets = SeqDanceTargets(res_t, pair_t)
    trunk = None
    if variant == "naive":
        trunk = stock_trunk(model)
        trunk.contact_head.requires_grad_(False)
        del model.esm2
    params = [p for p in model.parameters() if p.requires_grad]
    if trunk is not None:
        params += [p for p in trunk.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    else:
        optimizer = build_optimizer(params, OptimConfig())
    scaler = torch.amp.GradScaler(DEVICE.type, enabled=dtype == torch.float16)
    trainer = functools.partial(model, lean_backward=True) if trunk is None else None
    forward = naive_forward.__wrapped__  # with gradients

    def step() -> float:
        with torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype != torch.float32):
            if trainer is not None:
                out = trainer(ids, mask)
                residue, pair = out.residue, out.pair
            else:
                residue, pair, _ = forward(model, ids, mask, trunk)
        loss, _ = masked_rmse_loss(residue.float(), pair.float(), targets)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_value_(params, 0.5)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def train(variant: str, tokens: int, size: int, dtype_name: str, repeats: int = 3) -> dict:
    step = train_step_fn(variant, tokens, size, dtype_name)
    step()  # warm-up
    sync()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"case": "train", "variant": variant, "tokens": tokens, "batch": size,
            "dtype": dtype_name, "seconds_per_step": best,
            "tokens_per_s": tokens * size / best, "peak_gib": peak_gib(), "loss": loss}  # fmt: skip


def largest(tokens: int, dtype_name: str, max_batch: int) -> dict:
    """Doubling, then bisection, of the batch size until a step runs out of memory."""

    def fits(size: int) -> bool:
        try:
            step = train_step_fn("ours", tokens, size, dtype_name)
            step()
            step()
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            if DEVICE.type == "cuda":
                torch.cuda.empty_cache()

    good, bad, size = 0, None, 1
    while size <= max_batch and fits(size):
        good, size = size, size * 2
    bad = size if size <= max_batch else None
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return {"case": "largest", "tokens": tokens, "dtype": dtype_name, "largest_batch": good,
            "capped_at": max_batch if bad is None else None}  # fmt: skip


def main() -> None:
    kind, *args = sys.argv[1:]
    if kind == "predict":
        result = predict(args[0], int(args[1]))
    elif kind == "train":
        result = train(args[0], int(args[1]), int(args[2]), args[3])
    elif kind == "largest":
        result = largest(int(args[0]), args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown case {kind!r}")
    result["device"] = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    result["arch"] = architecture().name
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
