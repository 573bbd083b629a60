"""Model files: the one rule that turns ``--model`` into a config and weights, and back.

:func:`read_pretrained` reads ``spec``; :func:`seqdance.model.load_model` (the same as
``SeqDanceModel.from_pretrained``) builds the model from what it returns, and
:func:`save_pretrained` writes the hub layout. ``spec`` may be

1. a local folder in the hub layout: ``config.json`` (the authors' constructor arguments,
   e.g. ``{"esm2_select": "model_35M", "model_select": "seqdance"}``, or our own
   :meth:`SeqDanceConfig.to_dict`) and ``model.safetensors`` (or ``pytorch_model.bin``);
2. a checkpoint file: the authors' ``update_N.pt`` (a plain ``torch.save`` of the state dict),
   a ``.safetensors`` file, or a dict holding ``model``/``state_dict`` (and optionally our
   ``config``). Without a config the architecture is inferred from the tensor shapes, or
   given with ``arch``;
3. a Hugging Face hub id (``ChaoHou/SeqDance``, ``ChaoHou/ESMDance``): the local cache is
   used first, the hub only when it is reachable.

State-dict keys are the authors' (``esm2.*`` as in ``transformers.EsmModel``,
``res_pred_nn.*``, ``res_transform_nn.*``, ``pair_middle_linear.*``, ``pair_pred_linear.*``).
Keys that ``transformers`` 4.48 wrote and that our trunk lacks or names differently are
accepted (:data:`TOLERATED_UNEXPECTED`, :data:`TOLERATED_MISSING`); any other missing or
unexpected key, or a shape mismatch, is an error that lists them.

ESM2 checkpoints themselves (``facebook/esm2_*``, or a folder written by ``transformers``'
``save_pretrained``) are read by :func:`read_esm2` (``config.json`` and the weights, no
``transformers`` needed) for a pretrained trunk and for ESM2's masked-LM head
(:func:`load_masked_lm`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.model.alphabet import VOCAB_SIZE
from seqdance.model.config import ARCHITECTURES, Esm2Architecture, SeqDanceConfig, get_architecture
from seqdance.model.esm2 import Esm2Config, Esm2ForMaskedLM
from seqdance.model.validate import check_model_config, check_model_path, quiet_torch_load
from seqdance.utils.hub import require_hub
from seqdance.utils.io import atomic_path

HUB_MODELS: dict[str, str] = {"ChaoHou/SeqDance": "seqdance", "ChaoHou/ESMDance": "esmdance"}
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".safetensors")

# Trunk keys (after the trunk's prefix) of transformers-4.48 EsmModel files that our trunk
# has no use for.
TOLERATED_UNEXPECTED = tuple(
    re.compile(p)
    for p in (
        r"pooler\..+",  # built by EsmModel(add_pooling_layer=True); unused
        r"embeddings\.position_embeddings\.weight",  # absolute positions; ESM2 is rotary
        r"embeddings\.position_ids",
        # per layer in 4.48 (``layer.*`` as transformers 5 writes it back); now shared
        r"encoder\.layer\.(\d+|\*)\.attention\.self\.rotary_embeddings\.inv_freq",
    )
)
# Trunk keys our trunk has and a file may lack; their values are rebuilt or unused.
TOLERATED_MISSING = tuple(
    re.compile(p)
    for p in (
        r"rotary_embeddings\.inv_freq",  # a function of the architecture
        r"contact_head\..+",  # ESM2's contact regression; SeqDance does not use it
    )
)
_PER_LAYER_INV_FREQ = TOLERATED_UNEXPECTED[3]


# -- public entry point ----------------------------------------------------------------
def read_pretrained(
    spec: str | os.PathLike,
    *,
    arch: str | None = None,
    variant: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    require_variant: str | None = None,
) -> tuple[SeqDanceConfig, dict[str, torch.Tensor]]:
    """Config and state dict of the model ``spec`` names (see the module docstring).

    Parameters
    ----------
    spec : str or path
        Folder, checkpoint file or hub id.
    arch : str, optional
        Architecture name (``esm2_t12_35M_UR50D``, ``35M``, ``model_35M``) for files without
        a config; checked against the tensor shapes.
    variant : str, optional
        ``seqdance`` or ``esmdance`` where the file does not say (only matters for training).
    cache_dir : path, optional
        Hugging Face cache folder (default: the hub's own).
    require_variant : str, optional
        When set (the name of the user's option for it), a file that does not say whether it
        is SeqDance or ESMDance (a config-less ``update_N.pt``) and no ``variant`` is an error
        naming that option, instead of the SeqDance default (training must not unfreeze an
        ESMDance trunk by accident).

    Returns
    -------
    config : SeqDanceConfig
    state : dict of str to Tensor
        The authors' state-dict keys (``module.`` prefixes and old LayerNorm names undone).
    """
    path = Path(spec)
    if not path.exists() and os.path.lexists(path):
        check_model_path(str(spec))  # symlink loop or dangling symlink: one line
    if path.is_dir():
        config, state = _read_folder(path)
    elif path.is_file():
        config, state = _read_checkpoint(path)
    elif path.suffix in CHECKPOINT_SUFFIXES or str(spec).startswith((".", "/", "~")):
        raise InputFileError(f"model file or folder not found: {spec}")
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", str(spec)):
        check_model_path(str(spec))  # a local path gone wrong is not a hub id
        config, state = _read_folder(fetch_from_hub(str(spec), cache_dir=cache_dir))
        if config is None:
            config = _config_for_hub(str(spec), state)
    else:
        known = ", ".join(HUB_MODELS)
        raise SeqDanceError(
            f"unknown model {str(spec)!r}: not a folder, a checkpoint file or a hub id "
            f"(known hub models: {known})"
        )
    if config is None:
        if require_variant and variant is None:
            raise SeqDanceError(
                f"{spec} has no config saying whether it is SeqDance or ESMDance; set "
                f"{require_variant}"
            )
        config = infer_config(state, arch)
    elif arch is not None and get_architecture(arch) != config.arch:
        raise SeqDanceError(
            f"--arch {arch} does not match the model's own config ({config.arch.name})"
        )
    if variant is not None:
        config = config.with_variant(variant)  # type: ignore[arg-type]
    return config, state


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` (``model.config``) and ``model.safetensors`` atomically into
    ``directory`` (a SeqDance model)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    with atomic_path(directory / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return directory


# -- readers ---------------------------------------------------------------------------
def _read_folder(folder: Path) -> tuple[SeqDanceConfig | None, dict[str, torch.Tensor]]:
    config = None
    config_path = folder / CONFIG_NAME
    if config_path.is_file():
        try:
            data = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputFileError(f"{config_path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InputFileError(f"{config_path}: expected a JSON object")
        check_model_config(data, config_path)
        config = SeqDanceConfig.from_dict(data)
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (folder / name).is_file():
            _, state = _read_checkpoint(folder / name)
            return config, state
    raise InputFileError(f"{folder}: no {WEIGHTS_NAME} or {LEGACY_WEIGHTS_NAME} in the folder")


_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` (or safetensors) failed, in our words.

    torch's own text for a file that holds Python objects advises turning ``weights_only``
    off, i.e. running code from the file; that advice never reaches a user."""
    text = " ".join(str(exc).split())
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Weights only" in text:
        found = _GLOBAL.search(text)
        what = f" (a {found.group(1)})" if found else ""
        return (
            f"it stores a Python object{what}, not only tensors and plain values; seqdance "
            "reads weights-only files and never runs code from a file"
        )
    return text[:200] or type(exc).__name__


def _read_checkpoint(path: Path) -> tuple[SeqDanceConfig | None, dict[str, torch.Tensor]]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = quiet_torch_load(path)  # no torch UserWarning on stderr
    except Exception as exc:  # truncated, corrupt, or not a weights-only pickle
        raise InputFileError(f"{path}: cannot read model weights ({load_failure(exc)})") from exc
    config = None
    if isinstance(obj, dict) and not _is_state_dict(obj):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                if isinstance(obj.get("config"), dict):
                    config = SeqDanceConfig.from_dict(obj["config"])
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not _is_state_dict(obj):
        raise InputFileError(f"{path}: not a state dict of tensors")
    state = {_modern_name(k.removeprefix("module.")): v for k, v in obj.items()}  # DDP saves
    return config, state


def _modern_name(key: str) -> str:
    """LayerNorm ``gamma``/``beta`` (BERT's old names, which transformers 5's
    ``save_pretrained`` writes again) -> ``weight``/``bias``."""
    if key.endswith("LayerNorm.gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith("LayerNorm.beta"):
        return key[: -len("beta")] + "bias"
    return key


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def fetch_from_hub(
    repo_id: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    label: str = "",
    remedy: str = "download the model where the hub is reachable, or pass a local folder or "
    ".pt file",
) -> Path:
    """Local folder holding ``config.json`` and ``model.safetensors`` of a hub model.

    The cache is tried first; the hub is asked only when the cache lacks the files and
    the hub answers, so an offline machine gets a one-line error at once.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def download(local_only: bool) -> Path:
        kwargs = {"cache_dir": cache_dir, "local_files_only": local_only}
        try:
            weights = hf_hub_download(repo_id, WEIGHTS_NAME, **kwargs)
        except EntryNotFoundError:  # an older upload: pickled weights (read weights-only)
            weights = hf_hub_download(repo_id, LEGACY_WEIGHTS_NAME, **kwargs)
        try:
            hf_hub_download(repo_id, CONFIG_NAME, **kwargs)
        except Exception:  # a config-less repository: the shapes give the architecture
            pass
        return Path(weights).parent

    try:
        return download(local_only=True)
    except Exception:
        pass
    require_hub(f"{label}{repo_id!r} is not in the local Hugging Face cache", remedy)
    try:
        return download(local_only=False)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise SeqDanceError(f"cannot download {repo_id!r} from the hub: {reason}") from exc


def _config_for_hub(repo_id: str, state: dict[str, torch.Tensor]) -> SeqDanceConfig:
    config = infer_config(state, None)
    variant = HUB_MODELS.get(repo_id)
    return config.with_variant(variant) if variant else config  # type: ignore[arg-type]


# -- architecture from shapes ----------------------------------------------------------
def infer_config(state: dict[str, torch.Tensor], arch: str | None = None) -> SeqDanceConfig:
    """Architecture from the tensor shapes of a state dict (or from ``arch``)."""
    try:
        hidden = state["esm2.embeddings.word_embeddings.weight"].shape[1]
        layers = 1 + max(
            int(m.group(1)) for k in state if (m := re.match(r"esm2\.encoder\.layer\.(\d+)\.", k))
        )
        ffn = state["esm2.encoder.layer.0.intermediate.dense.weight"].shape[0]
        n_attn = state["pair_middle_linear.weight"].shape[0]
        n_res = state["res_pred_nn.4.weight"].shape[0]
        n_pair = state["pair_pred_linear.weight"].shape[0]
    except (KeyError, ValueError, IndexError) as exc:
        raise SeqDanceError(
            f"cannot infer the architecture: the weights lack {exc} (not a SeqDance state dict?)"
        ) from exc
    if arch is not None:
        found = get_architecture(arch)
        if (found.num_layers, found.hidden_size, found.ffn_size) != (layers, hidden, ffn):
            raise SeqDanceError(
                f"--arch {found.name} ({found.num_layers} layers, hidden {found.hidden_size}) does "
                f"not match the weights ({layers} layers, hidden {hidden}, FFN {ffn})"
            )
    else:
        if n_attn % layers:
            raise SeqDanceError(f"pair head width {n_attn} is not a multiple of {layers} layers")
        heads = n_attn // layers
        shape = (layers, hidden, heads, ffn)
        found = next(
            (a for a in ARCHITECTURES.values()
             if (a.num_layers, a.hidden_size, a.num_heads, a.ffn_size) == shape),
            Esm2Architecture(f"esm2_t{layers}_h{hidden}", layers, hidden, heads, ffn),
        )  # fmt: skip
    return SeqDanceConfig(arch=found, n_residue_outputs=n_res, n_pair_outputs=n_pair)


# -- checked loading -------------------------------------------------------------------
def load_state_dict_checked(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    source: str = "weights",
    trunk: str = "esm2.",
    optional: tuple[str, ...] = (),
) -> None:
    """Load ``state`` into ``model``; tolerate the 4.48 differences of the trunk (keys that
    start with ``trunk``), reject anything else. ``optional``: further keys that may be
    missing (e.g. a tied decoder)."""
    state = dict(state)
    inv_freq = f"{trunk}rotary_embeddings.inv_freq"
    per_layer = sorted(
        k for k in state if k.startswith(trunk) and _PER_LAYER_INV_FREQ.fullmatch(k[len(trunk) :])
    )
    if per_layer and inv_freq not in state:
        state[inv_freq] = state[per_layer[0]]  # keep the saved values

    def tolerated(key: str, patterns) -> bool:
        return key.startswith(trunk) and _matches(key[len(trunk) :], patterns)

    expected = model.state_dict()
    unexpected = [k for k in state if k not in expected]
    bad_unexpected = [k for k in unexpected if not tolerated(k, TOLERATED_UNEXPECTED)]
    missing = [k for k in expected if k not in state]
    bad_missing = [k for k in missing if not tolerated(k, TOLERATED_MISSING) and k not in optional]
    mismatched = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if bad_missing:
        problems.append(f"missing keys: {_short_list(bad_missing)}")
    if bad_unexpected:
        problems.append(f"unexpected keys: {_short_list(bad_unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch: {_short_list(mismatched)}")
    if problems:
        raise SeqDanceError(f"{source}: weights do not fit the model; " + "; ".join(problems))
    for key in unexpected:
        del state[key]
    model.load_state_dict(state, strict=False)


# -- ESM2 checkpoints (pretrained trunk, masked-LM baseline) ---------------------------------
def read_esm2(
    spec: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> tuple[Esm2Config, dict[str, torch.Tensor]]:
    """``config.json`` and weights of an ESM2 checkpoint: a folder (``transformers``'
    ``save_pretrained`` layout of ``EsmModel`` or ``EsmForMaskedLM``) or a hub id
    (``facebook/esm2_t12_35M_UR50D``; the local cache first, the hub only when reachable).

    Returns the config and the state dict with encoder keys unprefixed (``embeddings.*``,
    ``encoder.*``) and, when present, ``lm_head.*``.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        folder = path
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", str(spec)) and not path.exists():
        folder = fetch_from_hub(
            str(spec), cache_dir, label="ESM2 model ",
            remedy="pass a local folder written by save_pretrained",
        )  # fmt: skip
    else:
        raise InputFileError(f"ESM2 model not found: {spec} (a folder or a hub id)")
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise InputFileError(f"{spec}: no {CONFIG_NAME} (not an ESM2 model folder)")
    try:
        data = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or "num_hidden_layers" not in data:
        raise InputFileError(f"{config_path}: not an ESM2 config (no num_hidden_layers)")
    config = Esm2Config.from_json(data)
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (folder / name).is_file():
            state = _read_checkpoint(folder / name)[1]
            break
    else:
        raise InputFileError(f"{spec}: no {WEIGHTS_NAME} or {LEGACY_WEIGHTS_NAME} in the folder")
    if any(k.startswith("esm.") for k in state):  # EsmForMaskedLM: "esm." + encoder keys
        state = {k.removeprefix("esm."): v for k, v in state.items()}
    return config, state


def load_masked_lm(
    spec: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Esm2ForMaskedLM:
    """ESM2 with its masked-LM head (``EsmForMaskedLM`` weights), in eval mode."""
    config, state = read_esm2(spec, cache_dir)
    if config.vocab_size != VOCAB_SIZE:
        raise SeqDanceError(
            f"{spec}: vocabulary of {config.vocab_size} tokens, not ESM2's {VOCAB_SIZE}"
        )
    if not any(k.startswith("lm_head.") for k in state):
        raise InputFileError(f"{spec}: no masked-LM head (lm_head.*) in the weights")
    model = Esm2ForMaskedLM(config)
    state = {(k if k.startswith("lm_head.") else f"esm.{k}"): v for k, v in state.items()}
    load_state_dict_checked(
        model, state, source=str(spec), trunk="esm.", optional=("lm_head.decoder.weight",)
    )
    model.lm_head.decoder.weight = model.esm.embeddings.word_embeddings.weight  # tied again
    model.eval()
    return model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)


def _short_list(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _matches(key: str, patterns) -> bool:
    return any(p.fullmatch(key) for p in patterns)
