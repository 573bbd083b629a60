"""Loss and per-feature RMSE of the training log, summed between log lines and averaged over
the processes."""

from __future__ import annotations

import math

import torch

from seqdance.errors import SeqDanceError
from seqdance.schema import loss_term_names
from seqdance.train.distributed import DistEnv, all_reduce_sum

# every loss term of both NMA layouts (bands first): the per-term columns of the log
FEATURE_NAMES = tuple(dict.fromkeys((*loss_term_names(True), *loss_term_names(False))))


class LogStats:
    """Loss and per-feature RMSE summed over the micro-batches since the last log line."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.updates = 0
        self.loss = 0.0
        self.group_loss: dict[str, float] = {}
        self.feature_sum = torch.zeros(len(FEATURE_NAMES), dtype=torch.float64)
        self.feature_n = torch.zeros(len(FEATURE_NAMES), dtype=torch.float64)

    def add(self, group: str, loss: torch.Tensor, terms: dict, accum: int) -> None:
        value = float(loss.detach()) / accum
        self.loss += value
        self.group_loss[group] = self.group_loss.get(group, 0.0) + value
        for name, rmse in terms.items():
            i = FEATURE_NAMES.index(name)
            self.feature_sum[i] += float(rmse.detach())
            self.feature_n[i] += 1

    def record(self, step: int, lr: float, elapsed: float, env: DistEnv, crop: int) -> dict:
        """Means over the updates since the last record and over the ranks (an all-reduce)."""
        groups = sorted(self.group_loss)
        head = [float(self.updates), self.loss, *(self.group_loss[g] for g in groups)]
        vector = torch.cat([torch.tensor(head, dtype=torch.float64), self.feature_sum,
                            self.feature_n])  # fmt: skip
        all_reduce_sum(vector, env)
        n_updates = vector[0].item()  # updates x ranks
        sums, counts = vector[len(head) :].split(len(FEATURE_NAMES))
        record = {
            "step": step,
            "loss": vector[1].item() / n_updates,
            "lr": lr,
            "crop_size": crop,
            "groups": {g: vector[2 + j].item() / n_updates for j, g in enumerate(groups)},
            "features": {
                name: sums[i].item() / counts[i].item()
                for i, name in enumerate(FEATURE_NAMES)
                if counts[i] > 0
            },
            "seconds_per_update": elapsed / max(1, self.updates),
        }
        if not math.isfinite(record["loss"]):
            raise SeqDanceError(f"the loss is not finite at update {step}")
        self.reset()
        return record
