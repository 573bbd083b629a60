"""Typed model configuration and the ESM2 architecture table (no download needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from seqdance.errors import SeqDanceError
from seqdance.model.alphabet import MASK_ID, PAD_ID, VOCAB_SIZE
from seqdance.model.esm2 import Esm2Config
from seqdance.schema import N_PAIR_OUTPUTS, N_RESIDUE_OUTPUTS

Variant = Literal["seqdance", "esmdance"]
VARIANTS: tuple[str, ...] = ("seqdance", "esmdance")
MAX_POSITIONS = 1026  # ESM2 max_position_embeddings: 1,024 tokens + 2 spare
MAX_RESIDUES = 1022  # longest sequence one forward pass takes (T = L + 2 <= 1,024)


@dataclass(frozen=True)
class Esm2Architecture:
    """Shape of an ESM2 transformer trunk (docs/model.md, Architecture)."""

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    ffn_size: int

    @property
    def attention_channels(self) -> int:
        """A = layers x heads: the stacked attention maps the pair head reads."""
        return self.num_layers * self.num_heads


ARCHITECTURES: dict[str, Esm2Architecture] = {
    a.name: a
    for a in (
        Esm2Architecture("esm2_t6_8M_UR50D", 6, 320, 20, 1280),
        Esm2Architecture("esm2_t12_35M_UR50D", 12, 480, 20, 1920),
        Esm2Architecture("esm2_t30_150M_UR50D", 30, 640, 20, 2560),
        Esm2Architecture("esm2_t33_650M_UR50D", 33, 1280, 20, 5120),
    )
}
# Short names ("35M") and the authors' config keys ("model_35M") for the same entries.
_ALIASES: dict[str, str] = {}
for _name in ARCHITECTURES:
    _size = _name.split("_")[2]  # "35M"
    _ALIASES[_size.lower()] = _name
    _ALIASES[f"model_{_size}".lower()] = _name
    _ALIASES[f"facebook/{_name}".lower()] = _name


def get_architecture(name: str) -> Esm2Architecture:
    """An architecture by full name, short name (``35M``) or the authors' key (``model_35M``)."""
    key = name.strip()
    if key in ARCHITECTURES:
        return ARCHITECTURES[key]
    if key.lower() in _ALIASES:
        return ARCHITECTURES[_ALIASES[key.lower()]]
    known = ", ".join(ARCHITECTURES)
    raise SeqDanceError(f"unknown architecture {name!r}; known: {known} (or 8M, 35M, 150M, 650M)")


@dataclass(frozen=True)
class SeqDanceConfig:
    """Everything needed to build a SeqDance or ESMDance model.

    ``variant`` ``seqdance``: the trunk is randomly initialised (Xavier) and trained;
    ``esmdance``: the trunk holds pretrained ESM2 weights and stays frozen.

    ``dropout``: the heads' dropout. ``trunk_dropout``: the trunk's (attention probabilities
    and both sub-layer outputs of every layer); None, the default, is the authors' choice:
    the same rate as the heads for SeqDance (their ``randomize_model`` sets every Dropout of
    the trunk to the training dropout), ESM2's own 0 for ESMDance (whose trunk stays frozen
    and in eval mode anyway). ``trunk_dropout=0`` is our alternative (docs/differences.md).
    """

    arch: Esm2Architecture = field(default_factory=lambda: ARCHITECTURES["esm2_t12_35M_UR50D"])
    variant: Variant = "seqdance"
    dropout: float = 0.1  # the heads' dropout (and SeqDance's trunk's, see trunk_dropout)
    trunk_dropout: float | None = None  # None: the authors' (dropout for SeqDance, 0 ESMDance)
    n_residue_outputs: int = N_RESIDUE_OUTPUTS
    n_pair_outputs: int = N_PAIR_OUTPUTS

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            known = ", ".join(VARIANTS)
            raise SeqDanceError(f"unknown model variant {self.variant!r}; known: {known}")
        hidden, heads = self.arch.hidden_size, self.arch.num_heads
        if hidden % heads or (hidden // heads) % 2:
            raise SeqDanceError(
                f"hidden size {self.arch.hidden_size} must split into {self.arch.num_heads} heads "
                "of even width (rotary embeddings)"
            )

    @property
    def freeze_trunk(self) -> bool:
        return self.variant == "esmdance"

    @property
    def trunk_dropout_rate(self) -> float:
        """The trunk's dropout rate (see the class docstring)."""
        if self.trunk_dropout is not None:
            return self.trunk_dropout
        return 0.0 if self.freeze_trunk else self.dropout

    def with_variant(self, variant: Variant) -> SeqDanceConfig:
        return replace(self, variant=variant)

    def esm_config(self) -> Esm2Config:
        """The trunk's :class:`seqdance.model.esm2.Esm2Config` (ESM2's published settings)."""
        return Esm2Config(
            hidden_size=self.arch.hidden_size,
            num_hidden_layers=self.arch.num_layers,
            num_attention_heads=self.arch.num_heads,
            intermediate_size=self.arch.ffn_size,
            vocab_size=VOCAB_SIZE,
            layer_norm_eps=1e-5,
            token_dropout=True,
            mask_token_id=MASK_ID,
            pad_token_id=PAD_ID,
            dropout=self.trunk_dropout_rate,
        )

    # -- config.json -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Our ``config.json`` content; also carries the authors' two keys when they apply."""
        out: dict[str, Any] = {"arch": asdict(self.arch), "variant": self.variant}
        out["dropout"] = self.dropout
        if self.trunk_dropout is not None:
            out["trunk_dropout"] = self.trunk_dropout
        out["n_residue_outputs"] = self.n_residue_outputs
        out["n_pair_outputs"] = self.n_pair_outputs
        if ARCHITECTURES.get(self.arch.name) == self.arch:
            out["esm2_select"] = f"model_{self.arch.name.split('_')[2]}"
            out["model_select"] = self.variant
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqDanceConfig:
        """Read our ``config.json`` or the authors' (``esm2_select`` + ``model_select``)."""
        try:
            if "arch" in data:
                arch = data["arch"]
                arch = get_architecture(arch) if isinstance(arch, str) else Esm2Architecture(**arch)
                return cls(
                    arch=arch,
                    variant=data.get("variant", "seqdance"),
                    dropout=float(data.get("dropout", 0.1)),
                    trunk_dropout=(None if data.get("trunk_dropout") is None
                                   else float(data["trunk_dropout"])),
                    n_residue_outputs=int(data.get("n_residue_outputs", N_RESIDUE_OUTPUTS)),
                    n_pair_outputs=int(data.get("n_pair_outputs", N_PAIR_OUTPUTS)),
                )
            if "esm2_select" in data:
                # The authors' selector; only "seqdance"/"esmdance" are known. Another value
                # is read by its prefix (the variant matters for training only).
                variant = str(data.get("model_select", "seqdance")).lower()
                if variant not in VARIANTS:
                    variant = "esmdance" if variant.startswith("esm") else "seqdance"
                return cls(arch=get_architecture(str(data["esm2_select"])), variant=variant)
        except (TypeError, ValueError) as exc:
            raise SeqDanceError(f"invalid model config: {exc}") from exc
        raise SeqDanceError(
            "model config has neither 'arch' nor the authors' 'esm2_select'/'model_select' keys"
        )
