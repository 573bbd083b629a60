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
* **molecules are made whole** across periodic boundaries when the frames carry a box
  (:func:`make_whole`): every residue around its anchor atom (C-alpha, else its first atom),
  each chain residue after residue, and every further polymer chain imaged next to the
  first (as MDTraj's ``make_molecules_whole`` and ``image_molecules`` do); a note says in
  how many frames anything moved. Boxes shorter than 1 nm (the dummy ``CRYST1 1 1 1`` of
  NMR files) are ignored (:func:`seqdance.features.pbc.box_usable`);
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
from seqdance.features.pbc import box_usable
from seqdance.features.topology import PreparedTopology, build_topology, is_polymer


@dataclass
class PartReport:
    """Frames of one part (file) of a source: expected before reading, read, used."""

    label: str
    expected: int | None  # frames the file holds (complete frames), if known before reading
    read: int = 0  # frames read (before stride)
    used: int = 0  # frames used (after skip and stride)


# ----------------------------------------------------------------------------- whole


@dataclass(frozen=True)
class Wholeness:
    """Residue structure of the selected atoms for :func:`make_whole`."""

    atom_residue: np.ndarray  # (n,) residue of each atom, 0..R-1
    anchor: np.ndarray  # (R,) local atom index of each residue's anchor
    chain: np.ndarray  # (R,) chain index of each residue
    polymer: np.ndarray  # (R,) bool

    @classmethod
    def of(cls, topology) -> Wholeness:
        atom_residue, anchor, chain, polymer = [], [], [], []
        for k, residue in enumerate(topology.residues):
            atoms = list(residue.atoms)
            names = [a.name for a in atoms]
            atom_residue.extend([k] * len(atoms))
            anchor.append(atoms[names.index("CA")].index if "CA" in names else atoms[0].index)
            chain.append(residue.chain.index)
            polymer.append(
                is_polymer(names, residue.name) or len(atoms) == 1 and residue.chain.n_residues > 1
            )
        return cls(
            np.asarray(atom_residue, np.int64),
            np.asarray(anchor, np.int64),
            np.asarray(chain, np.int64),
            np.asarray(polymer, bool),
        )


def _lattice_shift(d: np.ndarray, box: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Whole box vectors to add to separations ``d`` (F, m, 3) to make them minimal."""
    n = -np.round(np.einsum("fmk,fkj->fmj", d, inv))  # (F, m, 3) integers
    return np.einsum("fmj,fjk->fmk", n, box)


def make_whole(
    xyz: np.ndarray,
    box: np.ndarray,
    structure: Wholeness,
    offsets: np.ndarray | None = None,
    image_chains: bool = True,
) -> tuple[np.ndarray, int]:
    """Undo periodic wrapping of the selected atoms, by whole box vectors only.

    Parameters
    ----------
    xyz : np.ndarray, shape=(n_frames, n_atoms, 3), nm
    box : np.ndarray, shape=(n_frames, 3, 3), box vectors as rows, nm
    structure : residues, anchors and chains of the atoms
    offsets : np.ndarray, shape=(n_polymer_chains, 3), optional
        Centre of each polymer chain relative to the first one in the reference structure;
        each chain is moved by whole box vectors to the image closest to that arrangement
        (default: next to the first chain).
    image_chains : False to leave chains where they are (each one is still made whole)

    Returns
    -------
    xyz : np.ndarray, shape=(n_frames, n_atoms, 3), same values where nothing was wrapped
    changed : number of frames in which some atom moved
    """
    x = np.asarray(xyz, dtype=np.float64)
    b = np.asarray(box, dtype=np.float64)
    inv = np.linalg.inv(b)
    anchor_of_atom = structure.anchor[structure.atom_residue]
    shift = _lattice_shift(x - x[:, anchor_of_atom], b, inv)  # (F, n, 3) atoms to anchors
    anchors = x[:, structure.anchor] + shift[:, structure.anchor]  # (F, R, 3)
    residue_shift = np.zeros_like(anchors)
    for c in np.unique(structure.chain):
        rows = np.flatnonzero((structure.chain == c) & structure.polymer)
        if len(rows) > 1:
            steps = _lattice_shift(anchors[:, rows[1:]] - anchors[:, rows[:-1]], b, inv)
            residue_shift[:, rows[1:]] = np.cumsum(steps, axis=1)
    shift += residue_shift[:, structure.atom_residue]
    chains = [
        c for c in np.unique(structure.chain) if structure.polymer[structure.chain == c].any()
    ]
    if image_chains and len(chains) > 1:  # further polymer chains next to the first one
        anchors = x[:, structure.anchor] + shift[:, structure.anchor]
        centre0 = anchors[:, structure.chain == chains[0]].mean(axis=1, keepdims=True)
        for k, c in enumerate(chains[1:], start=1):
            in_chain = structure.chain == c
            centre = anchors[:, in_chain].mean(axis=1, keepdims=True)  # (F, 1, 3)
            target = 0.0 if offsets is None else offsets[k]
            moves = _lattice_shift(centre - centre0 - target, b, inv)
            shift[:, in_chain[structure.atom_residue]] += moves
    moved = np.abs(shift).max(axis=(1, 2)) > 0
    if not moved.any():
        return xyz, 0
    out = np.array(xyz, copy=True)
    out[moved] = (x[moved] + shift[moved]).astype(out.dtype)
    return out, int(moved.sum())


def chain_offsets(xyz: np.ndarray, structure: Wholeness) -> np.ndarray:
    """Centre of every polymer chain minus the first one's, (n_polymer_chains, 3), of one
    whole structure ``xyz`` (n_atoms, 3)."""
    chains = [
        c for c in np.unique(structure.chain) if structure.polymer[structure.chain == c].any()
    ]
    anchors = np.asarray(xyz, dtype=np.float64)[structure.anchor]
    centres = np.array([anchors[structure.chain == c].mean(axis=0) for c in chains])
    return centres - centres[:1] if len(centres) else np.zeros((0, 3))


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
        make_whole: bool = True,
        warnings: list[str] | None = None,
    ) -> None:
        self.parts = parts
        self.warnings = list(warnings or [])
        self.n_atoms = n_atoms
        self.skip = skip
        self.notes = list(notes or [])
        self.available = available
        self.whole = make_whole
        self.reports = [PartReport(label, expected) for label, expected, _ in parts]
        self._moved = 0
        self._structure = None
        self._offsets = None
        self.reference_xyz: np.ndarray | None = None

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
        """The first used frame of the selected atoms, made whole: (n_sel, 3) nm.

        ``reference`` (n_sel, 3): a whole structure of the same atoms (the topology file's
        coordinates) whose arrangement of chains every frame keeps; default: the first frame.
        """
        self._offsets = None
        self._structure = (topology, Wholeness.of(topology))
        if reference is not None:
            if box_usable(reference_box):  # the topology's own frame may be broken too
                reference = make_whole(
                    np.asarray(reference)[None],
                    np.asarray(reference_box)[None],
                    self._structure[1],
                    image_chains=False,
                )[0][0]
            self._offsets = chain_offsets(reference, self._structure[1])
        self.reference_xyz = reference
        for block in self._raw_blocks(0, atoms, 1, 1, topology, count=False):
            if self._offsets is None:
                self._offsets = chain_offsets(block.xyz[0], self._structure[1])
            return block.xyz[0].astype(np.float64)
        raise InputFileError(f"{self.parts[0][0]}: trajectory has no frames")

    def blocks(self, atoms: np.ndarray, chunk: int, stride: int, topology) -> Iterator[Block]:
        """Blocks of the selected atoms over all parts (skip and stride per part)."""
        for k in range(len(self.parts)):
            yield from self._raw_blocks(k, atoms, chunk, stride, topology)
        if self._moved:
            self.notes.append(
                f"molecules broken across the periodic box in {self._moved:,} frames were made "
                "whole (residues, chains, chains next to each other)"
            )

    def _raw_blocks(self, k, atoms, chunk, stride, topology, count=True) -> Iterator[Block]:
        label, _, reader = self.parts[k]
        report = self.reports[k]
        position = 0  # frame index within the part
        if self._structure is None or self._structure[0] is not topology:
            self._structure = (topology, Wholeness.of(topology))
            self._offsets = None
        structure = self._structure[1]
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
            if self.whole and box is not None and box_usable(box):
                xyz, moved = make_whole(xyz, box, structure, self._offsets)
                if count:
                    self._moved += moved
            if count:
                report.used += len(xyz)
            yield Block(xyz, box)
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
