"""What every format reader shares.

* :class:`AtomTable`: the per-atom records a topology file gives, before chains and
  elements are settled (:mod:`seqdance.features.topology` settles them);
* :class:`Block` and :class:`FramePart`: frames a trajectory file gives, and one opened file
  as a :class:`~seqdance.features.trajectory.FrameSource` pools it;
* the one parser of the PDB ``CRYST1`` record (:func:`cryst1_box`); the one opener of
  compressed files is :mod:`~seqdance.features.formats.compressed`;
* :func:`read_table` and :func:`check_frame_atoms`: the one-line errors of unreadable files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mdtraj.utils import lengths_and_angles_to_box_vectors

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line


@dataclass
class AtomTable:
    """Per-atom records of a topology file, before chains and elements are settled."""

    names: list[str]
    resnames: list[str]
    resnums: list[int]
    icodes: list[str]
    chain_ids: list[str]
    segids: list[str]
    elements: list[str]  # "" where the file does not say
    xyz: np.ndarray | None = None  # (n_atoms, 3) nm
    bonds: np.ndarray | None = None  # (n_bonds, 2)
    new_chain: list[bool] | None = None  # TER records: a chain starts at this atom
    typed_by: str = ""  # what typed the elements ("element column", "masses" ...)
    box: np.ndarray | None = None  # (3, 3) box vectors of the file's coordinates, nm

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Block:
    """Consecutive frames of the selected atoms."""

    xyz: np.ndarray  # (F, n_sel, 3) float32, nm
    box: np.ndarray | None = None  # (F, 3, 3) box vectors (rows a, b, c), nm


FrameReader = Callable[[np.ndarray, int], Iterator[Block]]  # reader(atoms, chunk)


@dataclass
class FramePart:
    """One trajectory file, opened: its frames counted before reading (when the format
    allows), what was noticed on the way, and ``read(atoms, chunk)`` for its blocks."""

    label: str
    expected: int | None  # complete frames in the file, None if unknown before reading
    read: FrameReader
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    available: np.ndarray | None = None  # atoms present in every frame, if not all


def cryst1_box(line: str) -> np.ndarray | None:
    """Box vectors (3, 3), nm, of a PDB CRYST1 record; None when its numbers do not parse."""
    try:
        a, b, c = (float(line[k : k + 9]) / 10.0 for k in (6, 15, 24))
        alpha, beta, gamma = (float(line[k : k + 7]) for k in (33, 40, 47))
    except ValueError:
        return None
    va, vb, vc = lengths_and_angles_to_box_vectors(a, b, c, alpha, beta, gamma)
    return np.array([va, vb, vc], dtype=np.float64)


def read_table(path: Path, reader: Callable[[Path], AtomTable]) -> AtomTable:
    """``reader(path)``, every failure one :class:`InputFileError` line."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such topology file")
    try:
        table = reader(path)
    except InputFileError:
        raise
    except Exception as exc:  # parsers raise many types; all mean an unreadable topology
        raise InputFileError(f"{path}: cannot read topology: {_one_line(exc)}") from None
    if len(table) == 0:
        raise InputFileError(f"{path}: cannot read topology: no atoms")
    return table


def check_frame_atoms(path: Path, file_atoms: int, prepared) -> None:
    """A trajectory whose frames do not have the topology's atom count is an error."""
    if file_atoms != prepared.n_atoms:
        raise InputFileError(
            f"{path}: frames have {file_atoms} atoms, the topology has {prepared.n_atoms} "
            f"({prepared.path})"
        )


def trajectory_errors(path: Path, blocks: Iterator[Block]) -> Iterator[Block]:
    """``blocks``, with what a reader raises for a bad file as one InputFileError line."""
    try:
        yield from blocks
    except SeqDanceError:
        raise
    except Exception as exc:  # readers raise assorted types for bad files
        raise InputFileError(f"{path}: cannot read trajectory: {_one_line(exc)}") from None
