"""AMBER parameter/topology files (``.prmtop``, ``.parm7``, ``.top``), read with MDTraj.

A prmtop is recognised by its ``%VERSION`` / ``%FLAG`` header, not by its suffix: ``.top`` is
also GROMACS' topology and ``.parm7`` is often renamed. Residues are numbered 1..N in file
order, as AMBER, cpptraj and MDAnalysis number them (MDTraj counts them from 0). Elements come
from the file's atomic numbers (or masses, as MDTraj reads them); chains are found by
:mod:`seqdance.features.topology` from the first frame, as a prmtop has no chain IDs.
"""

from __future__ import annotations

from pathlib import Path

from mdtraj.formats.prmtop import load_prmtop

from seqdance.features.formats.common import AtomTable, open_text
from seqdance.features.formats.generic import quiet_mdtraj, table_from_topology


def is_prmtop(path: Path) -> bool:
    """Whether ``path`` (compressed or not) starts with AMBER's ``%VERSION`` or ``%FLAG``."""
    try:
        with open_text(path) as fh:
            for _ in range(5):
                line = fh.readline()
                if line.startswith(("%VERSION", "%FLAG")):
                    return True
                if line.strip():
                    return False
    except Exception:  # unreadable or not text (gzip, bz2 and xz raise their own types)
        return False
    return False


def read_prmtop_table(path: Path) -> AtomTable:
    """Atoms, residues (numbered from 1) and bonds of an AMBER prmtop (a plain file)."""
    with quiet_mdtraj():
        top = load_prmtop(str(path))
    table = table_from_topology(top)
    table.resnums = [residue.index + 1 for residue in top.residues for _ in residue.atoms]
    return table
