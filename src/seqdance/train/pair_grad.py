"""The training forward lives in :mod:`seqdance.model.pair_grad`; re-exported here."""

from seqdance.model.pair_grad import PairMiddle, TrainingForward, release_buffers

__all__ = ["PairMiddle", "TrainingForward", "release_buffers"]
