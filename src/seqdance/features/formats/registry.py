"""Which reader reads a file: by its suffix (``.gz`` stripped), as MDTraj's registry does.

Topologies: PDB/ENT/PQR, mmCIF/PDBx, GRO, PSF, TPR have readers of their own; everything
else goes to MDTraj (:mod:`~seqdance.features.formats.generic`). Trajectories: DCD, XTC,
GRO, mmCIF/PDBx and multi-model PDB have readers of their own; everything else goes to
MDTraj. A file that cannot be read gives one :class:`~seqdance.errors.InputFileError` line.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

from seqdance.errors import InputFileError
from seqdance.errors import one_line as _one_line
from seqdance.features.formats import dcd, generic, gro, mmcif, pdb, psf, tpr, xtc
from seqdance.features.formats.common import AtomTable, FramePart, read_table

TableReader = Callable[[Path], AtomTable]
FrameOpener = Callable[[Path, object, str], FramePart]  # (path, prepared topology, label)

TOPOLOGY_READERS: tuple[tuple[tuple[str, ...], TableReader], ...] = (
    ((".pdb", ".ent", ".pqr"), pdb.read_pdb_table),
    ((".cif", ".mmcif", ".pdbx"), mmcif.read_cif_table),
    ((".gro",), gro.read_gro_table),
    ((".psf", ".xpsf"), psf.read_psf_table),
    ((".tpr",), tpr.read_tpr_table),
)
TRAJECTORY_OPENERS: tuple[tuple[tuple[str, ...], FrameOpener], ...] = (
    ((".dcd",), dcd.open_dcd_frames),
    ((".xtc",), xtc.open_xtc_frames),
    ((".gro",), gro.open_gro_frames),
    ((".cif", ".mmcif", ".pdbx"), mmcif.open_cif_frames),
    ((".pdb", ".ent"), pdb.open_pdb_frames),
)


def _format_name(path: Path) -> str:
    return path.name.lower().removesuffix(".gz")


def topology_reader(path: Path) -> TableReader:
    """The atom-table reader of a topology file."""
    name = _format_name(path)
    for suffixes, reader in TOPOLOGY_READERS:
        if name.endswith(suffixes):
            return reader
    return generic.read_generic_table


def trajectory_opener(path: Path) -> FrameOpener:
    """The frame opener of a trajectory file."""
    name = _format_name(path)
    for suffixes, opener in TRAJECTORY_OPENERS:
        if name.endswith(suffixes):
            return opener
    return generic.open_generic_frames


def read_atom_table(path: str | os.PathLike) -> AtomTable:
    """Per-atom records of any supported topology file (one-line error if unreadable)."""
    path = Path(path)
    return read_table(path, topology_reader(path))


def open_frames(path: Path, prepared, label: str) -> FramePart:
    """One trajectory file of the ``prepared`` topology, counted and ready to read."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such trajectory file")
    try:
        return trajectory_opener(path)(path, prepared, label)
    except InputFileError:
        raise
    except (OSError, ValueError, struct.error) as exc:
        raise InputFileError(f"{path}: cannot read trajectory: {_one_line(exc)}") from None
