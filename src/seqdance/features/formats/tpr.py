"""GROMACS ``.tpr`` files, read with MDAnalysis (a dependency of seqdance; if its import fails,
one line says so)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.elements import element_from_mass
from seqdance.features.formats.common import AtomTable


def read_tpr_table(path: Path) -> AtomTable:
    """Atoms of a ``.tpr`` file (elements from masses), via MDAnalysis."""
    try:
        import MDAnalysis as mda
    except ImportError:
        raise InputFileError(
            f"{path}: GROMACS .tpr topologies need MDAnalysis (pip install MDAnalysis); "
            "or give a PDB/GRO of the same system"
        ) from None
    universe = mda.Universe(str(path))
    atoms = universe.atoms
    n = len(atoms)
    segids = [str(s) for s in atoms.segids]
    try:
        chains = [str(c) for c in atoms.chainIDs]
    except AttributeError:
        chains = [""] * n
    table = AtomTable(
        [str(a) for a in atoms.names],
        [str(r) for r in atoms.resnames],
        [int(r) for r in atoms.resids],
        [""] * n,
        chains,
        segids,
        [element_from_mass(float(m)) for m in atoms.masses],
        bonds=np.asarray(universe.bonds.indices, dtype=np.int64).reshape(-1, 2)
        if hasattr(universe, "bonds")
        else None,
        typed_by="masses",
    )
    if universe.trajectory.n_frames:
        table.xyz = np.asarray(universe.atoms.positions, dtype=np.float64) / 10.0
    return table
