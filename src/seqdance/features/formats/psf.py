"""CHARMM/NAMD/X-PLOR PSF files (standard and EXT): atoms, masses and bonds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqdance.features.elements import element_from_mass
from seqdance.features.formats.common import AtomTable
from seqdance.features.formats.compressed import open_text


def read_psf_table(path: Path) -> AtomTable:
    """CHARMM/NAMD/X-PLOR PSF: atoms (residue numbers may carry an insertion code) and bonds."""
    with open_text(path) as fh:
        lines = fh.read().splitlines()
    if not lines or not lines[0].startswith("PSF"):
        raise ValueError("first line is not 'PSF'")
    k = next((i for i, line in enumerate(lines) if "!NATOM" in line), None)
    if k is None:
        raise ValueError("no !NATOM section")
    n_atoms = int(lines[k].split()[0])
    table = AtomTable([], [], [], [], [], [], [], typed_by="masses")
    masses = []
    for line in lines[k + 1 : k + 1 + n_atoms]:
        fields = line.split()
        if len(fields) < 8:
            raise ValueError(f"atom line {line.strip()!r}")
        resid = fields[2]
        digits = resid.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        table.segids.append(fields[1])
        table.resnums.append(int(digits))
        table.icodes.append(resid[len(digits) :])
        table.resnames.append(fields[3])
        table.names.append(fields[4])
        table.chain_ids.append("")
        masses.append(float(fields[7]))
    if len(table) != n_atoms:
        raise ValueError(f"!NATOM says {n_atoms} atoms, the file lists {len(table)}")
    table.elements = [element_from_mass(m) for m in masses]
    bonds: list[int] = []
    k = next((i for i, line in enumerate(lines) if "!NBOND" in line), None)
    if k is not None:
        n_bonds = int(lines[k].split()[0])
        i = k + 1
        while len(bonds) < 2 * n_bonds and i < len(lines) and lines[i].strip():
            bonds.extend(int(v) - 1 for v in lines[i].split())
            i += 1
    table.bonds = np.asarray(bonds[: 2 * (len(bonds) // 2)], dtype=np.int64).reshape(-1, 2)
    return table
