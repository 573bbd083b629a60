"""DCD files (CHARMM/NAMD/OpenMM): frames counted from the header and the file size, read
in chunks with MDTraj's DCD reader.

A file that ends inside a frame (a header that promises more frames than the file holds)
is named in a warning and read up to its last complete frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mdtraj.formats import DCDTrajectoryFile
from mdtraj.utils import in_units_of, lengths_and_angles_to_box_vectors

from seqdance.features.formats.common import (
    Block,
    FramePart,
    check_frame_atoms,
    trajectory_errors,
)
from seqdance.utils.quiet import native_stdout_silenced


def dcd_frame_count(path: str | os.PathLike) -> tuple[int, int, int, int]:
    """(frames the header promises, complete frames in the file, trailing bytes, atoms)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4:
            raise ValueError("empty file")
        for endian in ("<", ">"):
            if struct.unpack(endian + "i", head)[0] == 84:
                break
        else:
            raise ValueError("not a DCD file (first record length is not 84)")
        record = fh.read(84)
        if len(record) < 84 or record[:4] != b"CORD":
            raise ValueError("not a DCD file (no CORD header)")
        icntrl = struct.unpack(endian + "20i", record[4:84])
        n_set, n_fixed, has_cell, four_dims = icntrl[0], icntrl[8], icntrl[10], icntrl[11]
        fh.read(4)
        (title_len,) = struct.unpack(endian + "i", fh.read(4))
        fh.seek(title_len + 4, 1)
        fh.read(4)
        (n_atoms,) = struct.unpack(endian + "i", fh.read(4))
        fh.read(4)
        header = fh.tell()
    if n_fixed:
        return n_set, n_set, 0, n_atoms  # fixed atoms: frame sizes differ; trust the header
    frame = (56 if has_cell else 0) + (4 if four_dims else 3) * (8 + 4 * n_atoms)
    complete, trailing = divmod(size - header, frame)
    return n_set, complete, trailing, n_atoms


def _box_from(lengths, angles) -> np.ndarray | None:
    """Box vectors (F, 3, 3) from unit-cell lengths and angles; None if there are none."""
    if lengths is None or angles is None:
        return None
    lengths = np.asarray(lengths, dtype=np.float64)
    if not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        return None
    a, b, c = lengths_and_angles_to_box_vectors(*lengths.T, *np.asarray(angles, dtype=np.float64).T)
    return np.stack([a, b, c], axis=1)


def _dcd_blocks(path: Path, n_frames: int, atoms: np.ndarray, chunk: int) -> Iterator[Block]:
    with native_stdout_silenced(), DCDTrajectoryFile(str(path), "r") as fh:
        done = 0
        while done < n_frames:
            xyz, lengths, angles = fh.read(n_frames=min(chunk, n_frames - done), atom_indices=atoms)
            # MDTraj's own unit conversion, so values match md.load_dcd exactly
            in_units_of(xyz, "angstroms", "nanometers", inplace=True)
            if lengths is not None:
                in_units_of(lengths, "angstroms", "nanometers", inplace=True)
            box = _box_from(lengths, angles)
            if len(xyz) == 0:
                break
            done += len(xyz)
            yield Block(np.asarray(xyz, dtype=np.float32), box)


def open_dcd_frames(path: Path, prepared, label: str) -> FramePart:
    """The complete frames of a DCD file (a warning when it is truncated)."""
    promised, complete, trailing, file_atoms = dcd_frame_count(path)
    check_frame_atoms(path, file_atoms, prepared)
    warnings = []
    if trailing or (promised and complete < promised):
        warnings.append(
            f"{path}: truncated: the header promises {promised} frames, the file "
            f"holds {complete} complete frames"
            + (f" and {trailing} bytes of a partial one" if trailing else "")
            + f"; {complete} used"
        )

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        return trajectory_errors(path, _dcd_blocks(path, complete, atoms, chunk))

    return FramePart(label, complete, read, warnings=warnings)
