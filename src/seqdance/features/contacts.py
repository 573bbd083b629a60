"""Interaction detection with GetContacts' rules, without VMD (contacts-spec.md).

Nine atom-level interaction types per frame: hydrogen bonds (``hbbb``, ``hbsb``, ``hbss``),
salt bridges (``sb``), pi-cation (``pc``), pi-stacking (``ps``), T-stacking (``ts``),
hydrophobic (``hp``) and van der Waals (``vdw``) contacts, reported as GetContacts'
dynamic-contacts lines (:class:`~seqdance.features.getcontacts.ContactLine`).

Everything that depends only on the topology (labels, bonds, donors and their hydrogens,
rings, the hydrophobic pool, disulfides) is prepared once in :class:`ContactDetector`;
each frame then costs one k-d tree search over the heavy atoms of the selection, whose
pair list serves all atom-pair types at once, plus small dense ring computations.
Coordinates enter in nanometres (MDTraj) and are compared in Angstrom, as GetContacts does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat

import mdtraj
import numpy as np
from scipy.spatial import cKDTree

from seqdance.errors import SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.getcontacts import ContactLine, ContactsHeader
from seqdance.residues import is_ionic, standard_residue
from seqdance.schema import INTERACTIONS

HBOND_TYPES = ("hbbb", "hbsb", "hbss")
ITYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "hb": HBOND_TYPES,
    "all": INTERACTIONS,
}
# GetContacts' own order of the interaction families (header and output order).
FAMILY_ORDER = ("hb", "sb", "pc", "ps", "ts", "hp", "vdw")
OUTPUT_ORDER = (*HBOND_TYPES, "sb", "pc", "ps", "ts", "hp", "vdw")
# per-atom flag bits (the cation bit is the anion bit shifted left by one)
_CANDIDATE, _ANION, _CATION, _HYDROPHOBIC = 1, 2, 4, 8

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


def _element_symbol(atom: mdtraj.core.topology.Atom) -> str:
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


def load_topology_and_coords(
    path: str | os.PathLike,
) -> tuple[mdtraj.Topology, np.ndarray | None]:
    """Topology (names as in the file) and its own coordinates in nm, ``(n_atoms, 3)``,
    when the format has them (PDB, mmCIF, GRO, MOL2, H5), else ``None``."""
    return _load_topology_and_coords(path)


def load_topology(path: str | os.PathLike) -> mdtraj.Topology:
    """Load a topology with atom and residue names exactly as written in the file."""
    return _load_topology_and_coords(path)[0]


def _load_topology_and_coords(path: str | os.PathLike) -> tuple[mdtraj.Topology, np.ndarray | None]:
    """Topology, plus its own coordinates (nm, ``(n_atoms, 3)``) when the format has them.

    Read by :func:`seqdance.features.topology.load_topology`: names as written, chains,
    insertion codes and elements settled there.
    """
    from seqdance.features.topology import load_topology as _prepare

    prepared = _prepare(path)
    return prepared.topology, prepared.xyz


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


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors along the last axis, atan2 form (VMD's), in [0, 180]."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.einsum("...k,...k->...", a, b)))


def _fold(theta: np.ndarray) -> np.ndarray:
    return np.minimum(theta, np.abs(theta - 180.0))


class ContactDetector:
    """GetContacts-equivalent interaction detection for one topology and selection.

    Parameters
    ----------
    topology : mdtraj.Topology
        Loaded with ``standard_names=False`` (see :func:`load_topology`).
    reference_xyz : ndarray, shape=(n_atoms, 3)
        Coordinates in nm of the first frame: the hydrophobic neighbour filter and the
        disulfide search use it.
    itypes : interaction types (``hb`` expands to ``hbbb, hbsb, hbss``; ``all`` to all nine).
    selection : MDTraj selection of the atoms to consider (default ``protein``).
    bond_xyz : ndarray, shape=(n_atoms, 3), optional
        Coordinates (nm) for the distance bond rule; the topology file's own coordinates
        when it has them (as VMD does), else ``reference_xyz``.
    criteria : cutoffs; GetContacts' trajectory defaults.

    Attributes
    ----------
    itypes : tuple of the interaction types detected, in output order.
    warnings : list of str, problems found in the topology (e.g. no hydrogens).
    labels : list of str, GetContacts label of every topology atom.
    """

    def __init__(
        self,
        topology: mdtraj.Topology,
        reference_xyz: np.ndarray,
        itypes: Sequence[str] = INTERACTIONS,
        selection: str = "protein",
        *,
        bond_xyz: np.ndarray | None = None,
        criteria: ContactCriteria | None = None,
    ) -> None:
        self.topology = topology
        self.itypes = parse_itypes(itypes)
        self.selection = selection
        self.criteria = criteria = criteria or ContactCriteria()
        self.warnings: list[str] = []
        n = topology.n_atoms
        self.n_atoms = n
        reference = np.asarray(reference_xyz, dtype=np.float64)
        if reference.shape != (n, 3):
            raise SeqDanceError(
                f"reference coordinates have shape {reference.shape}, topology has {n} atoms"
            )
        try:
            sel = select_atoms(topology, selection)
        except Exception as exc:  # MDTraj raises several types for a bad expression
            raise SeqDanceError(f"bad selection {selection!r}: {_one_line(exc)}") from None
        if sel.size == 0:
            raise SeqDanceError(f"selection {selection!r} matches no atoms")
        self.sel = sel

        atoms = list(topology.atoms)
        names = [a.name for a in atoms]
        resnames = [a.residue.name for a in atoms]
        # force-field names (HSD, HISD, CYS2, LYSH ...) behave as their standard residue
        parent_of = {r: standard_residue(r) or r for r in set(resnames)}
        parents = [parent_of[r] for r in resnames]
        ionic_of = {r: is_ionic(r) or standard_residue(r) is None for r in set(resnames)}
        ionic = [ionic_of[r] for r in resnames]
        elements = [_element_symbol(a) for a in atoms]
        self.labels = labels = atom_labels(topology)
        is_h = np.array([is_hydrogen_name(nm) for nm in names], dtype=bool)
        in_sel = np.zeros(n, dtype=bool)
        in_sel[sel] = True
        self.resid = np.array([a.residue.resSeq for a in atoms], dtype=np.int64)
        self.residue_index = np.array([a.residue.index for a in atoms], dtype=np.int64)
        chain_names = [label.split(":", 1)[0] for label in labels]
        chain_code = {c: k for k, c in enumerate(dict.fromkeys(chain_names))}
        self.chain = np.array([chain_code[c] for c in chain_names], dtype=np.int64)
        self.radius = np.array([VDW_RADII.get(e, DEFAULT_RADIUS) for e in elements])
        # rank of each label in string order: the lower-ranked atom is written first
        order = np.argsort(np.array(labels, dtype=str), kind="stable")
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[order] = np.arange(n)
        self._labels_unique = len(set(labels)) == n
        self._labels_arr = np.array(labels, dtype=object)

        if not is_h[sel].any():
            self.warnings.append(
                "topology has no hydrogen atoms: no hydrogen bonds or hp contacts "
                "(GetContacts' rules need explicit hydrogens)"
            )

        # covalent bonds: topology (templates, CONECT, PSF ...) + VMD's distance rule
        bond_source = reference if bond_xyz is None else np.asarray(bond_xyz, dtype=np.float64)
        topo_bonds = np.array(
            [(a.index, b.index) for a, b in topology.bonds], dtype=np.int64
        ).reshape(-1, 2)
        geo_bonds = distance_bonds(bond_source * 10.0, elements, is_h)
        bonds = np.sort(np.concatenate([topo_bonds, geo_bonds]), axis=1)
        self._bond_keys = np.unique(bonds[:, 0] * n + bonds[:, 1])
        neighbours: list[list[int]] = [[] for _ in range(n)]
        for a, b in bonds:
            neighbours[a].append(b)
            neighbours[b].append(a)

        # heavy atoms of the selection: the one pair search per frame runs over these
        heavy = sel[~is_h[sel]]
        self.heavy = heavy
        self.is_backbone = np.array([nm in BACKBONE_NAMES for nm in names], dtype=bool)

        # hydrogen bonds: candidates are heavy atoms not named C* or S*
        candidate = np.zeros(n, dtype=bool)
        candidate[heavy] = [names[i][:1] not in ("C", "S") for i in heavy]
        self.hb_candidate = candidate
        h_lists = [
            sorted({h for h in neighbours[i] if is_h[h]}) if candidate[i] else [] for i in range(n)
        ]
        self.h_count = np.array([len(h) for h in h_lists], dtype=np.int64)
        self.h_start = np.concatenate([[0], np.cumsum(self.h_count)[:-1]]).astype(np.int64)
        self.h_flat = np.array([h for hs in h_lists for h in hs], dtype=np.int64)

        # salt bridges and pi-cation
        self.is_anion = np.zeros(n, dtype=bool)
        self.is_cation = np.zeros(n, dtype=bool)
        for i in sel:
            if not ionic[i]:  # neutral protonation states (ASH, GLH, LYN ...) carry no charge
                continue
            if names[i] in ANIONS.get(parents[i], ()):
                self.is_anion[i] = True
            if names[i] in CATIONS.get(parents[i], ()):
                self.is_cation[i] = True
        self.cations = np.flatnonzero(self.is_cation)

        # aromatic rings: residues of the selection with all three ring atoms
        ring_atoms, ring_rep = [], []
        for residue in topology.residues:
            wanted = RING_ATOMS.get(standard_residue(residue.name) or residue.name)
            if wanted is None:
                continue
            by_name = {a.name: a.index for a in residue.atoms if in_sel[a.index]}
            if all(w in by_name for w in wanted):
                ring_atoms.append([by_name[w] for w in wanted])
                ring_rep.append(by_name[min(wanted)])  # lowest atom name labels the ring
        self.ring_atoms = np.array(ring_atoms, dtype=np.int64).reshape(-1, 3)  # (R, 3)
        self.ring_rep = np.array(ring_rep, dtype=np.int64)  # (R,)
        self.ring_residue = self.residue_index[self.ring_rep] if ring_rep else np.zeros(0, int)

        ref_a = reference * 10.0  # (n_atoms, 3) Angstrom

        # hydrophobic pool: carbons of 8 residue types whose 1.7 A neighbourhood is C/H only.
        # GetContacts also builds a second pool needing exactly {C, H} and finds no hp at all
        # when that one is empty (so never without hydrogens), even for one selection.
        pool = [i for i in sel if elements[i] == "C" and parents[i] in HYDROPHOBIC_RESIDUES]
        self.is_hydrophobic = np.zeros(n, dtype=bool)
        if pool:
            tree = cKDTree(ref_a)
            near = tree.query_ball_point(ref_a[pool], criteria.hydrophobic_neighbor_radius)
            hoods = [{elements[k] for k in hood} for hood in near]
            if any(hood == {"C", "H"} for hood in hoods):
                for i, hood in zip(pool, hoods, strict=True):
                    self.is_hydrophobic[i] = hood <= {"C", "H"}

        # disulfides on the first frame: CYS SG pairs within 2.1 A, kept as residue-number pairs
        self.is_cys = np.array([r == "CYS" for r in parents], dtype=bool)
        sg = [i for i in sel if names[i] == "SG" and parents[i] == "CYS"]
        self._disulfide_keys = np.zeros(0, dtype=np.int64)
        if len(sg) > 1:
            sg_arr = np.array(sg)
            d = np.linalg.norm(ref_a[sg_arr][:, None] - ref_a[sg_arr][None], axis=-1)
            a_idx, b_idx = np.nonzero(np.triu(d <= criteria.disulfide_distance, k=1))
            r1, r2 = self.resid[sg_arr[a_idx]], self.resid[sg_arr[b_idx]]
            self._resid_offset = int(self.resid.min())
            self._resid_span = int(self.resid.max() - self._resid_offset + 1)
            keys = np.concatenate([self._resid_key(r1, r2), self._resid_key(r2, r1)])
            self._disulfide_keys = np.unique(keys)

        # per heavy atom: packed flags, radius and a residue key whose differences are the
        # residue-number gap within a chain and exceed every residue filter across chains
        flags = (
            self.hb_candidate * _CANDIDATE
            | self.is_anion * _ANION
            | self.is_cation * _CATION
            | self.is_hydrophobic * _HYDROPHOBIC
        ).astype(np.uint8)
        self._h_flags = flags[heavy]
        self._h_radius = self.radius[heavy]
        span = int(self.resid.max() - self.resid.min()) + 1
        margin = 10 + max(criteria.vdw_res_diff, criteria.hbond_res_diff)
        self._h_key = (self.chain * (span + margin) + self.resid - self.resid.min())[heavy]

        # one pair-search radius serves every atom-pair type
        radius = 0.0
        wanted = set(self.itypes)
        if "vdw" in wanted or "hp" in wanted:
            radius = 2 * float(self.radius[heavy].max()) + criteria.vdw_epsilon if heavy.size else 0
        if wanted & set(HBOND_TYPES):
            radius = max(radius, criteria.hbond_distance)
        if "sb" in wanted:
            radius = max(radius, criteria.salt_bridge_distance)
        self._search_radius = radius

    # ------------------------------------------------------------------ helpers
    def _resid_key(self, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
        return (r1 - self._resid_offset) * self._resid_span + (r2 - self._resid_offset)

    def _is_bonded(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if len(self._bond_keys) == 0:
            return np.zeros(len(i), dtype=bool)
        keys = np.minimum(i, j) * self.n_atoms + np.maximum(i, j)
        pos = np.minimum(np.searchsorted(self._bond_keys, keys), len(self._bond_keys) - 1)
        return self._bond_keys[pos] == keys

    def _is_disulfide(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        both = self.is_cys[i] & self.is_cys[j]
        if len(self._disulfide_keys) == 0 or not both.any():
            return np.zeros(len(i), dtype=bool)
        keys = self._resid_key(self.resid[i], self.resid[j])
        return both & np.isin(keys, self._disulfide_keys)

    def _far_enough(self, i: np.ndarray, j: np.ndarray, min_diff: int) -> np.ndarray:
        """Not (same chain and abs(resid difference) < min_diff)."""
        same = self.chain[i] == self.chain[j]
        return ~(same & (np.abs(self.resid[i] - self.resid[j]) < min_diff))

    # ------------------------------------------------------------------ kernels
    def _atom_pairs(self, pos: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Atom-pair interactions of one frame.

        Parameters
        ----------
        pos : ndarray, shape=(n_atoms, 3), Angstrom

        Returns
        -------
        ``{itype: (i, j)}`` with atom index arrays of equal length.
        """
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        heavy = self.heavy
        if self._search_radius <= 0 or heavy.size < 2:
            return out
        crit = self.criteria
        ph = pos[heavy]  # (H, 3)
        local = cKDTree(ph).query_pairs(self._search_radius, output_type="ndarray")  # (M, 2)
        a, b = local[:, 0], local[:, 1]  # indices into heavy
        diff = ph[a] - ph[b]
        d2 = np.einsum("mk,mk->m", diff, diff)  # (M,) squared distances
        dres = np.abs(self._h_key[a] - self._h_key[b])  # residue-number gap, huge across chains
        fa, fb = self._h_flags[a], self._h_flags[b]
        wanted = self.itypes

        if "vdw" in wanted or "hp" in wanted:
            cut = self._h_radius[a] + self._h_radius[b] + crit.vdw_epsilon
            (c,) = np.nonzero((d2 < cut * cut) & (dres >= crit.vdw_res_diff))
            i, j = heavy[a[c]], heavy[b[c]]
            keep = ~self._is_bonded(i, j) & ~self._is_disulfide(i, j)
            i, j, c = i[keep], j[keep], c[keep]
            if "vdw" in wanted:
                out["vdw"] = (i, j)
            if "hp" in wanted:
                hp = (fa[c] & fb[c] & _HYDROPHOBIC).astype(bool)
                out["hp"] = (i[hp], j[hp])

        if "sb" in wanted:
            ion = ((fa & _ANION) & (fb >> 1)) | ((fa & _CATION) >> 1 & fb)  # anion-cation
            (c,) = np.nonzero(ion.astype(bool) & (d2 <= crit.salt_bridge_distance**2))
            out["sb"] = (heavy[a[c]], heavy[b[c]])

        if any(t in wanted for t in HBOND_TYPES):
            both = (fa & fb & _CANDIDATE).astype(bool)
            (c,) = np.nonzero(both & (d2 <= crit.hbond_distance**2) & (dres >= crit.hbond_res_diff))
            hi, hj = self._hbonds(pos, heavy[a[c]], heavy[b[c]])
            bb_i, bb_j = self.is_backbone[hi], self.is_backbone[hj]
            kinds = {"hbbb": bb_i & bb_j, "hbss": ~bb_i & ~bb_j, "hbsb": bb_i ^ bb_j}
            for t in HBOND_TYPES:
                if t in wanted:
                    out[t] = (hi[kinds[t]], hj[kinds[t]])
        return out

    def _hbonds(
        self, pos: np.ndarray, ci: np.ndarray, cj: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Of candidate pairs (both donor/acceptor candidates, close, other residues), those
        not bonded with a hydrogen on either atom satisfying the angle rule (unordered)."""
        crit = self.criteria
        unbonded = ~self._is_bonded(ci, cj)
        ci, cj = ci[unbonded], cj[unbonded]  # (P,)
        accepted = np.zeros(len(ci), dtype=bool)
        for donor, acceptor in ((ci, cj), (cj, ci)):
            counts = self.h_count[donor]  # (P,)
            if counts.sum() == 0:
                continue
            pair = np.repeat(np.arange(len(donor)), counts)  # (Q,) one row per (pair, H)
            offset = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
            h = self.h_flat[self.h_start[donor[pair]] + offset]  # (Q,)
            p_d, p_h, p_a = pos[donor[pair]], pos[h], pos[acceptor[pair]]
            ok = _angle(p_h - p_d, p_a - p_h) < crit.hbond_angle
            accepted[pair[ok]] = True
        return ci[accepted], cj[accepted]

    def _ring_geometry(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ring centroids and normals, each shape=(R, 3), for one frame (Angstrom)."""
        p = pos[self.ring_atoms]  # (R, 3 atoms, 3)
        centroid = p.mean(axis=1)
        normal = np.cross(p[:, 2] - p[:, 0], p[:, 1] - p[:, 0])
        return centroid, normal

    def _aromatic(self, pos: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """pi-cation (cation atom, ring representative) and ring-ring stacking pairs."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        crit = self.criteria
        n_rings = len(self.ring_rep)
        if n_rings == 0:
            return out
        centroid, normal = self._ring_geometry(pos)
        if "pc" in self.itypes and len(self.cations):
            vec = pos[self.cations][:, None, :] - centroid[None]  # (C, R, 3)
            dist = np.linalg.norm(vec, axis=-1)  # (C, R)
            ang = _fold(_angle(np.broadcast_to(normal[None], vec.shape), vec))
            other = self.residue_index[self.cations][:, None] != self.ring_residue[None]
            ok = other & (dist <= crit.pication_distance) & (ang <= crit.pication_angle)
            c_idx, r_idx = np.nonzero(ok)
            out["pc"] = (self.cations[c_idx], self.ring_rep[r_idx])
        if ("ps" in self.itypes or "ts" in self.itypes) and n_rings > 1:
            a, b = np.triu_indices(n_rings, k=1)
            other = self.ring_residue[a] != self.ring_residue[b]
            a, b = a[other], b[other]
            dist = np.linalg.norm(centroid[a] - centroid[b], axis=-1)
            theta = _angle(normal[a], normal[b])
            psi = np.minimum(
                _fold(_angle(normal[a], centroid[a] - centroid[b])),
                _fold(_angle(normal[b], centroid[b] - centroid[a])),
            )
            if "ps" in self.itypes:
                ok = (
                    (dist <= crit.pistack_distance)
                    & (_fold(theta) <= crit.pistack_angle)
                    & (psi <= crit.pistack_psi)
                )
                out["ps"] = (self.ring_rep[a[ok]], self.ring_rep[b[ok]])
            if "ts" in self.itypes:
                ok = (
                    (dist <= crit.tstack_distance)
                    & (np.abs(theta - 90.0) <= crit.tstack_angle)
                    & (psi <= crit.tstack_psi)
                )
                out["ts"] = (self.ring_rep[a[ok]], self.ring_rep[b[ok]])
        return out

    def frame_pairs(self, pos: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """All interactions of one frame as atom index pairs, the lower label first.

        Parameters
        ----------
        pos : ndarray, shape=(n_atoms, 3), Angstrom

        Returns
        -------
        ``{itype: (first, second)}`` for the detector's itypes, in output order.
        """
        found = self._atom_pairs(pos)
        found.update(self._aromatic(pos))
        out = {}
        for t in self.itypes:
            i, j = found.get(t, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            swap = self.rank[j] < self.rank[i]
            out[t] = (np.where(swap, j, i), np.where(swap, i, j))
        return out

    def detect(self, xyz: np.ndarray, first_frame: int = 0, stride: int = 1) -> list[ContactLine]:
        """Contact lines of a block of frames.

        Parameters
        ----------
        xyz : ndarray, shape=(n_frames, n_atoms, 3)
            Coordinates in nm (MDTraj's unit) of all atoms of the topology.
        first_frame, stride : frame number of ``xyz[k]`` is ``first_frame + k * stride``.

        Returns
        -------
        list of ContactLine, by frame, with GetContacts labels (``atom1 <= atom2``).
        """
        xyz = np.asarray(xyz)
        if xyz.ndim != 3 or xyz.shape[1:] != (self.n_atoms, 3):
            raise SeqDanceError(
                f"coordinates have shape {xyz.shape}, expected (n_frames, {self.n_atoms}, 3)"
            )
        labels = self._labels_arr
        make = partial(tuple.__new__, ContactLine)  # ContactLine._make without its frame
        lines: list[ContactLine] = []
        for k in range(len(xyz)):
            frame = first_frame + k * stride
            # nm -> Angstrom, rounded to float32 as trajectory files store it; one frame at
            # a time so a chunk of a large system is never copied whole
            pos = (xyz[k].astype(np.float64) * 10.0).astype(np.float32).astype(np.float64)
            frame_lines: list[ContactLine] = []
            for itype, (a, b) in self.frame_pairs(pos).items():
                frame_lines.extend(
                    map(
                        make,
                        zip(repeat(frame), repeat(itype), labels[a].tolist(), labels[b].tolist()),
                    )
                )
            if not self._labels_unique:
                frame_lines = list(dict.fromkeys(frame_lines))
            lines.extend(frame_lines)
        return lines


class ContactStream(Iterator[ContactLine]):
    """Contact lines of a trajectory, read and detected one chunk of frames at a time.

    An iterator of :class:`ContactLine`; also carries the :class:`ContactDetector` (its
    ``warnings``) and calls ``on_frames(n)`` after each chunk of ``n`` frames.
    """

    def __init__(
        self,
        detector: ContactDetector,
        blocks: Iterator[np.ndarray],
        stride: int,
        on_frames: Callable[[int], None] | None = None,
    ) -> None:
        self.detector = detector
        self._lines = self._generate(blocks, stride, on_frames)

    @property
    def warnings(self) -> list[str]:
        return self.detector.warnings

    def _generate(
        self, blocks: Iterator[np.ndarray], stride: int, on_frames: Callable[[int], None] | None
    ) -> Iterator[ContactLine]:
        done = 0
        for block in blocks:
            yield from self.detector.detect(block, first_frame=done * stride, stride=stride)
            done += len(block)
            if on_frames is not None:
                on_frames(len(block))

    def __iter__(self) -> ContactStream:
        return self

    def __next__(self) -> ContactLine:
        return next(self._lines)


def detect_contacts(
    topology_path: str | os.PathLike,
    trajectory_path: str | os.PathLike,
    itypes: Sequence[str] = INTERACTIONS,
    stride: int = 1,
    selection: str = "protein",
    chunk_size: int = 100,
    *,
    criteria: ContactCriteria | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> tuple[ContactsHeader, ContactStream]:
    """Stream GetContacts lines for a trajectory file, ``chunk_size`` frames at a time.

    The first chunk is read before returning, so a trajectory that does not fit its
    topology fails here, not half-way through writing. Frame 0 is the reference for the
    hydrophobic filter and disulfides; a PDB/mmCIF/GRO topology's own coordinates drive
    the distance bond rule.

    Returns
    -------
    header : ContactsHeader
        ``total_frames`` counts the frames analysed (after ``stride``).
    lines : ContactStream, an iterator of ContactLine by frame (``lines.warnings``).
    """
    if stride < 1:
        raise SeqDanceError(f"stride must be >= 1, got {stride}")
    if chunk_size < 1:
        raise SeqDanceError(f"chunk_size must be >= 1, got {chunk_size}")
    from seqdance.features.trajectory import open_system

    itypes = parse_itypes(itypes)
    prepared, source = open_system(topology_path, trajectory_path)
    topology = prepared.topology
    try:
        sel = select_atoms(topology, selection)
    except Exception as exc:  # MDTraj raises several types for a bad expression
        raise SeqDanceError(f"bad selection {selection!r}: {_one_line(exc)}") from None
    if source.available is not None:  # atoms present in every model (PED ensembles)
        sel = np.intersect1d(sel, source.available)
    if sel.size == 0:
        raise SeqDanceError(f"selection {selection!r} matches no atoms")
    sub = topology.subset(sel)
    own = prepared.xyz[sel] if prepared.xyz is not None else None
    first = source.first_frame(sel, sub, own, prepared.box)
    bonds_from = source.reference_xyz  # the topology's own coordinates, made whole
    detector = ContactDetector(sub, first, itypes, "all", bond_xyz=bonds_from, criteria=criteria)
    detector.warnings[:0] = list(source.warnings) + list(prepared.notes)
    total_frames = source.frames_after(stride)
    if total_frames is None:  # formats without a frame count: count by reading once
        total_frames = sum(len(b.xyz) for b in source.blocks(sel, chunk_size, stride, sub))
        source = open_system(prepared, trajectory_path)[1]
        source.first_frame(sel, sub, own, prepared.box)
    header = ContactsHeader(
        total_frames=total_frames, beg=0, stride=stride, interaction_types=header_itypes(itypes)
    )
    blocks = (b.xyz for b in source.blocks(sel, chunk_size, stride, sub))
    stream = ContactStream(detector, blocks, stride, on_frames)
    stream.source = source
    return header, stream
