"""Per-frame interaction detection with GetContacts' rules, without VMD (contacts-spec.md).

Nine atom-level interaction types per frame: hydrogen bonds (``hbbb``, ``hbsb``, ``hbss``),
salt bridges (``sb``), pi-cation (``pc``), pi-stacking (``ps``), T-stacking (``ts``),
hydrophobic (``hp``) and van der Waals (``vdw``) contacts, reported as GetContacts'
dynamic-contacts lines (:class:`~seqdance.features.getcontacts.ContactLine`); the rules are
in :mod:`seqdance.features.contact_rules`.

Everything that depends only on the topology (labels, bonds, donors and their hydrogens,
rings, the hydrophobic pool, disulfides) is prepared once in :class:`ContactDetector`;
each frame then costs one k-d tree search over the heavy atoms of the selection, whose
pair list serves all atom-pair types at once, plus small dense ring computations.
Coordinates enter in nanometres (MDTraj) and are compared in Angstrom, as GetContacts does.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import repeat

import mdtraj
import numpy as np
from scipy.spatial import cKDTree

from seqdance.errors import SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.contact_rules import (
    ANIONS,
    BACKBONE_NAMES,
    CATIONS,
    DEFAULT_RADIUS,
    HBOND_TYPES,
    HYDROPHOBIC_RESIDUES,
    RING_ATOMS,
    VDW_RADII,
    ContactCriteria,
    angle_degrees,
    atom_labels,
    distance_bonds,
    element_symbol,
    fold_angle,
    is_hydrogen_name,
    parse_itypes,
    select_atoms,
)
from seqdance.features.getcontacts import ContactLine
from seqdance.residues import is_ionic, standard_residue
from seqdance.schema import INTERACTIONS

# per-atom flag bits (the cation bit is the anion bit shifted left by one)
_CANDIDATE, _ANION, _CATION, _HYDROPHOBIC = 1, 2, 4, 8


class ContactDetector:
    """GetContacts-equivalent interaction detection for one topology and selection.

    Parameters
    ----------
    topology : mdtraj.Topology
        Names as written (see :func:`seqdance.features.topology.load_named_topology`).
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
        elements = [element_symbol(a) for a in atoms]
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
            ok = angle_degrees(p_h - p_d, p_a - p_h) < crit.hbond_angle
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
            ang = fold_angle(angle_degrees(np.broadcast_to(normal[None], vec.shape), vec))
            other = self.residue_index[self.cations][:, None] != self.ring_residue[None]
            ok = other & (dist <= crit.pication_distance) & (ang <= crit.pication_angle)
            c_idx, r_idx = np.nonzero(ok)
            out["pc"] = (self.cations[c_idx], self.ring_rep[r_idx])
        if ("ps" in self.itypes or "ts" in self.itypes) and n_rings > 1:
            a, b = np.triu_indices(n_rings, k=1)
            other = self.ring_residue[a] != self.ring_residue[b]
            a, b = a[other], b[other]
            dist = np.linalg.norm(centroid[a] - centroid[b], axis=-1)
            theta = angle_degrees(normal[a], normal[b])
            psi = np.minimum(
                fold_angle(angle_degrees(normal[a], centroid[a] - centroid[b])),
                fold_angle(angle_degrees(normal[b], centroid[b] - centroid[a])),
            )
            if "ps" in self.itypes:
                ok = (
                    (dist <= crit.pistack_distance)
                    & (fold_angle(theta) <= crit.pistack_angle)
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
