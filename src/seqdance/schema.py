"""The one source of truth for SeqDance's 50 residue and 13 pair outputs.

Every width, slice, column name, HDF5 channel order, activation and loss-weight key in
the package derives from the two ordered tables below (the outputs are listed in README.md,
Names, and docs/model.md).

A *feature* is a named block of output channels that share an activation (``ss`` is one
feature of 8 channels, normalised by one softmax); a *channel* is one output column
(``ss_H``). ``source`` says which kind of data measures it: ``md`` (molecular dynamics)
or ``nma`` (normal mode analysis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["residue", "pair"]
Source = Literal["md", "nma"]
Activation = Literal["softplus", "sigmoid", "softmax", "tanh2"]  # tanh2: 2*sigmoid(x) - 1


@dataclass(frozen=True)
class Feature:
    """A block of consecutive output channels with one activation."""

    name: str
    kind: Kind
    channels: tuple[str, ...]
    activation: Activation
    source: Source
    start: int  # first channel index in the model's residue or pair output

    @property
    def width(self) -> int:
        return len(self.channels)

    @property
    def stop(self) -> int:
        return self.start + self.width

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


SS_CLASSES = ("B", "E", "H", "I", "G", "S", "T", "loop")  # DSSP 8 classes; 'loop' is DSSP ' '
DSSP_CODES = ("B", "E", "H", "I", "G", "S", "T", " ")  # MDTraj's codes, same order
N_ANGLE_BINS = 12  # 30-degree bins from -180 to 180
N_NMA_BANDS = 3
INTERACTIONS = ("vdw", "hbbb", "hbsb", "hbss", "hp", "sb", "pc", "ps", "ts")


def _numbered(prefix: str, n: int, start: int = 0) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(start, start + n))


# (name, channels, activation, source), in output order.
_RESIDUE_TABLE: tuple[tuple[str, tuple[str, ...], Activation, Source], ...] = (
    ("sasa_mean", ("sasa_mean",), "softplus", "md"),
    ("sasa_std", ("sasa_std",), "softplus", "md"),
    ("rmsf_nor", ("rmsf_nor",), "sigmoid", "md"),
    ("ss", tuple(f"ss_{c}" for c in SS_CLASSES), "softmax", "md"),
    ("chi", _numbered("chi_", N_ANGLE_BINS), "softmax", "md"),
    ("phi", _numbered("phi_", N_ANGLE_BINS), "softmax", "md"),
    ("psi", _numbered("psi_", N_ANGLE_BINS), "softmax", "md"),
    ("nma_res", _numbered("nma_res", N_NMA_BANDS, start=1), "softplus", "nma"),
)
_PAIR_TABLE: tuple[tuple[str, tuple[str, ...], Activation, Source], ...] = (
    *((name, (name,), "softplus", "md") for name in INTERACTIONS),
    ("corr", ("corr",), "tanh2", "md"),
    ("nma_pair", _numbered("nma_pair", N_NMA_BANDS, start=1), "tanh2", "nma"),
)


def _build(table, kind: Kind) -> tuple[Feature, ...]:
    features, start = [], 0
    for name, channels, activation, source in table:
        features.append(Feature(name, kind, channels, activation, source, start))
        start += len(channels)
    return tuple(features)


RESIDUE_FEATURES: tuple[Feature, ...] = _build(_RESIDUE_TABLE, "residue")
PAIR_FEATURES: tuple[Feature, ...] = _build(_PAIR_TABLE, "pair")
FEATURES: tuple[Feature, ...] = RESIDUE_FEATURES + PAIR_FEATURES
FEATURE_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

# Unit of each output feature as the model predicts it (figure labels, labelled outputs).
# Interaction channels are stored and predicted as (mean contacts per frame) ** (1/3).
FEATURE_UNITS: dict[str, str] = {
    "sasa_mean": "nm²",
    "sasa_std": "nm²",
    "rmsf_nor": "RMSF / max RMSF",
    "ss": "fraction of frames",
    "chi": "fraction of frames",
    "phi": "fraction of frames",
    "psi": "fraction of frames",
    "nma_res": "GNM fluctuation, a.u.",
    **{name: "(contacts per frame)^(1/3)" for name in INTERACTIONS},
    "corr": "Pearson r",
    "nma_pair": "ANM correlation",
}


def feature_unit(name: str) -> str:
    """The unit of a feature or channel (``feature_unit("ss_H") == "fraction of frames"``)."""
    if name in FEATURE_UNITS:
        return FEATURE_UNITS[name]
    owner = next((f.name for f in FEATURES if name in f.channels), None)
    if owner is None:
        raise KeyError(f"{name!r} is neither an output feature nor a channel")
    return FEATURE_UNITS[owner]


RESIDUE_CHANNELS: tuple[str, ...] = tuple(c for f in RESIDUE_FEATURES for c in f.channels)
PAIR_CHANNELS: tuple[str, ...] = tuple(c for f in PAIR_FEATURES for c in f.channels)
N_RESIDUE_OUTPUTS = len(RESIDUE_CHANNELS)  # 50
N_PAIR_OUTPUTS = len(PAIR_CHANNELS)  # 13


def channels_of(kind: Kind, source: Source) -> tuple[str, ...]:
    """Channel names that data of one source stores, in storage order (a slice of the outputs)."""
    features = RESIDUE_FEATURES if kind == "residue" else PAIR_FEATURES
    return tuple(c for f in features if f.source == source for c in f.channels)


def output_slice(kind: Kind, source: Source) -> slice:
    """Where the channels of one data source sit in the model's residue or pair output."""
    features = [f for f in (RESIDUE_FEATURES if kind == "residue" else PAIR_FEATURES)]
    chosen = [f for f in features if f.source == source]
    return slice(chosen[0].start, chosen[-1].stop)


# Stored dataset layout (docs/dataset.md): MD 47 residue + 10 pair channels,
# NMA 3 + 3; MD interaction channels stored as value ** (1/3).
MD_RESIDUE_CHANNELS = channels_of("residue", "md")  # 47
MD_PAIR_CHANNELS = channels_of("pair", "md")  # 10
NMA_RESIDUE_CHANNELS = channels_of("residue", "nma")  # 3
NMA_PAIR_CHANNELS = channels_of("pair", "nma")  # 3
CUBE_ROOT_CHANNELS = INTERACTIONS
MISSING = -1.0  # marks a missing value or padding in stored features and targets


@dataclass(frozen=True)
class DataGroup:
    """A group of data sources drawn as one batch per update during training."""

    name: str
    sources: tuple[str, ...]
    source_kind: Source


# Every source of the published dataset, by the group that names it (the authors' loss-weight
# table and evaluation script): the table used to read and evaluate a dataset.
DATA_GROUPS: tuple[DataGroup, ...] = (
    DataGroup("ATLAS_GPCRmd_PED_mdCATH", ("ATLAS", "GPCRmd", "PED", "mdCATH"), "md"),
    DataGroup("IDRome", ("IDRome",), "md"),
    DataGroup("Proteinflow", ("proteinflow_pdb", "proteinflow_sabdab"), "nma"),
)

# The groups the authors' *training* loader draws from (model/utils.py): the MD group is built
# from ATLAS, GPCRmd and PED only; mdCATH, although named in the group's label, is not loaded.
# The default of ``seqdance train``'s ``data.groups`` (docs/differences.md).
TRAINING_GROUPS: tuple[DataGroup, ...] = (
    DataGroup("ATLAS_GPCRmd_PED_mdCATH", ("ATLAS", "GPCRmd", "PED"), "md"),
    DataGroup("IDRome", ("IDRome",), "md"),
    DataGroup("Proteinflow", ("proteinflow_pdb", "proteinflow_sabdab"), "nma"),
)


def find_group(source: str, groups: tuple[DataGroup, ...] | list[DataGroup]) -> DataGroup | None:
    """The group of ``groups`` that lists ``source`` (case-insensitive), or None."""
    for group in groups:
        if source.lower() in (s.lower() for s in group.sources):
            return group
    return None


def group_of_source(source: str) -> DataGroup:
    """The group of :data:`DATA_GROUPS` a dataset ``source`` belongs to (case-insensitive)."""
    group = find_group(source, DATA_GROUPS)
    if group is None:
        known = ", ".join(s for g in DATA_GROUPS for s in g.sources)
        raise KeyError(f"unknown data source {source!r}; known: {known}")
    return group


@dataclass(frozen=True)
class LossTerm:
    """One RMSE term of the training loss: a block of output channels with one weight.

    ``source`` says which data measures it; ``anchor`` is the output channel whose ``-1``
    marks a whole residue (pair) as missing for that source (the first channel the source
    stores: ``sasa_mean``/``vdw`` for MD, ``nma_res1``/``nma_pair1`` for NMA).
    """

    name: str
    kind: Kind
    source: Source
    start: int
    stop: int
    anchor: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def loss_terms(kind: Kind, nma_bands: bool = True) -> tuple[LossTerm, ...]:
    """The loss terms of the residue or pair output, in output order.

    Every feature is one term, except that with ``nma_bands`` (the authors' loss) each NMA
    channel (``nma_res1..3``, ``nma_pair1..3``) is a term of its own; without it the NMA bands
    of a kind pool into one term (``nma_res``, ``nma_pair``).
    """
    features = RESIDUE_FEATURES if kind == "residue" else PAIR_FEATURES
    terms: list[LossTerm] = []
    for f in features:
        anchor = output_slice(kind, f.source).start
        if f.source == "nma" and nma_bands:
            terms.extend(
                LossTerm(c, kind, f.source, f.start + i, f.start + i + 1, anchor)
                for i, c in enumerate(f.channels)
            )
        else:
            terms.append(LossTerm(f.name, kind, f.source, f.start, f.stop, anchor))
    return tuple(terms)


def loss_term_names(nma_bands: bool = True) -> tuple[str, ...]:
    """Names of all loss terms, residue terms first (the rows of a loss-weight table)."""
    return tuple(t.name for k in ("residue", "pair") for t in loss_terms(k, nma_bands))  # type: ignore[arg-type]


def resolve_properties(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Expand user-given property names (channels or feature names) to channel names.

    ``None`` means all 63 channels. ``"sasa_mean,psi"`` gives ``sasa_mean, psi_0..psi_11``.
    """
    if names is None:
        return RESIDUE_CHANNELS + PAIR_CHANNELS
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    all_channels = set(RESIDUE_CHANNELS + PAIR_CHANNELS)
    out: list[str] = []
    for name in names:
        if name in FEATURE_BY_NAME:
            out.extend(FEATURE_BY_NAME[name].channels)
        elif name in all_channels:
            out.append(name)
        else:
            known = ", ".join(f.name for f in FEATURES)
            raise ValueError(f"unknown property {name!r}; use a channel name or one of: {known}")
    if not out:
        raise ValueError("no property named (give channel or feature names, comma-separated)")
    return tuple(dict.fromkeys(out))
