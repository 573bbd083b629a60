"""Issue 22, section 3: the formats users have, read or refused in one line.

Real files from MDAnalysisTests 2.11.0 (tests/data/formats, origins in its README). Every
value is compared with an independent reader: MDAnalysis reading the same file by itself
(decompressed by the test with the standard library), SQLite for DMS, plain numpy for NAMD
binary coordinates.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import sqlite3
import warnings
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pytest

from seqdance.cli import main
from seqdance.errors import InputFileError
from seqdance.features.formats.registry import open_frames, read_atom_table
from seqdance.features.topology import load_topology
from seqdance.features.trajectory import open_system

HERE = Path(__file__).parent / "data"
F = HERE / "formats"
E = HERE / "engines"
OPEN = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def plain(path: Path, folder: Path) -> Path:
    """A decompressed copy of ``path`` made with the standard library (the reference's input)."""
    if path.suffix not in OPEN:
        return path
    target = folder / path.name[: -len(path.suffix)]
    with OPEN[path.suffix](path, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def reference(*files: Path, **kwargs) -> mda.Universe:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(*(str(f) for f in files), **kwargs)


def frames(topology, trajectory) -> tuple[object, np.ndarray, np.ndarray | None]:
    """(prepared topology, all frames (F, n, 3) nm, boxes (F, 3, 3) or None) as the reader
    gives them (before any imaging)."""
    prepared, source = open_system(topology, trajectory)
    assert source.n_atoms == prepared.n_atoms
    atoms = np.arange(prepared.n_atoms)
    blocks = list(open_frames(Path(trajectory), prepared, "x").read(atoms, 100))
    xyz = np.concatenate([b.xyz for b in blocks])
    boxes = None if blocks[0].box is None else np.concatenate([b.box for b in blocks])
    return prepared, xyz, boxes


def assert_same_atoms(prepared, universe: mda.Universe) -> None:
    top = prepared.topology
    atoms = universe.atoms
    assert [a.name for a in top.atoms] == [str(n) for n in atoms.names]
    assert [a.residue.name for a in top.atoms] == [str(r) for r in atoms.resnames]
    assert [int(a.residue.resSeq) for a in top.atoms] == [int(r) for r in atoms.resids]
    assert top.n_residues == len(universe.residues)


def reference_frames(universe: mda.Universe) -> tuple[np.ndarray, list]:
    xyz, boxes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Reader has no dt information"
        for ts in universe.trajectory:
            xyz.append(ts.positions / 10.0)
            boxes.append(None if ts.dimensions is None else ts.triclinic_dimensions / 10.0)
    return np.asarray(xyz), boxes


# ----------------------------------------------------------------------------- compressed


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_pdb_gro_and_prmtop_read_as_plain(tmp_path, suffix):
    """The same text file plain and compressed three ways: the same atoms, coordinates."""
    pdb = plain(E / "adk_open.pdb.gz", tmp_path)
    packed = tmp_path / ("adk.pdb" + suffix)
    with OPEN[suffix](packed, "wb") as fh:
        fh.write(pdb.read_bytes())
    ours = load_topology(packed)
    ref = reference(pdb)
    assert_same_atoms(ours, ref)
    np.testing.assert_allclose(ours.xyz, ref.atoms.positions / 10.0, atol=1e-6)
    # a format read by name (prmtop via MDTraj) gets a decompressed copy
    top = tmp_path / ("cpptraj.prmtop" + suffix)
    with OPEN[suffix](top, "wb") as fh:
        fh.write((F / "cpptraj_traj.prmtop").read_bytes())
    prepared, xyz, _ = frames(top, F / "cpptraj_traj.nc")
    assert_same_atoms(prepared, reference(F / "cpptraj_traj.prmtop", F / "cpptraj_traj.nc"))


def test_damaged_compressed_file_is_one_line(tmp_path):
    bad = tmp_path / "broken.prmtop.xz"
    bad.write_bytes(lzma.compress((F / "cpptraj_traj.prmtop").read_bytes())[:500])
    with pytest.raises(InputFileError, match=r"broken.prmtop.xz: "):
        load_topology(bad)


# ----------------------------------------------------------------------------- AMBER


@pytest.mark.parametrize("name", ["system.top", "system.parm7", "system.prmtop", "system.prm"])
def test_prmtop_recognised_by_header_with_netcdf_frames(tmp_path, name, capfd):
    """AMBER prmtop under any suffix; residues 1..N; NetCDF frames and box, no warning."""
    top = tmp_path / name
    shutil.copy(F / "cpptraj_traj.prmtop", top)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the netCDF4 speed warning would fail here
        prepared, xyz, boxes = frames(top, F / "cpptraj_traj.nc")
    captured = capfd.readouterr()
    assert "netCDF4" not in captured.err + captured.out
    ref = reference(F / "cpptraj_traj.prmtop", F / "cpptraj_traj.nc")
    assert_same_atoms(prepared, ref)
    assert [r.resSeq for r in prepared.topology.residues] == [1, 2, 3, 4, 5]
    ref_xyz, ref_boxes = reference_frames(ref)
    assert xyz.shape == (3, 84, 3)
    np.testing.assert_allclose(xyz, ref_xyz, atol=1e-6)
    np.testing.assert_allclose(boxes, np.asarray(ref_boxes), atol=1e-5)
    ref_elements = [str(e) for e in ref.atoms.elements]
    assert [a.element.symbol for a in prepared.topology.atoms] == ref_elements


def test_gromacs_top_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = main_code(
        ["features", "md", "-t", F / "gromacs_ala10.top", "-x", F / "cpptraj_traj.nc", "-o", out]
    )
    err = one_error_line(capsys.readouterr().err)
    assert code != 0 and "GROMACS topology" in err and ".tpr" in err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- PQR, PDBQT, CRD


def test_pqr_read_as_pqr(tmp_path):
    """PDB2PQR output (charges and radii where a PDB has occupancy and elements)."""
    ours = load_topology(F / "adk_open.pqr.gz")
    ref = reference(plain(F / "adk_open.pqr.gz", tmp_path))
    assert_same_atoms(ours, ref)
    np.testing.assert_allclose(ours.xyz, ref.atoms.positions / 10.0, atol=1e-6)
    assert {a.element.symbol for a in ours.topology.atoms if a.name == "CA"} == {"C"}


def test_pqr_frames_with_wide_serials(tmp_path):
    """Serial numbers over 99,999 run into the next column of a PDB; PQR splits on spaces."""
    text = plain(F / "adk_open.pqr.gz", tmp_path).read_text().splitlines()
    wide, k = [], 0
    for line in text:
        if line.startswith("ATOM"):
            fields = line.split()
            k += 1
            fields[1] = str(123456 + k)
            line = " ".join(fields)
        wide.append(line)
    path = tmp_path / "wide.pqr"
    path.write_text("\n".join(wide) + "\n")
    prepared, xyz, _ = frames(path, path)
    ref = reference(path)
    assert_same_atoms(prepared, ref)
    np.testing.assert_allclose(xyz[0], ref.atoms.positions / 10.0, atol=1e-6)


@pytest.mark.parametrize("name", ["adk_open.pdbqt.gz", "tyrosol.pdbqt.bz2"])
def test_pdbqt(tmp_path, name):
    source = F / ("pdbqt_inputpdbqt.pdbqt.gz" if name.startswith("adk") else name)
    ours = read_atom_table(source)
    ref = reference(plain(source, tmp_path), format="PDBQT")
    assert ours.names == [str(n) for n in ref.atoms.names]
    assert ours.resnums == [int(r) for r in ref.atoms.resids]
    assert ours.chain_ids == [str(c) for c in ref.atoms.chainIDs]
    np.testing.assert_allclose(ours.xyz, ref.atoms.positions / 10.0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".crd", ".cor"])
def test_charmm_crd_topology_and_namd_binary_frames(tmp_path, suffix):
    """CHARMM coordinates (xz-compressed, .crd or .cor) as topology; NAMD .coor as frames."""
    crd = tmp_path / ("adk" + suffix + ".xz")
    shutil.copy(F / "adk_open.crd.xz", crd)
    prepared, xyz, boxes = frames(crd, F / "adk_open.coor")
    ref = reference(plain(F / "adk_open.crd.xz", tmp_path), format="CRD")
    assert_same_atoms(prepared, ref)
    assert [s.strip() for s in ref.atoms.segids][:1] == ["4AKE"]
    raw = F / "adk_open.coor"
    n = int(np.fromfile(raw, dtype="<i4", count=1)[0])
    numpy_xyz = np.fromfile(raw, dtype="<f8", offset=4).reshape(n, 3) / 10.0
    assert xyz.shape == (1, n, 3) and boxes is None
    np.testing.assert_allclose(xyz[0], numpy_xyz, atol=1e-6)


def test_amber_crd_is_not_charmm(tmp_path):
    """A .crd without a CHARMM '*' title is AMBER mdcrd: frames through MDTraj (gzipped)."""
    from mdtraj.formats import MDCRDTrajectoryFile

    ref = reference(F / "cpptraj_traj.prmtop", F / "cpptraj_traj.nc")
    ref_xyz, _ = reference_frames(ref)
    plain_crd = tmp_path / "amber.crd"
    with MDCRDTrajectoryFile(str(plain_crd), mode="w") as fh:
        fh.write(ref_xyz * 10.0)
    packed = tmp_path / "amber.crd.gz"
    packed.write_bytes(gzip.compress(plain_crd.read_bytes()))
    _, xyz, _ = frames(F / "cpptraj_traj.prmtop", packed)
    np.testing.assert_allclose(xyz, ref_xyz, atol=1e-3)  # mdcrd keeps 3 decimals (0.001 A)


def test_compressed_binary_trajectory(tmp_path):
    """A gzipped DCD (read through a decompressed copy) gives the plain file's frames."""
    psf, dcd = E / "2r9r-1b.psf.gz", E / "2r9r-1b.dcd"
    packed = tmp_path / "traj.dcd.gz"
    packed.write_bytes(gzip.compress(dcd.read_bytes()))
    _, xyz, _ = frames(psf, packed)
    ref = reference(plain(psf, tmp_path), dcd)
    np.testing.assert_allclose(xyz, reference_frames(ref)[0], atol=1e-6)


def test_charmm_crd_frames(tmp_path):
    crd = F / "adk_open.crd.xz"
    prepared, xyz, _ = frames(E / "adk_open.pdb.gz", crd)
    ref = reference(plain(crd, tmp_path), format="CRD")
    np.testing.assert_allclose(xyz[0], ref.atoms.positions / 10.0, atol=1e-6)


# ----------------------------------------------------------------------------- DMS, TRC


def test_desmond_dms(tmp_path):
    """Elements from the file's masses (its atomic numbers are all 0), checked against the
    first letter of the CHARMM atom names; coordinates against SQLite."""
    prepared, xyz, _ = frames(F / "adk_closed.dms.gz", F / "adk_closed.dms.gz")
    dms = plain(F / "adk_closed.dms.gz", tmp_path)
    ref = reference(dms)
    assert_same_atoms(prepared, ref)
    with sqlite3.connect(dms) as db:
        rows = db.execute("SELECT name, x, y, z FROM particle ORDER BY id").fetchall()
    assert [a.element.symbol for a in prepared.topology.atoms] == [r[0].strip()[0] for r in rows]
    np.testing.assert_allclose(xyz[0], np.array([r[1:] for r in rows]) / 10.0, atol=1e-6)


def test_gromos_trc_frames(tmp_path):
    top, trc = F / "gromos11_traj_vac.pdb.gz", F / "gromos11_traj_vac_1.trc.gz"
    prepared, xyz, boxes = frames(top, trc)
    ref = reference(plain(top, tmp_path), plain(trc, tmp_path), format="TRC")
    ref_xyz, ref_boxes = reference_frames(ref)
    assert xyz.shape == ref_xyz.shape and len(xyz) == 3
    np.testing.assert_allclose(xyz, ref_xyz, atol=1e-6)
    assert (boxes is None) == all(b is None or not b.any() for b in ref_boxes)
    if boxes is not None:
        np.testing.assert_allclose(boxes, np.asarray(ref_boxes), atol=1e-6)


# ----------------------------------------------------------------------------- TPR, refusals


def test_mdanalysis_is_a_dependency():
    """The .tpr and MDAnalysis-read formats need no install by hand."""
    text = (HERE.parent.parent / "pyproject.toml").read_text()
    dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert '"MDAnalysis>=' in dependencies


def main_code(args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in [*args, "--no-progress"]])
    return exit_info.value.code


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("topology", "trajectory", "says"),
    [
        (F / "mini.data", F / "cpptraj_traj.nc", "no residue or atom names"),
        (F / "cpptraj_traj.nc", F / "cpptraj_traj.nc", "coordinates only"),
        (F / "adk_open.coor", F / "adk_open.coor", "coordinates only"),
        (F / "gromos11_traj_vac_1.trc.gz", F / "gromos11_traj_vac_1.trc.gz", "coordinates only"),
        (F / "cpptraj_traj.prmtop", F / "adk_open.coor", "frames have 3341 atoms"),
        (F / "adk_open.crd.xz", F / "adk_open.coor", "at least 2 frames"),
        (F / "adk_open.crd.xz", F / "cpptraj_traj.nc", "frames have 84 atoms"),
        (F / "cpptraj_traj.prmtop", F / "mini.data", "not a trajectory"),
        (  # the damaged file is named as given, not as its decompressed copy
            F / "gromos11_traj_vac.pdb.gz",
            F / "gromos11_traj_vac_1_missing_pos.trc.gz",
            f"{F / 'gromos11_traj_vac_1_missing_pos.trc.gz'}: cannot read trajectory",
        ),
    ],
)
def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys, topology, trajectory, says):
    out = tmp_path / "out"
    code = main_code(["features", "md", "-t", topology, "-x", trajectory, "-o", out])
    err = one_error_line(capsys.readouterr().err)
    assert code != 0 and says in err, err
    assert list(tmp_path.iterdir()) == []


def test_contacts_refuses_lammps_data_in_one_line(tmp_path, capsys):
    out = tmp_path / "c.tsv"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "contacts",
                "-t",
                str(F / "mini.data"),
                "-x",
                str(F / "cpptraj_traj.nc"),
                "-o",
                str(out),
            ]
        )
    err = one_error_line(capsys.readouterr().err)
    assert exit_info.value.code != 0 and "no residue or atom names" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("topology", "trajectory"),
    [
        ("system.top", F / "cpptraj_traj.nc"),
        (F / "gromos11_traj_vac.pdb.gz", F / "gromos11_traj_vac_1.trc.gz"),
    ],
)
def test_features_md_runs_on_these_formats(tmp_path, capsys, topology, trajectory):
    if topology == "system.top":
        topology = tmp_path / "system.top"
        shutil.copy(F / "cpptraj_traj.prmtop", topology)
    out = tmp_path / "run"
    code = main_code(["features", "md", "-t", topology, "-x", trajectory, "-o", out])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and "netCDF4" not in err
    assert (tmp_path / "run.residue.csv").is_file()
