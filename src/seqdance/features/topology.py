"""Topologies as MD engines write them, made consistent in one place.

Every reader of the package (``features md``, ``contacts``, ``dataset build`` and the
source readers of :mod:`seqdance.features.sources`) goes through :func:`load_topology`,
which returns an MDTraj topology with

* **chains** from the chain IDs; else from the segment IDs (PSF, CHARMM PDB columns
  73-76); else split at chain breaks (a C-N distance over 0.2 nm, a C-alpha gap over
  0.6 nm for one-bead residues, or a switch between polymer and other residues). The
  chain's ``chain_id`` is the label used in GetContacts labels: the chain ID, the segment
  ID when there are several segments, ``A``, ``B`` ... for chains found at breaks, and
  ``X`` for a single unnamed chain (GetContacts' own label for a blank chain);
* **insertion codes** kept: ``residue.resSeq`` is a :class:`ResidueNumber`, an ``int``
  whose ``str`` carries the code (``163A``), so residue keys and contact labels keep
  163 and 163A apart while residue-number arithmetic is unchanged;
* **elements** from the file's typing when it has one (PDB/mmCIF element columns, PSF
  masses, PRMTOP atomic numbers, TPR), else from name rules that know CHARMM, AMBER and
  GROMACS names (a protein ``CA`` is carbon, never calcium; ``HG`` hydrogen, not mercury);
  deuterium is typed as hydrogen;
* **names as written** (``HSD``, ``OT1``, ``HN``): contact labels use them.
  :func:`geometry_topology` gives the copy with standard names (``HSD`` -> ``HIS``,
  ``OT1`` -> ``O``) that DSSP, dihedrals and SASA need.

Formats: PDB/ENT and mmCIF/PDBx (first model), GRO (first frame), PSF (CHARMM/NAMD/X-PLOR,
standard and EXT, insertion codes), AMBER PRMTOP, GROMACS TPR, PQR, PDBQT, CHARMM CRD and
Desmond DMS (with MDAnalysis), and everything else MDTraj reads (H5, MOL2 ...), each also
compressed (.gz, .bz2, .xz). The readers are in :mod:`seqdance.features.formats`
(:func:`~seqdance.features.formats.registry.read_atom_table` picks one); a file that cannot
be parsed gives one :class:`~seqdance.errors.InputFileError` line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import mdtraj as md
import numpy as np

from seqdance.features.elements import ION_ELEMENTS, WATER
from seqdance.features.formats.common import AtomTable
from seqdance.features.formats.registry import read_atom_table
from seqdance.features.pbc import minimum_image_distance
from seqdance.residues import standard_residue

PEPTIDE_BREAK_NM = 0.2  # C(i)-N(i+1) longer than this: not bonded
BEAD_BREAK_NM = 0.6  # one-bead residues: consecutive beads farther apart than this
# C-terminal oxygens: CHARMM OT1/OT2, GROMACS OC1/OC2, AMBER O/OXT
_TERMINAL_O = {
    "OT1": "O",
    "OC1": "O",
    "O1": "O",
    "OT2": "OXT",
    "OC2": "OXT",
    "O2": "OXT",
    "OT": "OXT",
}
_BACKBONE = ("N", "CA", "C")


class ResidueNumber(int):
    """A residue number that remembers its insertion code: ``str(ResidueNumber(163, 'A'))``
    is ``'163A'``; as an ``int`` it is 163 (GetContacts' residue-number filters)."""

    icode: str

    def __new__(cls, number: int, icode: str = "") -> ResidueNumber:
        obj = int.__new__(cls, number)
        obj.icode = (icode or "").strip()
        return obj

    def __str__(self) -> str:
        return f"{int(self)}{self.icode}"

    def __repr__(self) -> str:
        return f"ResidueNumber({int(self)}, {self.icode!r})" if self.icode else str(int(self))

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(int(self), spec)

    def __reduce__(self):
        return (ResidueNumber, (int(self), self.icode))


@dataclass
class PreparedTopology:
    """A topology made consistent (see the module docstring)."""

    topology: object  # mdtraj.Topology, names as written
    xyz: np.ndarray | None  # (n_atoms, 3) nm, the file's own coordinates, if any
    path: Path
    notes: list[str] = field(default_factory=list)
    box: np.ndarray | None = None  # (3, 3) box of the file's own coordinates, nm

    @property
    def n_atoms(self) -> int:
        return self.topology.n_atoms


# ----------------------------------------------------------------------------- elements


def element_from_name(name: str, resname: str, n_atoms_in_residue: int = 2) -> str:
    """Element symbol from an atom name, knowing CHARMM/AMBER/GROMACS conventions.

    Polymer residues (any force-field name of the 20 amino acids) and water take the first
    letter (``CA`` carbon, ``HG`` hydrogen, ``OT1`` oxygen, ``1HB`` hydrogen); single-atom
    residues are ions named by residue or atom name; ``D`` is deuterium, typed as ``H``.
    Returns ``""`` for virtual sites and names it cannot type.
    """
    name = name.strip().upper()
    resname = resname.strip().upper()
    if n_atoms_in_residue == 1:
        for key in (resname, name):
            if key in ION_ELEMENTS:
                return ION_ELEMENTS[key]
    if resname == "MSE" and name == "SE":
        return "Se"
    letters = name.lstrip("0123456789")
    if not letters:
        return ""
    first = letters[0]
    if resname in WATER and (first == "M" or name.startswith(("EP", "LP"))):
        return ""  # TIP4P/TIP5P virtual sites
    if first == "D":
        return "H"
    if first in "HCNOSP":
        return first
    if first in "FIB" and standard_residue(resname) is None:
        return first
    return ""


def _settle_elements(table: AtomTable, notes: list[str], path: Path) -> list[str]:
    """Final element symbol of every atom: the file's typing, else the name rules."""
    counts: dict[tuple, int] = {}
    for i in range(len(table)):
        key = (table.chain_ids[i], table.segids[i], table.resnums[i], table.icodes[i])
        counts[key] = counts.get(key, 0) + 1
    out, by_name, deuterium = [], 0, 0
    for i, given in enumerate(table.elements):
        symbol = (given or "").strip()
        if symbol.upper() == "D":
            symbol, deuterium = "H", deuterium + 1
        if not symbol:
            key = (table.chain_ids[i], table.segids[i], table.resnums[i], table.icodes[i])
            symbol = element_from_name(table.names[i], table.resnames[i], counts[key])
            if symbol:
                by_name += 1
        out.append(symbol.capitalize() if symbol else "")
    if by_name:
        notes.append(
            f"{path.name}: elements of {by_name:,} atoms typed from their names "
            "(no element typing in the file)"
        )
    if deuterium:
        notes.append(f"{path.name}: {deuterium:,} deuterium atoms typed as hydrogen")
    return out


# ----------------------------------------------------------------------------- chains


def _residue_slices(table: AtomTable) -> list[tuple[int, int]]:
    """(start, stop) atom ranges of residues: a new residue when number, insertion code,
    name, chain or segment changes (or a TER record intervenes)."""
    out, start = [], 0
    for i in range(1, len(table) + 1):
        if (
            i == len(table)
            or (
                table.resnums[i],
                table.icodes[i],
                table.resnames[i],
                table.chain_ids[i],
                table.segids[i],
            )
            != (
                table.resnums[i - 1],
                table.icodes[i - 1],
                table.resnames[i - 1],
                table.chain_ids[i - 1],
                table.segids[i - 1],
            )
            or (table.new_chain is not None and table.new_chain[i])
        ):
            out.append((start, i))
            start = i
    return out


def is_polymer(names: list[str], resname: str) -> bool:
    return standard_residue(resname) is not None or set(_BACKBONE) <= set(names)


def _chain_breaks(table: AtomTable, residues, polymer, xyz) -> list[bool]:
    """Whether each residue starts a new chain (no chain or segment IDs to go by)."""
    starts = [True]
    for k in range(1, len(residues)):
        (s0, e0), (s1, e1) = residues[k - 1], residues[k]
        if polymer[k] != polymer[k - 1] or (table.new_chain is not None and table.new_chain[s1]):
            starts.append(True)  # a TER record, or polymer next to other residues
            continue
        if not polymer[k]:
            starts.append(False)  # a run of water, ions or lipids: one chain
            continue
        if xyz is None:
            starts.append(table.resnums[s1] < table.resnums[s0])
            continue
        names0 = {table.names[i]: i for i in range(s0, e0)}
        names1 = {table.names[i]: i for i in range(s1, e1)}
        if "C" in names0 and "N" in names1:
            d = minimum_image_distance(xyz[names0["C"]], xyz[names1["N"]], table.box)
            starts.append(bool(d > PEPTIDE_BREAK_NM))
        elif e0 - s0 == 1 and e1 - s1 == 1:  # one bead per residue (coarse-grained)
            starts.append(bool(minimum_image_distance(xyz[s0], xyz[s1], table.box) > BEAD_BREAK_NM))
        else:
            starts.append(table.resnums[s1] < table.resnums[s0])
    return starts


def _letters(k: int) -> str:
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(65 + r) + out
    return out


def unique_chain_labels(table, residues, starts, labels, polymer, notes, path) -> list[str]:
    """Chain label of each residue, made unique where the file repeats one.

    A polymer chain that reuses the label of an earlier polymer chain *and* one of its
    residue numbers (chain letters wrapped after Z in an assembly of more than 26 chains,
    copies told apart only by TER records or segment IDs) is labelled ``L_2``, or ``L_3``
    ... : the first of ``L``, ``L_2``, ``L_3`` none of whose chains has any of its residue
    numbers. A chain continued after a TER record with new numbers keeps its label;
    non-polymer chains (water, ions, ligands) keep theirs. A note says what was renamed.
    """
    runs, k = [], -1  # runs[k] = residue indices of chain k
    for r, s in enumerate(starts):
        if s or k < 0:
            runs.append([])
            k += 1
        runs[k].append(r)
    taken: dict[str, set] = {}  # final label -> residue numbers of its polymer chains
    out = list(labels)
    renamed: dict[str, int] = {}
    for run in runs:
        if not any(polymer[r] for r in run):
            continue
        base = labels[run[0]]
        numbers = {(table.resnums[residues[r][0]], table.icodes[residues[r][0]]) for r in run}
        label, n = base, 1
        while label in taken and not taken[label].isdisjoint(numbers):
            n += 1
            label = f"{base}_{n}"
        taken.setdefault(label, set()).update(numbers)
        if label != base:
            renamed[base] = max(renamed.get(base, 0), n)
            for r in run:
                out[r] = label
    if renamed:
        n_poly = sum(1 for run in runs if any(polymer[r] for r in run))
        listed = ", ".join(
            f"{b} -> {b}_2" + (f"..{b}_{n}" if n > 2 else "") for b, n in list(renamed.items())[:6]
        )
        notes.append(
            f"{path.name}: {n_poly} chains; chain labels repeat with overlapping residue "
            f"numbers, so later copies get a suffix, the first keeps the file's label ("
            f"{listed}{' ...' if len(renamed) > 6 else ''})"
        )
    return out


def build_topology(
    table: AtomTable, path: Path, reference_xyz: np.ndarray | None = None
) -> PreparedTopology:
    """MDTraj topology from an atom table: chains, labels, insertion codes, elements, bonds."""
    notes: list[str] = []
    elements = _settle_elements(table, notes, path)
    residues = _residue_slices(table)
    polymer = [is_polymer(table.names[s:e], table.resnames[s]) for s, e in residues]
    xyz = table.xyz if table.xyz is not None else reference_xyz

    has_chain_ids = any(table.chain_ids)
    segments = [table.segids[s] for s, _ in residues]
    if has_chain_ids:
        starts = [True] + [
            table.chain_ids[residues[k][0]] != table.chain_ids[residues[k - 1][0]]
            or (table.new_chain is not None and table.new_chain[residues[k][0]])
            or ("" != segments[k] != segments[k - 1] != "")
            for k in range(1, len(residues))
        ]
        labels = [table.chain_ids[s] or "X" for s, _ in residues]
    elif any(segments):
        starts = [True] + [segments[k] != segments[k - 1] for k in range(1, len(residues))]
        distinct = list(dict.fromkeys(seg for seg, p in zip(segments, polymer, strict=True) if p))
        several = len(distinct) > 1
        labels = [(seg or "X") if several else "X" for seg in segments]
        if several:
            notes.append(
                f"{path.name}: no chain IDs; chains from segment IDs {', '.join(distinct[:8])}"
                + (" ..." if len(distinct) > 8 else "")
            )
    else:
        starts = _chain_breaks(table, residues, polymer, xyz)
        chain_of, k = [], -1
        for s in starts:
            k += s
            chain_of.append(k)
        poly_chains = list(dict.fromkeys(c for c, p in zip(chain_of, polymer, strict=True) if p))
        name_of = (
            {c: _letters(i) for i, c in enumerate(poly_chains)} if len(poly_chains) > 1 else {}
        )
        labels = [name_of.get(c, "X") for c in chain_of]
        if len(poly_chains) > 1:
            sizes = [
                sum(1 for c, p in zip(chain_of, polymer, strict=True) if p and c == pc)
                for pc in poly_chains
            ]
            listed = ", ".join(
                f"{name_of[c]} {n} residues" for c, n in zip(poly_chains[:8], sizes, strict=False)
            )
            notes.append(
                f"{path.name}: no chain or segment IDs; {len(poly_chains)} chains found at chain "
                f"breaks ({listed})"
            )

    labels = unique_chain_labels(table, residues, starts, labels, polymer, notes, path)
    top = md.Topology()
    chain = None
    for k, (s, e) in enumerate(residues):
        if starts[k] or chain is None:
            chain = top.add_chain(labels[k])
        residue = top.add_residue(
            table.resnames[s],
            chain,
            ResidueNumber(table.resnums[s], table.icodes[s]),
            table.segids[s],
        )
        for i in range(s, e):
            symbol = elements[i]
            element = None
            if symbol:
                try:
                    element = md.element.get_by_symbol(symbol)
                except KeyError:
                    element = None
            top.add_atom(table.names[i], element or md.element.virtual, residue)
    bonds = set()
    if table.bonds is not None and len(table.bonds):
        for a, b in table.bonds:
            if 0 <= a < len(table) and 0 <= b < len(table) and a != b:
                bonds.add((min(a, b), max(a, b)))
    geometry = geometry_topology(top)
    geometry.create_standard_bonds()
    for a, b in geometry.bonds:
        bonds.add((min(a.index, b.index), max(a.index, b.index)))
    atoms = list(top.atoms)
    for a, b in sorted(bonds):
        top.add_bond(atoms[a], atoms[b])
    return PreparedTopology(topology=top, xyz=table.xyz, path=path, notes=notes, box=table.box)


def geometry_topology(topology):
    """Copy of ``topology`` with standard residue names and C-terminal oxygens named ``O``
    and ``OXT``, as MDTraj's DSSP and dihedral code expect. Same atoms, same order."""
    out = md.Topology()
    for chain in topology.chains:
        new_chain = out.add_chain(chain.chain_id)
        for residue in chain.residues:
            parent = standard_residue(residue.name)
            new_res = out.add_residue(
                parent or residue.name, new_chain, residue.resSeq, residue.segment_id
            )
            names = {a.name for a in residue.atoms}
            for atom in residue.atoms:
                name = atom.name
                if parent is not None and name in _TERMINAL_O and _TERMINAL_O[name] not in names:
                    name = _TERMINAL_O[name]
                if parent is not None and name == "HN":
                    name = "H"
                out.add_atom(name, atom.element, new_res, serial=atom.serial)
    atoms = list(out.atoms)
    for a, b in topology.bonds:
        out.add_bond(atoms[a.index], atoms[b.index])
    return out


def load_topology(
    path: str | os.PathLike, reference_xyz: np.ndarray | None = None
) -> PreparedTopology:
    """Read and prepare a topology file (see the module docstring).

    ``reference_xyz`` (n_atoms, 3) nm: coordinates to find chain breaks with when the file
    has none of its own (PSF, PRMTOP) and no chain or segment IDs.
    """
    path = Path(path)
    table = read_atom_table(path)
    return build_topology(table, path, reference_xyz)


def load_named_topology(path: str | os.PathLike) -> md.Topology:
    """The MDTraj topology of :func:`load_topology`: atom and residue names exactly as
    written in the file (``HSD``, ``OT1``), chains, insertion codes and elements settled."""
    return load_topology(path).topology


def needs_reference(path: str | os.PathLike) -> bool:
    """Whether :func:`load_topology` would split chains better with frame coordinates."""
    table = read_atom_table(path)
    return table.xyz is None and not any(table.chain_ids) and not any(table.segids)


def subset(prepared: PreparedTopology, atoms: np.ndarray):
    """``prepared.topology.subset(atoms)`` (chain labels and insertion codes survive)."""
    return prepared.topology.subset(np.asarray(atoms))


def unbroken_dihedrals(indices: np.ndarray, xyz: np.ndarray, pairs: tuple[int, int]) -> np.ndarray:
    """Mask of dihedrals whose peptide bond (atoms ``pairs`` of each row, C and N) is real.

    Parameters
    ----------
    indices : np.ndarray, shape=(n_dihedrals, 4)
    xyz : np.ndarray, shape=(n_atoms, 3), nm (a whole, unbroken frame)
    pairs : the two columns holding C and N (phi: (0, 1); psi: (2, 3))
    """
    if len(indices) == 0:
        return np.zeros(0, dtype=bool)
    a, b = indices[:, pairs[0]], indices[:, pairs[1]]
    d = np.linalg.norm(xyz[a] - xyz[b], axis=1)
    return d <= PEPTIDE_BREAK_NM
