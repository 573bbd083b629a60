"""Molecular dynamics (MD) features of one trajectory: residue and residue-pair dynamics.

Recipe (seqdance-facts.md section 5), applied to the protein residues of a trajectory read
in chunks with MDTraj, so memory does not grow with its length:

* every frame is superposed on frame 0 by its C-alpha atoms;
* DSSP 8-class secondary structure: fraction of frames in each class;
* Shrake-Rupley SASA per residue (MDTraj's definition and defaults, computed frame by frame
  by :mod:`seqdance.features.sasa`): mean and standard deviation, nm^2;
* chi1, phi and psi: fraction of frames in each of 12 bins of 30 degrees, -180 to 180
  (``numpy.histogram`` semantics: bins closed on the left, the last also on the right);
* RMSF of the C-alpha atoms about their mean position after superposition, nm;
* C-alpha correlation: the 3N x 3N coordinate covariance reduced to N x N by the trace of
  each 3x3 block, normalised by ``sqrt(msf_i msf_j)``;
* nine interaction channels: mean number of atom-level contact lines per frame for each
  residue pair (GetContacts rules; contacts-spec.md section 5), each line counted at the one
  cell (atom 1's residue, atom 2's residue) as the authors' script (``interaction_cells=
  "both"``: at both cells, symmetric).

Residues are identified by chain and residue number, never by ``resid - 1``. C-alpha-only
(coarse-grained) trajectories give RMSF and correlation; the rest is marked missing.

The kernels below are pure array functions and streaming accumulators; :func:`md_features`
is the file adapter that feeds them chunk by chunk. Accumulators that sum in floating point
see fixed blocks of frames (:class:`FixedBlocks`), so the output is the same to the last bit
for any chunk size, thread count or scheduler.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.residues import sequence_of
from seqdance.schema import (
    DSSP_CODES,
    INTERACTIONS,
    MD_PAIR_CHANNELS,
    MD_RESIDUE_CHANNELS,
    MISSING,
    N_ANGLE_BINS,
    RESIDUE_FEATURES,
)
from seqdance.utils.io import atomic_path, save_npz

# Output layout, derived from the schema. The CSV stores the raw RMSF (nm) under ``rmsf``;
# the model's ``rmsf_nor`` channel is it divided by the per-protein maximum (at load time).
ID_COLUMNS: tuple[str, ...] = ("chain", "resid", "resname")
_RAW_NAME = {"rmsf_nor": "rmsf"}
FEATURE_COLUMNS: tuple[str, ...] = tuple(_RAW_NAME.get(c, c) for c in MD_RESIDUE_CHANNELS)
RESIDUE_COLUMNS: tuple[str, ...] = ID_COLUMNS + FEATURE_COLUMNS
PAIR_KEYS: tuple[str, ...] = MD_PAIR_CHANNELS  # vdw .. ts, corr
_CHANNELS = {f.name: f.channels for f in RESIDUE_FEATURES}
SS_COLUMNS: tuple[str, ...] = _CHANNELS["ss"]  # same order as schema.DSSP_CODES
ANGLE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: _CHANNELS[name] for name in ("chi", "phi", "psi")
}

# 13 edges, -pi .. pi in steps of 30 degrees (radians, as MDTraj returns dihedrals)
ANGLE_EDGES = np.array([np.pi * (-1.0 + i / 6.0) for i in range(N_ANGLE_BINS + 1)])
DEFAULT_CHUNK = 100  # frames per chunk
MIN_FRAMES = 2


@dataclass
class MDFeatures:
    """MD features of one trajectory: one row per protein residue, in topology order."""

    residues: pd.DataFrame  # (N, len(RESIDUE_COLUMNS)); NaN where undefined
    pair: dict[str, np.ndarray]  # PAIR_KEYS -> (N, N) float64, symmetric
    sequence: str  # N one-letter codes
    n_frames: int  # frames used (after stride)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    notes: list[str] = field(default_factory=list)  # what was read and repaired


# ----------------------------------------------------------------------------- kernels


def angle_bin_counts(angles: np.ndarray, edges: np.ndarray = ANGLE_EDGES) -> np.ndarray:
    """Histogram of each column of ``angles`` over ``edges``, like ``numpy.histogram``.

    Parameters
    ----------
    angles : np.ndarray, shape=(n_frames, n_angles)
        Dihedral angles in radians.
    edges : np.ndarray, shape=(n_bins + 1,)
        Increasing bin edges. Bins are ``[e_k, e_k+1)`` except the last, ``[e_-2, e_-1]``;
        values outside ``[e_0, e_-1]`` and NaN are not counted.

    Returns
    -------
    counts : np.ndarray, shape=(n_angles, n_bins), int64
    """
    values = np.asarray(angles, dtype=np.float64)  # (F, M)
    n_bins = len(edges) - 1
    bins = np.searchsorted(edges, values, side="right") - 1  # (F, M)
    bins[values == edges[-1]] = n_bins - 1
    valid = (values >= edges[0]) & (values <= edges[-1])  # NaN compares False
    cols = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    counts = np.zeros((values.shape[1], n_bins), dtype=np.int64)
    np.add.at(counts, (cols[valid], bins[valid]), 1)
    return counts


def dssp_class_counts(codes: np.ndarray, classes: Iterable[str] = DSSP_CODES) -> np.ndarray:
    """Frames in each DSSP class per residue.

    Parameters
    ----------
    codes : np.ndarray, shape=(n_frames, n_residues), str
        MDTraj ``compute_dssp(simplified=False)`` codes.
    classes : iterable of str
        Codes to count, in output order (default ``B E H I G S T`` and ``' '``).

    Returns
    -------
    counts : np.ndarray, shape=(n_residues, n_classes), int64
    """
    codes = np.asarray(codes)
    return np.stack([(codes == c).sum(axis=0) for c in classes], axis=1).astype(np.int64)


class RunningMoments:
    """Mean and population standard deviation of each column, fed in chunks of rows.

    Chunks are merged with the pairwise update of Chan et al., exact up to rounding.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None  # (M,)
        self.m2: np.ndarray | None = None  # (M,) sum of squared deviations

    def update(self, values: np.ndarray) -> None:
        """Add rows ``values`` of shape (n_rows, M)."""
        x = np.asarray(values, dtype=np.float64)  # (F, M)
        nb = len(x)
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n)


class TraceCovariance:
    """Streaming C-alpha coordinate covariance reduced to residues by 3x3-block traces.

    For coordinates ``x`` of shape (n_frames, N, 3), the reduced covariance is
    ``C_ij = sum_a cov(x_ia, x_ja)``: the trace of block (i, j) of the 3N x 3N covariance
    (the normalisation ``1/n`` or ``1/(n-1)`` cancels in the correlation). Only the N x N
    sum of squared deviations is kept, merged across chunks as in :class:`RunningMoments`.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None  # (N, 3)
        self.m2: np.ndarray | None = None  # (N, N)

    def update(self, xyz: np.ndarray) -> None:
        """Add frames ``xyz`` of shape (n_frames, N, 3)."""
        x = np.asarray(xyz, dtype=np.float64)  # (F, N, 3)
        nb, n_atoms = x.shape[0], x.shape[1]
        if nb == 0:
            return
        mean_b = x.mean(axis=0)  # (N, 3)
        y = (x - mean_b).transpose(0, 2, 1).reshape(nb * 3, n_atoms)  # (3F, N)
        m2_b = y.T @ y  # (N, N)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean  # (N, 3)
        self.m2 = self.m2 + m2_b + (delta @ delta.T) * (self.n * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    def rmsf(self) -> np.ndarray:
        """Root mean square fluctuation about the mean position, shape (N,)."""
        return np.sqrt(np.diag(self.m2) / self.n)

    def correlation(self) -> np.ndarray:
        """``C_ij / sqrt(C_ii C_jj)``, shape (N, N); NaN for an atom that never moves."""
        msf = np.diag(self.m2)  # (N,)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.m2 / np.sqrt(np.outer(msf, msf))


class FixedBlocks:
    """Feeds rows to a chunked accumulator in blocks of ``block`` rows, whatever the chunks.

    :class:`RunningMoments` and :class:`TraceCovariance` merge chunks exactly only up to
    rounding, so their last bits depend on where the chunks end. Fed through this buffer
    they always see the same blocks (rows ``0 .. block - 1``, ``block .. 2 block - 1``, ...,
    then the rest), so the result depends on the rows alone: the same bytes for any chunk
    size. Call :meth:`flush` after the last rows.
    """

    def __init__(self, target, block: int = DEFAULT_CHUNK) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1 (got {block})")
        self.target = target
        self.block = block
        self._rows: list[np.ndarray] = []
        self._n = 0

    def update(self, values: np.ndarray) -> None:
        """Add rows ``values`` of shape (n_rows, ...)."""
        values = np.asarray(values)
        if len(values) == 0:
            return
        self._rows.append(values)
        self._n += len(values)
        if self._n >= self.block:
            rows = np.concatenate(self._rows)
            n_full = (len(rows) // self.block) * self.block
            for start in range(0, n_full, self.block):
                self.target.update(rows[start : start + self.block])
            self._rows = [rows[n_full:]] if n_full < len(rows) else []
            self._n = len(rows) - n_full

    def flush(self) -> None:
        """Pass on the rows of the last, partial block."""
        if self._n:
            self.target.update(np.concatenate(self._rows))
        self._rows, self._n = [], 0


def correlation_reference(xyz: np.ndarray) -> np.ndarray:
    """Slow reference for :class:`TraceCovariance`: full 3N x 3N covariance, then traces.

    ``xyz`` (n_frames, N, 3) -> correlation (N, N).
    """
    n_frames, n = xyz.shape[:2]
    cov3 = np.cov(np.asarray(xyz, dtype=np.float64).reshape(n_frames, 3 * n), rowvar=False)
    cov = np.trace(cov3.reshape(n, 3, n, 3), axis1=1, axis2=3)  # (N, N)
    msf = np.diag(cov)
    return cov / np.sqrt(np.outer(msf, msf))


# ----------------------------------------------------------------------------- files


def chain_label(chain) -> str:
    """GetContacts' chain label: the chain id, ``X`` when blank."""
    chain_id = (getattr(chain, "chain_id", None) or "").strip()
    return chain_id or "X"


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputFileError(f"{path}: no such {what} file")


_READ_ERRORS = (
    OSError, ValueError, RuntimeError, IndexError, KeyError, TypeError, EOFError, ImportError,
)  # fmt: skip


@dataclass(frozen=True)
class _Selection:
    atoms: np.ndarray  # (n_sel,) atom indices in the full topology
    rows: np.ndarray  # (N,) residue indices (in the subset topology) that are output rows
    align: np.ndarray  # (N,) atom indices (in the subset) of each row's C-alpha
    coarse: bool  # C-alpha-only: one atom per residue


def protein_residue_atoms(top) -> np.ndarray:
    """Atoms of protein residues: MDTraj's residue-name rule or VMD's backbone-name rule.

    MDTraj's ``protein`` list misses force-field names (HIE, HID, CYX ...); VMD's rule
    (:func:`seqdance.features.contacts.protein_atoms`) needs N, CA, C, O and so misses
    C-alpha-only residues. Either one suffices. Returns sorted atom indices.
    """
    from seqdance.features.contacts import protein_atoms

    by_name = top.select("protein")
    return np.union1d(by_name, protein_atoms(top)).astype(np.int64)


def _select(top, selection: str, available: np.ndarray | None = None) -> _Selection:
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
    return _Selection(np.asarray(atoms), np.asarray(rows), np.asarray(align), coarse)


class _Interactions:
    """Residue-pair contact counts summed over chunks (native detector)."""

    def __init__(self, detector, keys: list[tuple[str, str]], cells: str = "listed") -> None:
        from functools import partial

        from seqdance.features.getcontacts import residue_pair_counts

        self._count = partial(residue_pair_counts, cells=cells)
        self.detector = detector
        self.keys = keys
        self.sums = {k: np.zeros((len(keys), len(keys))) for k in INTERACTIONS}

    def update(self, xyz: np.ndarray, first_frame: int, stride: int) -> None:
        lines = self.detector.detect(xyz, first_frame=first_frame, stride=stride)
        counts = _pair_counts(self._count, lines, self.keys, 1, "native contact detector")
        for k in INTERACTIONS:
            self.sums[k] += counts[k]


def _pair_counts(count_fn, lines, keys, n_frames: int, source: str) -> dict[str, np.ndarray]:
    try:
        return count_fn(lines, keys, n_frames, INTERACTIONS)
    except KeyError as exc:
        key = exc.args[0] if exc.args else exc
        raise InputFileError(
            f"{source}: residue {key} is not among the selected protein residues"
        ) from None


def _contacts_from_tsv(
    path: Path, keys, n_frames: int, stride: int, cells: str = "listed"
) -> dict[str, np.ndarray]:
    from functools import partial

    from seqdance.features.getcontacts import read_contacts, residue_pair_counts

    header, lines = read_contacts(path)
    if header.total_frames != n_frames:
        raise InputFileError(
            f"{path}: contacts cover {header.total_frames} frames but the trajectory gives "
            f"{n_frames} (stride {stride})"
        )
    try:
        count = partial(residue_pair_counts, cells=cells)
        return _pair_counts(count, lines, keys, n_frames, str(path))
    except ValueError as exc:  # a malformed atom label
        raise InputFileError(f"{path}: {_one_line(exc)}") from None


def _make_detector(prepared, atoms: np.ndarray, reference_xyz: np.ndarray, bond_xyz=None):
    """Native GetContacts-rule detector on the selected atoms (file's own atom names).

    Bonds come from the topology file's own coordinates when it has them, as in GetContacts.
    """
    from seqdance.features.contacts import ContactDetector

    return ContactDetector(
        prepared.topology.subset(atoms), reference_xyz, INTERACTIONS, "protein", bond_xyz=bond_xyz
    )


def _describe(trajectory) -> str:
    if isinstance(trajectory, (str, os.PathLike)):
        return str(trajectory)
    if isinstance(trajectory, (list, tuple)):
        more = f" (+{len(trajectory) - 1} more)" if len(trajectory) > 1 else ""
        return str(trajectory[0]) + more
    parts = getattr(trajectory, "parts", None)
    return str(parts[0][0]) if parts else "trajectory"


def md_features(
    topology,
    trajectory,
    contacts: str | os.PathLike | None = None,
    stride: int = 1,
    selection: str = "protein",
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
    interaction_cells: str = "listed",
) -> MDFeatures:
    """MD features of the protein residues of one trajectory.

    Parameters
    ----------
    topology : path or PreparedTopology
        PDB, mmCIF, GRO, PSF, PRMTOP, H5 ... read and made consistent by
        :func:`seqdance.features.topology.load_topology` (chains, insertion codes, elements).
    trajectory : path, list of paths, or FrameSource
        DCD, XTC, TRR, NetCDF, H5, multi-frame GRO, multi-model PDB ...; several files
        (replicas) are pooled; a :class:`~seqdance.features.trajectory.FrameSource` from
        :func:`seqdance.features.sources.open_source` reads a published source. Read in
        chunks of ``chunk_size`` frames (made whole across the periodic box); only
        accumulators stay in memory.
    contacts : path, optional
        GetContacts dynamic-contacts TSV for the same frames. Without it, interactions are
        detected natively (:mod:`seqdance.features.contacts`).
    stride : int
        Use every ``stride``-th frame.
    selection : str
        MDTraj selection, intersected with ``protein`` (waters, ions, ligands are dropped).
    interaction_cells : "listed" or "both"
        Each contact line at one cell in GetContacts' atom order (the authors) or at both
        (symmetric); see :func:`seqdance.features.getcontacts.residue_pair_counts`.

    Returns
    -------
    MDFeatures
        ``residues``: (N, RESIDUE_COLUMNS), ``pair``: ``{PAIR_KEYS: (N, N)}``. For a
        C-alpha-only trajectory only ``rmsf`` and ``corr`` are computed: residue columns are
        NaN and the interaction channels are ``MISSING`` (-1) unless ``contacts`` is given.
    """
    import mdtraj as md

    if stride < 1:
        raise SeqDanceError(f"stride must be >= 1 (got {stride})")
    if chunk_size < 1:
        raise SeqDanceError(f"chunk size must be >= 1 (got {chunk_size})")
    contacts_path = Path(contacts) if contacts is not None else None
    trj_label = _describe(trajectory)
    if contacts_path is not None:
        from seqdance.features.getcontacts import read_contacts

        read_contacts(contacts_path)  # fail on a file that is not a GetContacts TSV before reading
    timings: dict[str, float] = dict.fromkeys(
        ("read", "superpose", "sasa", "dssp", "angles", "covariance", "contacts"), 0.0
    )
    clock = time.perf_counter()

    from seqdance.features.topology import geometry_topology, unbroken_dihedrals
    from seqdance.features.trajectory import open_system

    prepared, source = open_system(topology, trajectory)
    top = geometry_topology(prepared.topology)  # standard names for DSSP and dihedrals
    sel = _select(top, selection, available=source.available)
    sub_top = top.subset(sel.atoms)
    named = prepared.topology.subset(sel.atoms)  # residue names as written, for the output
    residues = [named.residue(int(r)) for r in sel.rows]
    keys_all = [(chain_label(r.chain), str(r.resSeq)) for r in sub_top.residues]
    n_res_all, n_rows = sub_top.n_residues, len(sel.rows)

    own_xyz = prepared.xyz[sel.atoms] if prepared.xyz is not None else None
    # frame 0 of the selected atoms, made whole; chains keep the topology's arrangement
    first_xyz = source.first_frame(sel.atoms, sub_top, own_xyz, prepared.box)
    reference = md.Trajectory(first_xyz[None].astype(np.float32), sub_top)

    warnings: list[str] = list(source.warnings)
    notes: list[str] = list(prepared.notes) + list(source.notes)
    interactions = None
    want_native = contacts_path is None and not sel.coarse
    if (want_native or contacts_path is not None) and len(set(keys_all)) != len(keys_all):
        raise SeqDanceError(
            "residues in the selection share a chain and residue number; interactions "
            "cannot be assigned to residues (select one copy with --selection)"
        )
    if want_native:
        detector = _make_detector(prepared, sel.atoms, reference.xyz[0], source.reference_xyz)
        warnings.extend(getattr(detector, "warnings", []))
        interactions = _Interactions(detector, keys_all, interaction_cells)
    if sel.coarse:
        warnings.append(
            "C-alpha-only trajectory: only rmsf and corr are computed; SASA, secondary "
            "structure and dihedrals are left empty"
            + ("" if contacts_path else ", interaction channels set to -1")
        )

    covariance = TraceCovariance()
    covariance_blocks = FixedBlocks(covariance)  # same bytes for any chunk size
    sasa = None if sel.coarse else _ResidueSasa(sub_top, prepared.path, trj_label)
    ss_counts = np.zeros((n_res_all, len(DSSP_CODES)), dtype=np.int64)
    angle_defs = {}  # name -> (atom indices (M, 4), residue of each (M,), bin counts (M, 12))
    if not sel.coarse:
        for name, fn, owner, peptide in (
            ("chi", md.compute_chi1, 1, None),
            ("phi", md.compute_phi, 2, (0, 1)),
            ("psi", md.compute_psi, 1, (2, 3)),
        ):
            indices, _ = fn(reference)  # (M, 4); owner atom: CA of the residue
            if peptide is not None:  # no dihedral across a chain break
                indices = indices[unbroken_dihedrals(indices, first_xyz, peptide)]
            res_of = np.array([sub_top.atom(int(a)).residue.index for a in indices[:, owner]])
            angle_defs[name] = (indices, res_of, np.zeros((len(indices), N_ANGLE_BINS), np.int64))
    timings["read"] += time.perf_counter() - clock

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"MD {Path(trj_label).name}", unit="frame", leave=False, disable=None)
    n_frames = 0
    try:
        blocks = source.blocks(sel.atoms, chunk_size, stride, sub_top)
        while True:
            clock = time.perf_counter()
            try:
                block = next(blocks)
            except StopIteration:
                break
            chunk = md.Trajectory(block.xyz, sub_top)
            timings["read"] += time.perf_counter() - clock
            if chunk.n_frames == 0:
                continue
            _accumulate(
                chunk, reference, sel, n_frames, stride, covariance_blocks, sasa, ss_counts,
                angle_defs, interactions, timings,
            )  # fmt: skip
            n_frames += chunk.n_frames
            if bar is not None:
                bar.update(chunk.n_frames)
    finally:
        if bar is not None:
            bar.close()
    if n_frames < MIN_FRAMES:
        raise InputFileError(f"{trj_label}: MD features need at least {MIN_FRAMES} frames")
    notes = notes + source.summary() + [n for n in source.notes if n not in notes]
    covariance_blocks.flush()
    if sasa is not None:
        sasa.blocks.flush()

    clock = time.perf_counter()
    moments = sasa.moments if sasa is not None else None
    table = _residue_table(residues, sel, n_frames, covariance, moments, ss_counts, angle_defs)
    rows = sel.rows
    pair: dict[str, np.ndarray] = {}
    if contacts_path is not None:
        counts = _contacts_from_tsv(contacts_path, keys_all, n_frames, stride, interaction_cells)
        for k in INTERACTIONS:
            pair[k] = counts[k][np.ix_(rows, rows)]
    elif interactions is not None:
        for k in INTERACTIONS:
            pair[k] = interactions.sums[k][np.ix_(rows, rows)] / n_frames
    else:
        for k in INTERACTIONS:
            pair[k] = np.full((n_rows, n_rows), MISSING)
    pair["corr"] = covariance.correlation()
    timings["contacts"] += time.perf_counter() - clock
    return MDFeatures(
        residues=table,
        pair={k: pair[k] for k in PAIR_KEYS},
        sequence=sequence_of(r.name for r in residues),
        n_frames=n_frames,
        warnings=warnings,
        timings=timings,
        notes=notes,
    )


class _ResidueSasa:
    """Per-residue SASA of each frame (:mod:`seqdance.features.sasa`, MDTraj's definition),
    mean and standard deviation over frames accumulated in fixed blocks."""

    def __init__(self, topology, top_path: Path, source: Path) -> None:
        from seqdance.features.sasa import atomic_radii, residue_groups

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
        from seqdance.features.sasa import shrake_rupley

        try:
            areas = shrake_rupley(xyz, self.radii, self.groups, self.n_groups)  # (F, n_res) nm^2
        except ValueError as exc:  # non-finite coordinates
            raise InputFileError(f"{self.source}: {_one_line(exc)}") from None
        self.blocks.update(areas)


def _accumulate(
    chunk, reference, sel, first_index, stride, covariance, sasa, ss_counts, angle_defs,
    interactions, timings,
) -> None:  # fmt: skip
    """Add one chunk (selected atoms, nm) to every accumulator."""
    import mdtraj as md

    if interactions is not None:  # distances: superposition does not matter
        clock = time.perf_counter()
        interactions.update(chunk.xyz, first_frame=first_index * stride, stride=stride)
        timings["contacts"] += time.perf_counter() - clock

    clock = time.perf_counter()
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


def _residue_table(residues, sel, n_frames, covariance, sasa, ss_counts, angle_defs):
    rows = sel.rows
    n = len(rows)
    data: dict[str, object] = {
        "chain": [chain_label(r.chain) for r in residues],
        # residue numbers with their insertion codes (163A) when any residue has one
        "resid": (
            [str(r.resSeq) for r in residues]
            if any(getattr(r.resSeq, "icode", "") for r in residues)
            else [int(r.resSeq) for r in residues]
        ),
        "resname": [r.name for r in residues],
    }
    blank = np.full(n, np.nan)
    if sel.coarse:
        data["sasa_mean"], data["sasa_std"] = blank, blank
    else:
        data["sasa_mean"], data["sasa_std"] = sasa.mean[rows], sasa.std[rows]
    data["rmsf"] = covariance.rmsf()
    ss = ss_counts[rows] / n_frames if not sel.coarse else np.full((n, len(SS_COLUMNS)), np.nan)
    for j, col in enumerate(SS_COLUMNS):
        data[col] = ss[:, j]
    row_of = {int(r): i for i, r in enumerate(rows)}
    for name, columns in ANGLE_COLUMNS.items():
        values = np.full((n, N_ANGLE_BINS), np.nan)
        if name in angle_defs:
            _, res_of, counts = angle_defs[name]
            for m, res in enumerate(res_of):
                if int(res) in row_of:
                    values[row_of[int(res)]] = counts[m] / n_frames
        for j, col in enumerate(columns):
            data[col] = values[:, j]
    return pd.DataFrame(data, columns=list(RESIDUE_COLUMNS))


# ----------------------------------------------------------------------------- output


def output_paths(prefix: str | os.PathLike) -> tuple[Path, Path]:
    """``PREFIX.residue.csv`` and ``PREFIX.pair.npz``."""
    prefix = str(prefix)
    return Path(prefix + ".residue.csv"), Path(prefix + ".pair.npz")


def write_md_features(features: MDFeatures, prefix: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``PREFIX.residue.csv`` (empty cells where undefined) and ``PREFIX.pair.npz``.

    Both files are written to temporary names and renamed only when both are complete.
    """
    csv_path, npz_path = output_paths(prefix)
    with atomic_path(csv_path) as tmp:
        features.residues.to_csv(tmp, index=False, na_rep="")
        save_npz(
            npz_path,
            **{k: np.asarray(features.pair[k], dtype=np.float64) for k in PAIR_KEYS},
            sequence=np.array(features.sequence),
            n_frames=np.array(features.n_frames),
        )
    return csv_path, npz_path


def load_md_features(prefix: str | os.PathLike) -> MDFeatures:
    """Read the two files written by :func:`write_md_features`."""
    csv_path, npz_path = output_paths(prefix)
    try:
        table = pd.read_csv(
            csv_path, dtype={"chain": str, "resname": str}, keep_default_na=False, na_values=[""]
        )
        missing = [c for c in RESIDUE_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"missing columns {', '.join(missing)}")
        table = table[list(RESIDUE_COLUMNS)]
        table[list(FEATURE_COLUMNS)] = table[list(FEATURE_COLUMNS)].astype(np.float64)
        with np.load(npz_path, allow_pickle=False) as data:
            pair = {k: data[k] for k in PAIR_KEYS}
            sequence = str(data["sequence"])
            n_frames = int(data["n_frames"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileError(f"{prefix}: not valid MD feature files ({_one_line(exc)})") from None
    return MDFeatures(residues=table, pair=pair, sequence=sequence, n_frames=n_frames)
