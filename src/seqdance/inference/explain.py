"""The dynamics behind a score: per-residue and per-pair predicted changes of a mutant.

For a mutant and every scored channel P, the score is the mean over the protein of the
relative change ``|P_mut - P_wt| / (|P_wt| + 0.01)`` (``seqdance.inference.score``). This
module reports those terms where they arise: per residue for the residue channels, per
residue pair for the pair channels (and their row means per residue), with the signed
change ``P_mut - P_wt`` beside them, so that the mean of the reported relative changes is
the mutant's score. The outputs come from the score's own step
(:func:`seqdance.inference.outputs.outputs_at_scored_positions`) and the same per-element
term (:func:`seqdance.inference.relative_change.relative_change_elements`): whatever rows the
score counts (residues, or every token when special tokens count) are the rows reported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import MutantSet, format_mutant
from seqdance.inference.options import ScoreOptions
from seqdance.inference.outputs import outputs_at_scored_positions
from seqdance.inference.relative_change import relative_change_elements
from seqdance.inference.summaries import ordered_channels
from seqdance.schema import FEATURE_BY_NAME, PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import atomic_path, save_npz
from seqdance.utils.progress import progress_bar
from seqdance.utils.tables import join_list

TOP_LABELS = 5  # largest changes listed per mutant and property (and labelled per profile)
DEFAULT_OPTIONS = ScoreOptions()


@dataclass
class Explanation:
    """Predicted outputs and their changes for M mutants of one wild type.

    ``labels`` names the R rows the score averages over (``"24"``-style positions in user
    numbering, or ``<cls>``/``<eos>`` for special tokens when they count). Residue arrays
    have shape (R, Cr) or (M, R, Cr); pair arrays (R, R, Cp) or (M, R, R, Cp); either kind
    is None when none of its channels were asked for.
    """

    mutants: tuple[str, ...]
    mutated: tuple[tuple[int, ...], ...]  # row indices of each mutant's substitutions
    labels: tuple[str, ...]
    residue_channels: tuple[str, ...]
    pair_channels: tuple[str, ...]
    wt_residue: np.ndarray | None
    mt_residue: np.ndarray | None
    rel_residue: np.ndarray | None
    wt_pair: np.ndarray | None
    mt_pair: np.ndarray | None
    rel_pair: np.ndarray | None

    def channel_scores(self) -> np.ndarray:
        """Mean relative change per mutant and channel, shape (M, Cr + Cp): the score."""
        parts = []
        if self.rel_residue is not None:
            parts.append(np.nanmean(self.rel_residue, axis=1))  # (M, Cr)
        if self.rel_pair is not None:
            parts.append(np.nanmean(self.rel_pair, axis=(1, 2)))  # (M, Cp)
        return np.concatenate(parts, axis=1)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.residue_channels + self.pair_channels


def explain_mutants(
    model,
    mutants: MutantSet,
    properties: Sequence[str],
    options: ScoreOptions = DEFAULT_OPTIONS,
) -> Explanation:
    """Run the wild type and each mutant once (float32) and keep every output's change.

    ``options`` as :func:`~seqdance.inference.score.score_sequences` (``autocast`` is not
    used: explanations run in float32), so that the rows and the numbers are those of the
    score: by default all T = L + 2 outputs (``<cls>``/``<eos>`` rows included) in one pass;
    ``residues_only``: the L residues; ``window`` (needs ``residues_only``): longer sequences
    in the score's overlapping windows.
    """
    channels = ordered_channels(properties)
    if not mutants.sequences:
        raise SeqDanceError("no mutant to explain")
    wild_type = mutants.wild_type
    options.windowed(len(wild_type))  # the window rule, checked before the model runs
    res, pair = _outputs_in_batches(model, [wild_type, *mutants.sequences], channels, options)
    rows = (res if res is not None else pair).shape[1]
    labels, shift = _row_labels(len(wild_type), rows, mutants.offset)
    rel_res = relative_change_elements(res[1:], res[0]).numpy() if res is not None else None
    rel_pair = relative_change_elements(pair[1:], pair[0]).numpy() if pair is not None else None
    mutated = tuple(
        tuple(s.index(mutants.offset) + shift for s in subs) for subs in mutants.substitutions
    )
    return Explanation(
        mutants=tuple(format_mutant(s) for s in mutants.substitutions),
        mutated=mutated,
        labels=labels,
        residue_channels=tuple(c for c in channels if c in RESIDUE_CHANNELS),
        pair_channels=tuple(c for c in channels if c in PAIR_CHANNELS),
        wt_residue=res[0].numpy() if res is not None else None,
        mt_residue=res[1:].numpy() if res is not None else None,
        rel_residue=rel_res,
        wt_pair=pair[0].numpy() if pair is not None else None,
        mt_pair=pair[1:].numpy() if pair is not None else None,
        rel_pair=rel_pair,
    )


def _outputs_in_batches(model, sequences: list[str], channels, options: ScoreOptions):
    """Float32 outputs of ``sequences`` at the scored positions, ``options.token_budget``
    tokens per forward pass, with a progress bar: (N, P, Cr) and (N, P, P, Cp), or None."""
    per_pass = max(1, options.token_budget // (len(sequences[0]) + 2))
    plain = replace(options, autocast=None)
    parts: list[tuple] = []
    with progress_bar(total=len(sequences), desc="explain", unit="seq", leave=False) as bar:
        for start in range(0, len(sequences), per_pass):
            chunk = sequences[start : start + per_pass]
            res, pair = outputs_at_scored_positions(model, chunk, channels, plain)
            parts.append(tuple(x.float().cpu() if x is not None else None for x in (res, pair)))
            bar.update(len(chunk))
    res, pair = (None if p[0] is None else torch.cat(p) for p in zip(*parts, strict=True))
    return res, pair


def _row_labels(length: int, rows: int, offset: int) -> tuple[tuple[str, ...], int]:
    """Names of the score's rows and the row of residue 0: residues only, or every token."""
    residues = tuple(str(i + offset) for i in range(length))
    if rows == length:
        return residues, 0
    if rows == length + 2:
        return ("<cls>", *residues, "<eos>"), 1
    raise SeqDanceError(f"model output has {rows} rows for {length} residues")


# -- tables --------------------------------------------------------------------------------
def residue_table(ex: Explanation, wild_type: str):
    """Long table: mutant, row, position, wt, aa, property, kind, wt_value, mt_value, delta,
    rel_change. Residue channels per row; pair channels as row means over partners
    (``kind = pair_row_mean``), whose mean is again the pair channel's score."""
    frames = []
    residues = {
        lab: wild_type[int(lab) - int(ex.labels[_first_residue(ex)])]
        for lab in ex.labels
        if not lab.startswith("<")
    }
    for m, name in enumerate(ex.mutants):
        aa = _mutant_letters(ex, m, residues)
        blocks = []
        if ex.rel_residue is not None:
            blocks.append(
                ("residue", ex.residue_channels, ex.wt_residue, ex.mt_residue[m], ex.rel_residue[m])
            )
        if ex.rel_pair is not None:
            blocks.append(
                (
                    "pair_row_mean",
                    ex.pair_channels,
                    np.nanmean(ex.wt_pair, axis=1),
                    np.nanmean(ex.mt_pair[m], axis=1),
                    np.nanmean(ex.rel_pair[m], axis=1),
                )
            )
        for kind, names, wt_v, mt_v, rel in blocks:
            rows, cols = rel.shape
            frames.append(
                pd.DataFrame(
                    {
                        "mutant": name,
                        "row": np.repeat(np.arange(rows), cols),
                        "position": np.repeat(np.asarray(ex.labels), cols),
                        "wt": np.repeat(
                            np.asarray([residues.get(lab, "") for lab in ex.labels]), cols
                        ),
                        "aa": np.repeat(np.asarray(aa), cols),
                        "property": np.tile(np.asarray(names), rows),
                        "kind": kind,
                        "wt_value": wt_v.reshape(-1),
                        "mt_value": mt_v.reshape(-1),
                        "delta": (mt_v - wt_v).reshape(-1),
                        "rel_change": rel.reshape(-1),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _first_residue(ex: Explanation) -> int:
    return next(i for i, lab in enumerate(ex.labels) if not lab.startswith("<"))


def _mutant_letters(ex: Explanation, m: int, residues: dict) -> list[str]:
    name = ex.mutants[m]
    letters = [residues.get(lab, "") for lab in ex.labels]
    if name != "wt":
        for part, row in zip(name.split(":"), ex.mutated[m], strict=True):
            letters[row] = part[-1]
    return letters


def score_table(ex: Explanation):
    """Per mutant and channel: the mean of the reported relative changes (the score), and
    the rows with the largest relative change (residue channels) or largest row mean (pair
    channels)."""
    scores = ex.channel_scores()  # (M, C)
    rows = []
    for m, name in enumerate(ex.mutants):
        for c, channel in enumerate(ex.channels):
            if channel in ex.residue_channels:
                per_row = ex.rel_residue[m][:, ex.residue_channels.index(channel)]
            else:
                per_row = np.nanmean(ex.rel_pair[m][..., ex.pair_channels.index(channel)], axis=1)
            top = np.argsort(-np.nan_to_num(per_row, nan=-np.inf), kind="stable")[:TOP_LABELS]
            rows.append(
                {
                    "mutant": name,
                    "property": channel,
                    "score": scores[m, c],
                    "top_positions": join_list(ex.labels[i] for i in top),
                }
            )
    return pd.DataFrame(rows)


def write_explanation(ex: Explanation, wild_type: str, out_dir: str | os.PathLike) -> list[Path]:
    """``explain_residues.csv``, ``explain_scores.csv`` and ``explain.npz`` in ``out_dir``."""
    out_dir = Path(out_dir)
    written = []
    for name, table in (
        ("explain_residues.csv", residue_table(ex, wild_type)),
        ("explain_scores.csv", score_table(ex)),
    ):
        with atomic_path(out_dir / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        written.append(out_dir / name)
    arrays = {
        "mutants": np.asarray(ex.mutants),
        "rows": np.asarray(ex.labels),
        "residue_channels": np.asarray(ex.residue_channels, dtype=str),
        "pair_channels": np.asarray(ex.pair_channels, dtype=str),
    }
    for key in ("wt_residue", "mt_residue", "rel_residue", "wt_pair", "mt_pair", "rel_pair"):
        value = getattr(ex, key)
        if value is not None:
            arrays[key] = value.astype(np.float32)
    save_npz(out_dir / "explain.npz", **arrays)
    written.append(out_dir / "explain.npz")
    return written


def file_stem(mutant: str) -> str:
    return mutant.replace(":", "_")


# -- figures -------------------------------------------------------------------------------
def per_residue_change(ex: Explanation, m: int, feature: str | None = None) -> np.ndarray:
    """One value per row for B-factors: the mean relative change over the scored residue
    channels and pair row means (or over one feature's channels)."""
    parts = []
    if feature is not None:
        if feature not in FEATURE_BY_NAME:
            raise SeqDanceError(f"unknown feature {feature!r} for --pdb-property")
        names = FEATURE_BY_NAME[feature].channels
        if ex.rel_residue is not None:
            idx = [ex.residue_channels.index(c) for c in names if c in ex.residue_channels]
            if idx:
                parts.append(ex.rel_residue[m][:, idx])
        if ex.rel_pair is not None:
            idx = [ex.pair_channels.index(c) for c in names if c in ex.pair_channels]
            if idx:
                parts.append(np.nanmean(ex.rel_pair[m][..., idx], axis=1))
        if not parts:
            raise SeqDanceError(f"--pdb-property {feature}: not among the scored properties")
    else:
        if ex.rel_residue is not None:
            parts.append(ex.rel_residue[m])
        if ex.rel_pair is not None:
            parts.append(np.nanmean(ex.rel_pair[m], axis=1))
    return np.nanmean(np.concatenate(parts, axis=1), axis=1)  # (R,)


def residue_rows(ex: Explanation) -> slice:
    """Rows of ``labels`` that are residues (special tokens left out)."""
    first = _first_residue(ex)
    n = sum(1 for lab in ex.labels if not lab.startswith("<"))
    return slice(first, first + n)
