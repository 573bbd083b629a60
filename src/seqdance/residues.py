"""Amino-acid names: the residue vocabulary of the force fields, and one-letter codes.

MD engines name protonation and bonding states of the 20 amino acids differently:
CHARMM (HSD, HSE, HSP, ASPP, GLUP, LSN), AMBER (HID, HIE, HIP, ASH, GLH, LYN, CYX, CYM and
the terminal variants NALA, CALA ...), GROMACS/GROMOS and OPLS (HISD, HISE, HISH, HIS1,
HISA, HISB, ASPH, GLUH, LYSH, LYSN, CYS1, CYS2, CYSH, ARGN). :func:`standard_residue` maps
every one of them to the standard name whose chemistry it shares (rings, donors and
acceptors, the sequence letter); :func:`is_ionic` says whether the variant keeps the
parent's charge (GetContacts counts every histidine as a cation, so all histidine states
do; the neutral forms of Asp, Glu, Lys and Arg do not).
"""

from __future__ import annotations

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

STANDARD_ONE: dict[str, str] = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
}  # fmt: skip

# force-field names of the standard residues: name -> (standard name, keeps the charge)
_VARIANTS: dict[str, tuple[str, bool]] = {
    # histidine: every tautomer and the protonated form (GetContacts: always a cation)
    **{
        name: ("HIS", True)
        for name in (
            "HSD", "HSE", "HSP", "HSC", "HID", "HIE", "HIP", "HIN", "HISD", "HISE", "HISH",
            "HIS1", "HIS2", "HISA", "HISB", "HISP", "HIE1", "HIPP",
        )
    },
    # aspartate / glutamate: protonated (neutral) forms
    "ASH": ("ASP", False), "ASPH": ("ASP", False), "ASPP": ("ASP", False),
    "ASP1": ("ASP", False), "GLH": ("GLU", False), "GLUH": ("GLU", False),
    "GLUP": ("GLU", False), "GLU1": ("GLU", False),
    # lysine: charged (GROMOS LYSH) and neutral forms
    "LYSH": ("LYS", True), "LYP": ("LYS", True), "LYN": ("LYS", False),
    "LYSN": ("LYS", False), "LSN": ("LYS", False), "LYS1": ("LYS", False),
    # arginine: neutral forms
    "ARN": ("ARG", False), "ARGN": ("ARG", False),
    # cysteine: disulfide-bonded, deprotonated and explicitly neutral forms
    "CYX": ("CYS", True), "CYM": ("CYS", True), "CYZ": ("CYS", True), "CYS1": ("CYS", True),
    "CYS2": ("CYS", True), "CYSH": ("CYS", True), "CYN": ("CYS", True), "CSS": ("CYS", True),
    # tyrosine: deprotonated form
    "TYM": ("TYR", True),
    # isoleucine spelled as in old CHARMM files
    "ILU": ("ILE", True),
}  # fmt: skip

# modified residues: mapped to the parent for the sequence only (their chemistry differs)
MODIFIED_ONE: dict[str, str] = {
    "MSE": "M", "SEP": "S", "TPO": "T", "PTR": "Y", "HYP": "P", "MLY": "K", "CSO": "C",
    "NLE": "L", "SEC": "U", "PYL": "O",
}  # fmt: skip


def _build_aliases() -> dict[str, tuple[str, bool]]:
    table = {name: (name, True) for name in STANDARD_ONE}
    table.update(_VARIANTS)
    # AMBER terminal residues: N- and C-terminal variants carry an N or C prefix (NALA, CHIE)
    for name, value in list(table.items()):
        if len(name) == 3:
            for prefix in ("N", "C"):
                table.setdefault(prefix + name, value)
    return table


RESIDUE_ALIASES: dict[str, tuple[str, bool]] = _build_aliases()

# kept for callers that want a plain name -> letter table
THREE_TO_ONE: dict[str, str] = {
    **{name: STANDARD_ONE[parent] for name, (parent, _) in RESIDUE_ALIASES.items()},
    **MODIFIED_ONE,
}


def standard_residue(resname: str) -> str | None:
    """Standard three-letter name of a force-field residue name (``HSD`` -> ``HIS``,
    ``CYS2`` -> ``CYS``, ``NALA`` -> ``ALA``); ``None`` when it is no standard amino acid
    under any force-field name (modified residues, ligands, water, ions)."""
    hit = RESIDUE_ALIASES.get(resname.strip().upper())
    return hit[0] if hit else None


def is_ionic(resname: str) -> bool:
    """Whether a residue keeps its parent's charged groups (False for ASH, GLH, LYN ...)."""
    hit = RESIDUE_ALIASES.get(resname.strip().upper())
    return bool(hit and hit[1])


def one_letter(resname: str) -> str:
    """One-letter code of a residue name; ``X`` when unknown."""
    return THREE_TO_ONE.get(resname.strip().upper(), "X")


def sequence_of(resnames) -> str:
    return "".join(one_letter(r) for r in resnames)
