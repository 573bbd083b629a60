"""Trajectory frames, read in chunks, counted, checked and made whole.

:func:`open_trajectory` turns one or several trajectory files (replicas are pooled: their
frames follow each other) into a :class:`FrameSource` whose :meth:`FrameSource.blocks`
yields :class:`Block` s of the selected atoms in nm. On the way:

* **frames are counted** before reading: DCD from its header and the file size, XTC by a
  scan of its frame headers, GRO and multi-model PDB by a text scan, the rest by MDTraj. A
  file that ends inside a frame (a DCD whose header promises more frames than it holds, an
  XTC with a partial last frame) is named in a note and read up to its last complete frame;
* **molecules are made whole** across periodic boundaries when the frames carry a box
  (:func:`make_whole`): every residue around its anchor atom (C-alpha, else its first atom),
  each chain residue after residue, and every further polymer chain imaged next to the
  first (as MDTraj's ``make_molecules_whole`` and ``image_molecules`` do); a note says in
  how many frames anything moved. Boxes shorter than 1 nm (the dummy ``CRYST1 1 1 1`` of
  NMR files) are ignored;
* multi-frame GRO files and multi-model PDB files are read frame by frame (MDTraj reads
  them whole, or not at all).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.utils.quiet import native_stdout_silenced

MIN_BOX_NM = 1.0


@dataclass
class Block:
    """Consecutive frames of the selected atoms."""

    xyz: np.ndarray  # (F, n_sel, 3) float32, nm
    box: np.ndarray | None = None  # (F, 3, 3) box vectors (rows a, b, c), nm


@dataclass
class PartReport:
    label: str
    expected: int | None  # frames the file holds (complete frames), if known before reading
    read: int = 0  # frames read (before stride)
    used: int = 0  # frames used (after skip and stride)


# ----------------------------------------------------------------------------- counting


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


@dataclass
class GroFrame:
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


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), errors="replace")
    return open(path, errors="replace")


def _gro_frames(path: Path) -> Iterator[GroFrame]:
    with _open_text(path) as fh:
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


# ----------------------------------------------------------------------------- whole


def box_usable(box: np.ndarray | None) -> bool:
    if box is None:
        return False
    lengths = np.linalg.norm(np.asarray(box), axis=-1)
    return bool(np.all(np.isfinite(lengths)) and np.all(lengths >= MIN_BOX_NM))


@dataclass(frozen=True)
class Wholeness:
    """Residue structure of the selected atoms for :func:`make_whole`."""

    atom_residue: np.ndarray  # (n,) residue of each atom, 0..R-1
    anchor: np.ndarray  # (R,) local atom index of each residue's anchor
    chain: np.ndarray  # (R,) chain index of each residue
    polymer: np.ndarray  # (R,) bool

    @classmethod
    def of(cls, topology) -> Wholeness:
        from seqdance.features.topology import _is_polymer

        atom_residue, anchor, chain, polymer = [], [], [], []
        for k, residue in enumerate(topology.residues):
            atoms = list(residue.atoms)
            names = [a.name for a in atoms]
            atom_residue.extend([k] * len(atoms))
            anchor.append(atoms[names.index("CA")].index if "CA" in names else atoms[0].index)
            chain.append(residue.chain.index)
            polymer.append(
                _is_polymer(names, residue.name) or len(atoms) == 1 and residue.chain.n_residues > 1
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


def _mdtraj_reader(path: Path, topology, n_frames: int | None, kind: str):
    import mdtraj as md
    from mdtraj.utils import in_units_of

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        try:
            if kind in ("dcd", "xtc"):
                cls = (
                    md.formats.DCDTrajectoryFile if kind == "dcd" else md.formats.XTCTrajectoryFile
                )
                with native_stdout_silenced(), cls(str(path), "r") as fh:
                    done = 0
                    while n_frames is None or done < n_frames:
                        want = chunk if n_frames is None else min(chunk, n_frames - done)
                        if kind == "dcd":
                            xyz, lengths, angles = fh.read(n_frames=want, atom_indices=atoms)
                            # MDTraj's own unit conversion, so values match md.load_dcd exactly
                            in_units_of(xyz, "angstroms", "nanometers", inplace=True)
                            if lengths is not None:
                                in_units_of(lengths, "angstroms", "nanometers", inplace=True)
                            box = _box_from(lengths, angles)
                        else:
                            xyz, _, _, box = fh.read(n_frames=want, atom_indices=atoms)
                        if len(xyz) == 0:
                            break
                        done += len(xyz)
                        yield Block(np.asarray(xyz, dtype=np.float32), box)
            else:
                with native_stdout_silenced():
                    iterator = md.iterload(str(path), chunk=chunk, top=topology, atom_indices=atoms)
                    for piece in iterator:
                        box = piece.unitcell_vectors
                        yield Block(piece.xyz, box)
        except SeqDanceError:
            raise
        except Exception as exc:  # readers raise assorted types for bad files
            raise InputFileError(f"{path}: cannot read trajectory: {_one_line(exc)}") from None

    return read


def _box_from(lengths, angles) -> np.ndarray | None:
    if lengths is None or angles is None:
        return None
    from mdtraj.utils import lengths_and_angles_to_box_vectors

    lengths = np.asarray(lengths, dtype=np.float64)
    if not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        return None
    a, b, c = lengths_and_angles_to_box_vectors(*lengths.T, *np.asarray(angles, dtype=np.float64).T)
    return np.stack([a, b, c], axis=1)


def _gro_reader(path: Path):
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

    return read


def _check_atoms(path: Path, file_atoms: int, prepared) -> None:
    if file_atoms != prepared.n_atoms:
        raise InputFileError(
            f"{path}: frames have {file_atoms} atoms, the topology has {prepared.n_atoms} "
            f"({prepared.path})"
        )


def _cif_reader(path: Path, n_atoms: int):
    """An mdCIF/PDBx file as a one-frame trajectory (its first model)."""

    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        from seqdance.features.topology import read_atom_table

        table = read_atom_table(path)
        if len(table) != n_atoms:
            raise InputFileError(
                f"{path}: frames have {len(table)} atoms, the topology has {n_atoms}"
            )
        yield Block(table.xyz[atoms][None].astype(np.float32), None)

    return read


def _mdtraj_length(path: Path) -> int | None:
    import mdtraj as md

    try:
        with native_stdout_silenced(), md.open(str(path)) as handle:
            return len(handle)
    except Exception:  # not every format has a length
        return None


def open_trajectory(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    prepared,
    skip: int = 0,
    labels: Sequence[str] | None = None,
) -> FrameSource:
    """A :class:`FrameSource` over trajectory files of one topology (pooled in order)."""
    from seqdance.features.pdbmodels import pdb_models_part

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts, notes, warnings = [], [], []
    available = None
    n_atoms = prepared.n_atoms
    for k, raw in enumerate(paths):
        path = Path(raw)
        label = labels[k] if labels else str(path)
        if not path.is_file():
            raise InputFileError(f"{path}: no such trajectory file")
        name = path.name.lower().removesuffix(".gz")
        try:
            if name.endswith(".dcd"):
                promised, complete, trailing, file_atoms = dcd_frame_count(path)
                _check_atoms(path, file_atoms, prepared)
                if trailing or (promised and complete < promised):
                    warnings.append(
                        f"{path}: truncated: the header promises {promised} frames, the file "
                        f"holds {complete} complete frames"
                        + (f" and {trailing} bytes of a partial one" if trailing else "")
                        + f"; {complete} used"
                    )
                parts.append(
                    (label, complete, _mdtraj_reader(path, prepared.topology, complete, "dcd"))
                )
            elif name.endswith(".xtc"):
                complete, trailing, file_atoms = xtc_frame_count(path)
                if complete:
                    _check_atoms(path, file_atoms, prepared)
                if trailing:
                    warnings.append(
                        f"{path}: truncated: {trailing} bytes of a partial frame after frame "
                        f"{complete}; {complete} complete frames used"
                    )
                parts.append(
                    (label, complete, _mdtraj_reader(path, prepared.topology, complete, "xtc"))
                )
            elif name.endswith(".gro"):
                parts.append((label, _count_gro(path), _gro_reader(path)))
            elif name.endswith((".cif", ".mmcif", ".pdbx")):
                parts.append((label, 1, _cif_reader(path, prepared.n_atoms)))
            elif name.endswith((".pdb", ".ent")):
                part, part_notes, part_available = pdb_models_part(path, prepared, label)
                parts.append(part)
                notes.extend(part_notes)
                if part_available is not None:
                    available = (
                        part_available
                        if available is None
                        else np.intersect1d(available, part_available)
                    )
            else:
                parts.append(
                    (
                        label,
                        _mdtraj_length(path),
                        _mdtraj_reader(path, prepared.topology, None, "other"),
                    )
                )
        except InputFileError:
            raise
        except (OSError, ValueError, struct.error) as exc:
            raise InputFileError(f"{path}: cannot read trajectory: {_one_line(exc)}") from None
    return FrameSource(
        parts, n_atoms, skip=skip, notes=notes, available=available, warnings=warnings
    )


def open_system(topology, trajectory, skip: int = 0):
    """``(PreparedTopology, FrameSource)`` for a topology (path or prepared) and trajectory
    (path, list of paths pooled in order, or a ready :class:`FrameSource`).

    A topology without coordinates and without chain or segment IDs (a PSF of one segment, a
    PRMTOP) is split into chains at the breaks of the trajectory's first frame.
    """
    from seqdance.features.topology import (
        PreparedTopology,
        build_topology,
        read_atom_table,
    )

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
