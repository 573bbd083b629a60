"""Checkpoints: ``out_dir/checkpoints/step_{N}/``, written atomically (temp folder + rename).

Each folder holds the model in the hub layout (``model.safetensors`` + ``config.json``, written by
:func:`seqdance.model.pretrained.save_pretrained`, so ``seqdance predict --model`` loads it) and
``trainer_state.pt``: optimizer and gradient-scaler state, the update count (which is also the data
position and the learning-rate schedule's state), RNG states and the training config. It holds
only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads it. With it
goes ``train_sequences.fasta``: the sequences the model was trained on (one record per protein,
id = protein name), which ``seqdance benchmark --suite dynamics`` searches for leakage.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqdance.errors import InputFileError
from seqdance.model.pretrained import load_failure, save_pretrained
from seqdance.model.validate import quiet_torch_load
from seqdance.utils.io import atomic_path

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"
TRAIN_FASTA = "train_sequences.fasta"  # read by seqdance.benchmark.identity
_STEP_DIR = re.compile(r"step_(\d+)")


@dataclass
class TrainerState:
    """Everything besides the weights that a resumed run needs."""

    step: int  # updates done; the next update is number step + 1
    optimizer: dict
    scaler: dict | None
    rng: dict
    config: dict
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer,
            "scaler": self.scaler,
            "scheduler": {"kind": "warmup_linear_decay", "updates_done": self.step},
            "data_position": {"next_update": self.step},
            "rng": self.rng,
            "config": self.config,
            "world_size": self.world_size,
        }


def checkpoint_dir(out_dir: str | os.PathLike, step: int) -> Path:
    return Path(out_dir) / CHECKPOINTS_DIR / f"step_{step}"


def rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), NumPy and Python generator states as tensors and plain values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(
    out_dir: str | os.PathLike, model, state: TrainerState, files: dict[str, str] | None = None
) -> Path:
    """Write ``step_{N}`` into a temporary folder, then rename it into place.

    ``files``: further text files of the folder, ``{name: text}`` (the training FASTA).
    """
    final = checkpoint_dir(out_dir, state.step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_pretrained(model, tmp)
        with atomic_path(tmp / STATE_FILE) as path:
            torch.save(state.to_dict(), path)
        write_text_files(tmp, files)
        replace_folder(tmp, final)  # re-running a step replaces the old folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def replace_folder(tmp: Path, final: Path) -> None:
    """Put the complete folder ``tmp`` at ``final``, replacing a folder already there."""
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def write_text_files(folder: Path, files: dict[str, str] | None) -> None:
    """Write ``{name: text}`` into ``folder`` (a temporary folder renamed into place later)."""
    for name, text in (files or {}).items():
        (folder / name).write_text(text)


def read_fasta_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(id, sequence)`` of a FASTA file: id = first word of the header, sequence upper-cased."""
    records: list[tuple[str, list[str]]] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith(">"):
            words = line[1:].split()
            records.append((words[0] if words else f"record{len(records) + 1}", []))
        elif line and not line.startswith(";") and records:
            records[-1][1].append(line)
    return [(rid, "".join(chunks).replace(" ", "").upper()) for rid, chunks in records]


def training_fasta_text(
    names: list[str], sequences: list[str], init_from: str | os.PathLike | None = None
) -> str:
    """The ``train_sequences.fasta`` of a run: one record per training protein (``names``,
    ``sequences``: the rows trained on, index order), after the training sequences of the
    ``init_from`` model when its folder has that file (fine-tuning: the union of both).

    A record already there (same id and sequence) is not repeated; an id that is taken by
    another sequence gets a suffix ``_2``, ``_3``, ... so that ids stay unique.
    """
    pairs: list[tuple[str, str]] = []
    if init_from is not None:
        base = Path(init_from) / TRAIN_FASTA
        if Path(init_from).is_dir() and base.is_file():
            pairs.extend(read_fasta_pairs(base))
    pairs.extend(zip(names, sequences, strict=True))
    seen: dict[str, str] = {}
    lines = []
    for rid, seq in pairs:
        unique, k = rid, 1
        while unique in seen and seen[unique] != seq:
            k += 1
            unique = f"{rid}_{k}"
        if unique in seen:  # this record (id and sequence) is already there
            continue
        seen[unique] = seq
        lines.append(f">{unique}\n{seq}\n")
    return "".join(lines)


def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints (with a trainer state) of a run, by step."""
    root = Path(out_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.fullmatch(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def load_trainer_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_state.pt`` of a checkpoint folder (weights-only unpickling)."""
    path = Path(folder) / STATE_FILE
    try:
        return quiet_torch_load(path)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no trainer state in the checkpoint") from None
    except Exception as exc:
        raise InputFileError(
            f"{path}: cannot read the trainer state ({load_failure(exc)})"
        ) from exc


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A checkpoint's ``model.safetensors``; a missing or damaged file is named in one line."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no model weights in the checkpoint")
    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError: truncated or not a safetensors file
        reason = " ".join(str(exc).split())[:200]
        raise InputFileError(
            f"{path}: damaged model weights ({reason}); remove this checkpoint folder to "
            "resume from the one before"
        ) from None


def remove_stale_temporaries(out_dir: str | os.PathLike) -> list[Path]:
    """Remove ``.step_N.tmp-PID``/``.step_N.old-PID`` folders left by a killed run.

    Call only while holding the training lock: then no other process is writing them.
    """
    root = Path(out_dir) / CHECKPOINTS_DIR
    stale = sorted(root.glob(".step_*.tmp-*")) + sorted(root.glob(".step_*.old-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
