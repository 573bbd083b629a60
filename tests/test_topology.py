"""Topology and trajectory hygiene on real engines' files (tests/data/engines, see README).

Each case is checked against plain MDTraj (or our detector) on a correctly prepared copy of
the same system: the copy carries what the original lacks (an element column, chain IDs,
standard residue names, a whole molecule) and is read the plain way.
"""

from __future__ import annotations

import collections
import gzip
import shutil
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from seqdance.cli import main
from seqdance.errors import InputFileError
from seqdance.features.contacts import detect_contacts
from seqdance.features.formats.dcd import dcd_frame_count
from seqdance.features.formats.xtc import xtc_frame_count
from seqdance.features.md import md_features
from seqdance.features.topology import (
    ResidueNumber,
    element_from_name,
    geometry_topology,
    load_topology,
)
from seqdance.residues import is_ionic, one_letter, sequence_of, standard_residue

HERE = Path(__file__).parent / "data"
E = HERE / "engines"
TVJ_TOP = HERE / "md" / "3tvj_I" / "3tvj_I.pdb"
TVJ_TRJ = HERE / "md" / "3tvj_I" / "3tvj_I_10frames.dcd"


def _gunzip(src: Path, dst: Path) -> Path:
    with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def _lines(top, trj, **kw) -> list:
    header, stream = detect_contacts(top, trj, **kw)
    return list(stream)


def _run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code


# ----------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize(
    "name, parent, letter, ionic",
    [
        ("HSD", "HIS", "H", True), ("HISD", "HIS", "H", True), ("HISE", "HIS", "H", True),
        ("HISH", "HIS", "H", True), ("HIS1", "HIS", "H", True), ("HIE", "HIS", "H", True),
        ("HIP", "HIS", "H", True), ("HSP", "HIS", "H", True), ("HISA", "HIS", "H", True),
        ("ASPH", "ASP", "D", False), ("ASH", "ASP", "D", False), ("ASPP", "ASP", "D", False),
        ("GLUH", "GLU", "E", False), ("GLH", "GLU", "E", False), ("CYS2", "CYS", "C", True),
        ("CYX", "CYS", "C", True), ("CYM", "CYS", "C", True), ("LYSH", "LYS", "K", True),
        ("LYSN", "LYS", "K", False), ("LYN", "LYS", "K", False), ("LSN", "LYS", "K", False),
        ("ARGN", "ARG", "R", False), ("NALA", "ALA", "A", True), ("CHIE", "HIS", "H", True),
        ("ALA", "ALA", "A", True), ("HOH", None, "X", False), ("MSE", None, "M", False),
    ],
)  # fmt: skip
def test_force_field_vocabulary(name, parent, letter, ionic):
    assert standard_residue(name) == parent
    assert one_letter(name) == letter
    assert is_ionic(name) == ionic


def test_element_name_rules_know_charmm_names():
    cases = {("CA", "ALA"): "C", ("HG", "SER"): "H", ("CD", "HSD"): "C", ("NE", "ARG"): "N",
             ("HE", "ARG"): "H", ("1HB", "ALA"): "H", ("OT1", "GLY"): "O", ("SG", "CYX"): "S",
             ("D1", "ALA"): "H", ("OW", "SOL"): "O", ("MW", "SOL"): ""}  # fmt: skip
    for (name, resname), symbol in cases.items():
        assert element_from_name(name, resname) == symbol, (name, resname)
    assert element_from_name("CA", "CA", 1) == "Ca"  # a calcium ion stays calcium
    assert element_from_name("CLA", "CLA", 1) == "Cl"


def test_residue_number_keeps_insertion_code():
    r = ResidueNumber(163, "A")
    assert r == 163 and str(r) == "163A" and f"{r}" == "163A" and f"{r:5d}" == "  163"
    assert np.array([r, ResidueNumber(164)]).tolist() == [163, 164]
    import pickle

    assert str(pickle.loads(pickle.dumps(r))) == "163A"


# ----------------------------------------------------------------------------- elements


def test_charmm_pdb_without_elements_is_typed_like_its_psf(tmp_path):
    """adk_open.pdb (CHARMM, no element column): MDTraj types 214 C-alphas as calcium and
    more atoms as Hg, Cd, He, Ne; ours equal the typing by mass of the same system's PSF
    (MDAnalysisTests adk.psf: H 1685, C 1040, O 320, N 289, S 7)."""
    raw = _gunzip(E / "adk_open.pdb.gz", tmp_path / "adk_open.pdb")
    plain = collections.Counter(a.element.symbol for a in md.load_topology(str(raw)).atoms)
    assert plain["Ca"] == 214 and plain["Hg"] > 0  # the failure this guards against
    prepared = load_topology(raw)
    ours = collections.Counter(a.element.symbol for a in prepared.topology.atoms)
    assert ours == {"H": 1685, "C": 1040, "O": 320, "N": 289, "S": 7}
    assert any("typed from their names" in n for n in prepared.notes)


def _with_element_column(src: Path, dst: Path) -> Path:
    """Correctly prepared copy: an element column by the plain first-letter rule."""
    out = []
    for line in src.read_text().splitlines():
        if line.startswith(("ATOM", "HETATM")):
            symbol = line[12:16].strip().lstrip("0123456789")[0]
            line = f"{line[:76].ljust(76)}{symbol:>2}"
        out.append(line)
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_untyped_pdb_contacts_and_sasa_equal_a_typed_copy(tmp_path):
    raw = _gunzip(E / "adk_open.pdb.gz", tmp_path / "adk_open.pdb")
    typed = _with_element_column(raw, tmp_path / "adk_typed.pdb")
    frame = md.load(str(typed))
    trj = tmp_path / "two.dcd"
    md.join([frame, frame]).save_dcd(str(trj))
    ours = _lines(raw, trj)
    ref = _lines(typed, trj)
    assert sorted(ours) == sorted(ref)
    counts = collections.Counter(line.itype for line in ours)
    assert counts["hp"] > 0 and counts["vdw"] > 0
    got = md_features(raw, trj)
    prot = frame.atom_slice(frame.topology.select("protein"))
    sasa = md.shrake_rupley(prot, mode="residue")[0]
    np.testing.assert_allclose(got.residues.sasa_mean, sasa, atol=2e-3)


# ----------------------------------------------------------------------------- chains


def test_four_segment_psf_keeps_every_backbone_hbond(tmp_path):
    """2r9r-1b.psf: four segments A-D, residue numbers repeat in each, no chain IDs. All
    1,542 hbbb lines are kept (merged residues gave 595); equal to a copy with chain IDs."""
    prepared = load_topology(E / "2r9r-1b.psf.gz")
    assert [(c.chain_id, c.n_residues) for c in prepared.topology.chains] == [
        ("A", 38), ("B", 38), ("C", 38), ("D", 38)
    ]  # fmt: skip
    ours = _lines(E / "2r9r-1b.psf.gz", E / "2r9r-1b.dcd", itypes=["hb", "sb", "vdw"])
    assert sum(line.itype == "hbbb" for line in ours) == 1542
    psf = _gunzip(E / "2r9r-1b.psf.gz", tmp_path / "x.psf")
    traj = md.load(str(E / "2r9r-1b.dcd"), top=str(psf))
    for chain, cid in zip(traj.topology.chains, "ABCD", strict=True):
        chain.chain_id = cid
    copy = tmp_path / "chains.pdb"
    traj[0].save_pdb(str(copy))
    ref = _lines(copy, E / "2r9r-1b.dcd", itypes=["hb", "sb", "vdw"])
    assert collections.Counter(line.itype for line in ours) == collections.Counter(
        line.itype for line in ref
    )
    feats = md_features(E / "2r9r-1b.psf.gz", E / "2r9r-1b.dcd")  # refused before
    assert feats.residues.chain.tolist() == [c for c in "ABCD" for _ in range(38)]
    assert "X" not in feats.sequence


def test_gro_dimer_is_split_at_the_chain_break(tmp_path):
    """YiiP dimer GRO (no chain IDs): two chains of 282 residues; contacts equal a copy
    with chain IDs A and B, including the lines between the protomers."""
    gro = E / "yiip_protein.gro.gz"
    prepared = load_topology(gro)
    assert [(c.chain_id, c.n_residues) for c in prepared.topology.chains] == [
        ("A", 282), ("B", 282)
    ]  # fmt: skip
    ours = _lines(gro, E / "yiip_protein.xtc", itypes=["hbbb", "sb"], stride=2)
    first = md.load_frame(str(E / "yiip_protein.xtc"), 0, top=str(_gunzip(gro, tmp_path / "y.gro")))
    for chain, cid in zip(first.topology.chains, "A", strict=False):
        chain.chain_id = cid
    cut = sum(1 for _ in list(prepared.topology.residues)[:282])
    top = md.Topology()
    for k in range(2):
        chain = top.add_chain("AB"[k])
        for residue in list(first.topology.residues)[k * cut : (k + 1) * cut]:
            new = top.add_residue(residue.name, chain, residue.resSeq)
            for atom in residue.atoms:
                top.add_atom(atom.name, atom.element, new)
    copy = tmp_path / "dimer.pdb"
    md.Trajectory(first.xyz, top).save_pdb(str(copy))
    ref = _lines(copy, E / "yiip_protein.xtc", itypes=["hbbb", "sb"], stride=2)
    assert len(ours) == len(ref)
    assert {(line.atom1[0], line.atom2[0]) for line in ours} >= {("A", "A"), ("B", "B")}
    assert any(line.atom1[0] != line.atom2[0] for line in ours)  # protomer interface


def test_insertion_codes_keep_residues_apart(tmp_path):
    """1OSM: residues 163, 163A ... 163J, 181, 181A stay distinct rows and labels."""
    pdb = _gunzip(E / "1osm.pdb.gz", tmp_path / "1osm.pdb")
    frame = md.load(str(pdb))
    trj = tmp_path / "two.dcd"
    md.join([frame, frame]).save_dcd(str(trj))
    feats = md_features(pdb, trj)
    keys = list(zip(feats.residues.chain, feats.residues.resid.astype(str), strict=True))
    assert len(keys) == len(set(keys)) == 185
    assert ("A", "163A") in keys and ("A", "181A") in keys
    lines = _lines(pdb, trj, itypes=["vdw"])
    labels = {lab for line in lines for lab in (line.atom1, line.atom2)}
    coded = {lab.split(":")[2] for lab in labels if not lab.split(":")[2].isdigit()}
    assert coded and coded <= {f"163{c}" for c in "ABCDEFGHIJ"} | {"181A"}
    from seqdance.features.getcontacts import residue_key

    assert {residue_key(lab) for lab in labels} <= set(keys)


# ----------------------------------------------------------------------------- names


def _standard_names_copy(src: Path, dst: Path) -> Path:
    """GRO copy with GROMOS residue names renamed to the standard ones (columns 6-10)."""
    rename = {"HISA": "HIS", "LYSH": "LYS", "CYS2": "CYS"}
    out = []
    with gzip.open(src, "rt") as fh:
        for line in fh.read().splitlines():
            name = line[5:10].strip() if len(line) > 20 else ""
            if name in rename:
                line = line[:5] + f"{rename[name]:<5}" + line[10:]
            out.append(line)
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_gromos_names_keep_sequence_rings_and_charges(tmp_path):
    """2LYZ from a GROMACS tpr (HISA, LYSH, CYS2): the right sequence letters and the same
    salt bridges, pi-cation and stacking lines as a copy with standard names."""
    gro = E / "2lyz_protein_2frames.gro.gz"
    feats = md_features(gro, gro, progress=False)
    assert "X" not in feats.sequence and len(feats.sequence) == 129
    copy = _standard_names_copy(gro, tmp_path / "std.gro")
    ref = md_features(copy, copy)
    assert feats.sequence == ref.sequence
    for key in ("sb", "pc", "ps", "ts", "hbsb", "vdw"):
        np.testing.assert_array_equal(feats.pair[key], ref.pair[key], err_msg=key)
    assert feats.pair["sb"].sum() > 0 and feats.pair["pc"].sum() + feats.pair["ts"].sum() > 0


# ----------------------------------------------------------------------------- PBC


def test_broken_molecule_is_made_whole(tmp_path):
    """adk in a rhombic dodecahedron (GROMACS, OPLS-AA), broken across the box in every
    frame: RMSF and DSSP equal plain MDTraj on a copy made whole with make_molecules_whole."""
    gro = E / "adk_oplsaa_protein.gro.gz"
    xtc = E / "adk_oplsaa_protein.xtc"
    feats = md_features(gro, xtc)
    assert any("made whole" in n for n in feats.notes)
    assert feats.residues.rmsf.max() < 0.5
    traj = md.load(str(xtc), top=str(_gunzip(gro, tmp_path / "adk.gro")))
    traj.topology.create_standard_bonds()
    broken = traj.atom_slice(traj.topology.select("name CA"))
    broken.superpose(broken, 0)
    assert md.rmsf(broken, None).max() > 3.0  # what the raw frames give
    whole = traj.make_molecules_whole()
    ca = whole.topology.select("name CA")
    whole.superpose(whole, 0, atom_indices=ca)
    ref_rmsf = md.rmsf(whole, None, atom_indices=ca)
    np.testing.assert_allclose(feats.residues.rmsf, ref_rmsf, atol=1e-4)
    dssp = md.compute_dssp(whole, simplified=False)
    np.testing.assert_allclose(feats.residues.ss_H, (dssp == "H").mean(axis=0), atol=1e-12)


# ----------------------------------------------------------------------------- breaks


def test_no_dihedral_across_a_chain_gap(tmp_path):
    """3tvj_I without residues 15-17 (same chain ID): no phi for 18, no psi for 14."""
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))
    keep = [a.index for a in traj.topology.atoms if not 15 <= a.residue.resSeq <= 17]
    gap = traj.atom_slice(keep)
    top, trj = tmp_path / "gap.pdb", tmp_path / "gap.dcd"
    gap[0].save_pdb(str(top))
    gap.save_dcd(str(trj))
    plain_phi, _ = md.compute_phi(gap)
    assert len(plain_phi) == 34  # MDTraj computes phi across the 3-residue gap
    feats = md_features(top, trj)
    table = feats.residues.set_index("resid")
    phi = [c for c in table.columns if c.startswith("phi_")]
    psi = [c for c in table.columns if c.startswith("psi_")]
    assert table.loc[18, phi].isna().all() and table.loc[14, psi].isna().all()
    assert table.loc[19, phi].notna().all() and table.loc[13, psi].notna().all()


# ----------------------------------------------------------------------------- frames


def test_truncated_dcd_is_named_and_read_to_its_last_frame(tmp_path):
    data = TVJ_TRJ.read_bytes()
    promised, complete, trailing, n_atoms = dcd_frame_count(TVJ_TRJ)
    assert (promised, complete, trailing, n_atoms) == (10, 10, 0, 531)
    cut = tmp_path / "cut.dcd"
    size = len(data) - 3 * (56 + 3 * (8 + 4 * 531)) - 100  # drop 3 frames and part of a 4th
    cut.write_bytes(data[:size])
    assert dcd_frame_count(cut)[:2] == (10, 6)
    feats = md_features(TVJ_TOP, cut)
    assert feats.n_frames == 6
    assert any("cut.dcd: truncated" in w and "6 used" in w for w in feats.warnings)
    ref = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))[:6]
    ca = ref.topology.select("name CA")
    ref.superpose(ref, 0, atom_indices=ca)
    np.testing.assert_allclose(feats.residues.rmsf, md.rmsf(ref, None, atom_indices=ca), atol=1e-6)


def test_xtc_with_a_partial_last_frame_is_named(tmp_path):
    xtc = tmp_path / "t.xtc"
    md.load(str(TVJ_TRJ), top=str(TVJ_TOP)).save_xtc(str(xtc))
    assert xtc_frame_count(xtc)[:2] == (10, 0)
    data = xtc.read_bytes()
    cut = tmp_path / "cut.xtc"
    cut.write_bytes(data[:-50])
    assert xtc_frame_count(cut)[0] == 9
    feats = md_features(TVJ_TOP, cut)
    assert feats.n_frames == 9 and any("partial frame" in w for w in feats.warnings)


def test_multiframe_gro_trajectory_equals_xtc(tmp_path):
    """A 3-frame GRO written with the file's own name columns reads like the XTC."""
    gro = _gunzip(E / "adk_oplsaa_protein.gro.gz", tmp_path / "adk.gro")
    lines = gro.read_text().splitlines()
    traj = md.load(str(E / "adk_oplsaa_protein.xtc"), top=str(gro))[:3]
    out = []
    for xyz, box in zip(traj.xyz, traj.unitcell_vectors, strict=True):
        out += [lines[0], lines[1]]
        rows = zip(lines[2:-1], xyz, strict=True)
        out += [f"{row[:20]}{x:8.3f}{y:8.3f}{z:8.3f}" for row, (x, y, z) in rows]
        order = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
        out.append(" ".join(f"{box[i, j]:.5f}" for i, j in order))
    multi = tmp_path / "three.gro"
    multi.write_text("\n".join(out) + "\n")
    a = md_features(gro, multi)
    xtc3 = tmp_path / "three.xtc"
    traj.save_xtc(str(xtc3))
    b = md_features(gro, xtc3)
    assert a.n_frames == b.n_frames == 3
    np.testing.assert_allclose(a.residues.rmsf, b.residues.rmsf, atol=2e-3)
    np.testing.assert_array_equal(a.residues.ss_H, b.residues.ss_H)


def test_replicas_are_pooled_like_one_concatenated_trajectory(tmp_path):
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))
    r1, r2, both = tmp_path / "r1.dcd", tmp_path / "r2.dcd", tmp_path / "both.dcd"
    traj[:6].save_dcd(str(r1))
    traj[6:].save_dcd(str(r2))
    traj.save_dcd(str(both))
    pooled = md_features(TVJ_TOP, [r1, r2])
    whole = md_features(TVJ_TOP, both)
    assert pooled.n_frames == 10
    for col in pooled.residues.columns[3:]:
        tol = 3e-3 if col.startswith("sasa") else 1e-9
        np.testing.assert_allclose(pooled.residues[col], whole.residues[col], atol=tol, err_msg=col)
    for key, value in whole.pair.items():
        np.testing.assert_allclose(pooled.pair[key], value, atol=1e-9)


# ----------------------------------------------------------------------------- formats


def test_mmcif_topology_equals_its_pdb(tmp_path):
    cif = load_topology(E / "1BD2_short.cif.gz").topology
    pdb = load_topology(E / "1BD2_short.pdb.gz").topology
    assert cif.n_atoms == pdb.n_atoms > 0
    for a, b in zip(cif.atoms, pdb.atoms, strict=True):
        assert (a.name, a.element, a.residue.name, str(a.residue.resSeq)) == (
            b.name, b.element, b.residue.name, str(b.residue.resSeq)
        )  # fmt: skip
    assert [c.chain_id for c in cif.chains] == [c.chain_id for c in pdb.chains]


def test_deuterium_is_hydrogen(tmp_path):
    lines = []
    for line in TVJ_TOP.read_text().splitlines():
        if line.startswith("ATOM") and line[76:78].strip() == "H":
            line = line[:76] + " D" + line[78:]
        lines.append(line)
    top = tmp_path / "deut.pdb"
    top.write_text("\n".join(lines) + "\n")
    prepared = load_topology(top)
    assert any("deuterium" in n for n in prepared.notes)
    ours = md_features(top, TVJ_TRJ)
    ref = md_features(TVJ_TOP, TVJ_TRJ)
    np.testing.assert_allclose(ours.residues.sasa_mean, ref.residues.sasa_mean, atol=1e-9)
    for key, value in ref.pair.items():
        np.testing.assert_array_equal(ours.pair[key], value)


def test_unparsable_psf_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.psf"
    bad.write_text("PSF\n\n 1 !NTITLE\n REMARKS x\n\n 3 !NATOM\n 1 A 1 ALA N NH1\n")
    with pytest.raises(InputFileError, match="cannot read topology"):
        load_topology(bad)
    out = tmp_path / "out"
    assert _run_cli(["contacts", "-t", str(bad), "-x", str(TVJ_TRJ), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "bad.psf" in err[0]
    assert not out.exists()


def test_geometry_topology_renames_terminal_oxygens():
    prepared = load_topology(E / "adk_oplsaa_protein.gro.gz")
    names = [a.name for a in prepared.topology.residue(prepared.topology.n_residues - 1).atoms]
    assert "O1" in names and "O2" in names
    geo = geometry_topology(prepared.topology)
    last = [a.name for a in geo.residue(geo.n_residues - 1).atoms]
    assert "O" in last and "OXT" in last
    assert sequence_of(r.name for r in prepared.topology.residues).count("X") == 0


def test_mmcif_contacts_equal_pdb_contacts(tmp_path):
    cif = _gunzip(E / "1BD2_short.cif.gz", tmp_path / "s.cif")
    pdb = _gunzip(E / "1BD2_short.pdb.gz", tmp_path / "s.pdb")
    ours = _lines(cif, cif)
    assert ours and sorted(ours) == sorted(_lines(pdb, pdb))


def test_gromacs_tpr_through_mdanalysis():
    """Optional: .tpr topologies are read with MDAnalysis when it is installed."""
    pytest.importorskip("MDAnalysis")
    prepared = load_topology(E / "ala_nnpot_gmx_2025_0.tpr")
    top = prepared.topology
    assert [r.name for r in top.residues] == ["ALA", "ALA"]
    assert collections.Counter(a.element.symbol for a in top.atoms) == {
        "H": 12,
        "C": 6,
        "O": 3,
        "N": 2,
    }
    assert top.n_bonds == 22 and prepared.xyz is not None


def test_tpr_without_mdanalysis_is_one_clear_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "MDAnalysis", None)  # import fails as if not installed
    with pytest.raises(InputFileError, match="need MDAnalysis"):
        load_topology(E / "ala_nnpot_gmx_2025_0.tpr")
