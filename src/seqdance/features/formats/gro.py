"""GRO files: the first frame as topology (names as written), every frame as a trajectory.

Fixed columns, any decimal precision; multi-frame files are read frame by frame (MDTraj
reads them whole, or not at all).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.errors import one_line as _one_line
from seqdance.features.formats.common import AtomTable, Block, FramePart
from seqdance.features.formats.compressed import open_text


@dataclass
class GroFrame:
    """One frame of a GRO file (names only when asked for)."""

    xyz: np.ndarray  # (n, 3) nm
    box: np.ndarray | None  # (3, 3)
    names: list[str] = field(default_factory=list)
    resnames: list[str] = field(default_factory=list)
    resnums: list[int] = field(default_factory=list)


def parse_gro_frame(fh, with_names: bool = False) -> GroFrame | None:
    """Next frame of an open GRO file (fixed columns; any decimal precision)."""
    title = fh.readline()
    if not title:
        return None
    count_line = fh.readline()
    if not count_line.strip():
        return None
    n = int(count_line.split()[0])
    lines = [fh.readline() for _ in range(n)]
    box_line = fh.readline()
    if len(lines) < n or not box_line or (n and not lines[-1]):
        raise ValueError("file ends inside a frame")
    if n:
        first = lines[0]
        dots = [i for i, ch in enumerate(first) if ch == "." and i >= 20]
        width = dots[1] - dots[0] if len(dots) >= 2 else 8
    xyz = np.empty((n, 3), dtype=np.float64)
    names, resnames, resnums = [], [], []
    for k, line in enumerate(lines):
        xyz[k] = [float(line[20 + j * width : 20 + (j + 1) * width]) for j in range(3)]
        if with_names:
            resnums.append(int(line[0:5]))
            resnames.append(line[5:10].strip())
            names.append(line[10:15].strip())
    values = [float(v) for v in box_line.split()]
    box = None
    if len(values) >= 3:
        v = values + [0.0] * (9 - len(values))
        box = np.array([[v[0], v[3], v[4]], [v[5], v[1], v[6]], [v[7], v[8], v[2]]])
    return GroFrame(xyz, box, names, resnames, resnums)


def _gro_frames(path: Path) -> Iterator[GroFrame]:
    with open_text(path) as fh:
        while True:
            frame = parse_gro_frame(fh)
            if frame is None:
                return
            yield frame


def _count_gro(path: Path) -> int:
    n = 0
    for _ in _gro_frames(path):
        n += 1
    return n


def read_gro_table(path: Path) -> AtomTable:
    """First frame of a GRO file, names exactly as written."""
    with open_text(path) as fh:
        frame = parse_gro_frame(fh, with_names=True)
    if frame is None:
        raise ValueError("no frame")
    resnums, resnames, names, xyz = frame.resnums, frame.resnames, frame.names, frame.xyz
    # GRO residue numbers wrap at 99999; a wrap is a new residue, not a repeat. A number
    # that goes down otherwise restarts a molecule: a new chain starts there.
    n = len(names)
    new_chain = [False] * n
    for i in range(1, n):
        prev, cur = resnums[i - 1], resnums[i]
        new_chain[i] = cur < prev and not (prev % 100000 == 99999 and cur == 0)
    return AtomTable(
        names,
        resnames,
        resnums,
        [""] * n,
        [""] * n,
        [""] * n,
        [""] * n,
        xyz=xyz.astype(np.float64),
        new_chain=new_chain,
        box=frame.box,
    )


def open_gro_frames(path: Path, prepared, label: str) -> FramePart:
    """Every frame of a GRO file, counted by a text scan before reading."""

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        xyz, boxes = [], []
        try:
            for frame in _gro_frames(path):
                xyz.append(frame.xyz[atoms])
                boxes.append(frame.box if frame.box is not None else np.zeros((3, 3)))
                if len(xyz) == chunk:
                    yield Block(np.asarray(xyz, np.float32), np.asarray(boxes))
                    xyz, boxes = [], []
        except (ValueError, IndexError) as exc:
            raise InputFileError(f"{path}: cannot read GRO frames: {_one_line(exc)}") from None
        if xyz:
            yield Block(np.asarray(xyz, np.float32), np.asarray(boxes))

    return FramePart(label, _count_gro(path), read)
