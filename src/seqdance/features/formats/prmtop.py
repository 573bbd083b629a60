"""AMBER parameter/topology files (``.prmtop``, ``.parm7``, ``.top``), read with MDAnalysis.

A prmtop is recognised by its ``%VERSION`` / ``%FLAG`` header, not by its suffix: ``.top`` is
also GROMACS' topology and ``.parm7`` is often renamed. MDAnalysis keeps the file's atom names
(MDTraj renames them to PDB names) and numbers residues 1..N in file order, as AMBER and cpptraj
do. Elements come from the file's atomic numbers, else its masses; chains are found by
:mod:`seqdance.features.topology` from the first frame, as a prmtop has no chain IDs.
"""

from __future__ import annotations

from pathlib import Path

from seqdance.features.formats.common import AtomTable
from seqdance.features.formats.compressed import open_text
from seqdance.features.formats.mdanalysis import read_mdanalysis_table


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
    """Atoms (names as written), residues numbered from 1, elements and bonds of a prmtop."""
    return read_mdanalysis_table(path, "TOP")
