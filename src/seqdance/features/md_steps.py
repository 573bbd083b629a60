"""The steps of :func:`seqdance.features.md.md_features` on each chunk of frames.

Which residues are rows (:func:`select_residues`), interactions counted by the native
detector (:class:`NativeInteractions`) or read from a GetContacts TSV
(:func:`contacts_from_tsv`), per-residue SASA (:class:`ResidueSasa`), and one chunk added
to every accumulator (:func:`accumulate`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mdtraj as md
import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.contact_detector import ContactDetector
from seqdance.features.contact_rules import protein_atoms
from seqdance.features.getcontacts import (
    LabelError,
    contact_cells,
    read_contacts,
)
from seqdance.features.md_kernels import (
    FixedBlocks,
    RunningMoments,
    SparsePairCounts,
    angle_bin_counts,
    dssp_class_counts,
)
from seqdance.features.sasa import atomic_radii, residue_groups, shrake_rupley
from seqdance.schema import INTERACTIONS
from seqdance.utils.quiet import native_stderr_silenced

_READ_ERRORS = (
    OSError, ValueError, RuntimeError, IndexError, KeyError, TypeError, EOFError, ImportError,
)  # fmt: skip


@dataclass(frozen=True)
class MDSelection:
    """The output rows of a selection and the atoms they are read from."""

    atoms: np.ndarray  # (n_sel,) atom indices in the full topology
    rows: np.ndarray  # (N,) residue indices (in the subset topology) that are output rows
    align: np.ndarray  # (N,) atom indices (in the subset) of each row's C-alpha
    coarse: bool  # C-alpha-only: one atom per residue


def protein_residue_atoms(top) -> np.ndarray:
    """Atoms of protein residues: MDTraj's residue-name rule or VMD's backbone-name rule.

    MDTraj's ``protein`` list misses force-field names (HIE, HID, CYX ...); VMD's rule
    (:func:`seqdance.features.contact_rules.protein_atoms`) needs N, CA, C, O and so misses
    C-alpha-only residues. Either one suffices. Returns sorted atom indices.
    """
    by_name = top.select("protein")
    return np.union1d(by_name, protein_atoms(top)).astype(np.int64)


def select_residues(top, selection: str, available: np.ndarray | None = None) -> MDSelection:
    atoms = protein_residue_atoms(top)
    if available is not None:  # atoms present in every frame (PED ensembles)
        atoms = np.intersect1d(atoms, available)
    if selection.strip() != "protein":
        try:
            atoms = np.intersect1d(atoms, top.select(selection))
        except _READ_ERRORS as exc:
            raise SeqDanceError(f"invalid selection {selection!r}: {_one_line(exc)}") from None
    if len(atoms) == 0:
        raise SeqDanceError(f"selection {selection!r} matches no protein atoms")
    sub = top.subset(atoms)
    coarse = all(res.n_atoms == 1 for res in sub.residues)
    rows, align = [], []
    for res in sub.residues:
        if coarse:
            cas = [a.index for a in res.atoms]
        else:
            cas = [a.index for a in res.atoms if a.name == "CA"]
        if cas:  # caps (ACE, NME) have no C-alpha and give no row
            rows.append(res.index)
            align.append(cas[0])
    if not rows:
        raise SeqDanceError(f"selection {selection!r} has no C-alpha atoms")
    return MDSelection(np.asarray(atoms), np.asarray(rows), np.asarray(align), coarse)


class NativeInteractions:
    """Residue-pair contact counts summed over chunks (native detector), held sparse."""

    def __init__(self, detector, keys: list[tuple[str, str]], cells: str = "listed") -> None:
        self._cells = partial(contact_cells, cells=cells)
        self.detector = detector
        self.keys = keys
        self.sums = SparsePairCounts(len(INTERACTIONS), len(keys))

    def update(self, xyz: np.ndarray, first_frame: int, stride: int) -> None:
        lines = self.detector.detect(xyz, first_frame=first_frame, stride=stride)
        try:
            k, i, j = self._cells(lines, self.keys, INTERACTIONS)
        except LabelError as exc:
            raise InputFileError(f"native contact detector: {exc}") from None
        self.sums.update(k, i, j)

    def mean(self, itype: str, rows: np.ndarray, n_frames: int, dtype=np.float64) -> np.ndarray:
        """Mean contact lines per frame of one type on ``rows`` x ``rows``, (R, R) ``dtype``."""
        return self.sums.dense(INTERACTIONS.index(itype), rows, n_frames, dtype)


def contacts_from_tsv(
    path: Path,
    keys,
    n_frames: int,
    stride: int,
    cells: str = "listed",
    resnames: list[str] | None = None,
) -> SparsePairCounts:
    """Residue-pair counts of a GetContacts TSV, summed sparse (``.dense(k, rows, n_frames)``
    gives channel ``INTERACTIONS[k]`` as :func:`residue_pair_counts` would).

    ``keys``: ``(chain, resid)`` of each residue of the selection, in order; ``resnames``:
    their names as the topology writes them. Each label must match its residue on chain,
    number, insertion code and (when ``resnames`` are given) name; the first label that
    does not is one :class:`~seqdance.errors.InputFileError` line. The TSV must cover
    ``n_frames`` frames.
    """
    header, lines = read_contacts(path)
    if header.total_frames != n_frames:
        raise InputFileError(
            f"{path}: contacts cover {header.total_frames} frames but the trajectory gives "
            f"{n_frames} (stride {stride})"
        )
    sums = SparsePairCounts(len(INTERACTIONS), len(keys))
    try:
        sums.update(*contact_cells(lines, keys, INTERACTIONS, cells, resnames))
    except LabelError as exc:
        raise InputFileError(f"{path}: {exc}") from None
    except ValueError as exc:  # a malformed atom label
        raise InputFileError(f"{path}: {_one_line(exc)}") from None
    return sums


def make_detector(prepared, atoms: np.ndarray, reference_xyz: np.ndarray, bond_xyz=None):
    """Native GetContacts-rule detector on the selected atoms (file's own atom names).

    Bonds come from the topology file's own coordinates when it has them, as in GetContacts.
    """
    return ContactDetector(
        prepared.topology.subset(atoms), reference_xyz, INTERACTIONS, "protein", bond_xyz=bond_xyz
    )


def describe_trajectory(trajectory) -> str:
    """The trajectory as error messages name it: a path, the first of several, a source."""
    if isinstance(trajectory, (str, os.PathLike)):
        return str(trajectory)
    if isinstance(trajectory, (list, tuple)):
        more = f" (+{len(trajectory) - 1} more)" if len(trajectory) > 1 else ""
        return str(trajectory[0]) + more
    parts = getattr(trajectory, "parts", None)
    return str(parts[0][0]) if parts else "trajectory"


class ResidueSasa:
    """Per-residue SASA of each frame (:mod:`seqdance.features.sasa`, MDTraj's definition),
    mean and standard deviation over frames accumulated in fixed blocks."""

    def __init__(self, topology, top_path: Path, source: Path) -> None:
        self.source = source  # the trajectory, for error messages
        try:
            self.radii = atomic_radii(topology)  # (n_atoms,) nm
        except ValueError as exc:
            raise InputFileError(f"{top_path}: {_one_line(exc)}") from None
        self.groups = residue_groups(topology)  # (n_atoms,) residue index
        self.n_groups = topology.n_residues
        self.moments = RunningMoments()
        self.blocks = FixedBlocks(self.moments)

    def update(self, xyz: np.ndarray) -> None:
        """Add frames ``xyz`` (F, n_atoms, 3) nm."""
        try:
            areas = shrake_rupley(xyz, self.radii, self.groups, self.n_groups)  # (F, n_res) nm^2
        except ValueError as exc:  # non-finite coordinates
            raise InputFileError(f"{self.source}: {_one_line(exc)}") from None
        self.blocks.update(areas)


def accumulate(
    chunk, reference, sel, first_index, stride, covariance, sasa, ss_counts, angle_defs,
    interactions, timings,
) -> None:  # fmt: skip
    """Add one chunk (selected atoms, nm) to every accumulator."""
    if interactions is not None:  # distances: superposition does not matter
        clock = time.perf_counter()
        interactions.update(chunk.xyz, first_frame=first_index * stride, stride=stride)
        timings["contacts"] += time.perf_counter() - clock

    clock = time.perf_counter()
    with native_stderr_silenced():  # MDTraj prints when a rotation does not converge
        chunk.superpose(reference, 0, atom_indices=sel.align)
    timings["superpose"] += time.perf_counter() - clock

    clock = time.perf_counter()
    covariance.update(chunk.xyz[:, sel.align])  # (F, N, 3)
    timings["covariance"] += time.perf_counter() - clock
    if sel.coarse:
        return

    clock = time.perf_counter()
    sasa.update(chunk.xyz)
    timings["sasa"] += time.perf_counter() - clock

    clock = time.perf_counter()
    ss_counts += dssp_class_counts(md.compute_dssp(chunk, simplified=False))
    timings["dssp"] += time.perf_counter() - clock

    clock = time.perf_counter()
    for indices, _, counts in angle_defs.values():
        if len(indices):
            counts += angle_bin_counts(md.compute_dihedrals(chunk, indices))
    timings["angles"] += time.perf_counter() - clock
