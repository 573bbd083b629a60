"""Write predicted per-residue values (normalised RMSF) into a structure's B-factor column."""

from __future__ import annotations

import os
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


def write_bfactors(
    structure: str | os.PathLike, out: str | os.PathLike, sequence: str, values: np.ndarray
) -> str:
    """Copy ``structure`` to ``out`` (PDB) with ``values`` as B-factors of the chain whose
    protein sequence is ``sequence``; atoms of other chains get 0.

    Parameters
    ----------
    values : ndarray, shape=(len(sequence),)

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
    chain_id, residues, _ = match
    bfactors = np.zeros(atoms.numAtoms())
    for residue, value in zip(residues, values, strict=True):
        bfactors[residue.getIndices()] = value
    atoms.setBetas(bfactors)
    with atomic_path(out, suffix=".pdb") as tmp:
        prody.writePDB(str(tmp), atoms)
    return chain_id
