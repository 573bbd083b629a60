"""MD features (seqdance.features.md, ``seqdance features md``).

Golden values: the SeqDance authors' reference outputs for 3tvj_I (their MD feature script,
MDTraj 1.9.9). Independent paths: MDTraj's whole-trajectory functions and the full
3N x 3N covariance. Analytic: a C-alpha-only trajectory whose superposition is the
identity by symmetry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd
import pytest

from seqdance.cli import main
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.features.md import (
    ANGLE_COLUMNS,
    FEATURE_COLUMNS,
    PAIR_KEYS,
    RESIDUE_COLUMNS,
    SS_COLUMNS,
    load_md_features,
    md_features,
    output_paths,
    write_md_features,
)
from seqdance.features.md_kernels import (
    ANGLE_EDGES,
    RunningMoments,
    TraceCovariance,
    angle_bin_counts,
    correlation_reference,
    dssp_class_counts,
)
from seqdance.schema import DSSP_CODES, INTERACTIONS, MD_PAIR_CHANNELS, MISSING

DATA = Path(__file__).parent / "data" / "md"
TVJ = DATA / "3tvj_I"
TVJ_TOP, TVJ_TRJ = TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd"
TVJ_TSV = TVJ / "3tvj_I_10frames_contact.tsv"
XND_TOP, XND_TRJ = DATA / "5xnd" / "5xnd_topology.pdb", DATA / "5xnd" / "5xnd_6frames.dcd"

SASA_TOL = 0.01  # nm^2: MDTraj's Shrake-Rupley moves with version and chunking (~2e-3)
TOL = 1e-5


# ----------------------------------------------------------------------------- helpers


def _reference_residues() -> pd.DataFrame:
    """The authors' CSV renamed to our columns (their ``dssp_X`` -> our ``ss_X``)."""
    ref = pd.read_csv(TVJ / "3tvj_I_res_feature.csv")
    rename = {f"dssp_{code}": col for code, col in zip(DSSP_CODES, SS_COLUMNS, strict=True)}
    return ref.rename(columns=rename)


def _reference_pair() -> dict[str, np.ndarray]:
    """The authors' pair array: each contact line at one cell, in GetContacts' atom order
    (our default, ``interaction_cells="listed"``)."""
    array = np.load(TVJ / "3tvj_I_pair_feature.npz")["array"]  # (38, 38, 10)
    return {name: array[..., k] for k, name in enumerate(MD_PAIR_CHANNELS)}


def _assert_matches_reference(features) -> None:
    ref = _reference_residues()
    got = features.residues
    assert len(got) == len(ref) == 38
    for col in FEATURE_COLUMNS:
        a, b = got[col].to_numpy(float), ref[col].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        tol = SASA_TOL if col.startswith("sasa") else TOL
        np.testing.assert_allclose(a, b, atol=tol, rtol=0, equal_nan=True, err_msg=col)
    ref_pair = _reference_pair()
    for name in PAIR_KEYS:
        assert features.pair[name].shape == (38, 38)
        np.testing.assert_allclose(features.pair[name], ref_pair[name], atol=TOL, err_msg=name)
    assert features.pair["vdw"].max() == pytest.approx(8.5)


def _run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def tvj_tsv():
    return md_features(TVJ_TOP, TVJ_TRJ, contacts=TVJ_TSV, chunk_size=4)


@pytest.fixture(scope="module")
def tvj_native():
    return md_features(TVJ_TOP, TVJ_TRJ)


# ----------------------------------------------------------------------------- reference


def test_3tvj_reproduces_authors_reference_with_getcontacts_tsv(tvj_tsv):
    _assert_matches_reference(tvj_tsv)
    assert tvj_tsv.n_frames == 10
    assert tvj_tsv.sequence == "GSGEVTCEPGTTFKDKCNTCRCGSDGKSAVCTKLWCNQ"


def test_3tvj_reproduces_authors_reference_with_native_detector(tvj_native):
    _assert_matches_reference(tvj_native)  # same cells: the native lines keep the atom order


def test_symmetric_interaction_option(tvj_tsv):
    both = md_features(TVJ_TOP, TVJ_TRJ, contacts=TVJ / "3tvj_I_10frames_contact.tsv",
                       interaction_cells="both")  # fmt: skip
    for name in INTERACTIONS:
        one = tvj_tsv.pair[name]
        np.testing.assert_allclose(both.pair[name], one + one.T - np.diag(np.diag(one)))
        np.testing.assert_array_equal(both.pair[name], both.pair[name].T)
    assert not np.array_equal(tvj_tsv.pair["vdw"], tvj_tsv.pair["vdw"].T)


def test_undefined_cells_are_empty(tvj_tsv):
    table = tvj_tsv.residues
    assert list(table.columns) == list(RESIDUE_COLUMNS)
    chi = table[list(ANGLE_COLUMNS["chi"])]
    no_chi = table.resname.isin(["GLY", "ALA"]).to_numpy()
    assert chi[no_chi].isna().all().all() and chi[~no_chi].notna().all().all()
    assert table.loc[0, list(ANGLE_COLUMNS["phi"])].isna().all()  # chain start
    assert table.loc[37, list(ANGLE_COLUMNS["psi"])].isna().all()  # chain end
    for name in ("ss", "chi", "phi", "psi"):
        cols = SS_COLUMNS if name == "ss" else ANGLE_COLUMNS[name]
        sums = table[list(cols)].sum(axis=1, min_count=1).dropna()
        np.testing.assert_allclose(sums, 1.0, atol=1e-12)


def test_chunk_size_does_not_change_results(tvj_tsv):
    one = md_features(TVJ_TOP, TVJ_TRJ, contacts=TVJ_TSV, chunk_size=1)
    for col in FEATURE_COLUMNS:
        tol = SASA_TOL if col.startswith("sasa") else 1e-9
        np.testing.assert_allclose(
            one.residues[col], tvj_tsv.residues[col], atol=tol, equal_nan=True, err_msg=col
        )
    for name in PAIR_KEYS:
        np.testing.assert_allclose(one.pair[name], tvj_tsv.pair[name], atol=1e-9)


def test_stride_matches_mdtraj_on_strided_frames():
    features = md_features(TVJ_TOP, TVJ_TRJ, stride=3)
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP), stride=3)
    assert features.n_frames == traj.n_frames == 4
    ca = traj.topology.select("name CA")
    traj.superpose(traj, 0, atom_indices=ca)
    np.testing.assert_allclose(
        features.residues.rmsf, md.rmsf(traj, None, atom_indices=ca), atol=1e-6
    )
    np.testing.assert_allclose(features.pair["corr"], correlation_reference(traj.xyz[:, ca]))


def test_contacts_file_with_other_frame_count_is_rejected():
    with pytest.raises(InputFileError, match="10 frames but the trajectory gives 5"):
        md_features(TVJ_TOP, TVJ_TRJ, contacts=TVJ_TSV, stride=2)


# ----------------------------------------------------------------------------- 5xnd


def test_5xnd_numbering_from_zero_and_ions_dropped():
    features = md_features(XND_TOP, XND_TRJ, chunk_size=4)
    table = features.residues
    # 110 protein residues numbered 0..109; the two calcium ions (atom name CA) are dropped
    assert table.resid.tolist() == list(range(110))
    assert set(table.chain) == {"A"} and features.n_frames == 6
    assert len(features.sequence) == 110 and features.sequence.startswith("SMAFASVLKD")

    traj = md.load(str(XND_TRJ), top=str(XND_TOP))
    protein = traj.atom_slice(traj.topology.select("protein"))
    ca = protein.topology.select("name CA")
    protein.superpose(protein, 0, atom_indices=ca)
    np.testing.assert_allclose(table.rmsf, md.rmsf(protein, None, atom_indices=ca), atol=1e-6)
    np.testing.assert_allclose(
        features.pair["corr"], correlation_reference(protein.xyz[:, ca]), atol=1e-9
    )
    _, psi = md.compute_psi(protein)
    expected = np.stack([np.histogram(psi[:, j], bins=ANGLE_EDGES)[0] for j in range(109)]) / 6
    np.testing.assert_allclose(table[list(ANGLE_COLUMNS["psi"])].to_numpy()[:109], expected)
    assert table.loc[109, list(ANGLE_COLUMNS["psi"])].isna().all()
    assert table.loc[0, list(ANGLE_COLUMNS["phi"])].isna().all()
    dssp = md.compute_dssp(protein, simplified=False)  # (6, 110)
    np.testing.assert_allclose(table[list(SS_COLUMNS)], dssp_class_counts(dssp) / 6)
    sasa = md.shrake_rupley(protein, mode="residue")
    np.testing.assert_allclose(table.sasa_mean, sasa.mean(axis=0), atol=SASA_TOL)
    np.testing.assert_allclose(table.sasa_std, sasa.std(axis=0), atol=SASA_TOL)
    for name in INTERACTIONS:
        m = features.pair[name]
        assert m.shape == (110, 110) and (m >= 0).all()
    assert features.pair["vdw"].sum() > 0 and features.pair["hbbb"].sum() > 0


# ----------------------------------------------------------------------------- C-alpha only


def _write_ca_only(tmp_path: Path, stride: int = 1) -> tuple[Path, Path]:
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP), stride=stride)
    ca = traj.atom_slice(traj.topology.select("name CA"))
    top, trj = tmp_path / "ca.pdb", tmp_path / "ca.dcd"
    ca[0].save_pdb(str(top))
    ca.save_dcd(str(trj))
    return top, trj


def test_calpha_only_trajectory(tmp_path, tvj_tsv):
    top, trj = _write_ca_only(tmp_path)
    features = md_features(top, trj)
    table = features.residues
    assert len(table) == 38 and features.sequence == tvj_tsv.sequence
    np.testing.assert_allclose(table.rmsf, tvj_tsv.residues.rmsf, atol=1e-5)
    np.testing.assert_allclose(features.pair["corr"], tvj_tsv.pair["corr"], atol=1e-5)
    undefined = [c for c in FEATURE_COLUMNS if c != "rmsf"]
    assert table[undefined].isna().all().all()
    for name in INTERACTIONS:
        assert (features.pair[name] == MISSING).all()
    assert any("C-alpha-only" in w for w in features.warnings)

    prefix = tmp_path / "out" / "ca"
    assert _run_cli(["features", "md", "-t", str(top), "-x", str(trj), "-o", str(prefix)]) == 0
    csv_path, _ = output_paths(prefix)
    first_row = csv_path.read_text().splitlines()[1].split(",")
    assert first_row[:3] == ["X", "1", "GLY"]
    assert first_row[3:5] == ["", ""] and first_row[5] != "" and set(first_row[6:]) == {""}


def test_analytic_calpha_breathing(tmp_path):
    """Four C-alphas stretching along x and y: superposition is the identity by symmetry.

    Atoms 0, 1 sit at -(a+s), +(a+s) on x; atoms 2, 3 at -(b+t), +(b+t) on y; s and t take
    +-e and +-f with zero mean and are uncorrelated. So RMSF = (e, e, f, f), corr(0, 1) =
    corr(2, 3) = -1 and corr between the pairs = 0.
    """
    a, b, e, f = 1.0, 1.5, 0.05, 0.02  # nm
    s = np.array([e, -e, e, -e])
    t = np.array([f, f, -f, -f])
    xyz = np.zeros((4, 4, 3), dtype=np.float32)
    xyz[:, 0, 0], xyz[:, 1, 0] = -(a + s), a + s
    xyz[:, 2, 1], xyz[:, 3, 1] = -(b + t), b + t
    top = md.Topology()
    chain = top.add_chain()
    for k, name in enumerate(["ALA", "GLY", "SER", "LEU"]):
        top.add_atom("CA", md.element.carbon, top.add_residue(name, chain, resSeq=k + 10))
    traj = md.Trajectory(xyz, top)
    top_path, trj_path = tmp_path / "four.pdb", tmp_path / "four.h5"
    traj[0].save_pdb(str(top_path))
    traj.save_hdf5(str(trj_path))

    features = md_features(top_path, trj_path)
    np.testing.assert_allclose(features.residues.rmsf, [e, e, f, f], atol=1e-6)
    expected = np.array([[1, -1, 0, 0], [-1, 1, 0, 0], [0, 0, 1, -1], [0, 0, -1, 1]], float)
    np.testing.assert_allclose(features.pair["corr"], expected, atol=1e-5)
    assert features.residues.resid.tolist() == [10, 11, 12, 13]
    assert features.sequence == "AGSL"


# ----------------------------------------------------------------------------- kernels


def test_angle_bins_follow_numpy_histogram():
    edges = ANGLE_EDGES
    values = np.array(
        [[-np.pi, np.pi, 0.0, edges[3], np.nextafter(edges[3], -4), 3.2, np.nan, -3.2]]
    ).T  # (8, 1): edges, just below an edge, outside, NaN
    counts = angle_bin_counts(values)
    expected, _ = np.histogram(values[~np.isnan(values)], bins=edges)
    np.testing.assert_array_equal(counts[0], expected)
    assert counts.sum() == 5 and counts[0, 0] == 1 and counts[0, 11] == 1
    assert counts[0, 6] == 1 and counts[0, 3] == 1 and counts[0, 2] == 1

    rng = np.random.default_rng(0)
    angles = rng.uniform(-np.pi, np.pi, size=(50, 7)).astype(np.float32)
    ref = np.stack([np.histogram(angles[:, j], bins=edges)[0] for j in range(7)])
    np.testing.assert_array_equal(angle_bin_counts(angles), ref)


def test_dssp_counts():
    codes = np.array([["H", " ", "E"], ["H", "T", "E"], ["G", " ", "NA"]])
    counts = dssp_class_counts(codes)  # classes B E H I G S T ' '
    np.testing.assert_array_equal(counts[0], [0, 0, 2, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(counts[1], [0, 0, 0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(counts[2], [0, 2, 0, 0, 0, 0, 0, 0])


def test_streaming_accumulators_match_whole_array():
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(23, 9, 3)) + rng.normal(size=(1, 9, 3)) * 50  # large offsets
    cov, moments = TraceCovariance(), RunningMoments()
    for lo, hi in ((0, 1), (1, 8), (8, 9), (9, 23)):
        cov.update(xyz[lo:hi])
        moments.update(xyz[lo:hi, :, 0])
    np.testing.assert_allclose(cov.correlation(), correlation_reference(xyz), atol=1e-12)
    rmsf = np.sqrt(((xyz - xyz.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
    np.testing.assert_allclose(cov.rmsf(), rmsf, rtol=1e-12)
    np.testing.assert_allclose(moments.mean, xyz[:, :, 0].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.std, xyz[:, :, 0].std(axis=0), rtol=1e-10)


# ----------------------------------------------------------------------------- files and CLI


def test_write_load_round_trip(tmp_path, tvj_tsv):
    csv_path, npz_path = write_md_features(tvj_tsv, tmp_path / "deep" / "er" / "3tvj")
    assert csv_path.name == "3tvj.residue.csv" and npz_path.name == "3tvj.pair.npz"
    loaded = load_md_features(tmp_path / "deep" / "er" / "3tvj")
    pd.testing.assert_frame_equal(loaded.residues, tvj_tsv.residues, check_dtype=False)
    for name in PAIR_KEYS:
        np.testing.assert_array_equal(loaded.pair[name], tvj_tsv.pair[name])
    assert loaded.sequence == tvj_tsv.sequence and loaded.n_frames == 10
    row = csv_path.read_text().splitlines()[1]
    assert row.startswith("X,1,GLY,") and ",,,,,,,,,,,," in row  # no chi for GLY
    assert {p.name for p in csv_path.parent.iterdir()} == {csv_path.name, npz_path.name}


def test_cli_writes_both_files_matching_reference(tmp_path, capsys):
    prefix = tmp_path / "cli" / "3tvj"
    args = ["features", "md", "--topology", str(TVJ_TOP), "--trajectory", str(TVJ_TRJ)]
    assert _run_cli([*args, "--out", str(prefix), "--contacts", str(TVJ_TSV)]) == 0
    assert "38 residues, 10 frames" in capsys.readouterr().err
    _assert_matches_reference(load_md_features(prefix))


def test_cli_help():
    assert _run_cli(["features", "md", "--help"]) == 0


def _bad_text_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text("this is not a trajectory\n" * 20)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("mismatch", "frames have 1629 atoms, the topology has 531"),
        ("unreadable", "cannot read"),
        ("empty_selection", "matches no protein atoms"),
        ("bad_selection", "invalid selection"),
        ("missing", "no such trajectory file"),
        ("bad_contacts", "not a GetContacts TSV"),
        ("one_frame", "at least 2 frames"),
    ],
)
def test_bad_inputs_give_one_line_error_and_no_files(tmp_path, capsys, case, message):
    top, trj, extra = TVJ_TOP, TVJ_TRJ, []
    if case == "mismatch":
        trj = XND_TRJ
    elif case == "unreadable":
        trj = _bad_text_file(tmp_path, "broken.dcd")
    elif case == "empty_selection":
        extra = ["--selection", "resname XYZ"]
    elif case == "bad_selection":
        extra = ["--selection", "name CA and and"]
    elif case == "missing":
        trj = tmp_path / "absent.xtc"
    elif case == "bad_contacts":
        extra = ["--contacts", str(_bad_text_file(tmp_path, "c.tsv"))]
    elif case == "one_frame":
        trj = tmp_path / "one.dcd"
        md.load_frame(str(TVJ_TRJ), 0, top=str(TVJ_TOP)).save_dcd(str(trj))
    capsys.readouterr()
    out = tmp_path / "out"
    args = ["features", "md", "-t", str(top), "-x", str(trj), "-o", str(out / "x"), *extra]
    assert _run_cli(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_api_errors_are_seqdance_errors(tmp_path):
    with pytest.raises(SeqDanceError, match="stride"):
        md_features(TVJ_TOP, TVJ_TRJ, stride=0)
    copy = tmp_path / "3tvj.pdb"
    shutil.copy(TVJ_TOP, copy)
    with pytest.raises(InputFileError, match="no such topology"):
        md_features(tmp_path / "nothere.pdb", TVJ_TRJ)


# (format, RMSF tolerance nm, corr tolerance): xtc stores 1e-3 nm, PDB 1e-4 nm, others float32
@pytest.mark.parametrize(
    "suffix, tol_rmsf, tol_corr",
    [("xtc", 1e-3, 0.02), ("trr", 1e-9, 1e-9), ("nc", 1e-9, 1e-9), ("pdb", 1e-6, 1e-5)],
)
def test_other_trajectory_formats(tmp_path, tvj_tsv, suffix, tol_rmsf, tol_corr):
    """The same frames written in other formats give the same features (to file precision)."""
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))
    path = tmp_path / f"3tvj.{suffix}"
    traj.save(str(path))
    features = md_features(TVJ_TOP, path, contacts=TVJ_TSV, chunk_size=3)
    assert features.n_frames == 10
    np.testing.assert_allclose(features.residues.rmsf, tvj_tsv.residues.rmsf, atol=tol_rmsf)
    np.testing.assert_allclose(features.pair["corr"], tvj_tsv.pair["corr"], atol=tol_corr)
    np.testing.assert_allclose(features.residues.sasa_mean, tvj_tsv.residues.sasa_mean, atol=0.01)
    if suffix in ("trr", "nc"):  # lossless: every column identical
        pd.testing.assert_frame_equal(features.residues, tvj_tsv.residues, atol=SASA_TOL)


def test_two_chains_keep_chain_boundaries(tmp_path, tvj_native):
    """Two copies of 3tvj_I (chains A, B, 6 nm apart): per-chain dihedral gaps, no
    inter-chain contacts, and each chain's contacts, DSSP and dihedrals equal the monomer's."""
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))
    other = traj[:]
    other.xyz = traj.xyz + np.array([6.0, 0.0, 0.0], dtype=np.float32)
    both = traj.stack(other)
    both.unitcell_lengths = both.unitcell_lengths * 3  # a box that holds both copies apart
    for chain, chain_id in zip(both.topology.chains, "AB", strict=True):
        chain.chain_id = chain_id
    top, trj = tmp_path / "dimer.pdb", tmp_path / "dimer.dcd"
    both[0].save_pdb(str(top))
    both.save_dcd(str(trj))

    features = md_features(top, trj)
    table = features.residues
    assert table.chain.tolist() == ["A"] * 38 + ["B"] * 38
    assert table.resid.tolist() == list(range(1, 39)) * 2
    assert features.sequence == tvj_native.sequence * 2
    for start, end in ((0, 37), (38, 75)):
        assert table.loc[start, list(ANGLE_COLUMNS["phi"])].isna().all()
        assert table.loc[end, list(ANGLE_COLUMNS["psi"])].isna().all()
    same = [c for c in FEATURE_COLUMNS if c.startswith(("ss_", "chi_", "phi_", "psi_"))]
    for half in (slice(0, 38), slice(38, 76)):
        got = table.iloc[half][same].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, tvj_native.residues[same])
    for name in INTERACTIONS:
        m = features.pair[name]
        assert not m[:38, 38:].any()
        np.testing.assert_array_equal(m[:38, :38], tvj_native.pair[name])
        np.testing.assert_array_equal(m[38:, 38:], tvj_native.pair[name])


def test_force_field_residue_names_count_as_protein(tmp_path, tvj_native):
    """AMBER's CYX (MDTraj's residue list lacks it) in an HDF5 topology keeps all rows."""
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))
    for residue in traj.topology.residues:
        if residue.name == "CYS":
            residue.name = "CYX"
    path = tmp_path / "cyx.h5"
    traj.save_hdf5(str(path))
    features = md_features(path, path)
    assert (features.residues.resname == "CYX").sum() == 6
    assert features.sequence == tvj_native.sequence
    pd.testing.assert_frame_equal(
        features.residues.drop(columns="resname"),
        tvj_native.residues.drop(columns="resname"),
        atol=SASA_TOL,
    )
    # vdw differs on purpose: GetContacts' disulfide exclusion checks the residue name CYS
    for name in (k for k in PAIR_KEYS if k != "vdw"):
        np.testing.assert_allclose(features.pair[name], tvj_native.pair[name], atol=1e-9)
