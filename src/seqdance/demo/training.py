"""Demo step 3: train the tiny model (``configs/tiny.yaml``'s values) and measure its
error on the held-out proteins."""

from __future__ import annotations

import json
import time
from pathlib import Path

from seqdance.demo.results import TrainSummary
from seqdance.errors import SeqDanceError
from seqdance.train.config import (
    Config,
    DataConfig,
    ModelConfig,
    OptimConfig,
    Phase,
    TrainConfig,
)
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.train.loop import LOG_FILE, train


def demo_train_config(dataset: Path, out: Path, steps: int, device: str, progress: bool):
    """The tiny model's training configuration (``configs/tiny.yaml``'s values, in code)."""
    # every bundled training protein is trained on: the demo's mdCATH protein (5xnd) joins
    # the MD group, which the authors' training loader draws from ATLAS, GPCRmd and PED only
    groups = DataConfig().groups
    for group in groups:
        if group.kind == "md" and "ATLAS" in group.sources:
            group.sources.append("mdCATH")
    return Config(
        data=DataConfig(dir=str(dataset), label="train", groups=groups),
        model=ModelConfig(arch="tiny", layers=2, hidden=32, heads=4, ffn=64, dropout=0.1),
        optim=OptimConfig(lr=3e-3, warmup_steps=max(1, steps // 20)),
        train=TrainConfig(
            max_steps=steps,
            save_every=steps,
            log_every=max(1, steps // 40),
            phases=[Phase(crop_size=64, batch_size=2, accum_steps=1)],
            device=device,
            precision="fp32",
            progress=progress,
        ),
        seed=0,
        out_dir=str(out),
    ).validate()


def read_log(path: Path) -> list[dict]:
    """The records of a training ``log.jsonl``, one dict per logged update."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_training(dataset: Path, out: Path, steps: int, device: str, progress: bool) -> TrainSummary:
    """Train the tiny model into ``out``; its first and last logged losses and checkpoint."""
    clock = time.perf_counter()
    result = train(demo_train_config(dataset, out, steps, device, progress))
    seconds = time.perf_counter() - clock
    log = read_log(out / LOG_FILE)
    if not log or not result.checkpoints:
        raise SeqDanceError(f"training wrote no log or checkpoint in {out}")
    return TrainSummary(
        steps=result.step,
        first_loss=float(log[0]["loss"]),
        final_loss=float(log[-1]["loss"]),
        seconds=seconds,
        checkpoint=result.checkpoints[-1],
        log=out / LOG_FILE,
    )


def evaluate_test(model, dataset: Path) -> dict[str, float]:
    """Per-feature RMSE of the trained model on the held-out proteins."""
    metrics = evaluate_model(model, dataset, EvalConfig(label="test"))
    return {k: float(v) for k, v in metrics["features"].items()}
