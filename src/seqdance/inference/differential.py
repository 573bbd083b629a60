"""Differential low-precision inference lives in :mod:`seqdance.model.differential`."""

from seqdance.model.differential import (
    DifferentialOutput,
    WildTypeActivations,
    differential_forward,
    differential_outputs,
    wild_type_activations,
)

__all__ = [
    "DifferentialOutput",
    "WildTypeActivations",
    "differential_forward",
    "differential_outputs",
    "wild_type_activations",
]
