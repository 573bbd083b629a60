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

import contextlib
import copy
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from seqdance.errors import SeqDanceError
from seqdance.model.esm2 import Esm2Model, Mode, Readout
from seqdance.model.heads import attention_logits
from seqdance.utils.threads import current_threads

LARGE_BYTES = 1 << 30  # float32 weights above this go to an external data file
GRAPH_VERSION = 1  # part of the cache key: raise it when TrunkGraph or the export changes


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


def export_trunk(trunk: Esm2Model, path: Path, weight: torch.Tensor | None = None,
                 large: bool = False) -> Path:  # fmt: skip
    """Write ``trunk`` (float32, CPU) as an ONNX graph at ``path`` (dynamic batch, length);
    ``large``: weights in an external data file beside it."""
    graph = TrunkGraph(trunk, weight).eval()
    ids = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")
    dims = {"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}}
    outputs = ["hidden"] if weight is None else ["hidden", "readout"]
    with warnings.catch_warnings(), _quiet(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, (ids, mask), dynamo=True, dynamic_shapes=dims, input_names=list(dims),
            output_names=outputs, optimize=True, verbose=False,
        )  # fmt: skip
        program.save(str(path), external_data=large)
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


def quantize_graph(source: Path, target: Path, large: bool = False) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the graph's MatMul/Gemm weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is printed on the root logger
    try:
        quantize_dynamic(
            str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"], use_external_data_format=large,
        )  # fmt: skip
    finally:
        root.setLevel(level)
    return target


def open_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads (not spinning while idle), one
    inter-op thread, deterministic compute."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or current_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.use_deterministic_compute = True
    # idle workers sleep instead of spinning: on a shared machine a spinning thread takes
    # the core torch (or another process) needs between two runs
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cache_folder() -> Path | None:
    """``$SEQDANCE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/seqdance/onnx`` (default
    ``~/.cache/seqdance/onnx``); None when set to ``off``."""
    text = os.environ.get("SEQDANCE_ONNX_CACHE", "").strip()
    if text.lower() in ("off", "0", "none"):
        return None
    if text:
        return Path(text).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "seqdance" / "onnx"


def build_graph(trunk: Esm2Model, weight, int8: bool, folder: Path, key: str | None) -> Path:
    """The graph file of ``trunk`` (with the pair readout when ``weight`` is given), int8 or
    float32: from the cache when ``key`` (the model's fingerprint) names one there, else
    exported into ``folder`` (and copied into the cache, atomically)."""
    name = f"trunk{'_pair' if weight is not None else ''}{'.int8' if int8 else ''}.onnx"
    cache = cache_folder() if key is not None else None
    if cache is not None:
        versions = f"{GRAPH_VERSION}|{torch.__version__}|{_ort_version()}|{name}|{key}"
        cached = cache / (hashlib.blake2b(versions.encode(), digest_size=16).hexdigest() + ".onnx")
        if cached.is_file():
            return cached
    big = sum(p.numel() for p in trunk.parameters()) * 4 > LARGE_BYTES  # protobuf's 2 GiB
    path = export_trunk(trunk, folder / name.replace(".int8", ""), weight, big)
    if int8:
        path = quantize_graph(path, folder / name, big)
    if cache is not None and not big:
        with contextlib.suppress(OSError):  # a read-only home: no cache, nothing else changes
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
            shutil.copyfile(path, tmp)
            os.replace(tmp, cached)  # concurrent writers write the same bytes
    return path


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


class OrtTrunk(nn.Module):
    """ONNX Runtime stand-in for :class:`Esm2Model` (``mode`` "sdpa" or "readout" only).

    ``source`` (the float32 trunk) stays a submodule: the pair graph is exported from it
    when first needed, and its weights enter the state fingerprint with the ``engine``
    buffer (the engine's name and precision)."""

    def __init__(self, trunk: Esm2Model, weight: torch.Tensor, int8: bool, folder: Path,
                 key: str | None = None, threads: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config = trunk.config
        self.int8 = int8
        self.source = trunk
        self._weight, self._folder, self._key, self._threads = weight, folder, key, threads
        self._sessions: dict[bool, object] = {}
        tag = f"onnxruntime {'int8' if int8 else 'fp32'}".encode()
        self.register_buffer("engine", torch.frombuffer(bytearray(tag), dtype=torch.uint8))
        self._session(False)

    def _session(self, pair: bool):
        if pair not in self._sessions:
            weight = self._weight if pair else None
            path = build_graph(self.source, weight, self.int8, self._folder, self._key)
            self._sessions[pair] = open_session(path, self._threads)
        return self._sessions[pair]

    def forward(self, input_ids, attention_mask=None, *, mode: Mode = "sdpa",
                readout: Readout | None = None, tape=None) -> torch.Tensor:  # fmt: skip
        """Last hidden state (B, T, E); "readout" mode adds the readout into ``readout.acc``."""
        if tape is not None or mode == "maps":
            raise SeqDanceError(
                "--int8 (ONNX Runtime) computes no attention maps nor differential scores; "
                "leave out --int8 to use --attention or --dtype bf16/fp16"
            )
        if input_ids.device.type != "cpu":
            raise SeqDanceError("--int8 runs on the CPU only; use --device cpu")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pair = mode == "readout"
        feed = {"input_ids": input_ids.long().numpy(),
                "attention_mask": attention_mask.long().numpy()}  # fmt: skip
        outs = self._session(pair).run(None, feed)
        if pair:
            readout.acc.add_(torch.from_numpy(outs[1]).to(readout.acc.dtype))
        return torch.from_numpy(outs[0])


def check_cpu_float32(model: nn.Module) -> None:
    """Refuse a model that the int8 CPU engines cannot take: not on the CPU, not float32."""
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        raise SeqDanceError("--int8 runs on the CPU only; use --device cpu")
    if any(p.dtype != torch.float32 for p in params):
        raise SeqDanceError("--int8 quantizes a float32 model; leave --dtype at fp32")


def onnx_model(model: nn.Module, int8: bool = True, *, folder: str | Path | None = None,
               key: str | None = None, threads: int | None = None) -> nn.Module:  # fmt: skip
    """A shallow copy of ``model`` (SeqDanceModel, float32, CPU) whose trunk runs in ONNX
    Runtime (int8 or float32 graph); the heads and the float32 trunk are shared, not copied.

    ``folder``: where the graphs are written (default: a temporary folder that lives as long
    as the returned model). ``key``: the model's fingerprint, to reuse graphs cached in
    :func:`cache_folder` (None: no cache). ``threads``: intra-op threads (default: the
    command's count).
    """
    check_cpu_float32(model)
    if importlib.util.find_spec("onnxruntime") is None:
        raise SeqDanceError("--int8 needs ONNX Runtime; pip install onnxruntime onnx onnxscript")
    out = copy.copy(model)
    out._modules = dict(model._modules)
    tmp = None
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="seqdance-onnx-")
        folder = tmp.name
    n_attn = model.config.arch.attention_channels
    weight = model.pair_pred_linear.weight[:, n_attn:].detach()  # (P, layers x heads)
    stand_in = OrtTrunk(model.esm2, weight, int8, Path(folder), key, threads)
    stand_in._tmp = tmp  # the folder is removed with the stand-in
    out.esm2 = stand_in
    out.int8 = int8
    return out
