"""Amino-acid names: the residue vocabulary of the force fields, and one-letter codes.

MD engines name protonation and bonding states of the 20 amino acids differently:
CHARMM (HSD, HSE, HSP, ASPP, GLUP, LSN), AMBER (HID, HIE, HIP, ASH, GLH, LYN, CYX, CYM and
the terminal variants NALA, CALA ...), GROMACS/GROMOS and OPLS (HISD, HISE, HISH, HIS1,
HISA, HISB, ASPH, GLUH, LYSH, LYSN, CYS1, CYS2, CYSH, ARGN). :func:`standard_residue` maps
every one of them to the standard name whose chemistry it shares (rings, donors and
acceptors, the sequence letter); :func:`is_ionic` says whether the variant keeps the
parent's charge (GetContacts counts every histidine as a cation, so all histidine states
do; the neutral forms of Asp, Glu, Lys and Arg do not).

One-letter codes (:func:`one_letter`) follow one rule, in this order:

1. the 20 standard names, and selenocysteine ``SEC`` (``U``) and pyrrolysine ``PYL`` (``O``),
   which have letters of their own;
2. a force-field name of a standard amino acid (the table above): its parent's letter, the
   file's name kept everywhere else (``HIE`` is written ``HIE`` in the CSV and in contact
   labels, and spelled ``H``). Engine names win over the component table: ``HSE`` is CHARMM's
   histidine (the PDB's homoserine) and ``GLH`` AMBER's neutral glutamate;
3. a modified amino acid of the PDB Chemical Component Dictionary: the letter of its parent
   amino acid, as Biopython tabulates it (``Bio.Data.PDBData.protein_letters_3to1_extended``,
   about a thousand components: ``MSE`` -> M, ``SEP`` -> S, ``TPO`` -> T, ``PTR`` -> Y,
   ``CSO`` -> C, ``SME`` -> M, ``NLE`` -> L ...). :func:`letter_notes` lists the ones a
   protein used;
4. anything else (D-amino acids, ligands, unknown names): ``X``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from Bio.Data.PDBData import protein_letters_3to1_extended as _CCD_PARENT_LETTER

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

# amino acids 21 and 22: letters of their own (in the ESM2 alphabet), not a parent's
OWN_LETTER: dict[str, str] = {"SEC": "U", "PYL": "O"}


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

# rules 1 and 2: a name -> letter table of the standard amino acids under every engine's name
THREE_TO_ONE: dict[str, str] = {
    **{name: STANDARD_ONE[parent] for name, (parent, _) in RESIDUE_ALIASES.items()},
    **OWN_LETTER,
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


def modified_parent_letter(resname: str) -> str | None:
    """Parent letter of a modified amino acid of the PDB Chemical Component Dictionary
    (rule 3 of the module docstring: ``MSE`` -> ``M``, ``SME`` -> ``M``, ``NLE`` -> ``L``);
    ``None`` for standard and force-field names (rules 1-2) and for non-amino acids."""
    name = resname.strip().upper()
    if name in THREE_TO_ONE:
        return None
    return _CCD_PARENT_LETTER.get(name)


def one_letter(resname: str) -> str:
    """One-letter code of a residue name by the rule of the module docstring; ``X`` when
    none applies."""
    name = resname.strip().upper()
    return THREE_TO_ONE.get(name) or _CCD_PARENT_LETTER.get(name, "X")


def sequence_of(resnames: Iterable[str]) -> str:
    """One letter per residue name (:func:`one_letter`)."""
    return "".join(one_letter(r) for r in resnames)


def letter_notes(resnames: Iterable[str]) -> list[str]:
    """Notes on the letters of a residue list: modified residues mapped to their parent
    (``'modified residues spelled as their parent amino acid (PDB Chemical Component
    Dictionary, via Biopython): MSE->M x2, SEP->S'``) and names spelled ``X``. Empty when
    every name is a standard or force-field name."""
    names = Counter(r.strip().upper() for r in resnames)
    mapped, unknown = [], []
    for name, count in names.items():
        times = f" x{count}" if count > 1 else ""
        if name in THREE_TO_ONE:
            continue
        parent = _CCD_PARENT_LETTER.get(name)
        if parent:
            mapped.append(f"{name}->{parent}{times}")
        else:
            unknown.append(f"{name}{times}")
    notes = []
    if mapped:
        notes.append(
            "modified residues spelled as their parent amino acid (PDB Chemical Component "
            "Dictionary, via Biopython): " + ", ".join(sorted(mapped))
        )
    if unknown:
        notes.append("residues with no amino-acid letter, spelled X: " + ", ".join(sorted(unknown)))
    return notes
