"""The ESM2 encoder, written out (fair-esm's ``esm2.py`` in ``transformers``' parameter names).

    tokens -> embedding (token-dropout scaling, padding zeroed)
           -> N x [ x += Attn(LN(x));  x += FFN(LN(x)) ]      pre-LayerNorm layers
           -> LayerNorm                                       ``emb_layer_norm_after``

Attention: q, k, v projections, q scaled by ``head_dim ** -0.5``, rotary positions on q and
k, softmax over keys (padding keys masked), dropout on the probabilities, output projection.
FFN: Linear(E, F) -> exact (erf) GELU -> Linear(F, E). Dropout (rate ``dropout``) acts where
``transformers.EsmModel`` applies it: on the attention probabilities and on both sub-layers'
outputs before the residual add (not on the embeddings).

Module and parameter names equal ``transformers.EsmModel``'s (``embeddings.word_embeddings``,
``encoder.layer.{i}.attention.self.query``, ..., ``encoder.emb_layer_norm_after``,
``rotary_embeddings.inv_freq``, ``contact_head.regression``), so ESM2, SeqDance and ESMDance
state dicts load as they are.

One layer, four ways to attend (``mode``), side by side in :meth:`Esm2Layer.attend`:

- ``"sdpa"``: fused scaled-dot-product attention, no maps (predict, embed, residue scores);
- ``"maps"``: the probabilities are formed and returned (``--attention``, analyses, pair
  head at inference);
- ``"readout"``: :class:`seqdance.model.attention.AttentionReadout`, which adds each layer's
  pair-head readout into an accumulator and recomputes the probabilities in the backward
  pass (training);
- the differential low-precision path is a :class:`Tape` given to the forward pass: every
  Linear then either records its float32 input and output (the wild type) or computes
  ``y_wt + W_low (x - x_wt)`` (mutants; ``seqdance.model.differential``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from seqdance.errors import SeqDanceError
from seqdance.model.alphabet import MASK_ID, PAD_ID, VOCAB_SIZE
from seqdance.model.attention import AttentionReadout
from seqdance.model.heads import attention_logits

Mode = Literal["sdpa", "maps", "readout"]
MASK_RATIO_TRAIN = 0.15 * 0.8  # ESM2's masked fraction during its pre-training


@dataclass(frozen=True)
class Esm2Config:
    """The ``config.json`` fields of an ESM2 checkpoint that the encoder needs."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int = VOCAB_SIZE
    layer_norm_eps: float = 1e-5
    token_dropout: bool = True
    mask_token_id: int = MASK_ID
    pad_token_id: int = PAD_ID
    dropout: float = 0.0  # hidden and attention dropout (ESM2's published configs: 0)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Esm2Config:
        """Read a ``transformers`` ESM2 ``config.json``; refuse what this encoder is not."""
        if data.get("position_embedding_type", "rotary") != "rotary":
            raise SeqDanceError("only rotary ESM2 models are supported (ESM-1b is not)")
        if data.get("emb_layer_norm_before"):
            raise SeqDanceError("emb_layer_norm_before=true (ESM-1b) is not supported")
        if data.get("is_folding_model"):
            raise SeqDanceError("ESMFold checkpoints are not supported")
        names = {f.name for f in fields(cls)} - {"dropout"}
        try:
            kwargs = {k: data[k] for k in names if data.get(k) is not None}
            hidden = float(data.get("hidden_dropout_prob") or 0.0)
            attn = float(data.get("attention_probs_dropout_prob") or 0.0)
            if hidden != attn:
                raise SeqDanceError(
                    f"hidden dropout {hidden} differs from attention dropout {attn}"
                )
            return cls(**kwargs, dropout=hidden)
        except (TypeError, ValueError) as exc:
            raise SeqDanceError(f"invalid ESM2 config: {exc}") from exc


# -- the differential path's hook on every Linear ------------------------------------------
class Tape:
    """What a trunk pass does at each Linear; the plain pass uses none.

    ``linear(layer, slot, x, weights)`` returns the Linear's output for ``x`` (B, T, K);
    ``slot`` is 0 (fused q, k, v), 1 (attention output), 2 (FFN in) or 3 (FFN out);
    ``weights()`` gives the full-precision (weight, bias) when the tape needs them.
    ``after_layer(layer, acts)`` sees the layer's activations (name -> (B, T, X) tensor).
    """

    def linear(self, layer: int, slot: int, x, weights) -> torch.Tensor:
        raise NotImplementedError

    def after_layer(self, layer: int, acts: dict[str, torch.Tensor]) -> None:
        pass


@dataclass
class Readout:
    """Where each layer's attention goes besides the context (``"maps"``/``"readout"``).

    ``acc`` (B, P, T, T) pair logits, channels first, receives ``weight[:, layer heads] @
    probabilities`` per layer; ``weight`` (P, layers x heads); ``keep`` a list that collects
    each layer's (B, H, T, T) probabilities (``"maps"`` only).
    """

    acc: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    keep: list | None = None


# -- modules (names as transformers.EsmModel) ----------------------------------------------
class RotaryEmbedding(nn.Module):
    """cos/sin tables of the rotary position embedding; ``inv_freq`` (D/2,) is a buffer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape (T, D) for positions 0..T-1, float32."""
        t = torch.arange(tokens, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.to(device=device, dtype=torch.float32))  # (T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
        return emb.cos(), emb.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x (B, H, T, D) with tables (T, D): ``x cos + rotate_half(x) sin``,
    computed in float32 (at least) and returned in x's dtype."""
    dtype = x.dtype
    x = x.to(torch.promote_types(dtype, torch.float32))
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return ((x * cos) + (rotated * sin)).to(dtype)


class Embeddings(nn.Module):
    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, cfg.pad_token_id)
        self.token_dropout = cfg.token_dropout
        self.mask_token_id = cfg.mask_token_id

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, (B, T) 1/0 mask -> (B, T, E). With token dropout, ``<mask>`` rows are
        zeroed and the rest scaled by (1 - 0.12) / (1 - observed masked fraction)."""
        x = self.word_embeddings(input_ids)  # (B, T, E)
        if self.token_dropout:
            is_mask = (input_ids == self.mask_token_id).unsqueeze(-1)  # (B, T, 1)
            x = x.masked_fill(is_mask, 0.0)
            observed = is_mask.sum((-1, -2)).float() / attention_mask.sum(-1)  # (B,)
            x = (x * (1 - MASK_RATIO_TRAIN) / (1 - observed)[:, None, None]).to(x.dtype)
        return (x * attention_mask.unsqueeze(-1)).to(x.dtype)  # padding rows zeroed


class _Dense(nn.Linear):
    def weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight, self.bias


class _Linear(nn.Module):
    """A holder with one ``dense`` Linear (and the dropout after it): transformers'
    ``EsmSelfOutput`` / ``EsmIntermediate`` / ``EsmOutput`` key layout."""

    def __init__(self, n_in: int, n_out: int, dropout: float | None = None) -> None:
        super().__init__()
        self.dense = _Dense(n_in, n_out)
        if dropout is not None:
            self.dropout = nn.Dropout(dropout)


class SelfAttention(nn.Module):
    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        e = cfg.hidden_size
        self.query, self.key, self.value = nn.Linear(e, e), nn.Linear(e, e), nn.Linear(e, e)
        self.dropout = nn.Dropout(cfg.dropout)  # on the attention probabilities


class Attention(nn.Module):
    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = _Linear(cfg.hidden_size, cfg.hidden_size, cfg.dropout)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class Esm2Layer(nn.Module):
    """``x += Attn(LN(x)); x += FFN(LN(x))``."""

    def __init__(self, cfg: Esm2Config, index: int) -> None:
        super().__init__()
        self.index = index
        self.heads = cfg.num_attention_heads
        self.attention = Attention(cfg)
        self.intermediate = _Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = _Linear(cfg.intermediate_size, cfg.hidden_size, cfg.dropout)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.checkpoint_ffn = False  # recompute the FFN in the backward pass (training)

    def qkv_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused (3E, E) weight and (3E,) bias of the q, k, v projections."""
        sa = self.attention.self
        weight = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])
        return weight, torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])

    def forward(self, x, rope, key_bias, mode: Mode, readout: Readout | None, tape=None):
        """x (B, T, E) -> (B, T, E). ``rope`` (cos, sin) (T, D); ``key_bias`` (B, 1, 1, T)
        additive padding mask or None; ``tape`` computes the Linears (differential path)."""
        attn, out = self.attention, self.attention.output
        h = attn.LayerNorm(x)  # (B, T, E)
        if tape is None:
            sa = attn.self
            q, k, v = sa.query(h), sa.key(h), sa.value(h)  # (B, T, E) each
        else:
            qkv = tape.linear(self.index, 0, h, self.qkv_weights)  # (B, T, 3E)
            q, k, v = qkv.chunk(3, dim=-1)
        context = self.attend(q, k, v, rope, key_bias, mode, readout)  # (B, T, E)
        if tape is None:
            attn_out = out.dense(context)
        else:
            attn_out = tape.linear(self.index, 1, context, out.dense.weight_and_bias)
        x = x + out.dropout(attn_out)
        h2 = self.LayerNorm(x)  # (B, T, E)
        if tape is None:
            if self.checkpoint_ffn and self.training and h2.requires_grad:
                from torch.utils.checkpoint import checkpoint

                return x + checkpoint(self.feed_forward, h2, use_reentrant=False)
            return x + self.feed_forward(h2)
        inter = tape.linear(self.index, 2, h2, self.intermediate.dense.weight_and_bias)  # (B, T, F)
        act = F.gelu(inter)
        ffn_out = tape.linear(self.index, 3, act, self.output.dense.weight_and_bias)  # (B, T, E)
        acts = {"ln_attn": h, "qkv": qkv, "context": context, "attn_out": attn_out,
                "ln_ffn": h2, "inter": inter, "act": act, "ffn_out": ffn_out}  # fmt: skip
        tape.after_layer(self.index, acts)
        return x + ffn_out

    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        """Linear(E, F) -> exact GELU (one fused kernel) -> Linear(F, E) -> dropout."""
        return self.output.dropout(self.output.dense(F.gelu(self.intermediate.dense(h))))

    def attend(self, q, k, v, rope, key_bias, mode: Mode, readout: Readout | None):
        """Multi-head attention of projected q, k, v (B, T, E) -> context (B, T, E)."""
        batch, tokens, width = q.shape
        heads = self.heads
        head_dim = width // heads
        q, k, v = (t.view(batch, tokens, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        q = rotate(q * head_dim**-0.5, *rope)  # (B, H, T, D): scaled, then rotated (ESM2)
        k = rotate(k, *rope)
        rate = self.attention.self.dropout.p if self.training else 0.0
        if mode == "sdpa":
            mask = None if key_bias is None else key_bias.to(q.dtype)
            context = F.scaled_dot_product_attention(q, k, v, mask, rate, scale=1.0)
        elif mode == "maps":
            scores = q @ k.transpose(-1, -2)  # (B, H, T, T)
            if key_bias is not None:
                scores = scores + key_bias
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            probs = self.attention.self.dropout(probs)  # what transformers returns: post-dropout
            context = probs @ v  # (B, H, T, D)
            if readout is not None:
                _read(readout, probs, self.index, heads)
        elif mode == "readout":
            w = readout.weight[:, self.index * heads : (self.index + 1) * heads]  # (P, H)
            context, r = AttentionReadout.apply(q, k, v, key_bias, w, float(rate))
            readout.acc.add_(r)
            context = context.to(v.dtype)
        else:
            raise ValueError(f"unknown attention mode {mode!r}")
        return context.transpose(1, 2).reshape(batch, tokens, width)  # (B, T, E)


def _read(readout: Readout, probs: torch.Tensor, index: int, heads: int) -> None:
    """Add one layer's share of the pair logits, ``W[:, heads] @ probs``, into ``acc``."""
    if readout.keep is not None:
        readout.keep.append(probs)
    if readout.acc is not None:
        acc = readout.acc  # (B, P, T, T)
        w = readout.weight[:, index * heads : (index + 1) * heads]  # (P, H)
        if acc.dtype == probs.dtype and acc.is_contiguous():  # in place, no (B, P, T, T) temporary
            batch, _, tokens, _ = probs.shape
            acc.view(batch, -1, tokens * tokens).baddbmm_(
                w.to(probs.dtype).expand(batch, -1, -1), probs.reshape(batch, heads, -1)
            )
        else:
            acc.add_(attention_logits(probs, w).to(acc.dtype))


class Encoder(nn.Module):
    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Esm2Layer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.emb_layer_norm_after = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class ContactHead(nn.Module):
    """ESM2's contact regression, kept for its weights (``contact_head.regression``)."""

    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.regression = nn.Linear(cfg.num_hidden_layers * cfg.num_attention_heads, 1)


class Esm2Model(nn.Module):
    """The ESM2 encoder: ids (B, T) -> last hidden state (B, T, E)."""

    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.rotary_embeddings = RotaryEmbedding(cfg.hidden_size // cfg.num_attention_heads)
        self.contact_head = ContactHead(cfg)
        init_normal(self)


    def set_dropout(self, rate: float) -> None:
        """Every dropout of the encoder (attention probabilities, both sub-layer outputs)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = rate

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        mode: Mode = "sdpa",
        readout: Readout | None = None,
        tape: Tape | None = None,
    ) -> torch.Tensor:
        """Last hidden state (B, T, E).

        ``attention_mask`` (B, T): 1 on tokens, 0 on padding (all ones when omitted).
        ``mode`` and ``readout``: see the module docstring and :class:`Readout`.
        ``tape``: the differential path (``seqdance.model.differential``); unpadded input.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids, attention_mask)  # (B, T, E)
        key_bias = None
        if not bool(attention_mask.all()):
            key_bias = torch.zeros(attention_mask.shape, dtype=torch.float32, device=x.device)
            key_bias.masked_fill_(attention_mask == 0, torch.finfo(torch.float32).min)
            key_bias = key_bias[:, None, None, :]  # (B, 1, 1, T)
        rope = self.rotary_embeddings(input_ids.shape[1], x.device)  # (T, D) each
        for layer in self.encoder.layer:
            x = layer(x, rope, key_bias, mode, readout, tape)
        return self.encoder.emb_layer_norm_after(x)


# -- ESM2's masked-language-model head (for the --baseline scores) ------------------------
class LMHead(nn.Module):
    """Linear(E, E) -> GELU -> LayerNorm -> tied decoder + bias; keys ``lm_head.*``."""

    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(hidden)))) + self.bias


class Esm2ForMaskedLM(nn.Module):
    """``esm`` (the encoder) and ``lm_head``; ``forward`` returns logits (B, T, V)."""

    def __init__(self, cfg: Esm2Config) -> None:
        super().__init__()
        self.config = cfg
        self.esm = Esm2Model(cfg)
        self.lm_head = LMHead(cfg)
        self.lm_head.decoder.weight = self.esm.embeddings.word_embeddings.weight  # tied

    def forward(self, input_ids, attention_mask=None) -> torch.Tensor:
        return self.lm_head(self.esm(input_ids, attention_mask))


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """ESM2's initialisation (``transformers``' ``initializer_range``): weights from
    N(0, std), biases 0, the padding embedding 0, LayerNorm weight 1 and bias 0. Module
    order and random draws are those of ``transformers.EsmModel``, so a seeded model starts
    from the same weights."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_xavier(trunk: nn.Module, gain_qkv: float = 1.0 / math.sqrt(2.0)) -> None:
    """SeqDance's random trunk: Xavier-uniform weights (``gain_qkv`` for query, key and
    value), zero biases, LayerNorm weight 1 and bias 0."""
    for name, module in trunk.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            leaf = name.rsplit(".", 1)[-1]
            gain = gain_qkv if leaf in ("query", "key", "value") else 1.0
            nn.init.xavier_uniform_(module.weight, gain=gain)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

