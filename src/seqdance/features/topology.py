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
standard and EXT, insertion codes), and everything else MDTraj reads (PRMTOP, H5, MOL2 ...).
GROMACS ``.tpr`` files are read with MDAnalysis when it is installed (``pip install
MDAnalysis``; an optional dependency). A file that cannot be parsed gives one
:class:`~seqdance.errors.InputFileError` line.
"""

from __future__ import annotations

import gzip
import io
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.errors import one_line as _one_line
from seqdance.residues import standard_residue

PEPTIDE_BREAK_NM = 0.2  # C(i)-N(i+1) longer than this: not bonded
BEAD_BREAK_NM = 0.6  # one-bead residues: consecutive beads farther apart than this
WATER = frozenset(
    {"HOH", "WAT", "SOL", "TIP3", "TIP4", "TIP5", "TIP3P", "SPC", "T3P", "T4P", "TP3", "H2O", "DOD"}
)
ION_ELEMENTS = {
    "NA": "Na",
    "SOD": "Na",
    "NA+": "Na",
    "CL": "Cl",
    "CLA": "Cl",
    "CL-": "Cl",
    "K": "K",
    "POT": "K",
    "K+": "K",
    "CA": "Ca",
    "CAL": "Ca",
    "CA2+": "Ca",
    "MG": "Mg",
    "MG2+": "Mg",
    "ZN": "Zn",
    "ZN2": "Zn",
    "ZN2+": "Zn",
    "CS": "Cs",
    "CES": "Cs",
    "LI": "Li",
    "LIT": "Li",
    "RB": "Rb",
    "FE": "Fe",
    "FE2": "Fe",
    "CU": "Cu",
    "MN": "Mn",
    "CD": "Cd",
    "NI": "Ni",
    "BR": "Br",
    "IOD": "I",
    "F": "F",
}
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
_MASSES = (
    ("H", 1.008),
    ("H", 2.014),
    ("C", 12.011),
    ("N", 14.007),
    ("O", 15.999),
    ("S", 32.06),
    ("P", 30.974),
    ("Na", 22.99),
    ("Cl", 35.45),
    ("K", 39.098),
    ("Ca", 40.078),
    ("Mg", 24.305),
    ("Zn", 65.38),
    ("Fe", 55.845),
    ("Cu", 63.546),
    ("Cs", 132.905),
    ("Li", 6.94),
    ("F", 18.998),
    ("Br", 79.904),
    ("I", 126.904),
    ("Mn", 54.938),
    ("Se", 78.971),
    ("Rb", 85.468),
)


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
class AtomTable:
    """Per-atom records of a topology file, before chains and elements are settled."""

    names: list[str]
    resnames: list[str]
    resnums: list[int]
    icodes: list[str]
    chain_ids: list[str]
    segids: list[str]
    elements: list[str]  # "" where the file does not say
    xyz: np.ndarray | None = None  # (n_atoms, 3) nm
    bonds: np.ndarray | None = None  # (n_bonds, 2)
    new_chain: list[bool] | None = None  # TER records: a chain starts at this atom
    typed_by: str = ""  # what typed the elements ("element column", "masses" ...)
    box: np.ndarray | None = None  # (3, 3) box vectors of the file's coordinates, nm

    def __len__(self) -> int:
        return len(self.names)


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


def _element_from_mass(mass: float) -> str:
    symbol, ref = min(_MASSES, key=lambda item: abs(item[1] - mass))
    return symbol if abs(ref - mass) < 0.1 else ""


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


# ----------------------------------------------------------------------------- readers


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), errors="replace")
    return open(path, errors="replace")


def _int_field(text: str) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:  # hybrid-36 residue numbers of very large PDB files
            return int(text, 36) - 10 * 36**3 + 10000 if text else 0
        except ValueError:
            raise ValueError(f"residue number {text!r}") from None


def parse_pdb_atoms(lines, *, first_model_only: bool = True) -> AtomTable:
    """ATOM/HETATM records of the first model of PDB text (first alternate location kept)."""
    names, resnames, resnums, icodes, chains, segids, elements, xyz = [], [], [], [], [], [], [], []
    new_chain: list[bool] = []
    serial_index: dict[int, int] = {}
    conect: list[tuple[int, int]] = []
    seen: set[tuple] = set()
    pending_ter = False
    box = None
    for line in lines:
        record = line[:6]
        if record == "CRYST1" and not names:
            box = _cryst1_box(line)
        elif record in ("ATOM  ", "HETATM"):
            altloc = line[16:17]
            key = (line[21:22], line[22:27], line[17:21], line[72:76], line[12:16])
            if altloc not in (" ", "") and key in seen:
                continue  # another alternate location of an atom already read
            seen.add(key)
            names.append(line[12:16].strip())
            resnames.append(line[17:21].strip())
            resnums.append(_int_field(line[22:26]))
            icodes.append(line[26:27].strip())
            chains.append(line[21:22].strip())
            segids.append(line[72:76].strip())
            elements.append(line[76:78].strip())
            xyz.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
            new_chain.append(pending_ter)
            pending_ter = False
            try:
                serial_index[int(line[6:11])] = len(names) - 1
            except ValueError:
                pass
        elif record.startswith("TER"):
            pending_ter = True
        elif record.startswith("ENDMDL") and first_model_only and names:
            break
        elif record.startswith("CONECT"):
            fields = [line[i : i + 5] for i in range(6, 31, 5)]
            try:
                values = [int(f) for f in fields if f.strip()]
            except ValueError:
                continue
            conect.extend((values[0], other) for other in values[1:])
    bonds = [
        (serial_index[a], serial_index[b])
        for a, b in conect
        if a in serial_index and b in serial_index
    ]
    known = {"H", "C", "N", "O", "S", "P", "D"} | {e.upper() for e in ION_ELEMENTS.values()}
    for i, e in enumerate(elements):  # junk in the element columns is no typing
        if e and (not e.isalpha() or e.upper() not in known | _MORE_ELEMENTS):
            elements[i] = ""
    return AtomTable(
        names,
        resnames,
        resnums,
        icodes,
        chains,
        segids,
        elements,
        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3) / 10.0,
        bonds=np.asarray(bonds, dtype=np.int64).reshape(-1, 2),
        new_chain=new_chain,
        typed_by="element column",
        box=box,
    )


_MORE_ELEMENTS = {
    "SE",
    "F",
    "B",
    "I",
    "BR",
    "CO",
    "HG",
    "CD",
    "NI",
    "MN",
    "AL",
    "SI",
    "AU",
    "AG",
    "PT",
}


def _read_pdb(path: Path) -> AtomTable:
    with _open_text(path) as fh:
        return parse_pdb_atoms(fh)


def _cif_tokens(lines):
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "'" in line or '"' in line:
            yield from shlex.split(line, posix=True)
        else:
            yield from stripped.split()


def _read_cif(path: Path) -> AtomTable:
    """``_atom_site`` of an mmCIF/PDBx file: first model, first alternate location."""
    with _open_text(path) as fh:
        text = fh.read().splitlines()
    columns: list[str] = []
    body: list[str] = []
    cell: dict[str, float] = {}
    i = 0
    while i < len(text):
        line = text[i].strip()
        if line.startswith("_cell.length_"):
            parts = line.split()
            try:
                cell[parts[0]] = float(parts[1])
            except (IndexError, ValueError):
                pass
        if line == "loop_" and i + 1 < len(text) and text[i + 1].strip().startswith("_atom_site."):
            i += 1
            while i < len(text) and text[i].strip().startswith("_atom_site."):
                columns.append(text[i].strip().split(".", 1)[1])
                i += 1
            while i < len(text):
                row = text[i].strip()
                if row.startswith(("_", "loop_", "#", "data_")):
                    break
                body.append(text[i])
                i += 1
            break
        i += 1
    if not columns:
        raise ValueError("no _atom_site loop")
    tokens = list(_cif_tokens(body))
    width = len(columns)
    if len(tokens) % width:
        raise ValueError("_atom_site rows do not have one value per column")
    col = {name: k for k, name in enumerate(columns)}

    def pick(row, *keys, default=""):
        for key in keys:
            if key in col:
                value = row[col[key]]
                return "" if value in ("?", ".") else value
        return default

    table = AtomTable([], [], [], [], [], [], [], typed_by="type_symbol")
    xyz = []
    first_model = None
    seen: set[tuple] = set()
    for start in range(0, len(tokens), width):
        row = tokens[start : start + width]
        model = pick(row, "pdbx_PDB_model_num")
        if first_model is None:
            first_model = model
        if model != first_model:
            break
        name = pick(row, "auth_atom_id", "label_atom_id")
        chain = pick(row, "auth_asym_id", "label_asym_id")
        resnum = pick(row, "auth_seq_id", "label_seq_id") or "0"
        icode = pick(row, "pdbx_PDB_ins_code")
        resname = pick(row, "auth_comp_id", "label_comp_id")
        key = (chain, resnum, icode, resname, name)
        if pick(row, "label_alt_id") and key in seen:
            continue
        seen.add(key)
        table.names.append(name)
        table.resnames.append(resname)
        table.resnums.append(int(resnum))
        table.icodes.append(icode)
        table.chain_ids.append(chain)
        table.segids.append("")
        table.elements.append(pick(row, "type_symbol"))
        xyz.append([float(pick(row, f"Cartn_{a}")) for a in "xyz"])
    table.xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) / 10.0
    return table


def _read_gro(path: Path) -> AtomTable:
    """First frame of a GRO file, names exactly as written."""
    from seqdance.features.trajectory import parse_gro_frame

    with _open_text(path) as fh:
        frame = parse_gro_frame(fh, with_names=True)
    if frame is None:
        raise ValueError("no frame")
    resnums, resnames, names, xyz = frame.resnums, frame.resnames, frame.names, frame.xyz
    # GRO residue numbers wrap at 99999; a wrap is a new residue, not a repeat
    n = len(names)
    return AtomTable(
        names,
        resnames,
        resnums,
        [""] * n,
        [""] * n,
        [""] * n,
        [""] * n,
        xyz=xyz.astype(np.float64),
        box=frame.box,
    )


def _read_psf(path: Path) -> AtomTable:
    """CHARMM/NAMD/X-PLOR PSF: atoms (residue numbers may carry an insertion code) and bonds."""
    with _open_text(path) as fh:
        lines = fh.read().splitlines()
    if not lines or not lines[0].startswith("PSF"):
        raise ValueError("first line is not 'PSF'")
    k = next((i for i, line in enumerate(lines) if "!NATOM" in line), None)
    if k is None:
        raise ValueError("no !NATOM section")
    n_atoms = int(lines[k].split()[0])
    table = AtomTable([], [], [], [], [], [], [], typed_by="masses")
    masses = []
    for line in lines[k + 1 : k + 1 + n_atoms]:
        fields = line.split()
        if len(fields) < 8:
            raise ValueError(f"atom line {line.strip()!r}")
        resid = fields[2]
        digits = resid.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        table.segids.append(fields[1])
        table.resnums.append(int(digits))
        table.icodes.append(resid[len(digits) :])
        table.resnames.append(fields[3])
        table.names.append(fields[4])
        table.chain_ids.append("")
        masses.append(float(fields[7]))
    if len(table) != n_atoms:
        raise ValueError(f"!NATOM says {n_atoms} atoms, the file lists {len(table)}")
    table.elements = [_element_from_mass(m) for m in masses]
    bonds: list[int] = []
    k = next((i for i, line in enumerate(lines) if "!NBOND" in line), None)
    if k is not None:
        n_bonds = int(lines[k].split()[0])
        i = k + 1
        while len(bonds) < 2 * n_bonds and i < len(lines) and lines[i].strip():
            bonds.extend(int(v) - 1 for v in lines[i].split())
            i += 1
    table.bonds = np.asarray(bonds[: 2 * (len(bonds) // 2)], dtype=np.int64).reshape(-1, 2)
    return table


def _read_tpr(path: Path) -> AtomTable:
    try:
        import MDAnalysis as mda
    except ImportError:
        raise InputFileError(
            f"{path}: GROMACS .tpr topologies need MDAnalysis (pip install MDAnalysis); "
            "or give a PDB/GRO of the same system"
        ) from None
    universe = mda.Universe(str(path))
    atoms = universe.atoms
    n = len(atoms)
    segids = [str(s) for s in atoms.segids]
    try:
        chains = [str(c) for c in atoms.chainIDs]
    except AttributeError:
        chains = [""] * n
    table = AtomTable(
        [str(a) for a in atoms.names],
        [str(r) for r in atoms.resnames],
        [int(r) for r in atoms.resids],
        [""] * n,
        chains,
        segids,
        [_element_from_mass(float(m)) for m in atoms.masses],
        bonds=np.asarray(universe.bonds.indices, dtype=np.int64).reshape(-1, 2)
        if hasattr(universe, "bonds")
        else None,
        typed_by="masses",
    )
    if universe.trajectory.n_frames:
        table.xyz = np.asarray(universe.atoms.positions, dtype=np.float64) / 10.0
    return table


def _read_with_mdtraj(path: Path) -> AtomTable:
    import mdtraj as md

    top = md.load_topology(str(path))
    table = AtomTable([], [], [], [], [], [], [], typed_by="topology typing")
    for atom in top.atoms:
        residue = atom.residue
        table.names.append(atom.name)
        table.resnames.append(residue.name)
        table.resnums.append(int(residue.resSeq))
        table.icodes.append("")
        table.chain_ids.append((getattr(residue.chain, "chain_id", None) or "").strip())
        table.segids.append((getattr(residue, "segment_id", "") or "").strip())
        symbol = getattr(atom.element, "symbol", "") if atom.element is not None else ""
        table.elements.append("" if symbol in ("VS", None) else symbol)
    table.bonds = np.array([(a.index, b.index) for a, b in top.bonds], dtype=np.int64).reshape(
        -1, 2
    )
    if path.suffix.lower() in (".h5", ".mol2"):
        frame = md.load_frame(str(path), 0)
        table.xyz = frame.xyz[0].astype(np.float64)
    return table


def read_atom_table(path: str | os.PathLike) -> AtomTable:
    """Per-atom records of any supported topology file (one-line error if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such topology file")
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith((".pdb", ".ent", ".pqr")):
            table = _read_pdb(path)
        elif name.endswith((".cif", ".mmcif", ".pdbx")):
            table = _read_cif(path)
        elif name.endswith(".gro"):
            table = _read_gro(path)
        elif name.endswith((".psf", ".xpsf")):
            table = _read_psf(path)
        elif name.endswith(".tpr"):
            table = _read_tpr(path)
        else:
            table = _read_with_mdtraj(path)
    except InputFileError:
        raise
    except Exception as exc:  # parsers raise many types; all mean an unreadable topology
        raise InputFileError(f"{path}: cannot read topology: {_one_line(exc)}") from None
    if len(table) == 0:
        raise InputFileError(f"{path}: cannot read topology: no atoms")
    return table


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


def _is_polymer(names: list[str], resname: str) -> bool:
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
            d = _distance(xyz[names0["C"]], xyz[names1["N"]], table.box)
            starts.append(bool(d > PEPTIDE_BREAK_NM))
        elif e0 - s0 == 1 and e1 - s1 == 1:  # one bead per residue (coarse-grained)
            starts.append(bool(_distance(xyz[s0], xyz[s1], table.box) > BEAD_BREAK_NM))
        else:
            starts.append(table.resnums[s1] < table.resnums[s0])
    return starts


def _distance(a: np.ndarray, b: np.ndarray, box: np.ndarray | None) -> float:
    """Distance between two points, by the minimum image when a usable box is given."""
    from seqdance.features.trajectory import box_usable

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if box_usable(box):
        box = np.asarray(box, dtype=np.float64)
        d = d - np.round(d @ np.linalg.inv(box)) @ box
    return float(np.linalg.norm(d))


def _cryst1_box(line: str) -> np.ndarray | None:
    """Box vectors (nm) of a PDB CRYST1 record."""
    try:
        a, b, c = (float(line[k : k + 9]) / 10.0 for k in (6, 15, 24))
        alpha, beta, gamma = (float(line[k : k + 7]) for k in (33, 40, 47))
    except ValueError:
        return None
    from mdtraj.utils import lengths_and_angles_to_box_vectors

    va, vb, vc = lengths_and_angles_to_box_vectors(a, b, c, alpha, beta, gamma)
    return np.array([va, vb, vc], dtype=np.float64)


def _letters(k: int) -> str:
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(65 + r) + out
    return out


def build_topology(
    table: AtomTable, path: Path, reference_xyz: np.ndarray | None = None
) -> PreparedTopology:
    """MDTraj topology from an atom table: chains, labels, insertion codes, elements, bonds."""
    import mdtraj as md

    notes: list[str] = []
    elements = _settle_elements(table, notes, path)
    residues = _residue_slices(table)
    polymer = [_is_polymer(table.names[s:e], table.resnames[s]) for s, e in residues]
    xyz = table.xyz if table.xyz is not None else reference_xyz

    has_chain_ids = any(table.chain_ids)
    segments = [table.segids[s] for s, _ in residues]
    if has_chain_ids:
        starts = [True] + [
            table.chain_ids[residues[k][0]] != table.chain_ids[residues[k - 1][0]]
            or (table.new_chain is not None and table.new_chain[residues[k][0]])
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
    import mdtraj as md

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
