"""Zero-shot mutation effects: relative change of predicted dynamic properties.

For a wild type and a mutant of the same length and every output channel P
(seqdance-facts.md section 6)::

    score_P = mean over all T = L + 2 output positions (pair channels: all T x T) of
              |P_mut - P_wt| / (|P_wt| + 0.01)

This is the authors' notebook (``zero_shot_mutation.ipynb``): the mean runs over the model's
whole output, the ``<cls>`` and ``<eos>`` rows (and their pairs) included, and a sequence of
any length runs in one pass (ESM2's rotary positions have no maximum). Options:
``residues_only`` averages over the protein's residues (residue pairs) only; ``window`` cuts
sequences longer than it into overlapping windows merged as ``predict`` does (windowed scores
are residue means, so ``window`` needs ``residues_only``). Larger = bigger predicted change =
usually less fit or less stable, so scores correlate *negatively* with fitness (see
docs/scoring.md).

The authors' notebook then summarises per *feature* (``ss``, ``chi``, ``phi``, ``psi`` as
one score each: the mean over their channels, which equals the mean over all elements;
every other feature per channel, so 23 summaries when all 63 channels are scored), and
combines the summaries across the mutants of one protein: raw and quantile-normalised
mean, max, weighted mean and geometric mean.

Speed: the wild type runs once; unique mutant sequences run in batches under a token
budget; with residue channels only, the pair head is skipped and the trunk uses fused
attention; the reductions happen on the model's device, so pair outputs never leave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import MutantSet
from seqdance.model.alphabet import batch_encode, check_sequence
from seqdance.schema import PAIR_CHANNELS, PAIR_FEATURES, RESIDUE_CHANNELS, RESIDUE_FEATURES

EPSILON = 0.01  # keeps |P_wt| + eps away from zero (authors' value)
COMBINE_EPS = 1e-8  # authors' guard in weights and logarithms
DEFAULT_TOKEN_BUDGET = 4096
COMBINATIONS = ("mean", "max", "weighted_mean", "geometric_mean")


# -- kernels -----------------------------------------------------------------------------
def relative_change(mutant: torch.Tensor, wild_type: torch.Tensor, eps: float = EPSILON):
    """Mean relative change per channel, over every axis but the first and the last.

    Parameters
    ----------
    mutant : Tensor, shape=(B, L, C) or (B, L, L, C)
        Outputs of B mutants.
    wild_type : Tensor, shape=(L, C) or (L, L, C)
        Outputs of the wild type.
    eps : float

    Returns
    -------
    Tensor, shape=(B, C)
        ``mean |mutant - wild_type| / (|wild_type| + eps)``; NaN entries (pairs that no
        window of a long sequence holds) are left out of the mean.
    """
    inv = 1.0 / (wild_type.abs() + eps)  # (L, C) or (L, L, C)
    rel = (mutant - wild_type).abs_().mul_(inv)  # (B, L, C) or (B, L, L, C)
    flat = rel.reshape(rel.shape[0], -1, rel.shape[-1])  # (B, L or L*L, C)
    if torch.isnan(flat).any():
        return torch.nanmean(flat, dim=1)
    return flat.mean(dim=1)


def relative_change_elements(
    mutant: torch.Tensor, wild_type: torch.Tensor, eps: float = EPSILON
) -> torch.Tensor:
    """The terms that :func:`relative_change` averages, one per element:
    ``|mutant - wild_type| / (|wild_type| + eps)`` (same shape as ``mutant``; NaN stays NaN).
    ``seqdance explain`` reports them per residue and residue pair."""
    return (mutant - wild_type).abs() / (wild_type.abs() + eps)


def quantile_normalize(values: np.ndarray) -> np.ndarray:
    """Give every column the same distribution: the mean of the sorted columns.

    Parameters
    ----------
    values : ndarray, shape=(N, F)
        N mutants, F scores.

    Returns
    -------
    ndarray, shape=(N, F)
        Entry (n, f) is the mean over columns of the r-th smallest value, r the rank of
        ``values[n, f]`` in column f (ties ranked in row order).
    """
    values = np.asarray(values, dtype=np.float64)
    ranks = np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0, kind="stable")
    rank_means = np.sort(values, axis=0).mean(axis=1)  # (N,)
    return rank_means[ranks]


def combine(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, max, weighted mean (weights = value / row sum) and geometric mean per row.

    Parameters
    ----------
    values : ndarray, shape=(N, F)

    Returns
    -------
    dict of name -> ndarray, shape=(N,)
    """
    shifted = values + COMBINE_EPS
    weights = shifted / shifted.sum(axis=1, keepdims=True)  # (N, F)
    return {
        "mean": values.mean(axis=1),
        "max": values.max(axis=1),
        "weighted_mean": (values * weights).sum(axis=1),
        "geometric_mean": np.exp(np.log(shifted).mean(axis=1)),
    }


# -- which columns -----------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """One per-feature summary column: the mean of ``channels``' scores."""

    name: str
    channels: tuple[str, ...]


def summaries_for(channels: Sequence[str]) -> tuple[Summary, ...]:
    """The authors' per-feature summaries that ``channels`` cover, in schema order.

    Softmax features (``ss``, ``chi``, ``phi``, ``psi``) give one summary when all their
    channels are scored; every other channel is its own summary.
    """
    chosen = set(channels)
    out: list[Summary] = []
    for feature in RESIDUE_FEATURES + PAIR_FEATURES:
        if feature.activation == "softmax" and feature.width > 1:
            if set(feature.channels) <= chosen:
                out.append(Summary(feature.name, feature.channels))
        else:
            out.extend(Summary(c, (c,)) for c in feature.channels if c in chosen)
    return tuple(out)


@dataclass
class MutationScores:
    """Scores of N mutants of one wild type.

    channels : names of the scored channels (schema order); ``channel_scores`` (N, C).
    summaries : the per-feature summaries; ``summary_scores`` (N, S).
    combined : name -> (N,), e.g. ``norm_geometric_mean`` (empty with fewer than 2 summaries).
    """

    channels: tuple[str, ...]
    channel_scores: np.ndarray
    summaries: tuple[Summary, ...]
    summary_scores: np.ndarray
    combined: dict[str, np.ndarray] = field(default_factory=dict)

    def columns(self) -> dict[str, np.ndarray]:
        """Output columns in order: channels, multi-channel summaries, combinations."""
        cols = {name: self.channel_scores[:, i] for i, name in enumerate(self.channels)}
        for j, summary in enumerate(self.summaries):
            cols.setdefault(summary.name, self.summary_scores[:, j])
        cols.update(self.combined)
        return cols


def _split_channels(properties: Sequence[str]) -> tuple[list[int], list[int]]:
    unknown = [p for p in properties if p not in RESIDUE_CHANNELS and p not in PAIR_CHANNELS]
    if unknown:
        raise SeqDanceError(f"unknown output channel(s): {', '.join(unknown)}")
    chosen = set(properties)
    res = [i for i, c in enumerate(RESIDUE_CHANNELS) if c in chosen]
    pair = [i for i, c in enumerate(PAIR_CHANNELS) if c in chosen]
    return res, pair


# -- model runs --------------------------------------------------------------------------
def _device(model) -> torch.device:
    return next(model.parameters()).device


def _positions(length: int, residues_only: bool) -> slice:
    """The output rows a score averages over: residues ``1..L`` or all ``T = L + 2`` tokens."""
    return slice(1, length + 1) if residues_only else slice(0, length + 2)


@torch.no_grad()
def _forward(model, sequences: Sequence[str], res_idx, pair_idx, autocast=None,
             residues_only: bool = False):  # fmt: skip
    """Residue (B, P, Cr) and pair (B, P, P, Cp) outputs (float32) of equal-length sequences
    at the scored positions P (all T tokens, or the L residues), None for a kind not asked."""
    ids, mask = batch_encode(sequences)
    device = _device(model)
    # only the trunk in low precision: the heads' outputs stay float32 (see the model)
    out = model(ids.to(device), mask.to(device), pair=bool(pair_idx), trunk_autocast=autocast)
    rows = _positions(len(sequences[0]), residues_only)
    res = out.residue[:, rows][..., res_idx].float() if res_idx else None  # (B, P, Cr)
    pair = out.pair[:, rows, rows][..., pair_idx].float() if pair_idx else None  # (B, P, P, Cp)
    return res, pair


def _windowed(model, sequences, res_idx, pair_idx, token_budget, window):
    """Like :func:`_forward` for long sequences, one at a time as each completes:
    yields ``(index, residue (L, Cr) or None, pair (L, L, Cp) or None)``, windows merged
    as ``predict`` does."""
    from seqdance.inference.predict import iter_outputs

    for i, out in iter_outputs(
        model, sequences, pair=bool(pair_idx), token_budget=token_budget, window=window
    ):
        res = torch.from_numpy(out.residue[:, res_idx]) if res_idx else None
        pair = torch.from_numpy(np.ascontiguousarray(out.pair[..., pair_idx])) if pair_idx else None
        yield i, res, pair


def score_sequences(
    model,
    wild_type: str,
    sequences: Sequence[str],
    properties: Sequence[str],
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    eps: float = EPSILON,
    autocast: torch.dtype | None = None,
    residues_only: bool = False,
) -> np.ndarray:
    """Relative-change score of every sequence against ``wild_type``, per channel.

    Parameters
    ----------
    model : SeqDanceModel
        In eval mode (``seqdance.model.load_model``).
    wild_type : str
    sequences : sequence of str
        Mutants, each as long as the wild type; duplicates run once.
    properties : sequence of str
        Channel names (``seqdance.schema.resolve_properties``).
    token_budget : int
        Tokens per forward pass (batch size x (L + 2)).
    window : int, optional
        None (the authors): every sequence in one pass. Else the longest sequence one pass
        takes; longer ones use overlapping windows (needs ``residues_only``).
    autocast : torch.dtype, optional
        Low precision (e.g. bfloat16) for the trunk's matrix products. Sequences that fit
        one window (and float32 weights) use differential inference
        (``seqdance.model.differential``): the wild type runs in float32 and each
        mutant's Linear layers act on its *difference* from the wild type in this dtype,
        everything else in float32, so the small wild-type/mutant differences survive the
        rounding. Longer, windowed sequences run their trunk under ``torch.autocast``
        (heads in float32).
    residues_only : bool
        Average over the L residues (L x L pairs) instead of all T = L + 2 output positions.

    Returns
    -------
    ndarray, shape=(N, C), float64
        Columns in schema order of the chosen channels (residue channels first).
    """
    res_idx, pair_idx = _split_channels(properties)
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
    windowed = window is not None and length > window
    if windowed and not residues_only:
        raise SeqDanceError(
            f"the wild type has {length} residues, more than the window ({window}): windowed "
            "scores average over residues only; pass residues_only (--residues-only) or no window"
        )
    if windowed:
        device = _device(model)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            # the wild type first, then each mutant reduced as soon as it completes, so
            # only a few merged (L, L) pair arrays exist at any time
            _, wt_res, wt_pair = next(
                _windowed(model, [wild_type], res_idx, pair_idx, token_budget, window)
            )
            for i, res, pair in _windowed(model, unique, res_idx, pair_idx, token_budget, window):
                out[i] = _reduce(res, pair, wt_res, wt_pair, eps)[0]
    else:
        if autocast is not None and _all_float32(model):
            # low precision on differences from the float32 wild type (differential.py)
            forward = _differential(model, wild_type, res_idx, pair_idx, autocast, residues_only)
        else:
            forward = _plain(model, res_idx, pair_idx, autocast, residues_only)
        wt_res, wt_pair = forward([wild_type], wild_type=True)
        wt_res = wt_res[0] if wt_res is not None else None  # (P, Cr)
        wt_pair = wt_pair[0] if wt_pair is not None else None  # (P, P, Cp)
        batch = max(1, token_budget // (length + 2))
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            res, pair = forward(chunk)
            out[start : start + len(chunk)] = _reduce(res, pair, wt_res, wt_pair, eps)
    return out[[index[s] for s in sequences]]


def _all_float32(model) -> bool:
    return all(p.dtype == torch.float32 for p in model.parameters())


def _plain(model, res_idx, pair_idx, autocast, residues_only: bool = False):
    """``forward(sequences, wild_type=False)`` -> (residue, pair) by ``_forward``."""

    def forward(sequences, wild_type: bool = False):
        return _forward(model, sequences, res_idx, pair_idx, autocast, residues_only)

    return forward


def _differential(model, wild_type: str, res_idx, pair_idx, dtype, residues_only: bool = False):
    """Like :func:`_plain`, by differential inference: the wild type in float32 (its
    activations kept), then each batch's trunk Linears on the differences in ``dtype``."""
    from seqdance.model.alphabet import encode
    from seqdance.model.differential import differential_forward, wild_type_activations

    device = _device(model)
    ids = torch.tensor(encode(wild_type), dtype=torch.long, device=device)  # (T,)
    reference, wt_out = wild_type_activations(model, ids, pair=bool(pair_idx))
    rows = _positions(len(wild_type), residues_only)

    def select(out):
        res = out.residue[:, rows][..., res_idx] if res_idx else None  # (B, P, Cr)
        pair = out.pair[:, rows, rows][..., pair_idx] if pair_idx else None  # (B, P, P, Cp)
        return res, pair

    def forward(sequences, wild_type: bool = False):
        if wild_type:
            return select(wt_out)
        mutant_ids, _ = batch_encode(sequences)  # (B, T), unpadded: equal lengths
        out = differential_forward(
            model, reference, mutant_ids.to(device), pair=bool(pair_idx), dtype=dtype
        )
        return select(out)

    return forward


def _reduce(res, pair, wt_res, wt_pair, eps) -> np.ndarray:
    parts = []
    if res is not None:
        res = res if res.dim() == 3 else res[None]
        parts.append(relative_change(res, wt_res, eps))  # (B, Cr)
    if pair is not None:
        pair = pair if pair.dim() == 4 else pair[None]
        parts.append(relative_change(pair, wt_pair, eps))  # (B, Cp)
    return torch.cat(parts, dim=1).double().cpu().numpy()


def summarise(
    channels: Sequence[str], channel_scores: np.ndarray, *, combinations: bool = True
) -> MutationScores:
    """Per-feature summaries and, with 2 or more summaries, their combinations.

    Combinations (authors' notebook): ``raw_*`` over the summaries as they are,
    ``norm_*`` over the summaries quantile-normalised across the N mutants; each of
    mean, max, weighted mean and geometric mean.
    """
    channels = tuple(channels)
    col = {c: i for i, c in enumerate(channels)}
    summaries = summaries_for(channels)
    summary_scores = np.stack(
        [channel_scores[:, [col[c] for c in s.channels]].mean(axis=1) for s in summaries], axis=1
    )  # (N, S)
    combined: dict[str, np.ndarray] = {}
    if combinations and len(summaries) >= 2 and len(channel_scores) > 0:
        for prefix, values in (
            ("raw", summary_scores),
            ("norm", quantile_normalize(summary_scores)),
        ):
            for name, value in combine(values).items():
                combined[f"{prefix}_{name}"] = value
    return MutationScores(channels, channel_scores, summaries, summary_scores, combined)


def ordered_channels(properties: Sequence[str]) -> tuple[str, ...]:
    """``properties`` in output order: residue channels, then pair channels (schema order)."""
    chosen = set(properties)
    return tuple(c for c in RESIDUE_CHANNELS + PAIR_CHANNELS if c in chosen)


def score_mutants(
    model,
    mutants: MutantSet,
    properties: Sequence[str],
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    eps: float = EPSILON,
    autocast: torch.dtype | None = None,
    residues_only: bool = False,
) -> MutationScores:
    """Score a checked :class:`MutantSet` (see :func:`score_sequences`, :func:`summarise`)."""
    channels = ordered_channels(properties)
    scores = score_sequences(
        model,
        mutants.wild_type,
        mutants.sequences,
        channels,
        token_budget=token_budget,
        window=window,
        eps=eps,
        autocast=autocast,
        residues_only=residues_only,
    )
    return summarise(channels, scores)


# -- ESM2 log-likelihood-ratio baselines --------------------------------------------------
BASELINES = ("wt-marginal", "masked-marginal")
DEFAULT_ESM_MODEL = "facebook/esm2_t12_35M_UR50D"


def load_masked_lm(spec: str, *, device: str | torch.device = "cpu", dtype=None):
    """ESM2 with its masked-LM head (``seqdance.model.esm2.Esm2ForMaskedLM``) from a local
    ``save_pretrained`` folder of ``EsmForMaskedLM`` or a hub id (the local Hugging Face
    cache first; the hub only when reachable, else a one-line error)."""
    from seqdance.model.pretrained import load_masked_lm as load

    return load(spec, device=device, dtype=dtype)


@torch.no_grad()
def _log_probs(mlm, batch_ids: list[list[int]], where: list[int]):
    """Log-probabilities (B, V) at token ``where[b]`` of each (equal-length) id list, and
    those of every token (B, T, V)."""
    device = next(mlm.parameters()).device
    ids = torch.tensor(batch_ids, dtype=torch.long, device=device)  # (B, T)
    logits = mlm(ids, torch.ones_like(ids))  # (B, T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    rows = torch.arange(len(batch_ids), device=device)
    return logp[rows, torch.tensor(where, device=device)], logp


def esm_log_probs(
    mlm,
    wild_type: str,
    positions: Sequence[int],
    method: str,
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
) -> dict[int, np.ndarray]:
    """ESM2 log-probabilities (33,) at each 0-based ``position`` of the wild type.

    ``wt-marginal``: one pass over the unmasked wild type; ``masked-marginal``: one pass per
    position with that position masked (batched). One pass at any length by default (the
    authors' notebook; ESM2's rotary positions have no maximum); with ``window``, sequences
    longer than it use the window of ``plan_windows`` in which the position sits farthest
    from a cut.
    """
    from seqdance.inference.windows import DEFAULT_MIN_OVERLAP, plan_windows
    from seqdance.model.alphabet import MASK_ID, encode

    if method not in BASELINES:
        raise SeqDanceError(f"unknown baseline {method!r}; known: {', '.join(BASELINES)}")
    wild_type = check_sequence("wild type", wild_type)
    width = window or len(wild_type)
    plan = plan_windows(len(wild_type), width, min(DEFAULT_MIN_OVERLAP, width // 4))  # as predict
    best: dict[int, int] = {}  # position -> window index
    for pos in positions:
        scores = [w.weights()[pos - w.start] if w.start <= pos < w.stop else -1.0 for w in plan]
        best[pos] = int(np.argmax(scores))
    out: dict[int, np.ndarray] = {}
    if method == "wt-marginal":  # one pass per window; its positions share it
        for k in sorted(set(best.values())):
            w = plan[k]
            ids = encode(wild_type[w.start : w.stop])
            mine = [p for p in positions if best[p] == k]
            logp = _log_probs(mlm, [ids], [0])[1][0]  # (T, V): every token of the window
            for pos in mine:
                out[pos] = logp[pos - w.start + 1].cpu().numpy()
        return out
    jobs: dict[int, list[tuple[int, list[int], int]]] = {}  # width -> (position, ids, at)
    for pos in positions:
        w = plan[best[pos]]
        ids = encode(wild_type[w.start : w.stop])
        ids[pos - w.start + 1] = MASK_ID
        jobs.setdefault(len(ids), []).append((pos, ids, pos - w.start + 1))
    for width, group in jobs.items():
        batch = max(1, token_budget // width)
        for start in range(0, len(group), batch):
            chunk = group[start : start + batch]
            logp, _ = _log_probs(mlm, [j[1] for j in chunk], [j[2] for j in chunk])
            for (pos, _, _), row in zip(chunk, logp.cpu().numpy(), strict=True):
                out[pos] = row
    return out


def esm_llr(
    mlm,
    mutants: MutantSet,
    method: str,
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
) -> np.ndarray:
    """Log-likelihood ratio ``log p(mt) - log p(wt)`` per mutant, summed over its
    substitutions (0 for the wild type). Shape (N,). Larger = predicted fitter."""
    from seqdance.model.alphabet import TOKEN_ID

    offset = mutants.offset
    positions = sorted({s.index(offset) for subs in mutants.substitutions for s in subs})
    logp = esm_log_probs(
        mlm, mutants.wild_type, positions, method, token_budget=token_budget, window=window
    )
    llr = np.zeros(len(mutants), dtype=np.float64)
    for n, subs in enumerate(mutants.substitutions):
        for s in subs:
            row = logp[s.index(offset)]
            llr[n] += float(row[TOKEN_ID[s.mt]] - row[TOKEN_ID[s.wt]])
    return llr
