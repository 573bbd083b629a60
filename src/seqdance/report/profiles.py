"""Per-residue change profiles of scanned mutants, and compact encodings for the page.

A mutant's profile is, per residue, the mean over residue channels of the relative change
``|P_mut - P_wt| / (|P_wt| + 0.01)`` that ``seqdance score`` averages
(:func:`~seqdance.inference.relative_change.relative_change_elements`) (the residue part of
``seqdance explain``'s ``per_residue_change``), computed on the L residues.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import torch

from seqdance.inference.predict import iter_outputs, predict
from seqdance.inference.relative_change import relative_change_elements
from seqdance.schema import RESIDUE_CHANNELS


def scan_profiles(
    model,
    wild_type: str,
    mutants: Sequence[tuple[int, str]],
    channels: Sequence[str] = (),
    token_budget: int = 4096,
) -> np.ndarray:
    """Profiles of single substitutions, shape (N, L) float32.

    Parameters
    ----------
    model : a SeqDance model (eval mode).
    wild_type : the sequence (L residues).
    mutants : (0-based index, new amino acid) per mutant.
    channels : residue channels to average (those of the scan); none of them: all 50.
    """
    cols = [RESIDUE_CHANNELS.index(c) for c in channels if c in RESIDUE_CHANNELS]
    cols = cols or list(range(len(RESIDUE_CHANNELS)))
    wt = predict(model, [wild_type], pair=False, token_budget=token_budget)[0].residue[:, cols]
    wt = torch.from_numpy(wt)  # (L, C)
    sequences = [wild_type[:i] + aa + wild_type[i + 1 :] for i, aa in mutants]
    out = np.zeros((len(sequences), len(wild_type)), np.float32)
    for index, result in iter_outputs(model, sequences, pair=False, token_budget=token_budget):
        mutant = torch.from_numpy(result.residue[:, cols])  # (L, C)
        out[index] = relative_change_elements(mutant, wt).mean(dim=1).numpy()  # (L,)
    return out


def encode_uint8(values: np.ndarray, per_row: bool = False) -> dict:
    """Quantise to 0..255 between the minimum and maximum (of each row with ``per_row``).

    Returns ``{"b64", "shape", "lo", "hi"}``; ``lo``/``hi`` are lists for ``per_row``. NaN
    becomes 255 with ``nan`` true (a reserved code: values then use 0..254).
    """
    values = np.asarray(values, np.float64)
    flat = values.reshape(values.shape[0], -1) if per_row else values.reshape(1, -1)
    finite = np.isfinite(flat)
    has_nan = not finite.all()
    top = 254 if has_nan else 255
    masked = np.where(finite, flat, np.nan)
    with np.errstate(all="ignore"):
        lo = np.nan_to_num(np.nanmin(masked, axis=1), nan=0.0)
        hi = np.nan_to_num(np.nanmax(masked, axis=1), nan=0.0)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((np.nan_to_num(flat) - lo[:, None]) / span[:, None] * top)
    q = np.clip(q, 0, top).astype(np.uint8)
    q[~finite] = 255
    return {
        "b64": base64.b64encode(q.tobytes()).decode("ascii"),
        "shape": list(values.shape),
        "lo": lo.tolist() if per_row else float(lo[0]),
        "hi": hi.tolist() if per_row else float(hi[0]),
        "top": top,
        "nan": bool(has_nan),
    }


def decode_uint8(encoded: dict) -> np.ndarray:
    """The inverse of :func:`encode_uint8` (to the quantisation step), as float64."""
    q = np.frombuffer(base64.b64decode(encoded["b64"]), np.uint8).astype(np.float64)
    rows = encoded["shape"][0] if isinstance(encoded["lo"], list) else 1
    q = q.reshape(rows, -1)
    lo = np.asarray(encoded["lo"], np.float64).reshape(-1, 1)
    hi = np.asarray(encoded["hi"], np.float64).reshape(-1, 1)
    out = lo + q / encoded["top"] * (hi - lo)
    if encoded["nan"]:
        out[q == 255] = np.nan
    return out.reshape(encoded["shape"])
