"""Trajectory frames, read in chunks, counted, checked and made whole.

:func:`open_trajectory` turns one or several trajectory files (replicas are pooled: their
frames follow each other) into a :class:`FrameSource` whose :meth:`FrameSource.blocks`
yields :class:`~seqdance.features.formats.common.Block` s of the selected atoms in nm. On
the way:

* **frames are counted** before reading, by the file's reader
  (:mod:`seqdance.features.formats`): DCD from its header and the file size, XTC by a scan
  of its frame headers, GRO and multi-model PDB by a text scan, the rest by MDTraj. A file
  that ends inside a frame (a DCD whose header promises more frames than it holds, an XTC
  with a partial last frame) is named in a note and read up to its last complete frame;
* **periodic boxes** (:mod:`seqdance.features.imaging`, ``pbc`` "cluster" by default):
  molecules broken across the box are made whole by their bonds, and the chains of a
  complex are placed next to each other in the first frame of each part (nearest image, as
  ``gmx trjconv -pbc cluster``) and kept continuous from frame to frame (as ``-pbc
  nojump``); frames that are already whole and together are not touched. ``pbc="whole"``
  only makes molecules whole, ``"none"`` leaves frames as read. A note says what was done in
  how many frames. Boxes shorter than 1 nm (the dummy ``CRYST1 1 1 1`` of NMR files) are
  ignored (:func:`seqdance.features.pbc.box_usable`);
* multi-frame GRO files and multi-model PDB files are read frame by frame (MDTraj reads
  them whole, or not at all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.formats.common import Block
from seqdance.features.formats.registry import open_frames, read_atom_table
from seqdance.features.imaging import ImagingState, Molecules, check_pbc_mode, image_frames
from seqdance.features.pbc import box_usable
from seqdance.features.topology import PreparedTopology, build_topology


@dataclass
class PartReport:
    """Frames of one part (file) of a source: expected before reading, read, used."""

    label: str
    expected: int | None  # frames the file holds (complete frames), if known before reading
    read: int = 0  # frames read (before stride)
    used: int = 0  # frames used (after skip and stride)


# ----------------------------------------------------------------------------- sources


class FrameSource:
    """Frames of one system from one or more files (replicas, pooled in order).

    Parameters
    ----------
    parts : list of ``(label, expected_frames, reader)`` where ``reader(atoms, chunk)``
        yields :class:`Block` s of every frame of that part.
    n_atoms : atoms per frame (must equal the topology's).
    skip : frames dropped at the start of every part (equilibration).
    available : atoms present in every frame (PED ensembles whose models differ), or None.
    """

    def __init__(
        self,
        parts: list[tuple[str, int | None, object]],
        n_atoms: int,
        skip: int = 0,
        notes: list[str] | None = None,
        available: np.ndarray | None = None,
        pbc: str = "cluster",
        warnings: list[str] | None = None,
    ) -> None:
        self.parts = parts
        self.warnings = list(warnings or [])
        self.n_atoms = n_atoms
        self.skip = skip
        self.notes = list(notes or [])
        self.available = available
        self.pbc = check_pbc_mode(pbc)
        self.reports = [PartReport(label, expected) for label, expected, _ in parts]
        self._imaging = ImagingState()  # counts over the used frames, for the note
        self._structure = None
        self.reference_xyz: np.ndarray | None = None

    def set_pbc(self, mode: str) -> None:
        """Periodic imaging: "cluster" (default), "whole" or "none" (frames as read)."""
        self.pbc = check_pbc_mode(mode)

    def _molecules(self, topology) -> Molecules:
        if self._structure is None or self._structure[0] is not topology:
            self._structure = (topology, Molecules.of(topology))
        return self._structure[1]

    def frames_after(self, stride: int) -> int | None:
        """Frames :meth:`blocks` will yield with this stride, if every part's count is known."""
        total = 0
        for report in self.reports:
            if report.expected is None:
                return None
            total += len(range(self.skip, report.expected, stride))
        return total

    def first_frame(
        self, atoms: np.ndarray, topology, reference=None, reference_box=None
    ) -> np.ndarray:
        """The first used frame of the selected atoms, imaged as :meth:`blocks` does: (n_sel, 3)
        nm.

        ``reference`` (n_sel, 3): the topology file's own coordinates of the same atoms; with a
        usable ``reference_box`` they are imaged the same way (one frame) and kept as
        :attr:`reference_xyz` (bonds found by distance use them).
        """
        molecules = self._molecules(topology)
        if reference is not None and box_usable(reference_box):  # its own frame may be broken
            reference = image_frames(
                np.asarray(reference)[None],
                np.asarray(reference_box, dtype=np.float64)[None],
                molecules,
                self.pbc,
                ImagingState(),
            )[0]
        self.reference_xyz = reference
        for block in self._raw_blocks(0, atoms, 1, 1, topology, count=False):
            return block.xyz[0].astype(np.float64)
        raise InputFileError(f"{self.parts[0][0]}: trajectory has no frames")

    def blocks(self, atoms: np.ndarray, chunk: int, stride: int, topology) -> Iterator[Block]:
        """Blocks of the selected atoms over all parts (skip and stride per part)."""
        for k in range(len(self.parts)):
            yield from self._raw_blocks(k, atoms, chunk, stride, topology)
        note = self._imaging.note()
        if note:
            self.notes.append(note)

    def _raw_blocks(self, k, atoms, chunk, stride, topology, count=True) -> Iterator[Block]:
        label, _, reader = self.parts[k]
        report = self.reports[k]
        position = 0  # frame index within the part
        molecules = self._molecules(topology)
        state = ImagingState()  # each part starts afresh: chains clustered in its first frame
        for block in reader(np.asarray(atoms), chunk):
            n = len(block.xyz)
            _check_finite(block.xyz, label, position)
            idx = np.arange(position, position + n)
            position += n
            if count:
                report.read += n
            keep = (idx >= self.skip) & ((idx - self.skip) % stride == 0)
            if not keep.any():
                continue
            xyz = block.xyz[keep]
            box = block.box[keep] if block.box is not None else None
            if self.pbc != "none" and box is not None and box_usable(box):
                xyz = image_frames(xyz, box, molecules, self.pbc, state)
            if count:
                report.used += len(xyz)
            yield Block(xyz, box)
        if count:
            for name in ("framed", "whole", "placed"):
                setattr(self._imaging, name, getattr(self._imaging, name) + getattr(state, name))
        if count and report.expected is not None and report.read < report.expected:
            raise InputFileError(
                f"{label}: ended after {report.read} frames, expected {report.expected}"
            )

    def summary(self) -> list[str]:
        """One line per part: frames read and used."""
        out = []
        for r in self.reports:
            extra = f" ({self.skip} skipped at the start)" if self.skip else ""
            out.append(f"{r.label}: {r.read:,} frames read, {r.used:,} used{extra}")
        return out


def _check_finite(xyz: np.ndarray, label: str, first: int) -> None:
    """NaN or infinite coordinates (a damaged frame) are an error naming file and frame."""
    finite = np.isfinite(xyz).all(axis=(1, 2))  # (n_frames,)
    if not finite.all():
        frame = first + int(np.argmin(finite)) + 1
        raise InputFileError(
            f"{label}: frame {frame} has NaN or infinite coordinates "
            f"({int((~finite).sum())} such frame(s) in this chunk)"
        )
    near = (np.abs(xyz) <= 1e5).all(axis=(1, 2))  # (n_frames,) 100 um: beyond, a damaged file
    if not near.all():
        raise InputFileError(
            f"{label}: frame {first + int(np.argmin(near)) + 1} has coordinates beyond 1e5 nm; "
            "the file is damaged"
        )


def open_trajectory(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    prepared,
    skip: int = 0,
    labels: Sequence[str] | None = None,
) -> FrameSource:
    """A :class:`FrameSource` over trajectory files of one topology (pooled in order)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts, notes, warnings = [], [], []
    available = None
    for k, raw in enumerate(paths):
        path = Path(raw)
        part = open_frames(path, prepared, labels[k] if labels else str(path))
        parts.append((part.label, part.expected, part.read))
        notes.extend(part.notes)
        warnings.extend(part.warnings)
        if part.available is not None:
            available = (
                part.available if available is None else np.intersect1d(available, part.available)
            )
    return FrameSource(
        parts, prepared.n_atoms, skip=skip, notes=notes, available=available, warnings=warnings
    )


def open_system(topology, trajectory, skip: int = 0):
    """``(PreparedTopology, FrameSource)`` for a topology (path or prepared) and trajectory
    (path, list of paths pooled in order, or a ready :class:`FrameSource`).

    A topology without coordinates and without chain or segment IDs (a PSF of one segment, a
    PRMTOP) is split into chains at the breaks of the trajectory's first frame.
    """
    if isinstance(topology, PreparedTopology):
        prepared = topology
    else:
        path = Path(topology)
        table = read_atom_table(path)
        prepared = build_topology(table, path)
        if table.xyz is None and not any(table.chain_ids) and not any(table.segids):
            if not isinstance(trajectory, FrameSource):
                probe = open_trajectory(trajectory, prepared, skip=0)
                atoms = np.arange(prepared.n_atoms)
                reference = probe.first_frame(atoms, prepared.topology)
                prepared = build_topology(table, path, reference)
    if isinstance(trajectory, FrameSource):
        source = trajectory
    else:
        source = open_trajectory(trajectory, prepared, skip=skip)
    if source.n_atoms != prepared.n_atoms:
        raise InputFileError(
            f"trajectory has {source.n_atoms} atoms per frame, topology {prepared.path} has "
            f"{prepared.n_atoms}"
        )
    return prepared, source
