"""Every other format MDTraj reads: PRMTOP, H5, MOL2 ... topologies; TRR, NetCDF, H5 ...
trajectories (read in chunks with ``mdtraj.iterload``; counted when the format says).

AMBER topologies (PRMTOP, recognised by their ``%VERSION``/``%FLAG`` header) keep the residue
and atom names as written (``HIE``, ``CYX``) and carry no residue numbers: residues are
numbered 1..N in file order, as AMBER, cpptraj and MDAnalysis number them (MDTraj's own
numbering starts at 0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mdtraj as md
import numpy as np

from seqdance.features.formats.common import (
    AtomTable,
    Block,
    FramePart,
    open_text,
    trajectory_errors,
)
from seqdance.utils.quiet import native_stdout_silenced


def _is_amber_topology(path: Path) -> bool:
    """Whether ``path`` is an AMBER PRMTOP, by its ``%VERSION``/``%FLAG`` header (any suffix)."""
    try:
        with open_text(path) as fh:
            head = fh.read(4096)
    except (OSError, EOFError, ValueError):  # unreadable or not the compression it says
        return False
    return head.lstrip().startswith(("%VERSION", "%FLAG"))


def read_generic_table(path: Path) -> AtomTable:
    """Atoms of any topology MDTraj reads (coordinates too from H5 and MOL2)."""
    first_number = None
    if _is_amber_topology(path):
        # names as written (HIE, CYX: MDTraj would rename them HIS, CYS); MDTraj numbers
        # residues from 0, AMBER and every AMBER tool from 1
        top = md.load_prmtop(str(path), standard_names=False)
        first_number = 1
    else:
        top = md.load_topology(str(path))
    table = AtomTable([], [], [], [], [], [], [], typed_by="topology typing")
    for atom in top.atoms:
        residue = atom.residue
        table.names.append(atom.name)
        table.resnames.append(residue.name)
        table.resnums.append(
            residue.index + first_number if first_number is not None else int(residue.resSeq)
        )
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


def _frame_count(path: Path) -> int | None:
    try:
        with native_stdout_silenced(), md.open(str(path)) as handle:
            return len(handle)
    except Exception:  # not every format has a length
        return None


def _iterload_blocks(path: Path, topology, atoms: np.ndarray, chunk: int) -> Iterator[Block]:
    with native_stdout_silenced():
        iterator = md.iterload(str(path), chunk=chunk, top=topology, atom_indices=atoms)
        for piece in iterator:
            box = piece.unitcell_vectors
            yield Block(piece.xyz, box)


def open_generic_frames(path: Path, prepared, label: str) -> FramePart:
    """Frames of any trajectory MDTraj reads, counted when its format has a length."""
    topology = prepared.topology

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        return trajectory_errors(path, _iterload_blocks(path, topology, atoms, chunk))

    return FramePart(label, _frame_count(path), read)
