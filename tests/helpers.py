"""Shared test helpers: the tiny architecture, the naive reference forward, the CLI runner."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from seqdance.cli import main
from seqdance.model import Esm2Architecture

ROOT = Path(__file__).resolve().parents[1]
TINY = Esm2Architecture("tiny", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64)


def load_naive_model():
    """``benchmarks/naive_model.py``: the independent reference (full pair tensor, stacked maps)."""
    spec = importlib.util.spec_from_file_location("naive_model", ROOT / "benchmarks/naive_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


naive_forward = load_naive_model().naive_forward


def random_tiny_model(seed: int):
    """A tiny SeqDance in eval mode, seeded, with non-zero head biases so that no output sits
    at a special value (for score tests, where |P_wt| + 0.01 divides)."""
    import torch

    from seqdance.model import SeqDanceConfig, SeqDanceModel

    torch.manual_seed(seed)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("esm2") and name.endswith("bias"):
                p.normal_(0, 0.3)
    return model


def run_cli(args: list[str]) -> int:
    """Run ``seqdance ARGS`` in-process; the exit status (the command must exit)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code
