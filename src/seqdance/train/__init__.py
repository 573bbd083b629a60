"""Training: typed config, the loop (single process or DDP), checkpoints, evaluation."""

from seqdance.train.config import Config, load_config
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.train.loop import TrainResult, train

__all__ = ["Config", "EvalConfig", "TrainResult", "evaluate_model", "load_config", "train"]
