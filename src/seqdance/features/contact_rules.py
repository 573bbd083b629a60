"""GetContacts' rules for interaction detection, as data and small functions (contacts-spec.md).

Interaction types and their names, the geometric cutoffs (:class:`ContactCriteria`), the
atom typing (hydrogens by name, ions, aromatic rings, the hydrophobic residues, backbone
names), VMD's ``protein`` selection, GetContacts' atom labels and VMD's distance rule for
covalent bonds. :class:`~seqdance.features.contact_detector.ContactDetector` applies them to
frames; :func:`~seqdance.features.contacts.detect_contacts` to a trajectory file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mdtraj
import numpy as np
from scipy.spatial import cKDTree

from seqdance.errors import SeqDanceError
from seqdance.schema import INTERACTIONS

HBOND_TYPES = ("hbbb", "hbsb", "hbss")
ITYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "hb": HBOND_TYPES,
    "all": INTERACTIONS,
}
# GetContacts' own order of the interaction families (header and output order).
FAMILY_ORDER = ("hb", "sb", "pc", "ps", "ts", "hp", "vdw")
OUTPUT_ORDER = (*HBOND_TYPES, "sb", "pc", "ps", "ts", "hp", "vdw")

VDW_RADII = {
    "H": 1.20, "C": 1.70, "N": 1.55, "O": 1.52, "S": 1.80, "P": 1.80, "MG": 1.73,
    "ZN": 1.39, "CA": 2.31, "NA": 2.27, "K": 2.75, "CL": 1.75,
}  # fmt: skip
DEFAULT_RADIUS = 1.7
BOND_FACTOR = 0.6  # bonded if d <= 0.6 * (Ri + Rj), never H-H
BACKBONE_NAMES = frozenset({"O", "N", "OP1", "OP2", "O1P", "O2P", "O3'", "O2'", "O4'", "O5'"})
HISTIDINES = frozenset({"HIS", "HSD", "HSE", "HSP", "HIE", "HIP", "HID"})
ANIONS = {"ASP": ("OD1", "OD2"), "GLU": ("OE1", "OE2")}
CATIONS = {"LYS": ("NZ",), "ARG": ("NH1", "NH2"), **{h: ("ND1", "NE2") for h in HISTIDINES}}
RING_ATOMS = {
    "PHE": ("CG", "CE1", "CE2"),
    "TYR": ("CG", "CE1", "CE2"),
    "TRP": ("CD2", "CZ2", "CZ3"),
    **{h: ("CG", "CE1", "CD2") for h in HISTIDINES},
}
HYDROPHOBIC_RESIDUES = frozenset({"ALA", "PHE", "GLY", "ILE", "LEU", "PRO", "VAL", "TRP"})


@dataclass(frozen=True)
class ContactCriteria:
    """Geometric cutoffs (Angstrom, degrees): GetContacts' defaults for trajectories."""

    hbond_distance: float = 3.5  # donor-acceptor, d <= cut
    hbond_angle: float = 70.0  # angle(D->H, H->A) < cut
    hbond_res_diff: int = 1
    salt_bridge_distance: float = 4.0
    pication_distance: float = 6.0
    pication_angle: float = 60.0
    pistack_distance: float = 7.0
    pistack_angle: float = 30.0
    pistack_psi: float = 45.0
    tstack_distance: float = 5.0
    tstack_angle: float = 30.0
    tstack_psi: float = 45.0
    vdw_epsilon: float = 0.5  # d < Ri + Rj + epsilon
    vdw_res_diff: int = 2
    disulfide_distance: float = 2.1
    hydrophobic_neighbor_radius: float = 1.7


def parse_itypes(itypes: str | Sequence[str]) -> tuple[str, ...]:
    """Expand user interaction types (``hb``, ``all``, ``vdw``, ``hbbb`` ...) in output order.

    Accepts a sequence or one comma/space separated string; raises ``SeqDanceError`` on an
    unknown name.
    """
    if isinstance(itypes, str):
        itypes = itypes.replace(",", " ").split()
    chosen: set[str] = set()
    for name in itypes:
        key = name.strip().lower()
        if key in ITYPE_GROUPS:
            chosen.update(ITYPE_GROUPS[key])
        elif key in INTERACTIONS:
            chosen.add(key)
        else:
            known = ", ".join(("all", "hb", *INTERACTIONS))
            raise SeqDanceError(f"unknown interaction type {name!r}; use: {known}")
    if not chosen:
        raise SeqDanceError("no interaction types given")
    return tuple(t for t in OUTPUT_ORDER if t in chosen)


def header_itypes(itypes: Sequence[str]) -> tuple[str, ...]:
    """GetContacts' header spelling: the three H-bond types collapse to ``hb`` when all present."""
    out: list[str] = []
    for family in FAMILY_ORDER:
        if family == "hb":
            present = [t for t in HBOND_TYPES if t in itypes]
            out.extend(["hb"] if len(present) == 3 else present)
        elif family in itypes:
            out.append(family)
    return tuple(out)


def is_hydrogen_name(name: str) -> bool:
    """VMD's name rule: starts with ``H``, or a digit followed by ``H``."""
    return name[:1] == "H" or (name[:1].isdigit() and name[1:2] == "H")


def element_symbol(atom: mdtraj.core.topology.Atom) -> str:
    """Upper-case element symbol of an atom; ``""`` for virtual sites and untyped atoms."""
    element = atom.element
    symbol = getattr(element, "symbol", None) if element is not None else None
    if not symbol or symbol == "VS":
        return ""
    return symbol.upper()


def protein_atoms(topology: mdtraj.Topology) -> np.ndarray:
    """Atoms of residues that have protein backbone atoms by name (VMD's ``protein``).

    A residue counts when it has atoms named N, CA and C and one of O, OT1, OT2, OXT, so
    force-field names (HIE, HID, CYX, ASH ...) count and caps (ACE, NME) and ions do not,
    as in VMD, which GetContacts uses. Returns sorted atom indices.
    """
    out = []
    for residue in topology.residues:
        names = {a.name for a in residue.atoms}
        if {"N", "CA", "C"} <= names and names & {"O", "OT1", "OT2", "OXT"}:
            out.extend(a.index for a in residue.atoms)
    return np.array(sorted(out), dtype=np.int64)


def select_atoms(topology: mdtraj.Topology, selection: str) -> np.ndarray:
    """MDTraj selection, except that the bare keyword ``protein`` follows VMD's rule
    (:func:`protein_atoms`); MDTraj's residue-name list misses e.g. HIE, HID and CYX."""
    if selection.strip() == "protein":
        return protein_atoms(topology)
    return np.asarray(topology.select(selection), dtype=np.int64)


def atom_labels(topology: mdtraj.Topology) -> list[str]:
    """GetContacts labels ``chain:resname:resid:name`` of every atom (blank chain -> ``X``)."""
    out = []
    for atom in topology.atoms:
        residue = atom.residue
        chain = (getattr(residue.chain, "chain_id", None) or "").strip() or "X"
        out.append(f"{chain}:{residue.name}:{residue.resSeq}:{atom.name}")
    return out


def distance_bonds(
    xyz_angstrom: np.ndarray, elements: Sequence[str], is_h: np.ndarray
) -> np.ndarray:
    """Covalent bonds by VMD's distance rule: d <= 0.6 (Ri + Rj), never between two H.

    Parameters
    ----------
    xyz_angstrom : ndarray, shape=(n_atoms, 3)
    elements : element symbols (upper case), length n_atoms
    is_h : bool ndarray, shape=(n_atoms,), hydrogen by name

    Returns
    -------
    pairs : int ndarray, shape=(n_bonds, 2), ``i < j``
    """
    radii = np.array([VDW_RADII.get(e, DEFAULT_RADIUS) for e in elements])
    if len(radii) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    tree = cKDTree(xyz_angstrom)
    pairs = tree.query_pairs(BOND_FACTOR * 2 * radii.max(), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.linalg.norm(xyz_angstrom[i] - xyz_angstrom[j], axis=1)
    keep = (d <= BOND_FACTOR * (radii[i] + radii[j])) & ~(is_h[i] & is_h[j])
    return np.sort(pairs[keep], axis=1).astype(np.int64)


def angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors along the last axis, atan2 form (VMD's), in [0, 180]."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.einsum("...k,...k->...", a, b)))


def fold_angle(theta: np.ndarray) -> np.ndarray:
    """Angle to the nearer of 0 and 180 degrees: ``min(theta, |theta - 180|)``."""
    return np.minimum(theta, np.abs(theta - 180.0))
