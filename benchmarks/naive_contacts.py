"""Slow, plain reference for seqdance.features.contacts: the same rules, one frame at a time.

Written to be easy to check against contacts-spec.md rather than fast: per frame, a
Python loop over heavy atoms (NumPy only for one row of distances at a time) and plain
Python for every rule. It shares only the rule tables (names, radii, cutoffs) with the
fast detector; bonds, hydrogens, rings, filters and geometry are recomputed here. Used
as the benchmark baseline and, from the tests, as an independent reference.
"""

from __future__ import annotations

import math

import mdtraj
import numpy as np

from seqdance.features.contact_rules import (
    ANIONS,
    BACKBONE_NAMES,
    BOND_FACTOR,
    CATIONS,
    DEFAULT_RADIUS,
    HYDROPHOBIC_RESIDUES,
    RING_ATOMS,
    VDW_RADII,
    ContactCriteria,
    is_hydrogen_name,
    parse_itypes,
    select_atoms,
)

Line = tuple[int, str, str, str]  # (frame, itype, atom1, atom2) with atom1 <= atom2


def _vec_angle(u, v) -> float:
    cx = u[1] * v[2] - u[2] * v[1]
    cy = u[2] * v[0] - u[0] * v[2]
    cz = u[0] * v[1] - u[1] * v[0]
    dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2]
    return math.degrees(math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), dot))


def _fold(t: float) -> float:
    return min(t, abs(t - 180.0))


def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dist(a, b) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


class NaiveContacts:
    """Per-frame reference detector (same constructor arguments as ``ContactDetector``)."""

    def __init__(
        self,
        topology: mdtraj.Topology,
        reference_xyz: np.ndarray,
        itypes=("all",),
        selection: str = "protein",
        bond_xyz: np.ndarray | None = None,
    ) -> None:
        self.itypes = set(parse_itypes(itypes))
        self.c = c = ContactCriteria()
        atoms = list(topology.atoms)
        self.n = len(atoms)
        self.name = [a.name for a in atoms]
        self.resname = [a.residue.name for a in atoms]
        self.resid = [a.residue.resSeq for a in atoms]
        self.res_index = [a.residue.index for a in atoms]
        self.chain = [(a.residue.chain.chain_id or "").strip() or "X" for a in atoms]
        self.label = [
            f"{self.chain[k]}:{self.resname[k]}:{self.resid[k]}:{self.name[k]}"
            for k in range(self.n)
        ]
        self.element = [(a.element.symbol.upper() if a.element is not None else "") for a in atoms]
        self.radius = [VDW_RADII.get(e, DEFAULT_RADIUS) for e in self.element]
        self.is_h = [is_hydrogen_name(nm) for nm in self.name]
        self.sel = [int(k) for k in select_atoms(topology, selection)]
        sel_set = set(self.sel)

        # bonds: topology bonds plus the distance rule, checked atom by atom
        bxyz = np.asarray(reference_xyz if bond_xyz is None else bond_xyz, dtype=np.float64) * 10
        self.bonds: set[tuple[int, int]] = set()
        for a, b in topology.bonds:
            self.bonds.add((min(a.index, b.index), max(a.index, b.index)))
        radii = np.array(self.radius)
        for i in range(self.n):
            d = np.linalg.norm(bxyz[i + 1 :] - bxyz[i], axis=1)
            for off in np.flatnonzero(d <= BOND_FACTOR * (radii[i + 1 :] + radii[i])):
                j = i + 1 + int(off)
                if not (self.is_h[i] and self.is_h[j]):
                    self.bonds.add((i, j))
        self.hydrogens: dict[int, list[int]] = {}
        for a, b in self.bonds:
            for x, y in ((a, b), (b, a)):
                if self.is_h[y] and not self.is_h[x]:
                    self.hydrogens.setdefault(x, []).append(y)

        ref = np.asarray(reference_xyz, dtype=np.float64) * 10
        # hydrophobic carbons: all atoms within 1.7 A must be C or H
        # (and no hp at all unless some carbon has exactly {C, H}: GetContacts' second pool)
        self.hydrophobic = set()
        exact = False
        for i in self.sel:
            if self.element[i] == "C" and self.resname[i] in HYDROPHOBIC_RESIDUES:
                d = np.linalg.norm(ref - ref[i], axis=1)
                hood = {self.element[k] for k in np.flatnonzero(d <= c.hydrophobic_neighbor_radius)}
                if hood <= {"C", "H"}:
                    self.hydrophobic.add(i)
                exact = exact or hood == {"C", "H"}
        if not exact:
            self.hydrophobic = set()
        # disulfides as residue-number pairs
        sg = [i for i in self.sel if self.name[i] == "SG" and self.resname[i] == "CYS"]
        self.disulfide = set()
        for x in range(len(sg)):
            for y in range(x + 1, len(sg)):
                if _dist(ref[sg[x]], ref[sg[y]]) <= c.disulfide_distance:
                    r1, r2 = self.resid[sg[x]], self.resid[sg[y]]
                    self.disulfide.update({(r1, r2), (r2, r1)})
        # rings
        self.rings = []  # (atom triplet, representative atom, residue index)
        for residue in topology.residues:
            wanted = RING_ATOMS.get(residue.name)
            if wanted:
                by_name = {a.name: a.index for a in residue.atoms if a.index in sel_set}
                if all(w in by_name for w in wanted):
                    rep = by_name[sorted(wanted)[0]]
                    self.rings.append(([by_name[w] for w in wanted], rep, residue.index))
        self.cations = [i for i in self.sel if self.name[i] in CATIONS.get(self.resname[i], ())]
        self.anions = {i for i in self.sel if self.name[i] in ANIONS.get(self.resname[i], ())}

    def _pair_line(self, frame: int, itype: str, i: int, j: int) -> Line:
        a, b = sorted((self.label[i], self.label[j]))
        return (frame, itype, a, b)

    def _bonded(self, i: int, j: int) -> bool:
        return (min(i, j), max(i, j)) in self.bonds

    def _hbond(self, pos, donor: int, acceptor: int) -> bool:
        for h in self.hydrogens.get(donor, ()):
            if (
                _vec_angle(_sub(pos[h], pos[donor]), _sub(pos[acceptor], pos[h]))
                < self.c.hbond_angle
            ):
                return True
        return False

    def frame(self, pos_nm: np.ndarray, frame: int) -> set[Line]:
        """All lines of one frame; ``pos_nm`` shape=(n_atoms, 3) in nm."""
        c = self.c
        pos_arr = (np.asarray(pos_nm, dtype=np.float64) * 10).astype(np.float32).astype(np.float64)
        pos = [tuple(p) for p in pos_arr.tolist()]
        lines: set[Line] = set()
        heavy = [i for i in self.sel if not self.is_h[i]]
        heavy_arr = np.array(heavy)
        for x, i in enumerate(heavy):
            rest = heavy_arr[x + 1 :]
            d_row = np.linalg.norm(pos_arr[rest] - pos_arr[i], axis=1)
            for off in np.flatnonzero(d_row <= 8.0):
                j = int(rest[off])
                d = _dist(pos[i], pos[j])
                same_chain = self.chain[i] == self.chain[j]
                dres = abs(self.resid[i] - self.resid[j])
                # van der Waals and hydrophobic
                if (
                    d < self.radius[i] + self.radius[j] + c.vdw_epsilon
                    and not (same_chain and dres < c.vdw_res_diff)
                    and not self._bonded(i, j)
                    and not (
                        self.resname[i] == "CYS"
                        and self.resname[j] == "CYS"
                        and (self.resid[i], self.resid[j]) in self.disulfide
                    )
                ):
                    lines.add(self._pair_line(frame, "vdw", i, j))
                    if i in self.hydrophobic and j in self.hydrophobic:
                        lines.add(self._pair_line(frame, "hp", i, j))
                # salt bridges
                if (
                    (i in self.anions and j in self.cations)
                    or (j in self.anions and i in self.cations)
                ) and d <= c.salt_bridge_distance:
                    lines.add(self._pair_line(frame, "sb", i, j))
                # hydrogen bonds
                if (
                    self.name[i][0] not in "CS"
                    and self.name[j][0] not in "CS"
                    and d <= c.hbond_distance
                    and not (same_chain and dres < c.hbond_res_diff)
                    and not self._bonded(i, j)
                    and (self._hbond(pos, i, j) or self._hbond(pos, j, i))
                ):
                    bb = (self.name[i] in BACKBONE_NAMES) + (self.name[j] in BACKBONE_NAMES)
                    lines.add(self._pair_line(frame, ("hbss", "hbsb", "hbbb")[bb], i, j))
        # rings
        geo = []
        for triplet, rep, res in self.rings:
            p1, p2, p3 = (pos[k] for k in triplet)
            centre = tuple((p1[k] + p2[k] + p3[k]) / 3 for k in range(3))
            u, v = _sub(p3, p1), _sub(p2, p1)
            normal = (
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            )
            geo.append((centre, normal, rep, res))
        for centre, normal, rep, res in geo:
            for k in self.cations:
                if self.res_index[k] == res:
                    continue
                vec = _sub(pos[k], centre)
                if (
                    _dist(pos[k], centre) <= c.pication_distance
                    and _fold(_vec_angle(normal, vec)) <= c.pication_angle
                ):
                    lines.add(self._pair_line(frame, "pc", k, rep))
        for x in range(len(geo)):
            for y in range(x + 1, len(geo)):
                c1, n1, rep1, res1 = geo[x]
                c2, n2, rep2, res2 = geo[y]
                if res1 == res2:
                    continue
                dist = _dist(c1, c2)
                theta = _vec_angle(n1, n2)
                psi = min(_fold(_vec_angle(n1, _sub(c1, c2))), _fold(_vec_angle(n2, _sub(c2, c1))))
                if (
                    dist <= c.pistack_distance
                    and _fold(theta) <= c.pistack_angle
                    and psi <= c.pistack_psi
                ):
                    lines.add(self._pair_line(frame, "ps", rep1, rep2))
                if (
                    dist <= c.tstack_distance
                    and abs(theta - 90) <= c.tstack_angle
                    and psi <= c.tstack_psi
                ):
                    lines.add(self._pair_line(frame, "ts", rep1, rep2))
        return {line for line in lines if line[1] in self.itypes}

    def detect(self, xyz_nm: np.ndarray, first_frame: int = 0, stride: int = 1) -> set[Line]:
        """Lines of all frames; ``xyz_nm`` shape=(n_frames, n_atoms, 3)."""
        out: set[Line] = set()
        for k, pos in enumerate(xyz_nm):
            out |= self.frame(pos, first_frame + k * stride)
        return out
