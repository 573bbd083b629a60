"""Build the model a training run starts from: random SeqDance, ESMDance on a pretrained ESM2
trunk, or an existing SeqDance/ESMDance model to fine-tune."""

from __future__ import annotations

from seqdance.errors import SeqDanceError
from seqdance.model.config import Esm2Architecture, SeqDanceConfig, get_architecture
from seqdance.model.pretrained import load_state_dict_checked, read_esm2
from seqdance.model.seqdance import SeqDanceModel, load_model
from seqdance.train.config import ModelConfig


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
    if cfg.init_from:
        variant = None if cfg.freeze_trunk is None else _variant(cfg.freeze_trunk)
        model = load_model(cfg.init_from, variant=variant, require_variant="model.freeze_trunk")
        arch = resolve_architecture(cfg)
        if model.config.arch.hidden_size != arch.hidden_size or (
            model.config.arch.num_layers != arch.num_layers
        ):
            raise SeqDanceError(
                f"model.init_from {cfg.init_from} is a {model.config.arch.name} model, "
                f"not model.arch {arch.name}"
            )
        model.set_dropout(cfg.dropout, cfg.trunk_dropout)
    else:
        arch = resolve_architecture(cfg)
        config = SeqDanceConfig(arch=arch, variant=_variant(bool(cfg.freeze_trunk)),
                                dropout=cfg.dropout, trunk_dropout=cfg.trunk_dropout)  # fmt: skip
        model = SeqDanceModel(config)
    if cfg.trunk_weights:
        load_trunk(model, cfg.trunk_weights)
    if model.config.freeze_trunk:
        model.esm2.requires_grad_(False)
    elif cfg.freeze_layers:
        freeze_bottom_layers(model, cfg.freeze_layers)
    # ESM2's contact-regression head is not part of SeqDance: it gets no gradient (DDP would
    # wait for one), so it is left out of training
    model.esm2.contact_head.requires_grad_(False)
    return model


def freeze_bottom_layers(model: SeqDanceModel, n: int) -> None:
    """Freeze the trunk's embeddings and its first ``n`` layers (partial fine-tuning)."""
    layers = model.esm2.encoder.layer
    if n > len(layers):
        raise SeqDanceError(f"model.freeze_layers={n}, but the trunk has {len(layers)} layers")
    model.esm2.embeddings.requires_grad_(False)
    for layer in layers[:n]:
        layer.requires_grad_(False)


def _variant(freeze_trunk: bool) -> str:
    return "esmdance" if freeze_trunk else "seqdance"


def load_trunk(model: SeqDanceModel, spec: str) -> None:
    """Copy pretrained ESM2 weights (hub id or local ``transformers`` folder) into the trunk."""
    try:
        got, state = read_esm2(spec)
    except SeqDanceError as exc:
        raise SeqDanceError(
            f"model.trunk_weights {spec!r}: cannot load an ESM2 model ({exc})"
        ) from None
    want = model.config.arch
    shape = (got.num_hidden_layers, got.hidden_size, got.num_attention_heads, got.intermediate_size)
    if shape != (want.num_layers, want.hidden_size, want.num_heads, want.ffn_size):
        raise SeqDanceError(
            f"model.trunk_weights {spec!r} has {shape[0]} layers, hidden {shape[1]}, heads "
            f"{shape[2]}, FFN {shape[3]}; model.arch {want.name} needs {want.num_layers}, "
            f"{want.hidden_size}, {want.num_heads}, {want.ffn_size}"
        )
    state = {k: v for k, v in state.items() if not k.startswith("lm_head.")}
    load_state_dict_checked(model.esm2, state, source=f"model.trunk_weights {spec!r}", trunk="")


def enable_ffn_checkpointing(model: SeqDanceModel) -> None:
    """Recompute each trunk layer's feed-forward block in the backward pass.

    The attention sub-layer is left alone: it adds its readout into the pair logits as it
    runs (``seqdance.model.attention``), so a recomputation would add it twice; it keeps
    little for the backward pass anyway (q, k, v and the dropout mask).
    """
    for layer in model.esm2.encoder.layer:
        layer.checkpoint_ffn = True
