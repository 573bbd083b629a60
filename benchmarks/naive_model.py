"""Naive reference forward pass of SeqDance/ESMDance, written the way the paper states it.

It materialises the full (B, T, T, 2E) pair tensor and stacks all attention maps into a
(B, T, T, A) tensor, exactly the formulation that ``seqdance.model`` avoids. Tests use it as
the independent reference for the memory-efficient model; ``bench_inference.py`` uses it
as the baseline. It shares only the weights (the modules of a ``SeqDanceModel``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqdance.schema import PAIR_FEATURES, RESIDUE_FEATURES

_ACTIVATIONS = {
    "softplus": lambda x: F.softplus(x, beta=1.0, threshold=2.0),
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "tanh2": lambda x: torch.sigmoid(x) * 2.0 - 1.0,
}


def _activate(logits: torch.Tensor, features) -> torch.Tensor:
    out = torch.empty_like(logits)
    for feature in features:
        out[..., feature.slice] = _ACTIVATIONS[feature.activation](logits[..., feature.slice])
    return out


@torch.no_grad()
def naive_forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
    """Residue (B, T, 50), pair (B, T, T, 13) outputs and last hidden state (B, T, E).

    ``model`` is a ``seqdance.model.SeqDanceModel`` (only its submodules are used).
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    esm = model.esm2
    previous = esm.config._attn_implementation
    esm.config._attn_implementation = "eager"
    try:
        trunk = esm(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    finally:
        esm.config._attn_implementation = previous
    hidden = trunk.last_hidden_state  # (B, T, E)
    maps = torch.cat(trunk.attentions, dim=1).permute(0, 2, 3, 1)  # (B, T, T, A)

    residue_logits = model.res_pred_nn(hidden)  # (B, T, 50)
    q, k = model.res_transform_nn(hidden).chunk(2, dim=-1)  # (B, T, E) each
    prod = q[:, None, :, :] * k[:, :, None, :]  # (B, T, T, E): [b, i, j] = q_j * k_i
    diff = q[:, None, :, :] - k[:, :, None, :]  # (B, T, T, E)
    pair_in = torch.cat([prod, diff], dim=-1)  # (B, T, T, 2E)
    del prod, diff
    middle = F.gelu(model.pair_middle_linear(pair_in))  # (B, T, T, A)
    del pair_in
    pair_logits = model.pair_pred_linear(torch.cat([middle, maps], dim=-1))  # (B, T, T, 13)
    return (
        _activate(residue_logits, RESIDUE_FEATURES),
        _activate(pair_logits, PAIR_FEATURES),
        hidden,
    )
