"""Low-precision mutant outputs by differential ("delta") inference.

Zero-shot scores compare a mutant's outputs with the wild type's, and the two differ by
tiny amounts. Rounding whole activations to bf16 (8 mantissa bits) swamps those
differences. Here the wild type runs once in float32 and its per-layer activations are
kept; a mutant of the same length then runs every linear layer of the ESM2 trunk as

    y = y_wt + W_low @ (x - x_wt)              # W x + b = (W x_wt + b) + W (x - x_wt)

with the product on the *difference* in the low precision and the sum in float32, so the
rounding error scales with ``|x - x_wt|`` rather than with ``|x|``. Everything non-linear
(LayerNorms, rotary embeddings, the attention softmax and its products, GELU, residual
adds, the final LayerNorm) and both heads run in float32 on full values, exactly as
:class:`seqdance.model.SeqDanceModel` computes them. With ``dtype=None`` the differences
run in float32 too, and the outputs equal the model's forward pass up to float32 rounding.

The trunk follows ``transformers.models.esm.modeling_esm`` (ESM2 configuration of
``SeqDanceConfig.esm_config``): token-dropout scaling of the embeddings, no absolute
positions, pre-LayerNorm layers, the query scaled by ``head_dim ** -0.5`` before the
rotary embedding, exact (erf) GELU and ``emb_layer_norm_after``.

A float64 model runs the same way with float64 in place of float32 (with ``dtype=None``
an exact reference for benchmarks). Only unpadded batches of sequences as long as the
wild type are supported (zero-shot substitutions); eval mode (no dropout) is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from seqdance.errors import SeqDanceError
from seqdance.model.alphabet import MASK_ID
from seqdance.model.heads import activate
from seqdance.schema import RESIDUE_FEATURES

TOKEN_DROPOUT_TRAIN_RATIO = 0.15 * 0.8  # ESM2's masked fraction during its training


@dataclass
class LayerActivations:
    """Float32 wild-type activations of one ESM2 layer: each Linear's input and output.

    Shapes (T tokens, E hidden, F feed-forward width): ``ln_attn`` (T, E) input of the
    query/key/value projections, ``qkv`` (T, 3E) their outputs (bias included),
    ``context`` (T, E) attention output, ``attn_out`` (T, E) its projection,
    ``ln_ffn`` (T, E), ``inter`` (T, F) the first feed-forward Linear, ``act`` (T, F)
    its GELU, ``ffn_out`` (T, E) the second feed-forward Linear.
    """

    ln_attn: torch.Tensor
    qkv: torch.Tensor
    context: torch.Tensor
    attn_out: torch.Tensor
    ln_ffn: torch.Tensor
    inter: torch.Tensor
    act: torch.Tensor
    ffn_out: torch.Tensor


@dataclass
class WildTypeActivations:
    """What the delta passes of the mutants reuse: the wild type's tokens, rotary tables
    and per-layer activations (all float32, batch axis dropped).

    ``input_ids`` (T,), ``cos``/``sin`` (T, D) with D the head width, ``layers`` one
    :class:`LayerActivations` per trunk layer. ``low_weights`` caches the Linear weights
    cast to a low precision (dtype -> per-layer tuples), filled on first use.
    """

    input_ids: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    layers: list[LayerActivations]
    low_weights: dict[torch.dtype, list[tuple[torch.Tensor, ...]]] = field(default_factory=dict)


@dataclass
class DifferentialOutput:
    """Outputs of a batch, special-token rows kept (T = L + 2), float32 (float64 for a
    float64 model).

    ``residue`` (B, T, 50) after activations; ``pair`` (B, T, T, 13) or None.
    """

    residue: torch.Tensor
    pair: torch.Tensor | None


# -- ESM2 pieces ---------------------------------------------------------------------------
def _check_weights(model) -> None:
    """Check that the weights are float32 (or all float64)."""
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes not in ({torch.float32}, {torch.float64}):
        raise SeqDanceError(
            "differential inference needs float32 weights (the low precision is applied to "
            f"the differences only); the model holds {sorted(str(d) for d in dtypes)}"
        )


def _embed(model, input_ids: torch.Tensor) -> torch.Tensor:
    """ESM2 input embeddings with token-dropout scaling (no padding). (B, T) -> (B, T, E)."""
    emb = model.esm2.embeddings.word_embeddings(input_ids)  # (B, T, E)
    is_mask = input_ids == MASK_ID  # (B, T)
    emb = emb.masked_fill(is_mask.unsqueeze(-1), 0.0)
    observed = is_mask.sum(-1).float() / input_ids.shape[1]  # (B,)
    scale = (1.0 - TOKEN_DROPOUT_TRAIN_RATIO) / (1.0 - observed)  # (B,)
    return emb * scale[:, None, None]


def _rotary_tables(model, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (T, D) for positions 0..T-1 (the trunk's rotary module)."""
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)  # (1, T)
    cos, sin = model.esm2.rotary_embeddings(hidden, positions)  # (1, T, D) each
    return cos[0], sin[0]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _attention(
    qkv: torch.Tensor, cos, sin, heads: int, maps: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Float32 self-attention of projected tokens.

    Parameters
    ----------
    qkv : Tensor, shape=(B, T, 3E)
        Query, key and value projections (bias included), concatenated.
    cos, sin : Tensor, shape=(T, D)
        Rotary tables, D = E / heads.
    heads : int
    maps : bool
        Form the attention probabilities; without them a fused kernel runs.

    Returns
    -------
    context : Tensor, shape=(B, T, E)
    probs : Tensor, shape=(B, H, T, T) or None
        Attention probabilities (query i, key j).
    """
    batch, tokens, width3 = qkv.shape
    width = width3 // 3
    head_dim = width // heads
    q, k, v = (
        t.view(batch, tokens, heads, head_dim).transpose(1, 2) for t in qkv.split(width, dim=-1)
    )  # (B, H, T, D) each
    q = q * head_dim**-0.5  # ESM2 scales the query before the rotary embedding
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    if maps:
        probs = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # (B, H, T, T)
        context = probs @ v  # (B, H, T, D)
    else:
        probs = None
        context = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, H, T, D)
    return context.transpose(1, 2).reshape(batch, tokens, width), probs  # (B, T, E)


def _layer_weights(layer) -> tuple[torch.Tensor, ...]:
    """(W_qkv (3E, E), b_qkv (3E,), W_o, b_o, W_in, b_in, W_out, b_out) of one ESM2 layer."""
    sa = layer.attention.self
    w_qkv = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])  # (3E, E)
    b_qkv = torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])  # (3E,)
    return (
        w_qkv,
        b_qkv,
        layer.attention.output.dense.weight,
        layer.attention.output.dense.bias,
        layer.intermediate.dense.weight,
        layer.intermediate.dense.bias,
        layer.output.dense.weight,
        layer.output.dense.bias,
    )


def _layer_norm(x: torch.Tensor, norm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


# -- the trunk, recording or on differences -----------------------------------------------
def _low_weights(model, reference: WildTypeActivations, dtype: torch.dtype):
    """Per layer (W_qkv, W_o, W_in, W_out) cast to ``dtype`` (cached on ``reference``)."""
    if dtype not in reference.low_weights:
        cast = []
        for layer in model.esm2.encoder.layer:
            w_qkv, _, w_o, _, w_in, _, w_out, _ = _layer_weights(layer)
            cast.append(tuple(w.to(dtype) for w in (w_qkv, w_o, w_in, w_out)))
        reference.low_weights[dtype] = cast
    return reference.low_weights[dtype]


def _delta_linear(x, x_ref, y_ref, weight, dtype) -> torch.Tensor:
    """``y_ref + weight @ (x - x_ref)`` with the product in ``dtype`` (float32 when None).

    x : (B, T, K); x_ref : (T, K); y_ref : (T, N); weight : (N, K) in ``dtype``.
    Returns (B, T, N) float32.
    """
    if dtype is None:
        return F.linear(x - x_ref, weight).add_(y_ref)  # (B, T, N)
    diff = torch.sub(x, x_ref, out=torch.empty_like(x, dtype=dtype))  # (B, T, K), rounded
    return y_ref + F.linear(diff, weight)  # (B, T, N) float32 (type promotion)


def _run(model, ids, reference, dtype, pair: bool, record: list | None):
    """Trunk and heads over unpadded ``ids`` (B, T). With ``reference`` None every Linear
    runs in full (float32) and, when ``record`` is a list, appends each layer's
    :class:`LayerActivations` (batch row 0); otherwise the Linears act on differences
    from ``reference`` with products in ``dtype``. Returns ``(DifferentialOutput, cos, sin)``."""
    batch, tokens = ids.shape
    heads = model.config.arch.num_heads
    n_attn = model.config.arch.attention_channels
    pred_weight = model.pair_pred_linear.weight  # (P, 2A): [middle | attention]
    attn_weight = pred_weight[:, n_attn:]  # (P, A)
    low = None
    if reference is not None and dtype is not None:
        low = _low_weights(model, reference, dtype)
    acc = None
    if pair:
        acc = torch.zeros(
            batch, pred_weight.shape[0], tokens * tokens, device=ids.device, dtype=pred_weight.dtype
        )  # (B, P, T*T) pair logits, the attention part added layer by layer
    with torch.autocast(ids.device.type, enabled=False):
        hidden = _embed(model, ids)  # (B, T, E)
        if reference is None:
            cos, sin = _rotary_tables(model, hidden)  # (T, D) each
        else:
            cos, sin = reference.cos, reference.sin
        for index, layer in enumerate(model.esm2.encoder.layer):
            w_qkv, b_qkv, w_o, b_o, w_in, b_in, w_out, b_out = _layer_weights(layer)
            ln_attn = _layer_norm(hidden, layer.attention.LayerNorm)  # (B, T, E)
            if reference is None:
                qkv = F.linear(ln_attn, w_qkv, b_qkv)  # (B, T, 3E)
            else:
                ref = reference.layers[index]
                if low is not None:
                    w_qkv, w_o, w_in, w_out = low[index]
                qkv = _delta_linear(ln_attn, ref.ln_attn, ref.qkv, w_qkv, dtype)
            context, probs = _attention(qkv, cos, sin, heads, maps=acc is not None)
            if acc is not None:  # this layer's heads' share of the pair logits
                w = attn_weight[:, index * heads : (index + 1) * heads]  # (P, H)
                acc.baddbmm_(w.expand(batch, -1, -1), probs.view(batch, heads, -1))
            del probs
            if reference is None:
                attn_out = F.linear(context, w_o, b_o)  # (B, T, E)
            else:
                attn_out = _delta_linear(context, ref.context, ref.attn_out, w_o, dtype)
            hidden = hidden + attn_out
            ln_ffn = _layer_norm(hidden, layer.LayerNorm)  # (B, T, E)
            if reference is None:
                inter = F.linear(ln_ffn, w_in, b_in)  # (B, T, F)
            else:
                inter = _delta_linear(ln_ffn, ref.ln_ffn, ref.inter, w_in, dtype)
            act = F.gelu(inter)  # (B, T, F)
            if reference is None:
                ffn_out = F.linear(act, w_out, b_out)  # (B, T, E)
            else:
                ffn_out = _delta_linear(act, ref.act, ref.ffn_out, w_out, dtype)
            hidden = hidden + ffn_out
            if record is not None:
                record.append(
                    LayerActivations(
                        ln_attn[0],
                        qkv[0],
                        context[0],
                        attn_out[0],
                        ln_ffn[0],
                        inter[0],
                        act[0],
                        ffn_out[0],
                    )  # fmt: skip
                )
            del inter, act
        hidden = _layer_norm(hidden, model.esm2.encoder.emb_layer_norm_after)  # (B, T, E)
        return _heads(model, hidden, acc), cos, sin


@torch.no_grad()
def wild_type_activations(
    model, input_ids: torch.Tensor, *, pair: bool = True
) -> tuple[WildTypeActivations, DifferentialOutput]:
    """Run the model over one unpadded sequence in float32, keeping every trunk layer's
    Linear inputs and outputs.

    Parameters
    ----------
    model : SeqDanceModel
        Float32 weights, eval mode.
    input_ids : LongTensor, shape=(T,) or (1, T)
        ESM2 token ids of the wild type (``<cls>`` and ``<eos>`` included).
    pair : bool
        Also compute the wild type's pair outputs.

    Returns
    -------
    reference : WildTypeActivations
    output : DifferentialOutput
        The wild type's outputs (B = 1), equal to ``model.forward`` up to rounding.
    """
    _check_weights(model)
    ids = input_ids.reshape(1, -1).to(next(model.parameters()).device)  # (1, T)
    layers: list[LayerActivations] = []
    output, cos, sin = _run(model, ids, None, None, pair, layers)
    return WildTypeActivations(ids[0], cos, sin, layers), output


@torch.no_grad()
def differential_forward(
    model,
    reference: WildTypeActivations,
    input_ids: torch.Tensor,
    *,
    pair: bool = True,
    dtype: torch.dtype | None = torch.bfloat16,
) -> DifferentialOutput:
    """Outputs of sequences as long as the wild type, the trunk's Linears on differences.

    Parameters
    ----------
    model : SeqDanceModel
        The model ``reference`` was computed with (float32 weights, eval mode).
    reference : WildTypeActivations
        From :func:`wild_type_activations`.
    input_ids : LongTensor, shape=(B, T)
        Unpadded token ids, T equal to the wild type's.
    pair : bool
        Also compute the pair head.
    dtype : torch.dtype or None
        Precision of the products on the differences (bfloat16, float16); None keeps
        them in float32 (then the outputs equal ``model.forward`` up to rounding).

    Returns
    -------
    DifferentialOutput
        ``residue`` (B, T, 50), ``pair`` (B, T, T, 13) or None, float32.
    """
    ids = input_ids.to(reference.input_ids.device)
    if ids.dim() != 2 or ids.shape[1] != reference.input_ids.shape[0]:
        raise SeqDanceError(
            "differential inference needs a (batch, tokens) array of sequences as long as "
            f"the wild type ({reference.input_ids.shape[0]} tokens), got {tuple(ids.shape)}"
        )
    _check_weights(model)
    return _run(model, ids, reference, dtype, pair, None)[0]


def _heads(model, hidden: torch.Tensor, acc: torch.Tensor | None) -> DifferentialOutput:
    """The residue head and the rest of the pair head (float32), as ``SeqDanceModel``;
    ``acc`` (B, P, T*T) holds the attention part of the pair logits, or is None."""
    residue = activate(model.res_pred_nn(hidden), RESIDUE_FEATURES)  # (B, T, 50)
    if acc is None:
        return DifferentialOutput(residue, None)
    batch, tokens, _ = hidden.shape
    acc = acc.view(batch, -1, tokens, tokens)  # (B, P, T, T), unpadded
    pair, _ = model._pair_outputs(hidden, acc, [tokens] * batch)
    return DifferentialOutput(residue, pair)


def differential_outputs(
    model,
    wild_type_ids: torch.Tensor,
    mutant_ids: torch.Tensor,
    *,
    pair: bool = True,
    dtype: torch.dtype | None = torch.bfloat16,
) -> tuple[DifferentialOutput, DifferentialOutput]:
    """Wild-type (float32) and mutant (delta) outputs in one call.

    Parameters
    ----------
    wild_type_ids : LongTensor, shape=(T,)
    mutant_ids : LongTensor, shape=(B, T)

    Returns
    -------
    (wild type with B = 1, mutants), see :func:`differential_forward`.
    """
    reference, wild_type = wild_type_activations(model, wild_type_ids, pair=pair)
    return wild_type, differential_forward(model, reference, mutant_ids, pair=pair, dtype=dtype)
