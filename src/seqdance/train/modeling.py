"""Build the model a training run starts from: random SeqDance, ESMDance on a pretrained ESM2
trunk, or an existing SeqDance/ESMDance model to fine-tune."""

from __future__ import annotations

import functools
from pathlib import Path

from torch import nn

from seqdance.errors import SeqDanceError
from seqdance.model.config import Esm2Architecture, SeqDanceConfig, get_architecture
from seqdance.model.seqdance import SeqDanceModel
from seqdance.train.config import ModelConfig
from seqdance.utils.hub import require_hub

# trunk keys our EsmModel has and an ESM2 checkpoint may lack (rebuilt / unused)
_TRUNK_OPTIONAL = ("rotary_embeddings.inv_freq", "contact_head.")


def resolve_architecture(cfg: ModelConfig) -> Esm2Architecture:
    """``model.arch`` plus the optional explicit dimensions."""
    dims = (cfg.layers, cfg.hidden, cfg.heads, cfg.ffn)
    if all(d is None for d in dims):
        return get_architecture(cfg.arch)
    if any(d is None for d in dims):
        raise SeqDanceError(
            "model.layers, model.hidden, model.heads and model.ffn must be given together"
        )
    arch = Esm2Architecture(cfg.arch, cfg.layers, cfg.hidden, cfg.heads, cfg.ffn)  # type: ignore[arg-type]
    try:
        known = get_architecture(cfg.arch)
    except SeqDanceError:
        return arch
    if known != arch:
        raise SeqDanceError(f"model.arch {cfg.arch} does not have the dimensions given")
    return arch


def build_model(cfg: ModelConfig) -> SeqDanceModel:
    """A fresh model for training (call ``torch.manual_seed`` first for reproducible weights)."""
    variant = "esmdance" if cfg.freeze_trunk else "seqdance"
    if cfg.init_from:
        from seqdance.model.weights import load_model

        model = load_model(cfg.init_from, variant=variant)
        arch = resolve_architecture(cfg)
        if model.config.arch.hidden_size != arch.hidden_size or (
            model.config.arch.num_layers != arch.num_layers
        ):
            raise SeqDanceError(
                f"model.init_from {cfg.init_from} is a {model.config.arch.name} model, "
                f"not model.arch {arch.name}"
            )
        _set_dropout(model, cfg.dropout)
    else:
        arch = resolve_architecture(cfg)
        model = SeqDanceModel(SeqDanceConfig(arch=arch, variant=variant, dropout=cfg.dropout))
    if cfg.trunk_weights:
        load_trunk(model, cfg.trunk_weights)
    if cfg.freeze_trunk:
        model.esm2.requires_grad_(False)
    # ESM2's contact-regression head is not part of SeqDance: it gets no gradient (DDP would
    # wait for one), so it is left out of training
    model.esm2.contact_head.requires_grad_(False)
    return model


def _set_dropout(model: SeqDanceModel, p: float) -> None:
    """Heads' dropout to ``p`` (a frozen trunk stays in eval mode, so its dropout never acts)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout) and not name.startswith("esm2"):
            module.p = p


def load_trunk(model: SeqDanceModel, spec: str) -> None:
    """Copy pretrained ESM2 weights (hub id or local ``transformers`` folder) into the trunk."""
    from transformers import EsmModel

    local = Path(spec).expanduser()
    kwargs = {"add_pooling_layer": False}
    try:
        if local.exists() or spec.startswith(("/", ".", "~")):
            if not local.is_dir():
                raise OSError(f"no such folder {local}")
            trunk = EsmModel.from_pretrained(str(local), **kwargs)
        else:
            try:
                trunk = EsmModel.from_pretrained(spec, **kwargs, local_files_only=True)
            except OSError:  # not cached: ask the hub, if it answers
                _check_hub_reachable(spec)
                trunk = EsmModel.from_pretrained(spec, **kwargs)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise SeqDanceError(
            f"model.trunk_weights {spec!r}: cannot load an ESM2 model ({reason})"
        ) from None
    got, want = trunk.config, model.config.arch
    shape = (got.num_hidden_layers, got.hidden_size, got.num_attention_heads, got.intermediate_size)
    if shape != (want.num_layers, want.hidden_size, want.num_heads, want.ffn_size):
        raise SeqDanceError(
            f"model.trunk_weights {spec!r} has {shape[0]} layers, hidden {shape[1]}, heads "
            f"{shape[2]}, FFN {shape[3]}; model.arch {want.name} needs {want.num_layers}, "
            f"{want.hidden_size}, {want.num_heads}, {want.ffn_size}"
        )
    state = trunk.state_dict()
    expected = model.esm2.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(_TRUNK_OPTIONAL)]
    if missing:
        shown = ", ".join(missing[:5])
        raise SeqDanceError(f"model.trunk_weights {spec!r}: missing trunk weights {shown}")
    model.esm2.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def _check_hub_reachable(spec: str) -> None:
    """Fail at once, in one line, when the hub cannot be asked (instead of retrying)."""
    require_hub(
        f"model.trunk_weights {spec!r} is not in the local Hugging Face cache",
        "pass a local transformers folder of the ESM2 model",
    )


def enable_ffn_checkpointing(model: SeqDanceModel) -> None:
    """Recompute each trunk layer's feed-forward block in the backward pass.

    The attention sub-layer is left alone: it adds its readout into the pair logits as it
    runs (``seqdance.model.attention``), so a recomputation would add it twice; it keeps
    little for the backward pass anyway (q, k, v and the dropout mask).
    """
    from torch.utils.checkpoint import checkpoint

    for layer in model.esm2.encoder.layer:
        original = layer.feed_forward_chunk

        @functools.wraps(original)
        def wrapped(attention_output, _original=original):
            if not attention_output.requires_grad:
                return _original(attention_output)
            return checkpoint(_original, attention_output, use_reentrant=False)

        layer.feed_forward_chunk = wrapped
