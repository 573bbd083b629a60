"""Which reader reads a file: by its suffix (``.gz``, ``.bz2``, ``.xz`` stripped), and by its
first bytes where one suffix names two formats.

* ``.top``, ``.parm7``, ``.prmtop`` and any unknown suffix: an AMBER prmtop when the file
  starts with ``%VERSION``/``%FLAG``; a ``.top``/``.itp`` without it is GROMACS' (refused);
* ``.crd``/``.cor``: CHARMM coordinates when the first line is a ``*`` title, else AMBER mdcrd;
* ``.coor``: NAMD binary when its size is 4 + 24 n bytes for the n atoms its first word
  says, else CHARMM text.

Readers that take a handle (PDB, mmCIF, GRO, PSF) read a compressed file as a stream
(:func:`~seqdance.features.formats.compressed.open_text`); readers that take a name (MDTraj's,
MDAnalysis') get a decompressed copy (:func:`~seqdance.features.formats.compressed.local_copy`),
and their messages name the file given. Refused in one line, saying what is missing: LAMMPS
data (no residue names), GROMACS ``.top``/``.itp`` (no atoms in order; use the ``.tpr``),
coordinate-only files given as a topology. The table of formats is in docs/md-features.md.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.formats import dcd, generic, gro, mmcif, pdb, prmtop, psf, tpr, xtc
from seqdance.features.formats.common import AtomTable, FramePart, read_table
from seqdance.features.formats.compressed import format_name, local_copy, open_bytes, open_text
from seqdance.features.formats.mdanalysis import frame_opener, table_reader

TableReader = Callable[[Path], AtomTable]
FrameOpener = Callable[[Path, object, str], FramePart]  # (path, prepared topology, label)

CHARMM_CRD = (".crd", ".cor")
NAMD_BINARY = (".coor",)
LAMMPS_DATA = (".data", ".lmp", ".lammps", ".lammpsdata")
GROMACS_TOP = (".top", ".itp")
COORDINATES_ONLY = (
    ".dcd", ".xtc", ".trr", ".nc", ".ncdf", ".netcdf", ".trc", ".mdcrd", ".binpos", ".dtr",
    ".lammpstrj", ".xyz", ".trj", ".rst7", ".inpcrd", ".ncrst",
)  # fmt: skip

TOPOLOGY_READERS: tuple[tuple[tuple[str, ...], TableReader], ...] = (
    ((".pdb", ".ent"), pdb.read_pdb_table),
    ((".pqr",), table_reader("PQR")),
    ((".pdbqt",), table_reader("PDBQT")),
    ((".cif", ".mmcif", ".pdbx"), mmcif.read_cif_table),
    ((".gro",), gro.read_gro_table),
    ((".psf", ".xpsf"), psf.read_psf_table),
    ((".tpr",), tpr.read_tpr_table),
    ((".dms",), table_reader("DMS")),
    ((".prmtop", ".parm7"), prmtop.read_prmtop_table),
)
TRAJECTORY_OPENERS: tuple[tuple[tuple[str, ...], FrameOpener], ...] = (
    ((".dcd",), dcd.open_dcd_frames),
    ((".xtc",), xtc.open_xtc_frames),
    ((".gro",), gro.open_gro_frames),
    ((".cif", ".mmcif", ".pdbx"), mmcif.open_cif_frames),
    ((".pdb", ".ent"), pdb.open_pdb_frames),
    ((".pqr",), frame_opener("PQR")),
    ((".pdbqt",), frame_opener("PDBQT")),
    ((".dms",), frame_opener("DMS")),
    ((".trc",), frame_opener("TRC")),
)
# readers that decompress for themselves (through compressed.open_text)
STREAMING = {
    pdb.read_pdb_table,
    mmcif.read_cif_table,
    gro.read_gro_table,
    psf.read_psf_table,
    gro.open_gro_frames,
    mmcif.open_cif_frames,
    pdb.open_pdb_frames,
}


def _first_line(path: Path) -> str:
    """First non-blank line of a (compressed) text file; "" if there is none or no text."""
    try:
        with open_text(path) as fh:
            for _ in range(20):
                line = fh.readline()
                if not line or line.strip():
                    return line.strip()
    except Exception:  # binary or damaged: not the text format asked about
        return ""
    return ""


def _is_namd_binary(path: Path) -> bool:
    """NAMD binary coordinates: an int32 atom count n, then 3 n doubles (either byte order)."""
    try:
        with open_bytes(path) as fh:
            head = fh.read(4)
        size = local_copy(path).stat().st_size
    except Exception:  # unreadable: let the reader say why
        return False
    if len(head) < 4:
        return False
    return any(4 + 24 * struct.unpack(e + "i", head)[0] == size for e in "<>")


def _refuse_topology(path: Path, name: str) -> None:
    if name.endswith(LAMMPS_DATA):
        raise InputFileError(
            f"{path}: a LAMMPS data file has no residue or atom names (atoms carry numeric "
            "types only), so residues cannot be known; give a topology with residue names of "
            "the same system (PDB, PSF, GRO, PRMTOP) and this system's trajectory (DCD, XTC)"
        )
    if name.endswith(GROMACS_TOP):
        raise InputFileError(
            f"{path}: a GROMACS topology (.top/.itp, no %VERSION/%FLAG header, so not AMBER) "
            "lists parameters and #include files, not the atoms in order; give the run input "
            "(.tpr) or a .gro/.pdb of the same system"
        )
    if name.endswith(COORDINATES_ONLY + NAMD_BINARY) or (
        name.endswith(CHARMM_CRD) and not _first_line(path).startswith("*")
    ):
        raise InputFileError(
            f"{path}: holds coordinates only, no atom or residue names; give it as the "
            "trajectory, with a topology of the same system (PDB, PSF, PRMTOP, GRO, TPR ...)"
        )


def topology_reader(path: Path) -> TableReader:
    """The atom-table reader of a topology file (refusals as one InputFileError line)."""
    name = format_name(path)
    for suffixes, reader in TOPOLOGY_READERS:
        if name.endswith(suffixes):
            return reader
    if prmtop.is_prmtop(path):
        return prmtop.read_prmtop_table
    if name.endswith(CHARMM_CRD) and _first_line(path).startswith("*"):
        return table_reader("CRD")
    if name.endswith(NAMD_BINARY) and not _is_namd_binary(path):
        return table_reader("CRD")  # CHARMM text under NAMD's suffix
    _refuse_topology(path, name)
    return generic.read_generic_table


def trajectory_opener(path: Path) -> FrameOpener:
    """The frame opener of a trajectory file."""
    name = format_name(path)
    for suffixes, opener in TRAJECTORY_OPENERS:
        if name.endswith(suffixes):
            return opener
    if name.endswith(LAMMPS_DATA):
        raise InputFileError(
            f"{path}: a LAMMPS data file is one configuration without residue names, not a "
            "trajectory; give the run's trajectory (DCD, XTC, lammpstrj) with a topology "
            "that has residue names"
        )
    if name.endswith(CHARMM_CRD) and _first_line(path).startswith("*"):
        return frame_opener("CRD")
    if name.endswith(NAMD_BINARY):
        return frame_opener("NAMDBIN" if _is_namd_binary(path) else "CRD")
    return generic.open_generic_frames


def _named(message: str, copy: Path, path: Path) -> str:
    return message.replace(str(copy), str(path))


def _on_copy(path: Path, call):
    """``call(local_copy(path))``, with the copy's name in messages put back to ``path``
    (the frames it reads later included)."""
    copy = local_copy(path)
    if copy == path:
        return call(path)
    try:
        result = call(copy)
    except InputFileError as exc:
        raise InputFileError(_named(str(exc), copy, path)) from None
    if isinstance(result, FramePart):
        read = result.read

        def renamed(atoms, chunk):
            try:
                yield from read(atoms, chunk)
            except InputFileError as exc:
                raise InputFileError(_named(str(exc), copy, path)) from None

        result.read = renamed
        result.notes = [_named(m, copy, path) for m in result.notes]
        result.warnings = [_named(m, copy, path) for m in result.warnings]
    return result


def read_atom_table(path: str | os.PathLike) -> AtomTable:
    """Per-atom records of any supported topology file (one-line error if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such topology file")
    reader = topology_reader(path)
    if reader in STREAMING:
        return read_table(path, reader)
    return _on_copy(path, lambda copy: read_table(copy, reader))


def open_frames(path: Path, prepared, label: str) -> FramePart:
    """One trajectory file of the ``prepared`` topology, counted and ready to read."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such trajectory file")
    opener = trajectory_opener(path)

    def call(file: Path) -> FramePart:
        try:
            return opener(file, prepared, label)
        except SeqDanceError:
            raise
        except Exception as exc:  # readers raise assorted types for bad files
            raise InputFileError(f"{file}: cannot read trajectory: {_one_line(exc)}") from None

    return call(path) if opener in STREAMING else _on_copy(path, call)
