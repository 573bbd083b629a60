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

The pass is :meth:`seqdance.model.SeqDanceModel.forward` itself, run with a
:class:`seqdance.model.esm2.Tape` that records the wild type's Linears
(:class:`_Record`) or computes the mutants' on differences (:class:`_Delta`).

A float64 model runs the same way with float64 in place of float32 (with ``dtype=None``
an exact reference for benchmarks). Only unpadded batches of sequences as long as the
wild type are supported (zero-shot substitutions); eval mode (no dropout) is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from seqdance.errors import SeqDanceError
from seqdance.model.esm2 import Tape


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
    """What the delta passes of the mutants reuse: the wild type's tokens and per-layer
    activations (all float32, batch axis dropped).

    ``input_ids`` (T,), ``layers`` one :class:`LayerActivations` per trunk layer.
    ``low_weights`` caches the Linear weights cast to a low precision (dtype -> per-layer
    tuples), filled on first use.
    """

    input_ids: torch.Tensor
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


def _check_weights(model) -> None:
    """Check that the weights are float32 (or all float64)."""
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes not in ({torch.float32}, {torch.float64}):
        raise SeqDanceError(
            "differential inference needs float32 weights (the low precision is applied to "
            f"the differences only); the model holds {sorted(str(d) for d in dtypes)}"
        )


class _Record(Tape):
    """Full Linears; each layer's activations (batch row 0) are kept."""

    def __init__(self) -> None:
        self.layers: list[LayerActivations] = []

    def linear(self, layer, slot, x, weights):
        return F.linear(x, *weights())

    def after_layer(self, layer, acts):
        self.layers.append(LayerActivations(**{k: v[0] for k, v in acts.items()}))


class _Delta(Tape):
    """Linears on differences from the wild type: ``y_wt + W_low (x - x_wt)``."""

    _SLOTS = (("ln_attn", "qkv"), ("context", "attn_out"), ("ln_ffn", "inter"), ("act", "ffn_out"))

    def __init__(self, model, reference: WildTypeActivations, dtype) -> None:
        self.reference, self.dtype = reference, dtype
        self.low = _low_weights(model, reference, dtype) if dtype is not None else None

    def linear(self, layer, slot, x, weights):
        ref = self.reference.layers[layer]
        x_name, y_name = self._SLOTS[slot]
        weight = self.low[layer][slot] if self.low is not None else weights()[0]
        return _delta_linear(x, getattr(ref, x_name), getattr(ref, y_name), weight, self.dtype)


def _low_weights(model, reference: WildTypeActivations, dtype: torch.dtype):
    """Per layer (W_qkv, W_o, W_in, W_out) cast to ``dtype`` (cached on ``reference``)."""
    if dtype not in reference.low_weights:
        cast = []
        for layer in model.esm2.encoder.layer:
            w_qkv = layer.qkv_weights()[0]
            w_o = layer.attention.output.dense.weight
            w_in, w_out = layer.intermediate.dense.weight, layer.output.dense.weight
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


def _run(model, ids, tape: Tape, pair: bool) -> DifferentialOutput:
    """``SeqDanceModel.forward`` with ``tape`` over unpadded ``ids`` (B, T), in eval mode,
    outside autocast (trunk and heads in the weights' precision)."""
    with torch.autocast(ids.device.type, enabled=False):
        out = model(ids, pair=pair, tape=tape)
    return DifferentialOutput(out.residue, out.pair)


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
    record = _Record()
    output = _run(model, ids, record, pair)
    return WildTypeActivations(ids[0], record.layers), output


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
    return _run(model, ids, _Delta(model, reference, dtype), pair)


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
