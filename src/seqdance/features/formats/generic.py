"""Every other format MDTraj reads: H5, MOL2 ... topologies; TRR, NetCDF, AMBER mdcrd, H5 ...
trajectories (read in chunks with ``mdtraj.iterload``; counted when the format says).

MDTraj reads NetCDF with SciPy when the ``netCDF4`` package is missing and warns about its
speed in four lines each time a file is opened; that warning is dropped here."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import mdtraj as md
import numpy as np

from seqdance.features.formats.common import (
    AtomTable,
    Block,
    FramePart,
    check_frame_atoms,
    trajectory_errors,
)
from seqdance.utils.quiet import native_stdout_silenced


@contextlib.contextmanager
def quiet_mdtraj():
    """No C-level output and no netCDF4 speed warning while MDTraj opens or reads a file."""
    with native_stdout_silenced(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*netCDF4.*")
        yield


def read_generic_table(path: Path) -> AtomTable:
    """Atoms of any topology MDTraj reads (coordinates too from H5 and MOL2)."""
    top = md.load_topology(str(path))
    table = AtomTable([], [], [], [], [], [], [], typed_by="topology typing")
    for atom in top.atoms:
        residue = atom.residue
        table.names.append(atom.name)
        table.resnames.append(residue.name)
        table.resnums.append(int(residue.resSeq))
        table.icodes.append("")
        table.chain_ids.append((getattr(residue.chain, "chain_id", None) or "").strip())
        table.segids.append((getattr(residue, "segment_id", "") or "").strip())
        symbol = getattr(atom.element, "symbol", "") if atom.element is not None else ""
        table.elements.append("" if symbol in ("VS", None) else symbol)
    table.bonds = np.array([(a.index, b.index) for a, b in top.bonds], dtype=np.int64).reshape(
        -1, 2
    )
    if path.suffix.lower() in (".h5", ".mol2"):
        frame = md.load_frame(str(path), 0)
        table.xyz = frame.xyz[0].astype(np.float64)
    return table


def _frame_count(path: Path) -> tuple[int | None, int | None]:
    """(frames, atoms per frame) when the format's MDTraj handle says, else None each."""
    try:
        with quiet_mdtraj(), md.open(str(path)) as handle:
            n_atoms = getattr(handle, "n_atoms", None)
            try:
                n_frames = len(handle)
            except Exception:  # not every format has a length
                n_frames = None
            return n_frames, n_atoms if isinstance(n_atoms, (int, np.integer)) else None
    except Exception:  # formats MDTraj opens only with a topology (mdcrd)
        return None, None


def _iterload_blocks(path: Path, topology, atoms: np.ndarray, chunk: int) -> Iterator[Block]:
    with quiet_mdtraj():
        iterator = md.iterload(str(path), chunk=chunk, top=topology, atom_indices=atoms)
        for piece in iterator:
            box = piece.unitcell_vectors
            yield Block(piece.xyz, box)


def open_generic_frames(path: Path, prepared, label: str) -> FramePart:
    """Frames of any trajectory MDTraj reads, counted when its format has a length."""
    topology = prepared.topology

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        return trajectory_errors(path, _iterload_blocks(path, topology, atoms, chunk))

    n_frames, n_atoms = _frame_count(path)
    if n_atoms is not None:
        check_frame_atoms(path, int(n_atoms), prepared)
    return FramePart(label, n_frames, read)
