"""Write predicted per-residue values (normalised RMSF) into a structure's B-factor column.

A PDB B-factor has two decimals in six characters (``-99.99`` to ``999.99``). Written as
they are, relative changes of 0.001-0.01 would all read 0.00, so the values are multiplied
by a power of ten that brings the largest magnitude into [10, 100): four significant
digits, negative values included. The factor is written in a ``REMARK`` line of the file
(``REMARK 250 SEQDANCE B-FACTOR = VALUE x 1000``) and read back by :func:`read_bfactor_scale`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.residues import one_letter
from seqdance.utils.io import atomic_path


def read_protein_chains(path: str | os.PathLike):
    """Atoms of a PDB/mmCIF file and, per chain, its protein residues and sequence.

    Returns
    -------
    atoms : prody.AtomGroup
    chains : list of (chain id, list of prody residues, one-letter sequence)
    """
    import prody

    prody.confProDy(verbosity="none")
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    try:
        parse = prody.parseMMCIF if name.endswith((".cif", ".mmcif")) else prody.parsePDB
        atoms = parse(str(path), model=1)
    except Exception as exc:  # ProDy raises many kinds on bad files
        raise InputFileError(f"{path}: cannot read the structure ({exc})") from exc
    protein = atoms.select("protein") if atoms is not None else None
    if protein is None:
        raise InputFileError(f"{path}: no protein residues")
    chains = []
    for chain in protein.getHierView().iterChains():
        residues = list(chain.iterResidues())
        sequence = "".join(one_letter(r.getResname()) for r in residues)
        chains.append((str(chain.getChid()), residues, sequence))
    return atoms, chains


_REMARK = "REMARK 250 SEQDANCE B-FACTOR = VALUE x {scale:g}"
_REMARK_RE = re.compile(r"^REMARK 250 SEQDANCE B-FACTOR = VALUE x (\S+)\s*$", re.MULTILINE)


def bfactor_scale(values: np.ndarray) -> float:
    """The power of ten that brings ``max |values|`` into [10, 100) (1 for all zeros).

    Parameters
    ----------
    values : ndarray, shape=(L,)
        Finite values.
    """
    largest = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if largest == 0.0:
        return 1.0
    scale = 10.0 ** (1 - math.floor(math.log10(largest)))
    return scale / 10.0 if largest * scale >= 99.995 else scale  # rounding to 2 decimals


def read_bfactor_scale(path: str | os.PathLike) -> float:
    """The factor a file written by :func:`write_bfactors` multiplied its values by."""
    with open(path, encoding="ascii", errors="replace") as handle:
        found = _REMARK_RE.search(handle.read())
    if found is None:
        raise InputFileError(f"{path}: no 'SEQDANCE B-FACTOR' remark (not written by seqdance)")
    return float(found[1])


def write_bfactors(
    structure: str | os.PathLike, out: str | os.PathLike, sequence: str, values: np.ndarray
) -> str:
    """Copy ``structure`` to ``out`` (PDB) with ``values`` as B-factors of the chain whose
    protein sequence is ``sequence``; atoms of other chains get 0.

    The values are multiplied by :func:`bfactor_scale` (a power of ten, named in the file's
    ``REMARK 250`` line) so that two decimals keep four significant digits.

    Parameters
    ----------
    values : ndarray, shape=(len(sequence),)
        Finite values.

    Returns
    -------
    str : the chain id that was matched.
    """
    import prody

    atoms, chains = read_protein_chains(structure)
    match = next((c for c in chains if c[2] == sequence), None)
    if match is None:
        found = ", ".join(f"{cid} ({len(seq)} residues)" for cid, _, seq in chains)
        raise SeqDanceError(
            f"{structure}: no chain has exactly the predicted sequence of {len(sequence)} "
            f"residues (chains: {found})"
        )
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise SeqDanceError(f"{out}: the values to write as B-factors are not all finite")
    scale = bfactor_scale(values)
    chain_id, residues, _ = match
    bfactors = np.zeros(atoms.numAtoms())
    for residue, value in zip(residues, values * scale, strict=True):
        bfactors[residue.getIndices()] = value
    atoms.setBetas(bfactors)
    with atomic_path(out, suffix=".pdb") as tmp:
        prody.writePDB(str(tmp), atoms)
        text = Path(tmp).read_text(encoding="ascii", errors="replace")
        Path(tmp).write_text(f"{_REMARK.format(scale=scale)}\n{text}", encoding="ascii")
    return chain_id
