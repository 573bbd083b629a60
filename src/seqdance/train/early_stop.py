"""Held-out evaluation during training, best model kept, early stopping (fine-tuning).

Every ``train.early_stopping.every`` updates the model is evaluated on the proteins labelled
``train.early_stopping.label`` with :func:`seqdance.train.evaluate.evaluate_model` (each
protein once, N-terminal window, no dropout) and the run's loss weights, mask and NMA terms.
The held-out loss is the sum over data groups of the group's mean weighted loss (the training
loss sums its groups alike). ``out_dir/eval.jsonl`` gets one line per evaluation; the best
model so far is ``out_dir/best/`` (hub layout: ``--model out_dir/best``) with
``best.json``. After ``patience`` evaluations without a loss lower than the best by more than
``min_delta`` the run stops. Every process evaluates (the same weights give the same value),
so all stop together; only rank 0 writes. A resumed run rebuilds its state from
``eval.jsonl`` lines up to the checkpoint it resumes from.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from seqdance.errors import SeqDanceError
from seqdance.model.pretrained import save_pretrained
from seqdance.train.checkpoint import replace_folder, write_text_files
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.utils.io import atomic_path

EVAL_FILE = "eval.jsonl"
BEST_DIR = "best"
BEST_FILE = "best.json"


@dataclass
class HeldOutState:
    """Best held-out loss, its update, and the evaluations since it."""

    best_loss: float = math.inf
    best_step: int | None = None
    since_best: int = 0
    stopped_at: int | None = None


def held_out_loss(metrics: dict) -> float:
    """Sum over the groups of their mean weighted loss (``evaluate_model`` metrics)."""
    losses = [g["loss"] for g in metrics["groups"].values() if g["loss"] is not None]
    if not losses:
        raise SeqDanceError("held-out evaluation: no group of the held-out proteins has weights")
    return float(sum(losses))


class HeldOut:
    """The early-stopping bookkeeping of one run (``config``: a training ``Config``)."""

    def __init__(self, config, weights: dict, is_main: bool) -> None:
        self.options = config.train.early_stopping
        self.out_dir = Path(config.out_dir)
        self.weights = weights
        self.is_main = is_main
        self.eval_config = EvalConfig(
            label=self.options.label,
            crop_size=self.options.crop_size,
            clamp=config.data.clamp,
            mask=config.loss.mask,
            nma_bands=config.loss.nma_bands,
        )
        self.state = HeldOutState()
        self.files: dict[str, str] = {}  # further files of best/ (the training FASTA)

    @property
    def enabled(self) -> bool:
        return self.options.every is not None

    def restore(self, start: int) -> None:
        """State after update ``start`` from ``eval.jsonl`` (rank 0 trims later lines)."""
        path = self.out_dir / EVAL_FILE
        lines = path.read_text().splitlines() if path.is_file() else []
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= start]
        for line in kept:
            self._record(json.loads(line))
        if self.is_main:
            if not start:
                path.unlink(missing_ok=True)
            elif len(kept) != len(lines):
                with atomic_path(path) as tmp:
                    tmp.write_text("".join(ln + "\n" for ln in kept))

    def _record(self, line: dict) -> bool:
        """Update the state with one evaluation; True when it is a new best."""
        better = line["loss"] < self.state.best_loss - self.options.min_delta
        if better:
            self.state.best_loss, self.state.best_step = line["loss"], line["step"]
            self.state.since_best = 0
        else:
            self.state.since_best += 1
        return better

    def due(self, step: int) -> bool:
        return self.enabled and step % self.options.every == 0

    def check(self, model, step: int, data_dir: str) -> bool:
        """Evaluate at update ``step``; keep the best model; True when training should stop."""
        metrics = evaluate_model(model, data_dir, self.eval_config, self.weights)
        model.train()
        loss = held_out_loss(metrics)
        if not math.isfinite(loss):
            raise SeqDanceError(f"the held-out loss is not finite at update {step}")
        line = {
            "step": step,
            "loss": loss,
            "groups": {g: v["loss"] for g, v in metrics["groups"].items()},
            "n_proteins": metrics["n_proteins"],
        }
        better = self._record(line)
        if self.is_main:
            with open(self.out_dir / EVAL_FILE, "a") as handle:
                handle.write(json.dumps(line) + "\n")
            if better:
                save_best(model, self.out_dir, step, loss, self.files)
        patience = self.options.patience
        if patience is not None and self.state.since_best >= patience:
            self.state.stopped_at = step
            return True
        return False


def save_best(
    model, out_dir: Path, step: int, loss: float, files: dict[str, str] | None = None
) -> Path:
    """Write the model to ``out_dir/best`` (temporary folder, then renamed into place), with
    ``files`` (``{name: text}``, e.g. the training FASTA) beside it."""
    final = out_dir / BEST_DIR
    tmp = out_dir / f".{BEST_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_pretrained(model, tmp)
        (tmp / BEST_FILE).write_text(json.dumps({"step": step, "loss": loss}) + "\n")
        write_text_files(tmp, files)
        replace_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
