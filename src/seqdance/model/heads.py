"""Dynamic-property heads: activations from the schema and the memory-efficient pair head.

The pair head of the paper reads, at output position (i, j),

    middle_ij = GELU(W_mid @ concat(q_j * k_i, q_j - k_i) + b_mid)          # (A,)
    logits_ij = W_pred @ concat(middle_ij, attention_ij) + b_pred            # (13,)

with ``attention_ij`` the A = layers x heads attention probabilities of query i and
key j. Written that way it needs a (T, T, 2E) tensor. Splitting ``W_mid = [W1 | W2]``
(each (A, E)) gives

    W_mid @ concat(q_j * k_i, q_j - k_i) = (k_i * W1) @ q_j + W2 @ q_j - W2 @ k_i

so each block of rows i costs one matrix product with q and two (T, A) terms that are
shared by all rows. ``W_pred = [W_pm | W_pa]`` splits the same way: the attention part
is linear in the maps and is added layer by layer while the trunk runs
(:func:`attention_logits`), so the (T, T, A) stack is never held.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from seqdance.schema import Feature

SOFTPLUS_BETA = 1.0
SOFTPLUS_THRESHOLD = 2.0
DEFAULT_CHUNK_ELEMENTS = 1 << 23  # elements in one (rows, A, T) block of the pair head


def mlp_head(width: int, out_features: int, dropout: float) -> nn.Sequential:
    """Linear(E, E) -> GELU -> LayerNorm(E) -> Dropout -> Linear(E, out); keys ``{0,2,4}.*``."""
    return nn.Sequential(
        nn.Linear(width, width),
        nn.GELU(),
        nn.LayerNorm(width),
        nn.Dropout(dropout),
        nn.Linear(width, out_features),
    )


def activate(logits: torch.Tensor, features: tuple[Feature, ...]) -> torch.Tensor:
    """Apply each feature's activation to its channels of ``logits`` (last axis).

    Parameters
    ----------
    logits : Tensor, shape=(..., C)
        Raw head outputs, channels in schema order.
    features : tuple of Feature
        ``seqdance.schema.RESIDUE_FEATURES`` or ``PAIR_FEATURES``.

    Returns
    -------
    Tensor, shape=(..., C)
    """
    runs = _activation_runs(features)
    parts = torch.split(logits, [width for _, width in runs], dim=-1)
    out = []
    for (activation, _), x in zip(runs, parts, strict=True):
        if activation == "softplus":
            out.append(F.softplus(x, beta=SOFTPLUS_BETA, threshold=SOFTPLUS_THRESHOLD))
        elif activation == "sigmoid":
            out.append(torch.sigmoid(x))
        elif activation == "softmax":
            out.append(torch.softmax(x, dim=-1))
        elif activation == "tanh2":
            out.append(2.0 * torch.sigmoid(x) - 1.0)
        else:  # pragma: no cover - the schema only uses the four above
            raise ValueError(f"unknown activation {activation!r}")
    return torch.cat(out, dim=-1)


@functools.cache
def _activation_runs(features: tuple[Feature, ...]) -> tuple[tuple[str, int], ...]:
    """(activation, width) of consecutive channel runs that share an element-wise activation
    (softmax groups stay one feature each): one operation per run, and one split whose
    backward is a single concatenation."""
    runs: list[list] = []
    stop = 0
    for feature in features:
        if feature.slice.start != stop:
            raise ValueError(f"feature {feature.name} does not follow the previous channels")
        width = feature.slice.stop - feature.slice.start
        stop = feature.slice.stop
        if runs and runs[-1][0] == feature.activation != "softmax":
            runs[-1][1] += width
        else:
            runs.append([feature.activation, width])
    return tuple((activation, width) for activation, width in runs)


def attention_logits(attn: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Contribution of one layer's attention maps to the pair logits, channels first.

    Parameters
    ----------
    attn : Tensor, shape=(B, H, T, T)
        Attention probabilities of one layer (query i, key j).
    weight : Tensor, shape=(P, H)
        The columns of ``W_pred`` that read this layer's heads.

    Returns
    -------
    Tensor, shape=(B, P, T, T)
    """
    batch, heads, t_q, t_k = attn.shape
    # (P, H) @ (B, H, T*T) -> (B, P, T*T): one batched product, no transposition
    out = torch.matmul(weight.to(attn.dtype), attn.reshape(batch, heads, t_q * t_k))
    return out.view(batch, -1, t_q, t_k)


def middle_logits(
    q: torch.Tensor,
    k: torch.Tensor,
    mid_weight: torch.Tensor,
    mid_bias: torch.Tensor,
    pred_weight: torch.Tensor,
    out: torch.Tensor,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Add ``W_pm @ GELU(W_mid @ concat(q_j * k_i, q_j - k_i) + b_mid)`` to ``out``, rows in blocks.

    For a block of rows i the pre-activation is one batched matrix product,
    ``[q_j, 1] @ [k_i * W1 + W2 | b_mid - W2 k_i]^T``, so neither the (T, T, 2E) input nor
    the (T, T, A) middle features of all rows exist at once.

    Parameters
    ----------
    q, k : Tensor, shape=(N, E)
        The two halves of the pair transform of one protein's N tokens.
    mid_weight : Tensor, shape=(A, 2E)
        ``pair_middle_linear.weight``; ``mid_bias`` shape=(A,).
    pred_weight : Tensor, shape=(P, A)
        The columns of ``pair_pred_linear.weight`` that read the middle features.
    out : Tensor, shape=(N, N, P)
        Accumulator (row i, column j), updated in place and returned.
    chunk_elements : int
        Rows per block are chosen so that one (rows, N, A) block has about this many elements.

    Returns
    -------
    Tensor, shape=(N, N, P)
    """
    n, width = q.shape
    w_prod, w_diff = mid_weight[:, :width], mid_weight[:, width:]  # (A, E) each
    n_mid = mid_weight.shape[0]
    row_const = (mid_bias - k @ w_diff.t()).unsqueeze(-1)  # (N, A, 1): b - W2 k_i
    q_aug = torch.cat([q, q.new_ones(n, 1)], dim=1)  # (N, E + 1)
    pred_t = pred_weight.t()  # (A, P)
    rows = max(1, chunk_elements // max(1, n_mid * n))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        k_w = torch.addcmul(w_diff, k[start:stop, None, :], w_prod)  # (C, A, E): k_i*W1 + W2
        k_w = torch.cat([k_w, row_const[start:stop]], dim=2)  # (C, A, E + 1)
        pre = torch.matmul(q_aug, k_w.transpose(1, 2))  # (C, N, A): row i, column j
        out[start:stop] += F.gelu(pre) @ pred_t  # (C, N, P)
    return out
