"""The paper's public MD sources, read as published.

Each reader turns a download, in the layout its authors publish, into a prepared topology
and a :class:`~seqdance.features.trajectory.FrameSource` that
:func:`seqdance.features.md.md_features` consumes. Replicas (and mdCATH temperatures) are
**pooled**: their frames follow each other and every feature is computed over all of them,
as over one trajectory (superposed on the first frame of the first replica).

* ``mdCATH``: ``mdcath_dataset_{domain}.h5``, group ``{domain}`` with ``pdbProteinAtoms``
  (PDB text), ``resid``, ``resname``, ``element``, ``chain`` and subgroups
  ``{temperature}/{replica}`` with ``coords`` (frames, atoms, 3) in Angstrom and ``box`` in
  nm; read in chunks of frames with h5py, coordinates converted to nm;
* ``ATLAS``: a folder with ``{id}.pdb`` and ``{id}_R1.xtc`` .. ``{id}_R3.xtc`` (the archive
  README's naming) or ``{id}_prod_R1_fit.xtc`` .. (older downloads); when both exist for a
  replica the ``_fit`` file is used;
* ``IDRome``: a folder with ``top.pdb`` (one bead per residue, named like its residue) and
  ``traj.xtc``; the first 10 frames are dropped as the IDRome authors do; a back-mapped
  all-atom pair (cg2all ``top_all.pdb`` + ``traj_all.dcd`` in the folder, or given paths)
  gives the full feature set;
* ``PED``: a multi-model PDB ensemble; models are matched atom by atom and atoms missing from
  any model are dropped (:mod:`seqdance.features.formats.pdb`);
* ``GPCRmd``: a folder with a PSF (or PDB) and DCD/XTC trajectories of the whole membrane
  system; only protein residues are used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.errors import one_line as _one_line
from seqdance.features.formats.common import AtomTable, Block
from seqdance.features.formats.pdb import parse_pdb_atoms
from seqdance.features.topology import build_topology
from seqdance.features.trajectory import FrameSource, open_system

NATIVE_SOURCES = ("mdCATH", "ATLAS", "IDRome", "PED", "GPCRmd")
MDCATH_TEMPERATURES = (320, 348, 379, 413, 450)
MDCATH_DEFAULT_TEMPERATURES = (320,)
IDROME_SKIP = 10  # frames the IDRome authors drop before their analysis
# which of SourceOptions' choices each reader takes (skip: all of them)
SOURCE_OPTIONS = {
    "mdCATH": ("temperatures", "replicas"),
    "ATLAS": ("replicas",),
    "IDRome": ("backmapped",),
    "PED": (),
    "GPCRmd": (),
}
MDCATH_MAX_ANGSTROM = 1e5  # |coordinate| beyond this (10 um) is a damaged file, not a protein


@dataclass(frozen=True)
class SourceOptions:
    """Choices a source reader takes (unused ones are ignored)."""

    temperatures: tuple[int, ...] | None = None  # mdCATH; default 320 K
    replicas: tuple[int, ...] | None = None  # mdCATH 0-4, ATLAS 1-3; default all
    skip: int | None = None  # frames dropped at the start of each replica
    backmapped: tuple[Path, Path] | None = None  # IDRome all-atom (topology, trajectory)


def canonical_source(name: str) -> str:
    for known in NATIVE_SOURCES:
        if known.lower() == name.strip().lower():
            return known
    raise SeqDanceError(f"unknown MD source {name!r}; native readers: {', '.join(NATIVE_SOURCES)}")


def open_source(source: str, path: str | os.PathLike, options: SourceOptions | None = None):
    """``(PreparedTopology, FrameSource)`` of one protein in a source's published layout."""
    options = options or SourceOptions()
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    name = canonical_source(source)
    given = [f for f in ("temperatures", "replicas", "backmapped") if getattr(options, f)]
    unused = [f for f in given if f not in SOURCE_OPTIONS[name]]
    if unused:  # an option this source does not read is never ignored silently
        takes = ", ".join(SOURCE_OPTIONS[name]) or "none of temperatures, replicas, backmapped"
        raise SeqDanceError(f"{unused[0]} is not an option of source {name} (it takes: {takes})")
    for field in ("temperatures", "replicas"):
        values = getattr(options, field) or ()
        if len(set(values)) != len(values):
            raise SeqDanceError(
                f"{field}: {list(values)} lists one twice (it would be pooled twice)"
            )
    reader = {
        "mdCATH": _open_mdcath,
        "ATLAS": _open_atlas,
        "IDRome": _open_idrome,
        "PED": _open_ped,
        "GPCRmd": _open_gpcrmd,
    }[name]
    return reader(path, options)


# ----------------------------------------------------------------------------- mdCATH


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return _text(value.item()) if value.shape == () else "".join(_text(v) for v in value)
    return str(value)


def _mdcath_file(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.glob("mdcath_dataset_*.h5"))
        if len(found) != 1:
            raise InputFileError(f"{path}: expected one mdcath_dataset_*.h5, found {len(found)}")
        return found[0]
    return path


def _open_mdcath(path: Path, options: SourceOptions):
    h5_path = _mdcath_file(path)
    try:
        h5 = h5py.File(h5_path, "r")
    except OSError as exc:
        raise InputFileError(f"{h5_path}: not a readable HDF5 file ({_one_line(exc)})") from None
    with h5:
        domains = list(h5.keys())
        stem = h5_path.stem.removeprefix("mdcath_dataset_")
        domain = stem if stem in h5 else (domains[0] if len(domains) == 1 else None)
        if domain is None or "pdbProteinAtoms" not in h5[domain]:
            raise InputFileError(f"{h5_path}: no mdCATH domain group with pdbProteinAtoms")
        group = h5[domain]
        table = parse_pdb_atoms(_text(group["pdbProteinAtoms"][()]).splitlines())
        n_atoms = _mdcath_atoms(group, table, h5_path)
        if n_atoms < len(table):  # every replica holds fewer: keep the atoms they hold
            table = _head(table, n_atoms)
        if "element" in group and not all(table.elements):
            given = [_text(e).strip() for e in group["element"][()]][:n_atoms]
            if len(given) == n_atoms:
                table.elements = [e or t for e, t in zip(given, table.elements, strict=True)]
        available = [t for t in group.keys() if t.isdigit()]
        temps = options.temperatures or MDCATH_DEFAULT_TEMPERATURES
        parts, notes = [], []
        for temp in temps:
            if str(temp) not in group:
                raise InputFileError(
                    f"{h5_path}: no temperature {temp} K (has {', '.join(available) or 'none'})"
                )
            reps = sorted(group[str(temp)].keys(), key=int)
            chosen = [str(r) for r in options.replicas] if options.replicas else reps
            for rep in chosen:
                if rep not in group[str(temp)] or "coords" not in group[str(temp)][rep]:
                    raise InputFileError(f"{h5_path}: no coordinates for {temp} K replica {rep}")
                coords = group[str(temp)][rep]["coords"]
                if coords.ndim != 3 or coords.shape[1] != n_atoms:
                    raise InputFileError(
                        f"{h5_path}: {temp}/{rep}/coords has shape {coords.shape}, expected "
                        f"(frames, {n_atoms}, 3)"
                    )
                label = f"{h5_path.name}:{temp}K/replica {rep}"
                parts.append(
                    (label, int(coords.shape[0]), _mdcath_reader(h5_path, domain, temp, rep))
                )
    prepared = build_topology(table, h5_path)
    prepared.notes.append(
        f"mdCATH {domain}: temperatures {', '.join(map(str, temps))} K, "
        f"{len(parts)} replica trajectories pooled"
    )
    return prepared, FrameSource(parts, prepared.n_atoms, skip=options.skip or 0, notes=notes)


def _mdcath_atoms(group, table, h5_path: Path) -> int:
    """The atom count that every ``coords`` of the file shares (checked for rank and dtype).

    The count is the group's ``numProteinAtoms`` where given, else that of ``pdbProteinAtoms``
    when a replica has it, else the one most replicas share (the larger on a tie: a damaged
    copy lost atoms); a replica that differs is named (never the good ones)."""
    counts: dict[str, int] = {}
    for temp in group.keys():
        if not temp.isdigit():
            continue
        for rep in group[temp].keys():
            if "coords" not in group[temp][rep]:
                continue
            coords = group[temp][rep]["coords"]
            where = f"{h5_path}: {temp}/{rep}/coords"
            if coords.ndim != 3 or coords.shape[2] != 3:
                raise InputFileError(
                    f"{where} has shape {coords.shape}, expected (frames, atoms, 3)"
                )
            if coords.dtype.kind != "f":
                raise InputFileError(
                    f"{where} holds {coords.dtype}, expected floating-point Angstrom"
                )
            counts[f"{temp}/{rep}"] = int(coords.shape[1])
    if not counts:
        raise InputFileError(f"{h5_path}: no temperature/replica group with coords")
    declared = group.attrs.get("numProteinAtoms")
    values = list(counts.values())
    if declared is not None:
        expected = int(declared)
    elif len(table) in values:
        expected = len(table)
    else:
        expected = max(set(values), key=lambda n: (values.count(n), n))  # a tie: the larger
    for label, n in counts.items():
        if n != expected:
            raise InputFileError(
                f"{h5_path}: {label}/coords has {n} atoms, the other replicas and the topology "
                f"{expected}; the file is damaged"
            )
    if expected > len(table):
        raise InputFileError(
            f"{h5_path}: coordinates have {expected} atoms, pdbProteinAtoms {len(table)}"
        )
    return expected


def _head(table: AtomTable, n: int) -> AtomTable:
    cut = {
        k: getattr(table, k)[:n]
        for k in ("names", "resnames", "resnums", "icodes", "chain_ids", "segids", "elements")
    }
    return AtomTable(
        **cut,
        xyz=None if table.xyz is None else table.xyz[:n],
        new_chain=None if table.new_chain is None else table.new_chain[:n],
        typed_by=table.typed_by,
        box=table.box,
    )


def _mdcath_reader(h5_path: Path, domain: str, temp, rep):
    def read(atoms: np.ndarray, chunk: int) -> Iterator[Block]:
        with h5py.File(h5_path, "r") as h5:
            group = h5[domain][str(temp)][str(rep)]
            coords = group["coords"]
            box = None
            if "box" in group:
                raw = np.asarray(group["box"][()], dtype=np.float64)
                box = np.diag(raw) if raw.shape == (3,) else raw.reshape(3, 3)
            for start in range(0, coords.shape[0], chunk):
                xyz = np.asarray(coords[start : start + chunk], dtype=np.float32)[:, atoms]
                far = ~(np.abs(xyz) <= MDCATH_MAX_ANGSTROM).all(axis=(1, 2))  # NaN counts too
                if far.any():
                    raise InputFileError(
                        f"{h5_path}: {temp} K replica {rep}, frame {start + int(np.argmax(far))}: "
                        f"coordinates beyond {MDCATH_MAX_ANGSTROM:g} Angstrom or not finite; "
                        "the file is damaged"
                    )
                xyz *= np.float32(0.1)  # Angstrom -> nm
                boxes = None if box is None else np.repeat(box[None], len(xyz), axis=0)
                yield Block(xyz, boxes)

    return read


# ----------------------------------------------------------------------------- ATLAS

_ATLAS_PATTERNS = (
    re.compile(r"^(?P<id>.+)_prod_R(?P<rep>\d+)_fit\.xtc$"),
    re.compile(r"^(?P<id>.+)_R(?P<rep>\d+)\.xtc$"),
)


def atlas_replicas(folder: Path) -> tuple[Path, dict[int, Path]]:
    """The topology PDB and one XTC per replica of an ATLAS download folder."""
    by_rep: dict[int, Path] = {}
    ids = set()
    for xtc in sorted(folder.glob("*.xtc")):
        for k, pattern in enumerate(_ATLAS_PATTERNS):
            m = pattern.match(xtc.name)
            if m:
                rep = int(m.group("rep"))
                ids.add(m.group("id").removesuffix("_prod"))
                if rep not in by_rep or k == 0:  # the fitted file wins
                    by_rep[rep] = xtc
                break
    pdbs = [folder / f"{i}.pdb" for i in sorted(ids) if (folder / f"{i}.pdb").is_file()]
    if not by_rep:
        raise InputFileError(
            f"{folder}: no ATLAS trajectories ({{id}}_R1.xtc or {{id}}_prod_R1_fit.xtc)"
        )
    if len(pdbs) != 1:
        raise InputFileError(f"{folder}: expected one {{id}}.pdb beside the trajectories")
    return pdbs[0], dict(sorted(by_rep.items()))


def _open_atlas(path: Path, options: SourceOptions):
    folder = path if path.is_dir() else path.parent
    top, reps = atlas_replicas(folder)
    if options.replicas:
        missing = [r for r in options.replicas if r not in reps]
        if missing:
            raise InputFileError(f"{folder}: no replica {missing[0]} (has {sorted(reps)})")
        reps = {r: reps[r] for r in options.replicas}
    return open_system(top, list(reps.values()), skip=options.skip or 0)


# ----------------------------------------------------------------------------- IDRome


def _open_idrome(path: Path, options: SourceOptions):
    folder = path if path.is_dir() else path.parent
    skip = IDROME_SKIP if options.skip is None else options.skip
    if options.backmapped is not None:
        top, trj = options.backmapped
        prepared, source = open_system(top, trj, skip=skip)
    else:
        auto = (folder / "top_all.pdb", folder / "traj_all.dcd")
        if auto[0].is_file() and auto[1].is_file():
            prepared, source = open_system(auto[0], auto[1], skip=skip)
        else:
            top, trj = folder / "top.pdb", folder / "traj.xtc"
            for f in (top, trj):
                if not f.is_file():
                    raise InputFileError(
                        f"{folder}: no {f.name} (IDRome layout: top.pdb, traj.xtc)"
                    )
            prepared, source = open_system(top, trj, skip=skip)
    source.notes.append(f"IDRome: first {skip} frames of the trajectory dropped (equilibration)")
    return prepared, source


# ----------------------------------------------------------------------------- PED


def _open_ped(path: Path, options: SourceOptions):
    if path.is_dir():
        found = sorted(
            p for p in path.iterdir() if p.name.lower().endswith((".pdb", ".pdb.gz", ".ent"))
        )
        if len(found) != 1:
            raise InputFileError(f"{path}: expected one ensemble PDB, found {len(found)}")
        path = found[0]
    return open_system(path, path, skip=options.skip or 0)


# ----------------------------------------------------------------------------- GPCRmd


def _open_gpcrmd(path: Path, options: SourceOptions):
    if not path.is_dir():
        raise InputFileError(f"{path}: GPCRmd input is a folder with a PSF/PDB and trajectories")
    psf = sorted([*path.glob("*.psf"), *path.glob("*.psf.gz")])
    pdb = sorted([*path.glob("*.pdb"), *path.glob("*.pdb.gz")])
    top = psf[0] if len(psf) == 1 else (pdb[0] if len(pdb) == 1 and not psf else None)
    if top is None:
        raise InputFileError(f"{path}: expected one .psf (or one .pdb) topology")
    trajectories = sorted([*path.glob("*.dcd"), *path.glob("*.xtc")])
    if not trajectories:
        raise InputFileError(f"{path}: no .dcd or .xtc trajectory")
    prepared, source = open_system(top, trajectories, skip=options.skip or 0)
    source.notes.append(f"GPCRmd: {len(trajectories)} trajectories pooled; protein residues only")
    return prepared, source


def parse_int_list(text: str | None) -> tuple[int, ...] | None:
    """``"320,348"`` -> ``(320, 348)``; empty -> None."""
    if text is None or not str(text).strip():
        return None
    try:
        return tuple(int(v) for v in re.split(r"[,; ]+", str(text).strip()) if v)
    except ValueError:
        raise SeqDanceError(f"not a list of integers: {text!r}") from None


def options_from(
    temperatures: str | None = None,
    replicas: str | None = None,
    skip: int | None = None,
    backmapped: Sequence[str | os.PathLike] | None = None,
) -> SourceOptions:
    temps = parse_int_list(temperatures)
    if temps:
        bad = [t for t in temps if t not in MDCATH_TEMPERATURES]
        if bad:
            raise SeqDanceError(
                f"mdCATH temperature {bad[0]} K does not exist; use {MDCATH_TEMPERATURES}"
            )
    back = tuple(Path(p) for p in backmapped) if backmapped else None
    if back is not None and len(back) != 2:
        raise SeqDanceError("a back-mapped trajectory is a topology and a trajectory")
    return SourceOptions(temps, parse_int_list(replicas), skip, back)  # type: ignore[arg-type]
