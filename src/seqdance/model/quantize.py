"""An int8 CPU path: dynamic quantization of the trunk's Linear layers.

:func:`quantize_int8` returns a copy of a float32 model whose ESM2 trunk matrix products
(q, k, v, attention output, FFN in and out) use int8 weights (one scale per output channel)
and quantize their inputs per batch on the fly; embeddings, layer norms, attention and the
heads stay in float32. Two engines:

- ``"onnx"`` (``--int8``): the trunk exported to ONNX, quantized by ONNX Runtime's
  ``quantize_dynamic`` and run in an ONNX Runtime session (``seqdance.model.onnx_trunk``);
- ``"torch"``: ``torch.ao.quantization.quantize_dynamic`` on the trunk's Linear layers
  (fbgemm/x86 kernels).

It is a named option, not the default: its parity with float32 is measured by
``benchmarks/onnx_int8.py`` (docs/differences.md, docs/benchmarks.md), and the ONNX
Runtime engine was the faster and closer one there.

:func:`state_fingerprint` hashes a model's parameters and buffers, quantized or not (the
resume manifests of scans and sharded runs).
"""

from __future__ import annotations

import copy
import hashlib
import warnings

import torch
from torch import nn

from seqdance.errors import SeqDanceError
from seqdance.model.onnx_trunk import check_cpu_float32, onnx_model

ENGINES = ("onnx", "torch")


def _plain_linear(layer: nn.Linear) -> nn.Linear:
    """An ``nn.Linear`` with the same weights (subclasses such as the trunk's ``_Dense`` are
    not matched by the quantizer's type table)."""
    plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    plain.weight = layer.weight
    if layer.bias is not None:
        plain.bias = layer.bias
    return plain


def quantize_int8(model: nn.Module, engine: str = "onnx") -> nn.Module:
    """A copy of ``model`` (float32, on the CPU, eval mode) with an int8 trunk.

    ``engine``: ``"onnx"`` (ONNX Runtime; graphs cached by the model's fingerprint, see
    :func:`seqdance.model.onnx_trunk.cache_folder`) or ``"torch"`` (torch's dynamically
    quantized Linear layers; a model without a trunk, e.g. an ``Esm2Model``, is quantized
    as a whole).

    Raises
    ------
    SeqDanceError
        When the model is not float32 on the CPU (the int8 kernels are CPU kernels), or the
        engine is unknown.
    """
    if engine not in ENGINES:
        raise SeqDanceError(f"unknown int8 engine {engine!r}; use one of {', '.join(ENGINES)}")
    check_cpu_float32(model)
    if engine == "onnx" and hasattr(model, "esm2"):
        key = state_fingerprint(model.esm2) + state_fingerprint(model.pair_pred_linear)
        return onnx_model(model, int8=True, key=key)
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "qnnpack")):
        raise SeqDanceError("--int8: this torch build has no quantized CPU kernels")
    out = copy.deepcopy(model).eval()
    trunk = out.esm2 if hasattr(out, "esm2") else out
    for module in list(trunk.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and type(child) is not nn.Linear:
                setattr(module, name, _plain_linear(child))
    with warnings.catch_warnings():  # torch's deprecation notices are not the user's concern
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantized = quantize_dynamic(
            trunk, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=False
        )
    if trunk is out:
        return quantized
    out.esm2 = quantized
    out.int8 = True
    return out


def _update(digest, value) -> None:
    if isinstance(value, (tuple, list)):
        for v in value:
            _update(digest, v)
        return
    if not isinstance(value, torch.Tensor):
        digest.update(repr(value).encode())
        return
    digest.update(str(tuple(value.shape)).encode())
    t = value.detach().to("cpu")
    if t.is_quantized:
        digest.update(t.int_repr().contiguous().numpy().tobytes())
        scales = (
            t.q_per_channel_scales()
            if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            else torch.tensor(t.q_scale())
        )
        digest.update(scales.double().numpy().tobytes())
        return
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.float()
    digest.update(t.numpy().tobytes())


def state_fingerprint(model: nn.Module) -> str:
    """Hash of the model's parameters and buffers (names, shapes, values; int8 weights by
    their integers and scales)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, value in list(model.state_dict().items()):
        digest.update(name.encode())
        _update(digest, value)
    return digest.hexdigest()
