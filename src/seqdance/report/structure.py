"""Match a structure's chain to the predicted sequence, residue by residue.

A chain matches when its residues, placed by their residue numbers, spell a stretch of the
sequence with ONE constant shift (structure number = sequence index + shift): a structure
that starts later, has gaps, or is numbered from 24 is aligned and the shift is reported; a
chain whose letters disagree anywhere, or that fits at several shifts, is refused.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.bfactor import read_protein_chains


@dataclass
class StructureMatch:
    """A structure placed on the sequence.

    pdb: PDB text of the protein atoms (first model); chain: the matched chain;
    resi: per sequence index the structure's residue number (None where it has no residue);
    shift: structure number
    minus 0-based sequence index; note: one sentence for the report's header.
    """

    pdb: str
    chain: str
    resi: list[int | None]
    shift: int
    note: str


def _shifts(numbers: list[int], letters: str, sequence: str) -> list[int]:
    """Shifts k with sequence[number - k] == letter for every residue of the chain."""
    found = []
    first = numbers[0]
    for start in range(len(sequence)):  # sequence index of the chain's first residue
        k = first - start
        if all(0 <= n - k < len(sequence) and sequence[n - k] == a
               for n, a in zip(numbers, letters, strict=True)):  # fmt: skip
            found.append(k)
    return found


def match_structure(
    path: str | os.PathLike, sequence: str, chain: str | None = None, first_number: int = 1
) -> StructureMatch:
    """Find the chain of ``path`` (PDB/mmCIF) that spells ``sequence`` and map its residues.

    Parameters
    ----------
    path : the structure; its first model is used.
    sequence : the predicted sequence (L residues).
    chain : a chain id to use; default: the first chain that matches.
    first_number : the number the report gives residue 0 (the scan's offset), for the note.

    Raises
    ------
    SeqDanceError
        A missing file, no chain that matches, a chain matched at several shifts, or a
        residue number used twice (insertion codes) in the chosen chain.
    """
    import prody

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"structure: file not found: {path}")
    atoms, chains = read_protein_chains(path)
    candidates = [c for c in chains if chain is None or c[0] == chain]
    if not candidates:
        have = ", ".join(c[0] for c in chains)
        raise SeqDanceError(f"{path}: no chain {chain!r} (chains: {have})")
    reasons = []
    for cid, residues, letters in candidates:
        numbers = [int(r.getResnum()) for r in residues]
        codes = [str(r.getIcode() or "") for r in residues]
        if len(set(numbers)) != len(numbers) or any(codes):
            reasons.append(f"{cid}: insertion codes or repeated residue numbers")
            continue
        shifts = _shifts(numbers, letters, sequence)
        if len(shifts) > 1:
            raise SeqDanceError(
                f"{path}: chain {cid} fits the sequence at {len(shifts)} places; "
                "cannot align it unambiguously"
            )
        if not shifts:
            reasons.append(f"{cid} ({len(letters)} residues, numbers {numbers[0]}-{numbers[-1]})")
            continue
        k = shifts[0]
        resi: list[int | None] = [None] * len(sequence)
        for n in numbers:
            resi[n - k] = n
        covered = len(numbers)
        note = f"chain {cid} of {path.name}: {covered} of {len(sequence)} residues"
        if k != first_number:  # report number of index i: first_number + i
            note += (
                f"; structure residue numbers = report numbers {k - first_number:+d} "
                "(aligned by sequence)"
            )
        protein = atoms.select("protein")
        stream = io.StringIO()
        prody.writePDBStream(stream, protein)
        return StructureMatch(stream.getvalue(), cid, resi, k, note)
    raise SeqDanceError(
        f"{path}: no chain spells the predicted sequence of {len(sequence)} residues at "
        f"its residue numbers (chains: {'; '.join(reasons)})"
    )
