"""SeqDance/ESMDance: an ESM2 trunk (``transformers.EsmModel``) plus dynamic-property heads."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seqdance.model.attention import readout_attention
from seqdance.model.config import SeqDanceConfig
from seqdance.model.heads import (
    DEFAULT_CHUNK_ELEMENTS,
    activate,
    attention_logits,
    middle_logits,
    mlp_head,
)
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.schema import PAIR_FEATURES, RESIDUE_FEATURES


@dataclass
class SeqDanceOutput:
    """What one forward pass returns; tensors keep the special-token rows (T = L + 2).

    Attributes
    ----------
    residue : Tensor, shape=(B, T, 50)
        Residue outputs after activations, channels as ``seqdance.schema.RESIDUE_CHANNELS``.
    pair : Tensor, shape=(B, T, T, 13) or None
        Pair outputs after activations (row i, column j); None when the pair head was skipped.
        Entries whose row or column is padding are meaningless.
    residue_logits, pair_logits : Tensor or None
        The same before activations, when asked for.
    embeddings : Tensor, shape=(B, T, E) or None
        The trunk's last hidden state.
    attentions : Tensor, shape=(B, layers, heads, T, T) or None
        Attention probabilities of every layer, when asked for.
    loss : Tensor, shape=() or None
        Only when targets were given; ``loss_terms`` holds the per-feature RMSEs.
    """

    residue: torch.Tensor
    pair: torch.Tensor | None = None
    residue_logits: torch.Tensor | None = None
    pair_logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    attentions: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    loss_terms: dict[str, torch.Tensor] | None = None


class SeqDanceModel(nn.Module):
    """ESM2 trunk + residue head + pair head, with the authors' state-dict key names.

    Submodules: ``esm2`` (``transformers.EsmModel``, no pooler), ``res_pred_nn``,
    ``res_transform_nn``, ``pair_middle_linear``, ``pair_pred_linear``.
    """

    def __init__(self, config: SeqDanceConfig | None = None) -> None:
        super().__init__()
        from transformers import EsmModel

        self.config = config = config or SeqDanceConfig()
        arch = config.arch
        width, n_attn = arch.hidden_size, arch.attention_channels
        self.esm2 = EsmModel(config.esm_config(), add_pooling_layer=False)
        fuse_ffn_gelu(self.esm2)
        self.res_pred_nn = mlp_head(width, config.n_residue_outputs, config.dropout)
        self.res_transform_nn = mlp_head(width, 2 * width, config.dropout)
        self.pair_middle_linear = nn.Linear(2 * width, n_attn)
        self.pair_pred_linear = nn.Linear(2 * n_attn, config.n_pair_outputs)
        self.chunk_elements = DEFAULT_CHUNK_ELEMENTS
        if not config.freeze_trunk:
            init_trunk_xavier(self.esm2)
        for name, module in self.named_modules():
            if not name.startswith("esm2") and isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        if config.freeze_trunk:
            self.esm2.requires_grad_(False)

    # -- shapes --------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return self.config.arch.num_layers

    @property
    def num_heads(self) -> int:
        return self.config.arch.num_heads

    def train(self, mode: bool = True) -> SeqDanceModel:
        super().train(mode)
        if self.config.freeze_trunk:
            self.esm2.eval()  # a frozen trunk never uses dropout
        return self

    # -- forward -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        pair: bool = True,
        return_logits: bool = False,
        return_embeddings: bool = False,
        return_attentions: bool = False,
        targets: SeqDanceTargets | None = None,
        loss_weights: Mapping[str, float] | None = None,
        trunk_autocast: torch.dtype | None = None,
    ) -> SeqDanceOutput:
        """Run the trunk and the heads.

        Parameters
        ----------
        input_ids : LongTensor, shape=(B, T)
            ESM2 token ids (``seqdance.model.alphabet.batch_encode``).
        attention_mask : LongTensor, shape=(B, T), optional
            1 on real tokens, 0 on padding (right-padded, as ``batch_encode`` makes it);
            all ones when omitted.
        pair : bool
            Compute the pair head. Without it (and without ``return_attentions``) the trunk
            runs with fused (SDPA) attention and no attention maps are formed.
        return_logits, return_embeddings, return_attentions : bool
            Extra outputs (see :class:`SeqDanceOutput`).
        targets : SeqDanceTargets, optional
            When given, ``loss`` is the masked per-protein RMSE loss (``seqdance.model.loss``).
        loss_weights : mapping of feature name to weight, optional
        trunk_autocast : torch.dtype, optional
            Run only the trunk under ``torch.autocast`` with this dtype (e.g. bfloat16); the
            heads then run in the weights' precision on the trunk's output, so the outputs
            are not rounded to the low precision (zero-shot scores compare tiny changes).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        batch, tokens = input_ids.shape
        n_attn = self.config.arch.attention_channels
        pred_weight = self.pair_pred_linear.weight  # (P, 2A): [middle | attention]
        acc = None
        if pair:
            acc = torch.zeros(
                batch,
                pred_weight.shape[0],
                tokens,
                tokens,
                device=input_ids.device,
                dtype=torch.float32,  # accumulated in fp32 whatever the model's precision
            )  # (B, P, T, T) pair logits, filled layer by layer then row block by row block
        maps: list[torch.Tensor] = []
        keep = maps if return_attentions else None
        low_precision = torch.autocast(
            input_ids.device.type, dtype=trunk_autocast, enabled=trunk_autocast is not None
        )
        with low_precision:
            trunk = self._run_trunk(input_ids, attention_mask, acc, pred_weight[:, n_attn:], keep)
        hidden = trunk.last_hidden_state  # (B, T, E)
        if trunk_autocast is not None:
            hidden = hidden.to(self.res_pred_nn[0].weight.dtype)

        residue_logits = self.res_pred_nn(hidden)  # (B, T, 50)
        out = SeqDanceOutput(residue=activate(residue_logits, RESIDUE_FEATURES))
        if return_logits:
            out.residue_logits = residue_logits
        if return_embeddings:
            out.embeddings = hidden
        if return_attentions:
            out.attentions = torch.stack(maps, dim=1)  # (B, layers, heads, T, T)
        if pair:
            lengths = attention_mask.sum(-1).tolist()  # padding rows/columns are left out
            out.pair, logits = self._pair_outputs(hidden, acc, lengths)
            if return_logits:
                out.pair_logits = logits
        if targets is not None:
            out.loss, out.loss_terms = masked_rmse_loss(
                out.residue, out.pair, targets, loss_weights
            )
        return out

    def _pair_outputs(
        self, hidden: torch.Tensor, acc: torch.Tensor, lengths: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Finish the pair head on the trunk's ``hidden`` (B, T, E).

        ``acc`` (B, P, T, T) holds the attention part of the pair logits (channels first)
        and receives the middle part, row block by row block, for the first ``lengths[b]``
        tokens of each sequence. Returns the activated pair outputs and the logits, both
        (B, T, T, P).
        """
        n_attn = self.config.arch.attention_channels
        pred_weight = self.pair_pred_linear.weight  # (P, 2A): [middle | attention]
        q, k = self.res_transform_nn(hidden).chunk(2, dim=-1)  # (B, T, E) each
        for b, n in enumerate(lengths):
            n = int(n)
            middle_logits(
                q[b, :n], k[b, :n],
                self.pair_middle_linear.weight, self.pair_middle_linear.bias,
                pred_weight[:, :n_attn], acc[b, :, :n, :n].permute(1, 2, 0),
                self.chunk_elements,
            )  # fmt: skip
        # channels last, contiguous: activations on a permuted view may round differently
        # with the batch size, and a wild type must score exactly 0 against itself
        logits = acc.permute(0, 2, 3, 1).contiguous()  # (B, T, T, P)
        logits += self.pair_pred_linear.bias
        return activate(logits, PAIR_FEATURES), logits

    def _run_trunk(self, input_ids, attention_mask, acc, attn_weight, keep=None):
        """The trunk's output; its attention maps are reduced into ``acc`` (B, P, T, T), the
        pair logits channels first, and, with ``keep`` a list, kept there. Three ways, from
        cheapest:

        - no pair head, no maps: fused (SDPA) attention;
        - pair head only: :class:`seqdance.model.attention.AttentionReadout`, which adds each
          layer's readout into ``acc`` and keeps no maps for the backward pass;
        - maps wanted: eager attention with forward hooks.
        """
        if acc is None and keep is None:
            return self.esm2(input_ids=input_ids, attention_mask=attention_mask)
        if keep is None:
            with readout_attention(self.esm2, acc, attn_weight, attention_mask):
                return self.esm2(input_ids=input_ids, attention_mask=attention_mask)
        with self._attention_hooks(acc, attn_weight, keep):
            return self._run_eager(input_ids, attention_mask)

    def _run_eager(self, input_ids, attention_mask):
        config = self.esm2.config
        previous = config._attn_implementation
        config._attn_implementation = "eager"  # the maps are needed: no fused kernel
        try:
            return self.esm2(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            config._attn_implementation = previous

    @contextlib.contextmanager
    def _attention_hooks(
        self, acc: torch.Tensor | None, attn_weight: torch.Tensor, keep: list | None
    ) -> Iterator[None]:
        """While active, each layer's attention maps are reduced into ``acc`` and dropped."""
        handles = []
        heads = self.num_heads
        if acc is not None or keep is not None:
            for index, layer in enumerate(self.esm2.encoder.layer):

                def hook(module, args, output, index=index):
                    attn = output[1]  # (B, H, T, T)
                    if keep is not None:
                        keep.append(attn)
                    if acc is not None:
                        w = attn_weight[:, index * heads : (index + 1) * heads]  # (P, H)
                        acc.add_(attention_logits(attn, w).to(acc.dtype))  # (B, P, T, T)

                handles.append(layer.attention.self.register_forward_hook(hook))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    # -- persistence ---------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (the hub layout) into ``directory``."""
        from seqdance.model.weights import save_pretrained

        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, spec: str | Path, **kwargs) -> SeqDanceModel:
        """Load from a hub id, a hub-layout folder or a checkpoint (see ``load_model``)."""
        from seqdance.model.weights import load_model

        return load_model(spec, **kwargs)


def init_trunk_xavier(trunk: nn.Module) -> None:
    """SeqDance's random trunk: Xavier-uniform weights (gain 1/sqrt(2) for query, key and
    value), zero biases, LayerNorm weight 1 and bias 0."""
    for name, module in trunk.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            leaf = name.rsplit(".", 1)[-1]
            gain = 1.0 / math.sqrt(2.0) if leaf in ("query", "key", "value") else 1.0
            nn.init.xavier_uniform_(module.weight, gain=gain)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def fuse_ffn_gelu(trunk: nn.Module) -> None:
    """Give every feed-forward block of ``trunk`` the one-kernel exact (erf) GELU.

    ``transformers`` writes ESM's GELU as five tensor operations (``x * 0.5 * (1 +
    erf(x / sqrt(2)))``), each with its own pass over the (B, T, 4E) activations and its own
    backward node; ``torch.nn.functional.gelu`` computes the same function in one pass
    (equal to ~1e-7 relative). The modules and weights stay those of ``transformers``.
    """
    from transformers.models.esm.modeling_esm import EsmIntermediate

    for module in trunk.modules():
        if type(module) is EsmIntermediate:
            module.__class__ = _FusedGeluIntermediate


def _fused_gelu_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(self.dense(hidden_states))


def _make_fused_intermediate():
    from transformers.models.esm.modeling_esm import EsmIntermediate

    return type("_FusedGeluIntermediate", (EsmIntermediate,), {"forward": _fused_gelu_forward})


_FusedGeluIntermediate = _make_fused_intermediate()
