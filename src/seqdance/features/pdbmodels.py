"""Multi-model PDB files as trajectories (NMR bundles, PED ensembles), one model at a time.

Models are matched to the topology atom by atom (chain, residue number and insertion code,
residue name, atom name), not by position, so models may list atoms in another order or
lack some. PED ensembles do: hydrogens present in some models only, side chains cut
short, terminal residues missing. What is done: the atoms present in **every** model are
used and the others dropped from all frames; a note says how many atoms (and which
residues lost atoms) were dropped. A residue that loses its C-alpha this way gives no row.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError


def _open(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), errors="replace")
    return open(path, errors="replace")


def _key(line: str) -> tuple:
    return (
        line[21:22].strip(),
        line[22:27].strip(),
        line[17:21].strip(),
        line[72:76].strip(),
        line[12:16].strip(),
    )


def _models(path: Path) -> Iterator[list[str]]:
    """ATOM/HETATM lines of each model (a file without MODEL records is one model)."""
    current: list[str] = []
    with _open(path) as fh:
        for line in fh:
            record = line[:6]
            if record in ("ATOM  ", "HETATM"):
                current.append(line)
            elif record.startswith("ENDMDL") or (record.startswith("MODEL") and current):
                if current:
                    yield current
                current = []
    if current:
        yield current


def _cryst_box(path: Path) -> np.ndarray | None:
    with _open(path) as fh:
        for line in fh:
            if line.startswith("CRYST1"):
                try:
                    a, b, c = (float(line[k : k + 9]) / 10.0 for k in (6, 15, 24))
                    alpha, beta, gamma = (float(line[k : k + 7]) for k in (33, 40, 47))
                except ValueError:
                    return None
                from mdtraj.utils import lengths_and_angles_to_box_vectors

                va, vb, vc = lengths_and_angles_to_box_vectors(a, b, c, alpha, beta, gamma)
                return np.array([va, vb, vc])
            if line.startswith(("ATOM", "HETATM")):
                return None
    return None


def pdb_models_part(path: Path, prepared, label: str):
    """``(part, notes, available_atoms)`` for :class:`~seqdance.features.trajectory.FrameSource`."""
    from seqdance.features.topology import parse_pdb_atoms
    from seqdance.features.trajectory import Block

    with _open(path) as fh:
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
    keys = [(c, r.strip(), n, s, a) for c, r, n, s, a in keys]
    index = {k: i for i, k in enumerate(keys)}
    present = np.zeros(len(keys), dtype=np.int64)
    n_models = 0
    for lines in _models(path):
        n_models += 1
        seen = {index[_key(line)] for line in lines if _key(line) in index}
        present[list(seen)] += 1
    available = np.flatnonzero(present == n_models)
    notes = []
    if len(available) < len(keys):
        lost = np.flatnonzero(present < n_models)
        residues = sorted({f"{keys[i][0] or 'X'}:{keys[i][2]}:{keys[i][1]}" for i in lost})
        notes.append(
            f"{path}: models differ in their atoms: {len(lost):,} atoms missing from some of the "
            f"{n_models} models were dropped from every model ({len(residues)} residues affected: "
            f"{', '.join(residues[:6])}{' ...' if len(residues) > 6 else ''})"
        )
    box = _cryst_box(path)

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        frames = []
        for lines in _models(path):
            xyz = np.full((len(keys), 3), np.nan, dtype=np.float32)
            for line in lines:
                i = index.get(_key(line))
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

    return (label, n_models, read), notes, available
