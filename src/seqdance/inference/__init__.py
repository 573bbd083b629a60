"""Inference: predictions, embeddings and the windowing of long sequences."""

from seqdance.inference.embed import embed, write_embeddings
from seqdance.inference.fasta import FastaRecord, read_fasta
from seqdance.inference.predict import SequenceOutput, iter_outputs, predict

__all__ = [
    "FastaRecord",
    "SequenceOutput",
    "embed",
    "iter_outputs",
    "predict",
    "read_fasta",
    "write_embeddings",
]
