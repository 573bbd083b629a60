"""ESM2 log-likelihood-ratio baselines: ``log p(mt) - log p(wt)`` per mutant.

The masked-LM head of ESM2 (``seqdance.model.load_masked_lm``) gives, at each mutated
position, the log-probability of every amino acid; a mutant's ratio is the sum over its
substitutions of ``log p(mt) - log p(wt)``. ``wt-marginal`` reads them from one pass over the
unmasked wild type, ``masked-marginal`` from one pass per position with that position masked.
Larger = predicted fitter (the opposite orientation of the relative-change scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import MutantSet
from seqdance.inference.options import DEFAULT_TOKEN_BUDGET
from seqdance.inference.windows import DEFAULT_MIN_OVERLAP, plan_windows
from seqdance.model.alphabet import MASK_ID, TOKEN_ID, check_sequence, encode

BASELINES = ("wt-marginal", "masked-marginal")
DEFAULT_ESM_MODEL = "facebook/esm2_t12_35M_UR50D"


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
