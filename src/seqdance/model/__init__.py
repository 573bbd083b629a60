"""The SeqDance/ESMDance model: ESM2 trunk plus dynamic-property heads, and its weights."""

from seqdance.model.config import ARCHITECTURES, Esm2Architecture, SeqDanceConfig, get_architecture
from seqdance.model.seqdance import SeqDanceModel, SeqDanceOutput
from seqdance.model.weights import load_model

__all__ = [
    "ARCHITECTURES",
    "Esm2Architecture",
    "SeqDanceConfig",
    "SeqDanceModel",
    "SeqDanceOutput",
    "get_architecture",
    "load_model",
]
