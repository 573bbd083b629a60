"""Naive reference forward pass of SeqDance/ESMDance, written the way the paper states it.

It materialises the full (B, T, T, 2E) pair tensor and stacks all attention maps into a
(B, T, T, A) tensor, exactly the formulation that ``seqdance.model`` avoids, and runs the
trunk as the stock ``transformers.EsmModel`` (eager attention returning every map). Tests
use it as the independent reference for the model; ``bench_inference.py`` and
``bench_train.py`` use it as the baseline. It shares only the weights (the heads of a
``SeqDanceModel`` and a copy of its trunk's weights).
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


def hf_config(arch, dropout: float = 0.0):
    """``transformers.EsmConfig`` of an ESM2 architecture (ESM2's published settings)."""
    from transformers import EsmConfig

    return EsmConfig(
        vocab_size=33,
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        intermediate_size=arch.ffn_size,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=1026,
        position_embedding_type="rotary",
        layer_norm_eps=1e-5,
        emb_layer_norm_before=False,
        token_dropout=True,
        mask_token_id=32,
        pad_token_id=1,
    )


def stock_trunk(model):
    """A ``transformers.EsmModel`` (eager attention) holding ``model.esm2``'s weights, in
    the same mode, dtype and device, with the trunk's dropout rate."""
    from transformers import EsmModel

    trunk = EsmModel(hf_config(model.config.arch, model.config.trunk_dropout_rate),
                     add_pooling_layer=False)  # fmt: skip
    trunk.config._attn_implementation = "eager"  # every map returned
    missing, unexpected = trunk.load_state_dict(model.esm2.state_dict(), strict=False)
    unused = ("inv_freq", "position_embeddings.weight")  # rebuilt / never read (rotary ESM2)
    left = [k for k in missing + unexpected if not k.endswith(unused)]
    if left:
        raise RuntimeError(f"trunk weights do not fit transformers' EsmModel: {left[:5]}")
    param = next(model.esm2.parameters())
    trunk.to(device=param.device, dtype=param.dtype)
    return trunk.train(model.esm2.training)


@torch.no_grad()
def naive_forward(model, input_ids: torch.Tensor, attention_mask=None, trunk=None):
    """Residue (B, T, 50), pair (B, T, T, 13) outputs and last hidden state (B, T, E).

    ``model`` is a ``seqdance.model.SeqDanceModel`` (only its heads are used); ``trunk`` a
    ``transformers.EsmModel`` (default: :func:`stock_trunk` of the model).
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    trunk = trunk if trunk is not None else stock_trunk(model)
    out = trunk(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    hidden = out.last_hidden_state  # (B, T, E)
    maps = torch.cat(out.attentions, dim=1).permute(0, 2, 3, 1)  # (B, T, T, A)

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
