"""Typed training configuration: dataclasses, loaded from YAML, overridden by ``key.sub=value``.

A configuration file holds the sections of :class:`Config` (``data``, ``loss``, ``model``,
``optim``, ``train``) plus ``seed`` and ``out_dir``. Command-line overrides address any field by
its dotted path (``train.max_steps=40``, ``model.freeze_trunk=true``,
``train.phases.0.crop_size=512``); values are read as YAML scalars and converted to the
field's type. Unknown keys are errors that list the known ones.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import TRAINING_GROUPS

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Kind = Literal["md", "nma"]


@dataclass
class GroupConfig:
    """One data group: the dataset ``sources`` drawn as one batch per micro-step."""

    name: str = ""
    sources: list[str] = field(default_factory=list)
    kind: Kind = "md"


def _default_groups() -> list[GroupConfig]:
    return [GroupConfig(g.name, list(g.sources), g.source_kind) for g in TRAINING_GROUPS]


@dataclass
class DataConfig:
    """Where the training data lives (a ``seqdance dataset build`` folder) and how it is read.

    ``groups``: the data groups, each drawn once per micro-step. Default: the authors' training
    loader (the MD group from ATLAS, GPCRmd and PED; mdCATH proteins are not trained on).
    Proteins whose source is in no group are left out.
    """

    dir: str = ""
    label: str | None = "train"  # index label used for training; None: every protein
    loss_weights: str | None = None  # deprecated alias of loss.weights (a file path)
    clamp: float | None = None  # clamp targets to [-clamp, clamp]; None: never (the authors)
    num_workers: int = 0  # DataLoader worker processes per rank
    groups: list[GroupConfig] = field(default_factory=_default_groups)


@dataclass
class LossConfig:
    """The training loss (``seqdance.model.loss``).

    ``weights``: ``authors`` (the authors' published table, shipped), a ``.csv`` in the authors'
    layout (rows = terms, columns = groups), a ``.json`` of ``seqdance dataset weights``, or
    ``dataset`` (DIR/loss_weights.json, computed from the training proteins when absent).
    ``mask``: ``residue`` (the authors: a residue/pair counts, all channels, when the first
    channel its source stores is not -1) or ``element`` (every element that is not -1).
    ``nma_bands``: six NMA terms nma_res1..3, nma_pair1..3 (the authors) or two pooled ones.
    """

    weights: str = "authors"
    mask: Literal["residue", "element"] = "residue"
    nma_bands: bool = True


@dataclass
class ModelConfig:
    """Which model to train.

    ``arch``: an ESM2 name (``esm2_t12_35M_UR50D``, ``35M``) or, with ``layers``, ``hidden``,
    ``heads`` and ``ffn`` all set, the name of a custom architecture.
    ``freeze_trunk``: ESMDance (the trunk is frozen, only the heads train); unset: SeqDance,
    or with ``init_from`` the variant the model's config names (required when it has none).
    ``trunk_weights``: pretrained ESM2 trunk: a hub id or a local ``transformers`` folder.
    ``trunk_dropout``: the trunk's dropout; unset: the authors' (``dropout`` for SeqDance).
    ``init_from``: start from a SeqDance/ESMDance model (fine-tuning; any ``--model`` spec).
    ``freeze_layers``: freeze the embeddings and the first N trunk layers (partial fine-tuning
    of a SeqDance model; the heads and the other layers train); unset: none.
    """

    arch: str = "esm2_t12_35M_UR50D"
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    ffn: int | None = None
    freeze_trunk: bool | None = None
    trunk_weights: str | None = None
    init_from: str | None = None
    freeze_layers: int | None = None
    dropout: float = 0.1
    trunk_dropout: float | None = None


@dataclass
class OptimConfig:
    """AdamW and the warm-up / linear-decay learning-rate schedule (facts section 4)."""

    lr: float = 1e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_steps: int = 2000
    decay_fraction: float = 0.9  # linear decay ends at this fraction of total_steps
    final_lr_fraction: float = 0.1  # lr after the decay, as a fraction of the peak
    total_steps: int | None = None  # schedule length; default train.max_steps
    clip_value: float | None = 0.5  # gradient clipping by value; None: no clipping


@dataclass
class Phase:
    """A stretch of training with one crop length: updates ``[previous until_step, until_step)``.

    ``batch_size`` is per process and per data group; ``accum_steps`` micro-batches of each
    group are accumulated into one update.
    """

    crop_size: int = 256  # tokens, special tokens included
    batch_size: int = 16
    accum_steps: int = 1
    until_step: int | None = None  # None: to the end of training


@dataclass
class EarlyStopping:
    """Held-out evaluation during training (fine-tuning): every ``every`` updates the model is
    evaluated on the proteins labelled ``label`` (``seqdance evaluate``'s rules, the run's loss
    weights, mask and NMA terms); the best model is kept in ``out_dir/best``; training stops
    after ``patience`` evaluations without an improvement (unset: never stops early)."""

    every: int | None = None  # updates between evaluations; None: no held-out evaluation
    label: str = "valid"  # index label of the held-out proteins
    patience: int | None = None  # evaluations without improvement before stopping
    min_delta: float = 0.0  # an improvement must lower the held-out loss by more than this
    crop_size: int = 1024  # N-terminal window of the evaluation, special tokens included


@dataclass
class TrainConfig:
    """How long to train, what to log and save, and the numerics.

    ``sampler``: ``replacement`` (ours: every micro-batch drawn with replacement) or
    ``authors`` (the authors' DistributedSampler: one fixed permutation per group, seed 0,
    rebuilt every ``reload_every`` updates and cycled; :mod:`seqdance.train.sampler`).
    ``loss_precision``: ``fp32`` (ours: the loss from fp32 copies of the outputs) or
    ``autocast`` (the authors: the loss computed inside the autocast region).
    """

    max_steps: int = 1000
    save_every: int = 1000
    log_every: int = 10
    phases: list[Phase] = field(default_factory=lambda: [Phase()])
    device: str = "auto"  # auto: cuda:LOCAL_RANK when available, else cpu
    precision: Precision = "auto"  # auto: bf16 on GPUs that support it, else fp16; fp32 on CPU
    activation_checkpointing: bool = False  # recompute trunk layers in the backward pass
    pair_chunk_elements: int | None = None  # pair-head block size (model default when None)
    tensorboard: bool = False  # also write TensorBoard events (if installed)
    progress: bool = True
    sampler: Literal["replacement", "authors"] = "replacement"
    reload_every: int = 200  # updates between the authors' loader rebuilds (sampler=authors)
    loss_precision: Literal["fp32", "autocast"] = "fp32"
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)


@dataclass
class Config:
    """A complete training run."""

    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    out_dir: str = ""

    # -- derived -------------------------------------------------------------------------
    @property
    def schedule_steps(self) -> int:
        return self.optim.total_steps or self.train.max_steps

    def phase_start(self, step: int) -> int:
        """The first update of the phase that update ``step`` belongs to."""
        start = 0
        for phase in self.train.phases:
            if phase.until_step is None or step < phase.until_step:
                return start
            start = phase.until_step
        return start

    def phase_at(self, step: int) -> Phase:
        """The phase that update ``step`` (0-based) belongs to."""
        for phase in self.train.phases:
            if phase.until_step is None or step < phase.until_step:
                return phase
        return self.train.phases[-1]

    def validate(self) -> Config:
        """Check values a user can get wrong; raise :class:`SeqDanceError` naming the key."""
        problems = []
        if not self.data.dir:
            problems.append("data.dir is not set (a `seqdance dataset build` folder)")
        if not self.out_dir:
            problems.append("out_dir is not set")
        t = self.train
        for key, value in (("train.max_steps", t.max_steps), ("train.save_every", t.save_every),
                           ("train.log_every", t.log_every)):  # fmt: skip
            if value < 1:
                problems.append(f"{key} must be >= 1 (got {value})")
        if not t.phases:
            problems.append("train.phases is empty")
        previous = 0
        for i, phase in enumerate(t.phases):
            if phase.crop_size < 3 or phase.batch_size < 1 or phase.accum_steps < 1:
                problems.append(f"train.phases.{i}: crop_size >= 3, batch_size, accum_steps >= 1")
            if phase.until_step is not None:
                if phase.until_step <= previous:
                    problems.append(f"train.phases.{i}.until_step must increase")
                previous = phase.until_step
            elif i != len(t.phases) - 1:
                problems.append(f"train.phases.{i}.until_step: only the last phase may be open")
        if t.reload_every < 1:
            problems.append(f"train.reload_every must be >= 1 (got {t.reload_every})")
        e = t.early_stopping
        if e.every is not None and e.every < 1:
            problems.append(f"train.early_stopping.every must be >= 1 or null (got {e.every})")
        if e.patience is not None and (e.patience < 1 or e.every is None):
            problems.append("train.early_stopping.patience must be >= 1 and needs .every")
        if e.min_delta < 0 or e.crop_size < 3 or not e.label:
            problems.append("train.early_stopping: min_delta >= 0, crop_size >= 3, a label")
        if e.every is not None and e.label == self.data.label:
            problems.append(
                f"train.early_stopping.label {e.label!r} is the training label (data.label)"
            )
        for key, value in (("data.num_workers", self.data.num_workers), ("seed", self.seed)):
            if value < 0:
                problems.append(f"{key} must be >= 0 (got {value})")
        if self.data.clamp is not None and self.data.clamp <= 0:
            problems.append(f"data.clamp must be > 0 or null (got {self.data.clamp})")
        o = self.optim
        if o.total_steps is not None and o.total_steps < 1:
            problems.append(f"optim.total_steps must be >= 1 or null (got {o.total_steps})")
        if not (0 <= o.betas[0] < 1 and 0 <= o.betas[1] < 1) or o.eps <= 0 or o.weight_decay < 0:
            problems.append("optim: 0 <= betas < 1, eps > 0 and weight_decay >= 0")
        if o.lr <= 0 or o.warmup_steps < 0 or not 0 < o.decay_fraction <= 1:
            problems.append("optim: lr > 0, warmup_steps >= 0 and 0 < decay_fraction <= 1")
        if o.clip_value is not None and o.clip_value <= 0:
            problems.append("optim.clip_value must be > 0 or null")
        names = [g.name for g in self.data.groups]
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            problems.append("data.groups: one or more groups, each with a unique name")
        sources = [s.lower() for g in self.data.groups for s in g.sources]
        if len(set(sources)) != len(sources):
            problems.append("data.groups: a source is listed in two groups")
        m = self.model
        for key in ("layers", "hidden", "heads", "ffn"):
            value = getattr(m, key)
            if value is not None and value < 1:
                problems.append(f"model.{key} must be >= 1 or null (got {value})")
        if not 0 <= m.dropout < 1:
            problems.append(f"model.dropout must be in [0, 1) (got {m.dropout})")
        if m.freeze_layers is not None and (m.freeze_layers < 0 or m.freeze_trunk):
            problems.append(
                "model.freeze_layers must be >= 0 and is for a trainable trunk "
                "(not with model.freeze_trunk=true)"
            )
        if self.model.freeze_trunk and not (self.model.trunk_weights or self.model.init_from):
            problems.append(
                "model.freeze_trunk=true needs model.trunk_weights (pretrained ESM2) "
                "or model.init_from (an ESMDance model)"
            )
        if problems:
            raise SeqDanceError("invalid config: " + "; ".join(problems))
        return self

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["optim"]["betas"] = list(self.optim.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return _build(cls, data, "")


# -- YAML and overrides ----------------------------------------------------------------


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file (or start from defaults when ``path`` is None) and apply overrides.

    Relative ``data.dir``/``out_dir`` paths stay relative to the working directory.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(read_utf8(path))
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise InputFileError(f"{path}: not valid YAML{line}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputFileError(f"{path}: expected a mapping of config sections")
        data = loaded or {}
    config = Config.from_dict(data)
    return apply_overrides(config, overrides)


def read_utf8(path: Path) -> str:
    """A text file's contents; a file that is not UTF-8 is an :class:`InputFileError`."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply ``key.sub=value`` strings in order; returns a new :class:`Config`."""
    import yaml

    data = config.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SeqDanceError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set_path(data, key.split("."), value, key)
    return Config.from_dict(data)


def _set_path(node: Any, parts: list[str], value: Any, full: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise SeqDanceError(f"override {full!r}: no list item {head!r} ({len(node)} items)")
        index: Any = int(head)
    elif isinstance(node, dict):
        if head not in node:
            known = ", ".join(sorted(node))
            raise SeqDanceError(f"override {full!r}: unknown key {head!r} (known: {known})")
        index = head
    else:
        raise SeqDanceError(f"override {full!r}: {head!r} is below a plain value")
    if rest:
        _set_path(node[index], rest, value, full)
    else:
        node[index] = value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SeqDanceError(f"config {where or 'file'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SeqDanceError(
            f"config {where or 'file'}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except SeqDanceError as exc:
                errors.append(str(exc))
        raise SeqDanceError(errors[0] if errors else f"config {where}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise SeqDanceError(f"config {where}: {value!r} is not one of {', '.join(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise SeqDanceError(f"config {where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}.{i}") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise SeqDanceError(f"config {where}: expected {len(args)} values, got {value!r}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}.{i}") for i, (a, v) in pairs)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SeqDanceError(f"config {where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # integers are integers: 1.5, 1e30 and 2.0 are refused (a float count is a typo)
        raise SeqDanceError(f"config {where}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise SeqDanceError(f"config {where}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise SeqDanceError(f"config {where}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise SeqDanceError(f"config {where}: expected a string, got {value!r}")
    raise SeqDanceError(f"config {where}: unsupported type {tp}")  # pragma: no cover
