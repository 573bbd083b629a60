"""Batch drawing with replacement (ours) vs the authors' cycled DistributedSampler.

    python benchmarks/measure_sampler.py [--steps 200]

On the demo's bundled data (``seqdance demo``'s dataset: 6 training proteins, MD group
3tvj_I + 5xnd, NMA group 2g3r, 1GJS, 1I6C, 2M8I; the tiny model of configs/tiny.yaml, batch 2
per group, fp32 on the CPU) trains ``--steps`` updates with ``train.sampler=replacement`` and
with ``authors``, and reports for each: the fraction of training proteins never drawn, how
often each protein was drawn, the mean logged loss of the last 10 % of updates, and the
per-feature RMSE mean on the held-out protein (2KCF). Then, at the authors' scale, the
fraction of a group never drawn per rebuild block for a few group sizes (batch 16, 2
micro-batches per update, 4 processes, rebuilt every 200 updates). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from seqdance.demo.dataset import build_demo_dataset
from seqdance.demo.inputs import copy_inputs
from seqdance.demo.training import demo_train_config, read_log
from seqdance.model import load_model
from seqdance.schema import DataGroup
from seqdance.train.batches import SamplerPlan, phase_loader
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.train.loop import LOG_FILE, train
from seqdance.train.sampler import never_seen_fraction


def draws(config, plan: SamplerPlan) -> dict[str, int]:
    """How often each training protein is drawn in the run (from the batch requests)."""
    phase = config.train.phases[0]
    groups = tuple(DataGroup(g.name, tuple(g.sources), g.kind) for g in config.data.groups)
    batches = phase_loader(config.data.dir, config.data.label, phase.crop_size, None, groups)
    names = batches.dataset.names
    counts: Counter = Counter()
    for request in batches.requests(config.seed, 0, config.train.max_steps, phase.batch_size,
                                    phase.accum_steps, 0, plan):  # fmt: skip
        members = batches.members[request.group]
        counts.update(names[members[i]] for i in request.indices)
    every = [names[i] for m in batches.members.values() for i in m]
    return {name: counts.get(name, 0) for name in every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict = {"steps": args.steps, "demo": {}}
    with tempfile.TemporaryDirectory() as tmp:
        inputs, data = Path(tmp) / "inputs", Path(tmp) / "dataset"
        copy_inputs(inputs)
        data.mkdir()
        build_demo_dataset(inputs, data, progress=False)
        for kind in ("replacement", "authors"):
            out = Path(tmp) / kind
            config = demo_train_config(data, out, args.steps, "cpu", progress=False)
            config = replace(config, train=replace(config.train, sampler=kind))
            train(config)
            log = read_log(out / LOG_FILE)
            tail = [r["loss"] for r in log[-max(1, len(log) // 10) :]]
            counts = draws(config, SamplerPlan(kind, config.train.reload_every, 0, 1))
            model = load_model(out / "checkpoints" / f"step_{args.steps}")
            metrics = evaluate_model(model, data, EvalConfig(label="test"))
            result["demo"][kind] = {
                "never_drawn": sum(v == 0 for v in counts.values()) / len(counts),
                "draws": counts,
                "final_loss": float(np.mean(tail)),
                "held_out_mean_rmse": float(np.mean(list(metrics["features"].values()))),
            }
    result["authors_scale"] = {
        str(n): never_seen_fraction(n, 16, 4, 2, 200) for n in (20_000, 26_000, 27_136, 28_000)
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
