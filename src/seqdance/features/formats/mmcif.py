"""mmCIF/PDBx files: the ``_atom_site`` loop of the first model, as topology and as one frame.

Chains are labelled by ``auth_asym_id`` (else ``label_asym_id``); a new chain starts
wherever ``label_asym_id`` changes, so copies whose author chain IDs repeat stay apart.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.formats.common import AtomTable, Block, FramePart, read_table
from seqdance.features.formats.compressed import open_text


def _cif_tokens(lines):
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "'" in line or '"' in line:
            yield from shlex.split(line, posix=True)
        else:
            yield from stripped.split()


def read_cif_table(path: Path) -> AtomTable:
    """``_atom_site`` of an mmCIF/PDBx file: first model, first alternate location."""
    with open_text(path) as fh:
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

    table = AtomTable([], [], [], [], [], [], [], typed_by="type_symbol", new_chain=[])
    xyz = []
    last_asym = None
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
        # label_asym_id: one per molecule, unique even where auth_asym_id repeats (a new
        # chain starts where it changes, as at a PDB TER record)
        asym = pick(row, "label_asym_id")
        table.new_chain.append(last_asym is not None and asym != last_asym)
        last_asym = asym
        xyz.append([float(pick(row, f"Cartn_{a}")) for a in "xyz"])
    table.xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) / 10.0
    return table


def open_cif_frames(path: Path, prepared, label: str) -> FramePart:
    """An mmCIF/PDBx file as a one-frame trajectory (its first model)."""
    n_atoms = prepared.n_atoms

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        table = read_table(path, read_cif_table)
        if len(table) != n_atoms:
            raise InputFileError(
                f"{path}: frames have {len(table)} atoms, the topology has {n_atoms}"
            )
        yield Block(table.xyz[atoms][None].astype(np.float32), None)

    return FramePart(label, 1, read)
