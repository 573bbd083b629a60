"""SeqDance/ESMDance: an ESM2 trunk (``seqdance.model.esm2``) plus dynamic-property heads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seqdance.model.config import SeqDanceConfig
from seqdance.model.esm2 import Esm2Model, Readout, init_xavier
from seqdance.model.heads import DEFAULT_CHUNK_ELEMENTS, activate, middle_logits, mlp_head
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

    Submodules: ``esm2`` (:class:`Esm2Model`, ``transformers.EsmModel``'s keys), ``res_pred_nn``,
    ``res_transform_nn``, ``pair_middle_linear``, ``pair_pred_linear``.
    """

    def __init__(self, config: SeqDanceConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SeqDanceConfig()
        arch = config.arch
        width, n_attn = arch.hidden_size, arch.attention_channels
        self.esm2 = Esm2Model(config.esm_config())
        self.res_pred_nn = mlp_head(width, config.n_residue_outputs, config.dropout)
        self.res_transform_nn = mlp_head(width, 2 * width, config.dropout)
        self.pair_middle_linear = nn.Linear(2 * width, n_attn)
        self.pair_pred_linear = nn.Linear(2 * n_attn, config.n_pair_outputs)
        self.chunk_elements = DEFAULT_CHUNK_ELEMENTS
        if not config.freeze_trunk:
            init_xavier(self.esm2)
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

    def set_dropout(self, dropout: float, trunk_dropout: float | None = None) -> None:
        """New dropout rates (heads; trunk, None for the authors' choice), config included."""
        from dataclasses import replace

        self.config = replace(self.config, dropout=dropout, trunk_dropout=trunk_dropout)
        for name, module in self.named_modules():
            if isinstance(module, nn.Dropout) and not name.startswith("esm2."):
                module.p = dropout
        self.esm2.set_dropout(self.config.trunk_dropout_rate)

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
            hidden = self.run_trunk(input_ids, attention_mask, acc, pred_weight[:, n_attn:], keep)
        # hidden: (B, T, E)
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

    def run_trunk(self, input_ids, attention_mask, acc=None, attn_weight=None, keep=None):
        """The trunk's last hidden state (B, T, E); its attention maps are reduced into
        ``acc`` (B, P, T, T), the pair logits channels first, with ``attn_weight`` (P, A) and,
        with ``keep`` a list, kept there. Three ways, from cheapest
        (``seqdance.model.esm2``):

        - no pair head, no maps: fused (SDPA) attention;
        - pair head only: ``"readout"`` attention, which adds each layer's readout into
          ``acc`` and keeps no maps for the backward pass;
        - maps wanted: ``"maps"`` attention, the probabilities formed and returned.
        """
        if acc is None and keep is None:
            return self.esm2(input_ids, attention_mask, mode="sdpa")
        mode = "maps" if keep is not None else "readout"
        readout = Readout(acc, attn_weight, keep)
        return self.esm2(input_ids, attention_mask, mode=mode, readout=readout)

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

