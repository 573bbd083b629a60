"""Amino-acid names: three-letter residue names to one-letter codes."""

from __future__ import annotations

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

THREE_TO_ONE: dict[str, str] = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
    # protonation states and force-field variants
    "HSD": "H", "HSE": "H", "HSP": "H", "HID": "H", "HIE": "H", "HIP": "H", "HIN": "H",
    "CYX": "C", "CYM": "C", "CYZ": "C", "ASH": "D", "GLH": "E", "LYN": "K", "LSN": "K",
    "ARN": "R", "NLE": "L",
    # common modified residues, mapped to their parent
    "MSE": "M", "SEP": "S", "TPO": "T", "PTR": "Y", "HYP": "P", "MLY": "K", "CSO": "C",
    "SEC": "U", "PYL": "O",
}  # fmt: skip


def one_letter(resname: str) -> str:
    """One-letter code of a residue name; ``X`` when unknown."""
    return THREE_TO_ONE.get(resname.strip().upper(), "X")


def sequence_of(resnames) -> str:
    return "".join(one_letter(r) for r in resnames)
