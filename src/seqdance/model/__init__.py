"""The SeqDance/ESMDance model: ESM2 trunk plus dynamic-property heads, and its weights.

All model math lives here: the ESM2 encoder and its attention variants (``esm2``), the
training attention with recompute-in-backward (``attention``), the heads (``heads``), the
pair head's training backward (``pair_grad``), the differential low-precision path
(``differential``) and the loss (``loss``). ``SeqDanceModel.forward`` (``seqdance``) is the
one forward pass that inference, training and differential scoring call; model files are
read and written by ``pretrained``.
"""

from seqdance.model.config import ARCHITECTURES, Esm2Architecture, SeqDanceConfig, get_architecture
from seqdance.model.esm2 import Esm2Config, Esm2ForMaskedLM, Esm2Model
from seqdance.model.pretrained import load_masked_lm
from seqdance.model.seqdance import SeqDanceModel, SeqDanceOutput, load_model

__all__ = [
    "ARCHITECTURES",
    "Esm2Architecture",
    "Esm2Config",
    "Esm2ForMaskedLM",
    "Esm2Model",
    "SeqDanceConfig",
    "SeqDanceModel",
    "SeqDanceOutput",
    "get_architecture",
    "load_masked_lm",
    "load_model",
]
