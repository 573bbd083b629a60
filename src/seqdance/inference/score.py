"""Zero-shot mutation effects: relative change of predicted dynamic properties.

For a wild type and a mutant of the same length and every output channel P
(docs/scoring.md, The score)::

    score_P = mean over all T = L + 2 output positions (pair channels: all T x T) of
              |P_mut - P_wt| / (|P_wt| + 0.01)

This is the authors' notebook (``zero_shot_mutation.ipynb``): the mean runs over the model's
whole output, the ``<cls>`` and ``<eos>`` rows (and their pairs) included, and a sequence of
any length runs in one pass (ESM2's rotary positions have no maximum). The options
(:class:`~seqdance.inference.options.ScoreOptions`): ``residues_only`` averages over the
protein's residues (residue pairs) only; ``window`` cuts sequences longer than it into
overlapping windows merged as ``predict`` does (windowed scores are residue means, so
``window`` needs ``residues_only``). Larger = bigger predicted change = usually less fit or
less stable, so scores correlate *negatively* with fitness (see docs/scoring.md).

The pipeline, one module per step:

1. outputs at the scored positions (:mod:`seqdance.inference.outputs`);
2. the relative change per channel (:mod:`seqdance.inference.relative_change`);
3. per-feature summaries and their combinations (:mod:`seqdance.inference.summaries`).

Speed: the wild type runs once; unique mutant sequences run in batches under a token
budget; with residue channels only, the pair head is skipped and the trunk uses fused
attention; the reductions happen on the model's device, so pair outputs never leave it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import MutantSet
from seqdance.inference.options import ScoreOptions
from seqdance.inference.outputs import (
    all_float32,
    differential_scorer,
    iter_windowed_outputs,
    model_device,
    plain_scorer,
    split_channels,
)
from seqdance.inference.relative_change import reduce_changes
from seqdance.inference.summaries import MutationScores, ordered_channels, summarise_scores
from seqdance.model.alphabet import check_sequence
from seqdance.utils.progress import progress_bar

DEFAULT_OPTIONS = ScoreOptions()


def score_sequences(
    model,
    wild_type: str,
    sequences: Sequence[str],
    properties: str | Sequence[str] | None = None,
    options: ScoreOptions = DEFAULT_OPTIONS,
) -> np.ndarray:
    """Relative-change score of every sequence against ``wild_type``, per channel.

    Parameters
    ----------
    model : SeqDanceModel
        In eval mode (``seqdance.model.load_model``).
    wild_type : str
    sequences : sequence of str
        Mutants, each as long as the wild type; duplicates run once.
    properties : str, sequence of str or None
        Channel or feature names, as the CLI's ``--properties`` takes them
        (``"sasa_mean,psi"``, ``["ss_H", "corr"]``); None for all 63 channels. Read by
        ``seqdance.schema.resolve_properties``, whose one-line error names an unknown one.
    options : ScoreOptions
        ``token_budget``: tokens per forward pass (batch size x (L + 2)). ``window``: None
        (the authors) runs every sequence in one pass; else longer sequences use
        overlapping windows (needs ``residues_only``). ``autocast``: low precision (e.g.
        bfloat16) for the trunk's matrix products. Sequences that fit one window (and
        float32 weights) use differential inference (``seqdance.model.differential``): the
        wild type runs in float32 and each mutant's Linear layers act on its *difference*
        from the wild type in this dtype, everything else in float32, so the small
        wild-type/mutant differences survive the rounding. Longer, windowed sequences run
        their trunk under ``torch.autocast`` (heads in float32). ``residues_only``: average
        over the L residues (L x L pairs) instead of all T = L + 2 output positions.

    Returns
    -------
    ndarray, shape=(N, C), float64
        Columns in schema order of the chosen channels (residue channels first).
    """
    res_idx, pair_idx = split_channels(properties)
    wild_type = check_sequence("wild type", wild_type)
    length = len(wild_type)
    for k, seq in enumerate(sequences):
        if len(seq) != length:
            raise SeqDanceError(
                f"mutant {k + 1} has {len(seq)} residues, the wild type {length}; "
                "only substitutions can be scored"
            )
    unique = list(dict.fromkeys(sequences))
    index = {s: i for i, s in enumerate(unique)}
    n_cols = len(res_idx) + len(pair_idx)
    out = np.zeros((len(unique), n_cols), dtype=np.float64)
    eps, autocast, budget = options.eps, options.autocast, options.token_budget
    if options.windowed(length):
        device = model_device(model)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            # the wild type first, then each mutant reduced as soon as it completes, so
            # only a few merged (L, L) pair arrays exist at any time
            _, wt_res, wt_pair = next(
                iter_windowed_outputs(model, [wild_type], res_idx, pair_idx, budget, options.window)
            )
            with _bar(len(unique)) as bar:
                for i, res, pair in iter_windowed_outputs(
                    model, unique, res_idx, pair_idx, budget, options.window
                ):
                    out[i] = reduce_changes(res, pair, wt_res, wt_pair, eps)[0]
                    bar.update()
    else:
        if autocast is not None and all_float32(model):
            # low precision on differences from the float32 wild type (differential.py)
            forward = differential_scorer(
                model, wild_type, res_idx, pair_idx, autocast, options.residues_only
            )
        else:
            forward = plain_scorer(model, res_idx, pair_idx, autocast, options.residues_only)
        wt_res, wt_pair = forward([wild_type], wild_type=True)
        wt_res = wt_res[0] if wt_res is not None else None  # (P, Cr)
        wt_pair = wt_pair[0] if wt_pair is not None else None  # (P, P, Cp)
        batch = max(1, budget // (length + 2))
        with _bar(len(unique)) as bar:
            for start in range(0, len(unique), batch):
                chunk = unique[start : start + batch]
                res, pair = forward(chunk)
                out[start : start + len(chunk)] = reduce_changes(res, pair, wt_res, wt_pair, eps)
                bar.update(len(chunk))
    return out[[index[s] for s in sequences]]


def _bar(total: int):
    """The scoring bar (on a terminal only; erased when done, as it may sit under a scan's)."""
    return progress_bar(total=total, desc="score", unit="mutant", leave=False)


def score_mutants(
    model,
    mutants: MutantSet,
    properties: str | Sequence[str] | None = None,
    options: ScoreOptions = DEFAULT_OPTIONS,
) -> MutationScores:
    """Score a checked :class:`MutantSet` (see :func:`score_sequences`,
    :func:`~seqdance.inference.summaries.summarise_scores`)."""
    channels = ordered_channels(properties)
    scores = score_sequences(model, mutants.wild_type, mutants.sequences, channels, options)
    return summarise_scores(channels, scores)
