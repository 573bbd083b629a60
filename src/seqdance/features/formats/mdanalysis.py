"""Formats read with MDAnalysis' own parsers and coordinate readers.

======================  ==========  =====================================================
format                  MDAnalysis  taken from the file
======================  ==========  =====================================================
PQR (PDB2PQR, APBS)     ``PQR``     names, residues, chains/segments, insertion codes, xyz
PDBQT (AutoDock)        ``PDBQT``   names, residues, chains, insertion codes, xyz
CHARMM CRD/COR          ``CRD``     names, residues, segments, xyz (standard and EXT)
Desmond DMS             ``DMS``     names, residues, chains, segments, bonds, masses, xyz
AMBER prmtop            ``TOP``     names, residues, bonds, atomic numbers or masses
GROMOS TRC              ``TRC``     frames and boxes (coordinates only)
NAMD binary COOR        ``NAMDBIN`` one frame (coordinates only)
======================  ==========  =====================================================

PQR and PDBQT are whitespace-separated (wide serial numbers, charges and radii where a PDB has
its element columns), so the fixed-column PDB reader cannot read them. Elements are taken from
atomic numbers or masses only where the file stores them (prmtop, DMS); elsewhere the name rules of
:mod:`seqdance.features.topology` type them (MDAnalysis' guessed masses are not file data).
MDAnalysis is imported when one of these files is read (it takes a second to import).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from seqdance.features.elements import element_from_mass
from seqdance.features.formats.common import (
    AtomTable,
    Block,
    FramePart,
    check_frame_atoms,
    trajectory_errors,
)

MASS_TYPED = ("DMS", "TOP")  # formats whose masses are stored in the file, not guessed


def _attribute(atoms, name: str, n: int, default: str = "") -> list[str]:
    try:
        return [str(v).strip() for v in getattr(atoms, name)]
    except AttributeError:  # MDAnalysis' NoDataError is an AttributeError
        return [default] * n


def read_mdanalysis_table(path: Path, fmt: str) -> AtomTable:
    """Atoms (and the first frame's coordinates, nm) of ``path`` read as MDAnalysis ``fmt``.

    Parameters
    ----------
    path : a plain (decompressed) file
    fmt : MDAnalysis' format name (``"PQR"``, ``"PDBQT"``, ``"CRD"``, ``"DMS"``)
    """
    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # guessing notes; none is about our reading
        universe = mda.Universe(str(path), format=fmt, topology_format=fmt)
    atoms = universe.atoms
    n = len(atoms)
    icodes = _attribute(atoms, "icodes", n)
    elements = _attribute(atoms, "elements", n)  # atomic numbers of a prmtop, if any
    typed_by = "atomic numbers"
    if fmt in MASS_TYPED and not all(elements):
        elements, typed_by = [element_from_mass(float(m)) for m in atoms.masses], "masses"
    elif not all(elements):
        elements, typed_by = [""] * n, ""
    chains, segids = _attribute(atoms, "chainIDs", n), _attribute(atoms, "segids", n)
    if fmt == "PQR":  # MDAnalysis puts a PQR's chain ID in segid, "SYSTEM" when there is none
        chains, segids = ["" if s == "SYSTEM" else s for s in segids], [""] * n
    table = AtomTable(
        [str(a) for a in atoms.names],
        [str(r) for r in atoms.resnames],
        [int(r) for r in atoms.resids],
        icodes,
        chains,
        segids,
        elements,
        typed_by=typed_by,
    )
    if hasattr(universe, "bonds"):
        table.bonds = np.asarray(universe.bonds.indices, dtype=np.int64).reshape(-1, 2)
    if _has_frames(universe):
        table.xyz = np.asarray(atoms.positions, dtype=np.float64) / 10.0
        box = universe.trajectory.ts.triclinic_dimensions
        if box is not None and np.any(box):
            table.box = np.asarray(box, dtype=np.float64) / 10.0
    return table


def _has_frames(universe) -> bool:
    try:
        return universe.trajectory.n_frames > 0
    except AttributeError:  # a topology-only format (prmtop): no trajectory at all
        return False


def _reader(path: Path, fmt: str):
    from MDAnalysis.coordinates.core import get_reader_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_reader_for(str(path), format=fmt)(str(path))


def _mdanalysis_blocks(path: Path, fmt: str, atoms: np.ndarray, chunk: int) -> Iterator[Block]:
    reader = _reader(path, fmt)
    try:
        xyz, boxes = [], []
        for ts in reader:
            xyz.append(ts.positions[atoms] / 10.0)
            box = ts.triclinic_dimensions
            boxes.append(None if box is None or not np.any(box) else box / 10.0)
            if len(xyz) == chunk:
                yield _block(xyz, boxes)
                xyz, boxes = [], []
        if xyz:
            yield _block(xyz, boxes)
    finally:
        reader.close()


def _block(xyz: list, boxes: list) -> Block:
    box = None if any(b is None for b in boxes) else np.asarray(boxes, dtype=np.float64)
    return Block(np.asarray(xyz, dtype=np.float32), box)


def open_mdanalysis_frames(path: Path, prepared, label: str, fmt: str) -> FramePart:
    """Frames of ``path`` read with MDAnalysis' ``fmt`` coordinate reader (counted first)."""
    reader = _reader(path, fmt)
    try:
        n_atoms, n_frames = reader.n_atoms, reader.n_frames
    finally:
        reader.close()
    check_frame_atoms(path, n_atoms, prepared)

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        return trajectory_errors(path, _mdanalysis_blocks(path, fmt, atoms, chunk))

    return FramePart(label, n_frames, read)


def table_reader(fmt: str):
    """``reader(path) -> AtomTable`` for MDAnalysis format ``fmt``."""
    return partial(read_mdanalysis_table, fmt=fmt)


def frame_opener(fmt: str):
    """``opener(path, prepared, label) -> FramePart`` for MDAnalysis format ``fmt``."""
    return partial(open_mdanalysis_frames, fmt=fmt)
