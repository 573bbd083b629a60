"""SeqDance/ESMDance: an ESM2 trunk (``seqdance.model.esm2``) plus dynamic-property heads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from seqdance.model.config import SeqDanceConfig
from seqdance.model.esm2 import Esm2Model, Mode, Readout, Tape, init_xavier
from seqdance.model.heads import DEFAULT_CHUNK_ELEMENTS, activate, middle_logits, mlp_head
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.model.pair_grad import PairMiddle
from seqdance.model.pretrained import load_state_dict_checked, read_pretrained, save_pretrained
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
        lean_backward: bool = False,
        tape: Tape | None = None,
    ) -> SeqDanceOutput:
        """Run the trunk and the heads: the one forward pass of inference, training and
        differential scoring.

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
            None: the trunk runs in the weights' precision.
        lean_backward : bool
            The training step's path: the pair head's middle term goes through
            :class:`seqdance.model.pair_grad.PairMiddle`, whose hand-written backward keeps
            one (N, N, A) tensor per protein (pooled; the backward pass hands it back and
            runs once). The caller's autocast, if any, covers the whole pass.
        tape : seqdance.model.esm2.Tape, optional
            The differential path (``seqdance.model.differential``): every trunk Linear runs
            through the tape, the attention maps are formed in full precision. Unpadded
            input, eval mode, run outside autocast.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        batch, tokens = input_ids.shape
        n_attn = self.config.arch.attention_channels
        pred_weight = self.pair_pred_linear.weight  # (P, 2A): [middle | attention]
        acc = None
        if pair:
            # the plain pass accumulates in fp32 whatever the model's precision; the training
            # and differential passes in the weights' precision (fp32, or fp64 for a reference)
            plain = tape is None and not lean_backward
            acc = torch.zeros(
                batch,
                pred_weight.shape[0],
                tokens,
                tokens,
                device=input_ids.device,
                dtype=torch.float32 if plain else pred_weight.dtype,
            )  # (B, P, T, T) pair logits, filled layer by layer then row block by row block
        maps: list[torch.Tensor] | None = [] if return_attentions else None
        readout = Readout(acc, pred_weight[:, n_attn:], maps)
        if lean_backward:
            precision = contextlib.nullcontext()  # the caller's autocast, if any
        else:
            precision = torch.autocast(
                input_ids.device.type, dtype=trunk_autocast, enabled=trunk_autocast is not None
            )
        with precision:
            hidden = self.esm2(
                input_ids, attention_mask, mode=self._attention_mode(pair, maps, tape),
                readout=readout, tape=tape,
            )  # fmt: skip  # (B, T, E)
        if trunk_autocast is not None:
            hidden = hidden.to(self.res_pred_nn[0].weight.dtype)

        residue_logits = self.res_pred_nn(hidden)  # (B, T, 50)
        out = SeqDanceOutput(residue=activate(residue_logits, RESIDUE_FEATURES))
        if return_logits:
            out.residue_logits = residue_logits
        if return_embeddings:
            out.embeddings = hidden
        if maps is not None:
            out.attentions = torch.stack(maps, dim=1)  # (B, layers, heads, T, T)
        if pair:
            lengths = attention_mask.sum(-1).tolist()  # padding rows/columns are left out
            self._add_middle_logits(hidden, acc, lengths, lean_backward)
            # channels last, contiguous: activations on a permuted view may round differently
            # with the batch size, and a wild type must score exactly 0 against itself
            logits = acc.permute(0, 2, 3, 1).contiguous()  # (B, T, T, P)
            logits += self.pair_pred_linear.bias
            out.pair = activate(logits, PAIR_FEATURES)  # (B, T, T, P)
            if return_logits:
                out.pair_logits = logits
        if targets is not None:
            out.loss, out.loss_terms = masked_rmse_loss(
                out.residue, out.pair, targets, loss_weights
            )
        return out

    @staticmethod
    def _attention_mode(pair: bool, maps: list | None, tape: Tape | None) -> Mode:
        """The trunk's attention (``seqdance.model.esm2``), from cheapest:

        - no pair head, no maps: fused (SDPA) attention;
        - pair head only: ``"readout"`` attention, which adds each layer's readout into
          the pair logits and keeps no maps for the backward pass;
        - maps wanted, or the differential tape: ``"maps"`` attention, the probabilities
          formed (and returned when asked for).
        """
        if not pair and maps is None:
            return "sdpa"
        if maps is not None or tape is not None:
            return "maps"
        return "readout"

    def _add_middle_logits(
        self, hidden: torch.Tensor, acc: torch.Tensor, lengths: list[int], lean: bool
    ) -> None:
        """Add the middle part of the pair logits to ``acc`` (B, P, T, T), channels first,
        for the first ``lengths[b]`` tokens of each sequence; ``hidden`` (B, T, E).

        ``acc`` already holds the attention part. ``lean``: through :class:`PairMiddle`
        (training), else :func:`seqdance.model.heads.middle_logits` row block by row block.
        """
        n_attn = self.config.arch.attention_channels
        w_pm = self.pair_pred_linear.weight[:, :n_attn]  # (P, A): the middle columns
        mid = self.pair_middle_linear
        q, k = self.res_transform_nn(hidden).chunk(2, dim=-1)  # (B, T, E) each
        if not lean:
            for b, n in enumerate(lengths):
                n = int(n)
                out = acc[b, :, :n, :n].permute(1, 2, 0)  # (n, n, P)
                middle_logits(q[b, :n], k[b, :n], mid.weight, mid.bias, w_pm, out,
                              self.chunk_elements)  # fmt: skip
            return
        q, k = q.float(), k.float()  # the hand-written backward runs in fp32
        with torch.autocast(hidden.device.type, enabled=False):
            for b, n in enumerate(lengths):
                n = int(n)
                middle = PairMiddle.apply(
                    q[b, :n], k[b, :n], mid.weight, mid.bias, w_pm, self.chunk_elements, True
                )  # (P, n, n)
                acc[b, :, :n, :n] += middle

    # -- persistence ---------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (the hub layout) into ``directory``."""
        return save_pretrained(self, directory)  # the module's function

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike, **kwargs) -> SeqDanceModel:
        """Load from a hub id, a hub-layout folder or a checkpoint (see :func:`load_model`)."""
        return load_model(spec, **kwargs)


def load_model(
    spec: str | os.PathLike,
    *,
    arch: str | None = None,
    variant: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    cache_dir: str | os.PathLike | None = None,
    require_variant: str | None = None,
) -> SeqDanceModel:
    """Build the model ``spec`` names, in eval mode: a hub-layout folder, a checkpoint file
    or a hub id (``seqdance.model.pretrained``, the one rule that turns ``--model`` into a
    model).

    Parameters
    ----------
    spec : str or path
        Folder, checkpoint file or hub id.
    arch, variant, cache_dir, require_variant
        See :func:`seqdance.model.pretrained.read_pretrained`.
    device, dtype : where and in which precision the model lives.
    """
    config, state = read_pretrained(
        spec, arch=arch, variant=variant, cache_dir=cache_dir, require_variant=require_variant
    )
    model = SeqDanceModel(config)
    load_state_dict_checked(model, state, source=str(spec))
    model.eval()
    return model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
