"""The ESM2 trunk exported to ONNX and run by ONNX Runtime (fp32 or dynamically quantized int8).

:class:`TrunkGraph` is what is exported: ``forward(input_ids, attention_mask)`` returns the
last hidden state (B, T, E) and, when built with the pair head's attention weights, also the
pair logits' attention part (B, P, T, T) that the trunk's ``"readout"`` mode adds into
``Readout.acc`` layer by layer (here each layer's probabilities are formed, ``"maps"`` mode,
and read out with :func:`seqdance.model.heads.attention_logits`). Batch and length axes are
dynamic; the padding mask is always applied as an additive key bias.

:class:`OrtTrunk` is an ``nn.Module`` with :class:`seqdance.model.esm2.Esm2Model`'s call
signature that runs the exported graphs in ONNX Runtime sessions (one without and one with
the pair readout, built when first needed) and adds the returned readout into
``readout.acc``; ``model.esm2 = OrtTrunk(...)`` leaves the heads and every caller
(``score_sequences``, ``iter_outputs``, ``run_scan``) unchanged. Its ``engine`` buffer holds
a hash of the graphs' bytes, so :func:`seqdance.model.quantize.state_fingerprint` differs
between engines and precisions.

:func:`onnx_model` builds the stand-in: export to a temporary folder, optionally quantize
(``onnxruntime.quantization.quantize_dynamic``: per-channel int8 weights of MatMul/Gemm,
activations quantized per batch on the fly), load. Sessions run with ``intra_op_num_threads``
= the command's thread count, one inter-op thread and deterministic compute.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqdance.errors import SeqDanceError
from seqdance.model.esm2 import Esm2Model, Mode, Readout
from seqdance.model.heads import attention_logits
from seqdance.utils.threads import current_threads


class TrunkGraph(nn.Module):
    """The trunk as a pure function for export (``weight`` (P, layers x heads) or None)."""

    def __init__(self, trunk: Esm2Model, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.trunk = trunk
        self.heads = trunk.config.num_attention_heads
        if weight is not None:
            self.register_buffer("weight", weight.detach().clone())
        else:
            self.weight = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """ids, mask (B, T) int64 -> hidden (B, T, E) [, readout (B, P, T, T)]."""
        trunk = self.trunk
        x = trunk.embeddings(input_ids, attention_mask)  # (B, T, E)
        key_bias = (1 - attention_mask).to(torch.float32) * torch.finfo(torch.float32).min
        key_bias = key_bias[:, None, None, :]  # (B, 1, 1, T)
        rope = trunk.rotary_embeddings(input_ids.shape[1], x.device)  # (T, D) each
        acc = None
        for i, layer in enumerate(trunk.encoder.layer):
            if self.weight is None:
                x = layer(x, rope, key_bias, "sdpa", None)
                continue
            maps: list[torch.Tensor] = []
            x = layer(x, rope, key_bias, "maps", Readout(None, None, maps))
            w = self.weight[:, i * self.heads : (i + 1) * self.heads]  # (P, H)
            part = attention_logits(maps[0], w)  # (B, P, T, T)
            acc = part if acc is None else acc + part
        hidden = trunk.encoder.emb_layer_norm_after(x)
        return hidden if acc is None else (hidden, acc)


def export_trunk(trunk: Esm2Model, path: Path, weight: torch.Tensor | None = None) -> Path:
    """Write ``trunk`` (float32, CPU) as an ONNX graph at ``path`` (dynamic batch, length)."""
    graph = TrunkGraph(copy.deepcopy(trunk).float().cpu().eval(), weight).eval()
    ids = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")
    dims = {"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}}
    outputs = ["hidden"] if weight is None else ["hidden", "readout"]
    with warnings.catch_warnings(), _quiet(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, (ids, mask), dynamo=True, dynamic_shapes=dims, input_names=list(dims),
            output_names=outputs, optimize=True, verbose=False, external_data=False,
        )  # fmt: skip
        program.save(str(path))
    return path


class _quiet:
    """Silence the exporter's progress lines (it logs and prints them)."""

    def __enter__(self):
        self._level = logging.getLogger("torch.onnx").level
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        logging.getLogger("torch.onnx").setLevel(self._level)
        return False


def quantize_graph(source: Path, target: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the graph's MatMul/Gemm weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is printed on the root logger
    try:
        quantize_dynamic(
            str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )  # fmt: skip
    finally:
        root.setLevel(level)
    return target


def open_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, one inter-op, deterministic."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or current_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.use_deterministic_compute = True
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OrtTrunk(nn.Module):
    """ONNX Runtime stand-in for :class:`Esm2Model` (``mode`` "sdpa" or "readout" only)."""

    def __init__(self, trunk: Esm2Model, weight: torch.Tensor, int8: bool, folder: Path,
                 threads: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config = trunk.config
        self.int8 = int8
        self._trunk, self._weight = trunk, weight  # kept to export the readout graph lazily
        self._folder, self._threads = folder, threads
        self._sessions: dict[bool, object] = {}
        self.register_buffer("engine", torch.zeros(16, dtype=torch.uint8))
        self._session(False)

    def _session(self, pair: bool):
        if pair not in self._sessions:
            stem = self._folder / ("trunk_pair" if pair else "trunk")
            path = export_trunk(self._trunk, stem.with_suffix(".onnx"), self._weight if pair else None)
            if self.int8:
                path = quantize_graph(path, stem.with_suffix(".int8.onnx"))
            self._sessions[pair] = open_session(path, self._threads)
            if not pair:  # the fingerprint: the residue graph's bytes
                digest = hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
                self.engine.copy_(torch.frombuffer(bytearray(digest), dtype=torch.uint8))
        return self._sessions[pair]

    def forward(self, input_ids, attention_mask=None, *, mode: Mode = "sdpa",
                readout: Readout | None = None, tape=None) -> torch.Tensor:  # fmt: skip
        """Last hidden state (B, T, E); in "readout" mode the readout is added to ``readout.acc``."""
        if tape is not None or mode == "maps":
            raise SeqDanceError(
                "the ONNX Runtime trunk computes no attention maps nor differential scores; "
                "leave out --int8 for --attention or --dtype bf16/fp16"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pair = mode == "readout"
        feed = {"input_ids": input_ids.cpu().long().numpy(),
                "attention_mask": attention_mask.cpu().long().numpy()}  # fmt: skip
        outs = self._session(pair).run(None, feed)
        hidden = torch.from_numpy(np.ascontiguousarray(outs[0]))
        if pair:
            readout.acc.add_(torch.from_numpy(np.ascontiguousarray(outs[1])).to(readout.acc.dtype))
        return hidden


def onnx_model(model: nn.Module, int8: bool = True, folder: str | Path | None = None,
               threads: int | None = None) -> nn.Module:  # fmt: skip
    """A copy of ``model`` (SeqDanceModel, float32, CPU) whose trunk runs in ONNX Runtime.

    ``folder``: where the graphs are written (a temporary folder, removed with the
    returned model, when None).
    """
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        raise SeqDanceError("--int8 runs on the CPU only; use --device cpu")
    if any(p.dtype != torch.float32 for p in params):
        raise SeqDanceError("--int8 quantizes a float32 model; leave --dtype at fp32")
    out = copy.copy(model)
    out._modules = dict(model._modules)
    tmp = None
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="seqdance-onnx-")
        folder = tmp.name
    n_attn = model.config.arch.attention_channels
    weight = model.pair_pred_linear.weight[:, n_attn:].detach()  # (P, layers x heads)
    stand_in = OrtTrunk(model.esm2, weight, int8, Path(folder), threads)
    stand_in._tmp = tmp  # the folder lives as long as the stand-in
    out.esm2 = stand_in
    out.int8 = int8
    return out
