"""XTC files (GROMACS): frames counted by a scan of the frame headers, read in chunks with
MDTraj's XTC reader.

A partial last frame is named in a warning; the complete frames are used.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mdtraj.formats import XTCTrajectoryFile

from seqdance.features.formats.common import (
    Block,
    FramePart,
    check_frame_atoms,
    trajectory_errors,
)
from seqdance.utils.quiet import native_stdout_silenced


def xtc_frame_count(path: str | os.PathLike) -> tuple[int, int, int]:
    """(complete frames, bytes after the last complete frame, atoms) from the frame headers."""
    path = Path(path)
    size = path.stat().st_size
    count, offset, first_atoms = 0, 0, -1
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            head = fh.read(92)
            if len(head) < 56:
                break
            magic, n_atoms = struct.unpack(">ii", head[:8])
            if magic not in (1995, 2023):
                raise ValueError(f"bad XTC frame header at byte {offset}")
            if first_atoms < 0:
                first_atoms = n_atoms
            if n_atoms <= 9:
                length = 56 + 12 * n_atoms
            else:
                if magic == 2023:
                    head += fh.read(4)
                    if len(head) < 96:
                        break
                    (n_bytes,) = struct.unpack(">q", head[88:96])
                    length = 96 + (n_bytes + 3) // 4 * 4
                else:
                    if len(head) < 92:
                        break
                    (n_bytes,) = struct.unpack(">i", head[88:92])
                    length = 92 + (n_bytes + 3) // 4 * 4
            if offset + length > size:
                break
            offset += length
            count += 1
    return count, size - offset, first_atoms


def _xtc_blocks(path: Path, n_frames: int, atoms: np.ndarray, chunk: int) -> Iterator[Block]:
    with native_stdout_silenced(), XTCTrajectoryFile(str(path), "r") as fh:
        done = 0
        while done < n_frames:
            xyz, _, _, box = fh.read(n_frames=min(chunk, n_frames - done), atom_indices=atoms)
            if len(xyz) == 0:
                break
            done += len(xyz)
            yield Block(np.asarray(xyz, dtype=np.float32), box)


def open_xtc_frames(path: Path, prepared, label: str) -> FramePart:
    """The complete frames of an XTC file (a warning when the last one is partial)."""
    complete, trailing, file_atoms = xtc_frame_count(path)
    if complete:
        check_frame_atoms(path, file_atoms, prepared)
    warnings = []
    if trailing:
        warnings.append(
            f"{path}: truncated: {trailing} bytes of a partial frame after frame "
            f"{complete}; {complete} complete frames used"
        )

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        return trajectory_errors(path, _xtc_blocks(path, complete, atoms, chunk))

    return FramePart(label, complete, read, warnings=warnings)
