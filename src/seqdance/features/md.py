"""Molecular dynamics (MD) features of one trajectory: residue and residue-pair dynamics.

Recipe (docs/md-features.md), applied to the protein residues of a trajectory read
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

The kernels are pure array functions and streaming accumulators
(:mod:`seqdance.features.md_kernels`); :func:`md_features` is the file adapter that feeds
them chunk by chunk (the steps are in :mod:`seqdance.features.md_steps`). Accumulators
that sum in floating point see fixed blocks of frames (:class:`FixedBlocks`), so the output
is the same to the last bit for any chunk size, thread count or scheduler.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.getcontacts import read_contacts
from seqdance.features.md_kernels import DEFAULT_CHUNK, FixedBlocks, TraceCovariance
from seqdance.features.md_steps import (
    NativeInteractions,
    ResidueSasa,
    accumulate,
    contacts_from_tsv,
    describe_trajectory,
    make_detector,
    select_residues,
)
from seqdance.features.sources import open_source, options_from
from seqdance.features.topology import geometry_topology, unbroken_dihedrals
from seqdance.features.trajectory import open_system
from seqdance.residues import letter_notes, sequence_of
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
from seqdance.utils.progress import progress_bar

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

MIN_FRAMES = 2
PAIR_DTYPES = ("float64", "float32")  # precision the pair arrays are held and written in


@dataclass
class MDFeatures:
    """MD features of one trajectory: one row per protein residue, in topology order."""

    residues: pd.DataFrame  # (N, len(RESIDUE_COLUMNS)); NaN where undefined
    pair: dict[str, np.ndarray]  # PAIR_KEYS -> (N, N) float64 (or float32, see pair_dtype)
    sequence: str  # N one-letter codes
    n_frames: int  # frames used (after stride)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    notes: list[str] = field(default_factory=list)  # what was read and repaired


def chain_label(chain) -> str:
    """GetContacts' chain label: the chain id, ``X`` when blank."""
    chain_id = (getattr(chain, "chain_id", None) or "").strip()
    return chain_id or "X"


def open_md_input(
    topology: str | os.PathLike | None = None,
    trajectories: Sequence[str | os.PathLike] = (),
    *,
    source: str | None = None,
    input_path: str | os.PathLike | None = None,
    temperatures: str | None = None,
    replicas: str | None = None,
    skip: int | None = None,
    backmapped: Sequence[str | os.PathLike] | None = None,
):
    """The ``(topology, trajectory)`` :func:`md_features` reads, as ``features md`` gets them.

    A published source's download (``source`` and ``input_path``, read natively by
    :func:`seqdance.features.sources.open_source` with ``temperatures``, ``replicas``,
    ``skip`` and ``backmapped``); else ``topology`` and ``trajectories`` (several are pooled
    replicas), with ``skip`` frames dropped at the start of each.
    """
    if source is not None:
        options = options_from(temperatures, replicas, skip, backmapped)
        return open_source(source, input_path, options)
    trajectory = trajectories if len(trajectories) > 1 else trajectories[0]
    if skip:
        return open_system(topology, trajectory, skip=skip)
    return topology, trajectory


def md_features(
    topology,
    trajectory,
    contacts: str | os.PathLike | None = None,
    stride: int = 1,
    selection: str = "protein",
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
    interaction_cells: str = "listed",
    pbc: str = "cluster",
    pair_dtype: str = "float64",
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
    pbc : "cluster", "whole" or "none"
        Periodic imaging (:mod:`seqdance.features.imaging`): molecules made whole and the
        chains of a complex kept together (default), molecules made whole only, or off.
    pair_dtype : "float64" or "float32"
        Precision the (N, N) pair arrays are held and written in. ``float64`` (default) as
        the authors; ``float32`` halves their memory and file size: every value is the
        float64 one correctly rounded (relative change under 6e-8, docs/differences.md).

    Returns
    -------
    MDFeatures
        ``residues``: (N, RESIDUE_COLUMNS), ``pair``: ``{PAIR_KEYS: (N, N)}``. For a
        C-alpha-only trajectory only ``rmsf`` and ``corr`` are computed: residue columns are
        NaN and the interaction channels are ``MISSING`` (-1) unless ``contacts`` is given.
    """
    if stride < 1:
        raise SeqDanceError(f"stride must be >= 1 (got {stride})")
    if chunk_size < 1:
        raise SeqDanceError(f"chunk size must be >= 1 (got {chunk_size})")
    if pair_dtype not in PAIR_DTYPES:
        raise SeqDanceError(
            f"pair dtype must be one of {', '.join(PAIR_DTYPES)} (got {pair_dtype!r})"
        )
    dtype = np.dtype(pair_dtype)
    contacts_path = Path(contacts) if contacts is not None else None
    trj_label = describe_trajectory(trajectory)
    if contacts_path is not None:
        read_contacts(contacts_path)  # fail on a file that is not a GetContacts TSV before reading
    timings: dict[str, float] = dict.fromkeys(
        ("read", "superpose", "sasa", "dssp", "angles", "covariance", "contacts"), 0.0
    )
    clock = time.perf_counter()

    prepared, source = open_system(topology, trajectory)
    source.set_pbc(pbc)
    top = geometry_topology(prepared.topology)  # standard names for DSSP and dihedrals
    sel = select_residues(top, selection, available=source.available)
    sub_top = top.subset(sel.atoms)
    named = prepared.topology.subset(sel.atoms)  # residue names as written, for the output
    residues = [named.residue(int(r)) for r in sel.rows]
    keys_all = [(chain_label(r.chain), str(r.resSeq)) for r in sub_top.residues]
    names_all = [r.name for r in named.residues]  # as written (HIE, HSD): TSV labels match them
    n_res_all, n_rows = sub_top.n_residues, len(sel.rows)

    own_xyz = prepared.xyz[sel.atoms] if prepared.xyz is not None else None
    # frame 0 of the selected atoms, made whole and its chains placed together
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
        detector = make_detector(prepared, sel.atoms, reference.xyz[0], source.reference_xyz)
        warnings.extend(getattr(detector, "warnings", []))
        interactions = NativeInteractions(detector, keys_all, interaction_cells)
    if sel.coarse:
        warnings.append(
            "C-alpha-only trajectory: only rmsf and corr are computed; SASA, secondary "
            "structure and dihedrals are left empty"
            + ("" if contacts_path else ", interaction channels set to -1")
        )

    covariance = TraceCovariance()
    covariance_blocks = FixedBlocks(covariance)  # same bytes for any chunk size
    sasa = None if sel.coarse else ResidueSasa(sub_top, prepared.path, trj_label)
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
        bar = progress_bar(desc=f"MD {Path(trj_label).name}", unit="frame", leave=False)
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
            accumulate(
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
    notes += letter_notes(r.name for r in residues)
    covariance_blocks.flush()
    if sasa is not None:
        sasa.blocks.flush()

    clock = time.perf_counter()
    moments = sasa.moments if sasa is not None else None
    table = _residue_table(residues, sel, n_frames, covariance, moments, ss_counts, angle_defs)
    rows = sel.rows
    pair: dict[str, np.ndarray] = {}
    if contacts_path is not None:
        counts = contacts_from_tsv(
            contacts_path, keys_all, n_frames, stride, interaction_cells, names_all
        )
        for n, k in enumerate(INTERACTIONS):
            pair[k] = counts.dense(n, rows, n_frames, dtype)
    elif interactions is not None:
        for k in INTERACTIONS:
            pair[k] = interactions.mean(k, rows, n_frames, dtype)
    else:
        for k in INTERACTIONS:
            pair[k] = np.full((n_rows, n_rows), MISSING, dtype=dtype)
    pair["corr"] = covariance.correlation(dtype)
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

    Pair arrays are written as float64, or as float32 when they are held so (``pair_dtype``).
    Both files are written to temporary names and renamed only when both are complete.
    """
    csv_path, npz_path = output_paths(prefix)
    with atomic_path(csv_path) as tmp:
        features.residues.to_csv(tmp, index=False, na_rep="")
        save_npz(
            npz_path,
            **{k: _pair_array(features.pair[k]) for k in PAIR_KEYS},
            sequence=np.array(features.sequence),
            n_frames=np.array(features.n_frames),
        )
    return csv_path, npz_path


def _pair_array(values) -> np.ndarray:
    """A pair array as written: float32 stays float32, anything else float64."""
    values = np.asarray(values)
    return values if values.dtype == np.float32 else values.astype(np.float64, copy=False)


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
