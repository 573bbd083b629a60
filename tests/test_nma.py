"""NMA features: the authors' reference, hand-checked networks, the band split, bad files."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest

from seqdance.errors import InputFileError
from seqdance.features.nma import (
    anm_band_correlations,
    band_split,
    compute_nma,
    hessian_matrix,
    kirchhoff_matrix,
    load_nma_features,
    nma_features_of_file,
    spring_constants,
)
from seqdance.features.structure import read_calphas, structure_stem

DATA = Path(__file__).parent / "data" / "nma"
PDB_2G3R = DATA / "2g3r.pdb"
REF_2G3R = DATA / "nma_residue_pair_features_2g3r.npz"
SMALL = DATA / "2KCF.pdb"  # 36-residue NMR/AF-size domain


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ------------------------------------------------------------------ the authors' reference


def test_2g3r_matches_authors_reference():
    ref = np.load(REF_2G3R)
    feats = nma_features_of_file(PDB_2G3R)
    assert feats.gnm_msf.shape == (3, 119) and feats.gnm_msf.dtype == np.float64
    assert feats.anm_cor.shape == (3, 119, 119) and feats.anm_cor.dtype == np.float64
    assert rel_err(feats.gnm_msf, ref["gnm_msf"]) <= 1e-5
    assert rel_err(feats.anm_cor, ref["anm_cor"]) <= 1e-5
    # element-wise too, so that small values are also right
    np.testing.assert_allclose(feats.gnm_msf, ref["gnm_msf"], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(feats.anm_cor, ref["anm_cor"], rtol=1e-5, atol=1e-9)


def test_cli_writes_reference_numbers(run_cli, tmp_path):
    assert run_cli(["features", "nma", str(PDB_2G3R), "--out", str(tmp_path), "--no-progress"]) == 0
    out = load_nma_features(tmp_path / "2g3r.nma.npz")
    ref = np.load(REF_2G3R)
    assert rel_err(out.gnm_msf, ref["gnm_msf"]) <= 1e-5
    assert rel_err(out.anm_cor, ref["anm_cor"]) <= 1e-5
    assert len(out.sequence) == 119 and out.sequence.startswith("SFVGLRVVAKWSSNGYFYSG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2g3r.nma.npz"]  # no temporaries left


def test_waters_and_ions_ignored():
    calphas = read_calphas(PDB_2G3R)
    assert len(calphas) == 119  # the file also has ~200 waters and sulfates
    assert set(calphas.sequence) <= set("ACDEFGHIKLMNPQRSTVWYX")


# ------------------------------------------------- an independent computation (slow path)


def _reference_nma(coords: np.ndarray):
    """ProDy's own network builders with a Python spring function, NumPy eigh, and the
    full 3N x 3N band covariance, as the authors computed it."""
    import prody

    prody.LOGGER.verbosity = "none"

    def gamma(dist2, *args):
        return 10.0 if dist2 <= 16 else 2.0 if dist2 <= 100 else 1.0 if dist2 <= 225 else 0.0

    gnm = prody.GNM()
    gnm.buildKirchhoff(coords, cutoff=15, gamma=gamma)
    anm = prody.ANM()
    anm.buildHessian(coords, cutoff=15, gamma=gamma)
    n = len(coords)

    vals, vecs = np.linalg.eigh(gnm.getKirchhoff())
    vals, vecs = vals[1:], vecs[:, 1:]  # drop the one zero mode
    msf = np.stack([(vecs[:, b] ** 2 / vals[b]).sum(1) for b in band_split(vals)])

    vals, vecs = np.linalg.eigh(anm.getHessian())
    vals, vecs = vals[6:], vecs[:, 6:]  # drop six rigid-body modes
    cors = []
    for b in band_split(vals):
        w = vecs[:, b] / np.sqrt(vals[b])
        cov = np.trace((w @ w.T).reshape(n, 3, n, 3), axis1=1, axis2=3)
        cors.append(cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))))
    return gnm.getKirchhoff(), anm.getHessian(), msf, np.stack(cors)


@pytest.mark.parametrize("path", [SMALL, PDB_2G3R])
def test_matches_independent_prody_numpy_computation(path):
    coords = read_calphas(path).coords
    kirchhoff, hessian, msf, cor = _reference_nma(coords)
    np.testing.assert_allclose(kirchhoff_matrix(coords), kirchhoff, atol=1e-12)
    np.testing.assert_allclose(hessian_matrix(coords), hessian, atol=1e-10)
    feats = compute_nma(coords)
    assert rel_err(feats.gnm_msf, msf) <= 1e-6
    assert rel_err(feats.anm_cor, cor) <= 1e-6


# ------------------------------------------------------------------ hand-checked networks


def test_spring_constants_at_the_boundaries():
    d = np.array([3.8, 4.0, 4.0001, 10.0, 10.0001, 15.0, 15.0001, 40.0])
    np.testing.assert_array_equal(spring_constants(d**2), [10, 10, 2, 2, 1, 1, 0, 0])


def test_kirchhoff_and_hessian_of_three_collinear_atoms():
    coords = np.array([[0.0, 0, 0], [3.8, 0, 0], [7.6, 0, 0]])  # springs 10, 10 and 2
    np.testing.assert_array_equal(
        kirchhoff_matrix(coords), [[12, -10, -2], [-10, 20, -10], [-2, -10, 12]]
    )
    hessian = hessian_matrix(coords)
    # along x the Hessian is the Kirchhoff matrix; y and z have no stiffness for a line
    np.testing.assert_allclose(hessian[0::3, 0::3], kirchhoff_matrix(coords))
    np.testing.assert_allclose(hessian[1::3, :], 0.0, atol=1e-12)
    np.testing.assert_allclose(hessian[2::3, :], 0.0, atol=1e-12)


def test_hessian_block_of_a_diagonal_pair():
    coords = np.array([[0.0, 0, 0], [2.0, 2.0, 0]])  # d = 2.83 A -> spring 10
    block = hessian_matrix(coords)[0:3, 3:6]
    expected = -10.0 / 8.0 * np.outer([2.0, 2.0, 0], [2.0, 2.0, 0])
    np.testing.assert_allclose(block, expected)


def test_gnm_band_fluctuations_sum_to_the_pseudo_inverse():
    coords = read_calphas(SMALL).coords
    feats = compute_nma(coords)
    total = np.linalg.pinv(kirchhoff_matrix(coords), hermitian=True).diagonal()
    np.testing.assert_allclose(feats.gnm_msf.sum(axis=0), total, rtol=1e-8)
    np.testing.assert_allclose(np.diagonal(feats.anm_cor, axis1=1, axis2=2), 1.0)
    np.testing.assert_allclose(feats.anm_cor, np.swapaxes(feats.anm_cor, 1, 2), atol=1e-12)
    assert np.all(np.abs(feats.anm_cor) <= 1 + 1e-12)


def test_anm_correlation_of_a_single_mode_is_plus_minus_one():
    # one mode moving atom 0 along +x and atom 1 along -x: perfectly anti-correlated
    vec = np.array([1.0, 0, 0, -1.0, 0, 0])[:, None] / np.sqrt(2)
    cor = anm_band_correlations(np.array([2.0]), vec, [np.array([0])])
    np.testing.assert_allclose(cor[0], [[1, -1], [-1, 1]])


# ----------------------------------------------------------------------- band split


def test_band_split_by_cumulative_inverse_eigenvalue():
    # 1/lambda shares 0.3, 0.3, 0.2, 0.2 -> c = .3 .6 .8 1; i1 = 0; (1 + .3)/2 = .65 -> i2 = 1
    eigvals = 1.0 / np.array([0.3, 0.3, 0.2, 0.2])
    bands = band_split(eigvals)
    assert [b.tolist() for b in bands] == [[0], [1], [2, 3]]


def test_band_split_covers_every_mode_once():
    eigvals = np.sort(np.random.default_rng(0).uniform(0.1, 50, size=200))
    bands = band_split(eigvals)
    np.testing.assert_array_equal(np.concatenate(bands), np.arange(200))
    shares = [(1 / eigvals[b]).sum() / (1 / eigvals).sum() for b in bands]
    assert abs(shares[0] - 1 / 3) < 0.05  # each band carries about a third
    assert abs(shares[1] - 1 / 3) < 0.05


# ------------------------------------------------------------------- formats and chains


def test_gzip_and_mmcif_give_the_same_numbers(tmp_path):
    import prody

    prody.LOGGER.verbosity = "none"
    gz = tmp_path / "small.pdb.gz"
    with open(SMALL, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    cif = tmp_path / "small.cif"
    prody.writeMMCIF(str(cif), prody.parsePDB(str(SMALL)))
    plain = nma_features_of_file(SMALL)
    for other in (gz, cif):
        feats = nma_features_of_file(other)
        assert feats.sequence == plain.sequence
        np.testing.assert_allclose(feats.gnm_msf, plain.gnm_msf, rtol=1e-6)
        np.testing.assert_allclose(feats.anm_cor, plain.anm_cor, rtol=1e-6, atol=1e-9)
    assert structure_stem(gz) == "small" and structure_stem(tmp_path / "x.cif.gz") == "x"


@pytest.mark.parametrize("opener", [bz2.open, lzma.open], ids=["bz2", "xz"])
def test_bz2_and_xz_structures_give_the_same_numbers(tmp_path, opener):
    """Structures compressed with bzip2 or xz (read from a decompressed copy, as ProDy
    reads .gz itself) give the numbers of the plain file."""
    packed = tmp_path / f"small.pdb.{'bz2' if opener is bz2.open else 'xz'}"
    with open(SMALL, "rb") as src, opener(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain = nma_features_of_file(SMALL)
    feats = nma_features_of_file(packed)
    assert feats.sequence == plain.sequence
    np.testing.assert_array_equal(feats.gnm_msf, plain.gnm_msf)
    assert structure_stem(packed) == "small"


def test_chain_option(tmp_path):
    assert len(read_calphas(PDB_2G3R, chain="A")) == 119
    with pytest.raises(InputFileError, match="chain Z"):
        read_calphas(PDB_2G3R, chain="Z")


# ------------------------------------------------------------------------- bad files


def _write_pdb(path: Path, records: list[tuple[str, str, str, int, tuple[float, float, float]]]):
    lines = []
    for serial, (record, name, resname, resnum, (x, y, z)) in enumerate(records, start=1):
        lines.append(
            f"{record:<6}{serial:>5} {name:<4} {resname:>3} A{resnum:>4}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {name[0]:>2}"
        )
    path.write_text("\n".join(lines) + "\nEND\n")


def test_bad_files_give_one_line_errors_and_no_output(run_cli, tmp_path, capsys):
    not_structure = tmp_path / "notes.pdb"
    not_structure.write_text("this is not a structure\n")
    waters = tmp_path / "waters.pdb"
    _write_pdb(waters, [("HETATM", "O", "HOH", i, (3.0 * i, 0, 0)) for i in range(1, 6)])
    tiny = tmp_path / "tiny.pdb"
    _write_pdb(tiny, [("ATOM", "CA", "ALA", i, (3.8 * i, 0, 0)) for i in range(1, 4)])
    out = tmp_path / "out"
    for path, message in [
        (not_structure, "not a readable PDB/mmCIF structure"),
        (waters, "no protein C-alpha atoms"),
        (tiny, "too few"),
        (tmp_path / "missing.pdb", "no such file"),
    ]:
        capsys.readouterr()
        assert run_cli(["features", "nma", str(path), "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert message in err
        assert "Traceback" not in err
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists() or not any(out.iterdir())


def test_batch_with_a_bad_file_writes_the_others(run_cli, tmp_path, capsys):
    bad = tmp_path / "broken.pdb"
    bad.write_text("HEADER garbage\nATOM  this line is cut")
    out = tmp_path / "out"
    args = ["features", "nma", str(SMALL), str(bad), str(PDB_2G3R), "--out", str(out)]
    assert run_cli(args + ["--workers", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "broken.pdb" in err and "2 of 3 written" in err
    assert sorted(p.name for p in out.iterdir()) == ["2KCF.nma.npz", "2g3r.nma.npz"]
    ref = np.load(REF_2G3R)
    assert rel_err(load_nma_features(out / "2g3r.nma.npz").gnm_msf, ref["gnm_msf"]) <= 1e-5


def test_corrupt_feature_file_is_reported(tmp_path):
    path = tmp_path / "x.nma.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputFileError, match="not a valid NMA feature file"):
        load_nma_features(path)
