"""Checks on model files a user hands us: one clear line instead of a library traceback.

Kept apart from the loaders (``pretrained.py``, ``config.py``) so that they call it in one line.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from seqdance.errors import InputFileError

ARCH_INT_KEYS = ("num_layers", "hidden_size", "num_heads", "ffn_size")


def check_model_config(data: dict[str, Any], source: str | os.PathLike) -> None:
    """Refuse a ``config.json`` whose architecture numbers are not positive integers."""
    arch = data.get("arch")
    problems = []
    if isinstance(arch, dict):
        for key in ARCH_INT_KEYS:
            if key not in arch:
                continue
            value = arch[key]
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"arch.{key} must be an integer (got {value!r})")
            elif value < 1:
                problems.append(f"arch.{key} must be >= 1 (got {value})")
        hidden, heads = arch.get("hidden_size"), arch.get("num_heads")
        if not problems and isinstance(hidden, int) and isinstance(heads, int):
            if hidden % heads:
                problems.append(f"arch.hidden_size {hidden} is not a multiple of num_heads {heads}")
    elif arch is not None and not isinstance(arch, str):
        problems.append(f"arch must be a name or an object (got {arch!r})")
    dropout = data.get("dropout")
    if dropout is not None:
        ok = isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
        if not ok or not math.isfinite(dropout) or not 0 <= dropout < 1:
            problems.append(f"dropout must be a number in [0, 1) (got {dropout!r})")
    for key in ("n_residue_outputs", "n_pair_outputs"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):  # fmt: skip
            problems.append(f"{key} must be a positive integer (got {value!r})")
    if problems:
        raise InputFileError(f"{source}: invalid model config: {'; '.join(problems)}")


def check_model_path(spec: str) -> None:
    """A path-like ``--model`` that does not lead to a file or folder, named as such.

    Called before a spec is taken for a hub id: a symlink loop, a dangling symlink or a
    missing folder under an existing one is a local path that went wrong, not a hub model.
    """
    path = Path(spec).expanduser()
    if os.path.lexists(path) and not path.exists():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13
            raise InputFileError(f"--model {spec}: symlink loop") from None
        except OSError as exc:
            if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:
                raise InputFileError(f"--model {spec}: symlink loop") from None
        raise InputFileError(f"--model {spec}: broken symlink (its target does not exist)")
    parent = path.parent
    if str(parent) not in ("", ".") and parent.is_dir() and not path.exists():
        raise InputFileError(f"--model {spec}: no such file or folder")


def quiet_torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)`` without torch's warnings on stderr.

    A raw (non-zip) pickle makes torch print a two-line ``UserWarning`` that ends with advice
    to set ``weights_only=False``; we never follow it, and the caller reports failures itself.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)
