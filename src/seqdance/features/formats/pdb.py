"""PDB/ENT/PQR files: the topology (first model) and the frames (every model).

:func:`parse_pdb_atoms` reads ATOM/HETATM records of the first model (first alternate
location kept, CONECT bonds, TER records, the CRYST1 box). As a trajectory a PDB file is
read model by model (NMR bundles, PED ensembles): models are matched to the topology atom
by atom (chain, residue number and insertion code, residue name, atom name), not by
position, so models may list atoms in another order or lack some. PED ensembles do:
hydrogens present in some models only, side chains cut short, terminal residues missing.
What is done: the atoms present in **every** model are used and the others dropped from all
frames; a note says how many atoms (and which residues lost atoms) were dropped. A residue
that loses its C-alpha this way gives no row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.elements import ELEMENT_SYMBOLS
from seqdance.features.formats.common import AtomTable, Block, FramePart, cryst1_box
from seqdance.features.formats.compressed import open_text

# ----------------------------------------------------------------------------- topology


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
            box = cryst1_box(line)
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
    for i, e in enumerate(elements):  # junk in the element columns is no typing
        if e and (not e.isalpha() or e.upper() not in ELEMENT_SYMBOLS):
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


def read_pdb_table(path: Path) -> AtomTable:
    """Atoms of the first model of a PDB file (gzipped or not)."""
    with open_text(path) as fh:
        return parse_pdb_atoms(fh)


# ----------------------------------------------------------------------------- frames


def _key(line: str) -> tuple:
    return (
        line[21:22].strip(),
        line[22:27].strip(),
        line[17:21].strip(),
        line[72:76].strip(),
        line[12:16].strip(),
    )


def _model_keys(lines: list[str]) -> list[tuple]:
    """Key of each atom line of one model: :func:`_key` and which copy of its chain it is.

    A chain run starts at a TER record or where the chain or segment ID changes; the copy
    number counts earlier runs with the same chain and segment IDs, so an assembly whose
    chain letters wrap (A .. Z, A ...) matches atom by atom between models."""
    keys, runs, last, copy = [], {}, None, 0
    for line in lines:
        if line.startswith("TER"):
            last = None
            continue
        key = _key(line)
        ident = (key[0], key[3])
        if ident != last:
            copy = runs.get(ident, -1) + 1
            runs[ident] = copy
            last = ident
        keys.append((copy, *key))
    return keys


def _models(path: Path) -> Iterator[list[str]]:
    """ATOM/HETATM (and TER) lines of each model (a file without MODEL records is one model)."""
    current: list[str] = []
    with open_text(path) as fh:
        for line in fh:
            record = line[:6]
            if record in ("ATOM  ", "HETATM") or record.startswith("TER"):
                current.append(line)
            elif record.startswith("ENDMDL") or (record.startswith("MODEL") and current):
                if any(not x.startswith("TER") for x in current):
                    yield current
                current = []
    if any(not x.startswith("TER") for x in current):
        yield current


def _first_cryst1_box(path: Path) -> np.ndarray | None:
    """Box of the first CRYST1 record before any atom, if any."""
    with open_text(path) as fh:
        for line in fh:
            if line.startswith("CRYST1"):
                return cryst1_box(line)
            if line.startswith(("ATOM", "HETATM")):
                return None
    return None


def open_pdb_frames(path: Path, prepared, label: str) -> FramePart:
    """The models of a PDB file as a trajectory of the ``prepared`` topology's atoms."""
    with open_text(path) as fh:
        table = parse_pdb_atoms(fh)
    if len(table) != prepared.n_atoms:
        raise InputFileError(
            f"{path}: first model has {len(table)} atoms, the topology {prepared.n_atoms}"
        )
    keys = [
        (
            table.chain_ids[i],
            f"{table.resnums[i]}{table.icodes[i]}",
            table.resnames[i],
            table.segids[i],
            table.names[i],
        )
        for i in range(len(table))
    ]
    copies, runs, last = [], {}, None  # which copy of its chain each atom is (as _model_keys)
    for i in range(len(table)):
        ident = (table.chain_ids[i], table.segids[i])
        if ident != last or table.new_chain[i]:
            runs[ident] = runs.get(ident, -1) + 1
            last = ident
        copies.append(runs[ident])
    keys = [(k, c, r.strip(), n, s, a) for k, (c, r, n, s, a) in zip(copies, keys, strict=True)]
    index = {k: i for i, k in enumerate(keys)}
    present = np.zeros(len(keys), dtype=np.int64)
    n_models = 0
    for lines in _models(path):
        n_models += 1
        seen = {index[k] for k in _model_keys(lines) if k in index}
        present[list(seen)] += 1
    available = np.flatnonzero(present == n_models)
    notes = []
    if len(available) < len(keys):
        lost = np.flatnonzero(present < n_models)
        residues = sorted({f"{keys[i][1] or 'X'}:{keys[i][3]}:{keys[i][2]}" for i in lost})
        notes.append(
            f"{path}: models differ in their atoms: {len(lost):,} atoms missing from some of the "
            f"{n_models} models were dropped from every model ({len(residues)} residues affected: "
            f"{', '.join(residues[:6])}{' ...' if len(residues) > 6 else ''})"
        )
    box = _first_cryst1_box(path)

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        frames = []
        for lines in _models(path):
            xyz = np.full((len(keys), 3), np.nan, dtype=np.float32)
            atom_lines = [line for line in lines if not line.startswith("TER")]
            for line, key in zip(atom_lines, _model_keys(lines), strict=True):
                i = index.get(key)
                if i is not None and np.isnan(xyz[i, 0]):
                    xyz[i] = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
            frames.append(xyz[atoms] / 10.0)
            if len(frames) == chunk:
                yield _block(frames)
                frames = []
        if frames:
            yield _block(frames)

    def _block(frames):
        xyz = np.asarray(frames, dtype=np.float32)
        if np.isnan(xyz).any():
            raise InputFileError(f"{path}: an atom of the selection is missing from a model")
        boxes = None if box is None else np.repeat(box[None], len(xyz), axis=0)
        return Block(xyz, boxes)

    return FramePart(label, n_models, read, notes=notes, available=available)
