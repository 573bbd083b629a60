"""Chain boundaries and labels (issue 28 section 2) on small hand-written files, and the
sparse contact sums and pair precision of ``features md``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqdance.features.getcontacts import ContactLine, residue_pair_counts
from seqdance.features.md import load_md_features, md_features, write_md_features
from seqdance.features.md_kernels import SparsePairCounts, TraceCovariance, correlation_reference
from seqdance.features.topology import load_topology
from seqdance.schema import INTERACTIONS

TVJ = Path(__file__).parent / "data" / "md" / "3tvj_I"
TVJ_TOP, TVJ_TRJ = TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd"
TVJ_TSV = TVJ / "3tvj_I_10frames_contact.tsv"


def _pdb_line(serial, name, resname, chain, resnum, x, segid=""):
    return (
        f"ATOM  {serial:5d}  {name:<3} {resname:>3} {chain}{resnum:4d}    "
        f"{x:8.3f}{0.0:8.3f}{0.0:8.3f}  1.00  0.00      {segid:<4}{name[0]:>2}"
    )


def _glycines(path: Path, chains: list[tuple[str, list[int], str]], ter: bool = True) -> Path:
    """Glycines (N, CA, C, O) 3.8 A apart along x; ``chains``: (chain ID, numbers, segid)."""
    lines, serial, x = [], 0, 0.0
    for chain, numbers, segid in chains:
        for number in numbers:
            for name, dx in (("N", 0.0), ("CA", 1.45), ("C", 2.5), ("O", 3.0)):
                serial += 1
                lines.append(_pdb_line(serial, name, "GLY", chain, number, x + dx, segid))
            x += 3.8
        x += 20.0
        if ter:
            lines.append("TER")
    path.write_text("\n".join(lines) + "\nEND\n")
    return path


def _chain_ids(path: Path) -> list[tuple[str, int]]:
    top = load_topology(path).topology
    return [(c.chain_id, c.n_residues) for c in top.chains]


def test_ter_split_chain_with_new_numbers_keeps_its_label(tmp_path):
    path = _glycines(tmp_path / "a.pdb", [("A", [1, 2, 3], ""), ("A", [7, 8], ""), ("B", [1], "")])
    assert _chain_ids(path) == [("A", 3), ("A", 2), ("B", 1)]
    assert not any("repeat" in n for n in load_topology(path).notes)


def test_repeated_letters_with_overlapping_numbers_get_suffixes(tmp_path):
    chains = [("A", [1, 2], ""), ("B", [1, 2], ""), ("A", [1, 2], ""), ("A", [2, 3], "")]
    path = _glycines(tmp_path / "a.pdb", chains)
    assert _chain_ids(path) == [("A", 2), ("B", 2), ("A_2", 2), ("A_3", 2)]
    notes = load_topology(path).notes
    assert any("A -> A_2..A_3" in n for n in notes)


def test_segment_ids_split_one_chain_letter(tmp_path):
    chains = [("P", [1, 2], "PROA"), ("P", [1, 2], "PROB")]
    path = _glycines(tmp_path / "a.pdb", chains, ter=False)
    assert _chain_ids(path) == [("P", 2), ("P_2", 2)]


def test_mmcif_label_asym_id_separates_repeated_author_chains(tmp_path):
    rows = []
    serial = 0
    for k, (auth, label) in enumerate((("A", "A"), ("A", "B"))):
        for number in (1, 2):
            for name, dx in (("N", 0.0), ("CA", 1.45), ("C", 2.5), ("O", 3.0)):
                serial += 1
                x = 40.0 * k + 3.8 * number + dx
                rows.append(
                    f"ATOM {serial} {name[0]} {name} GLY {label} {number} {x:.3f} 0 0 {number} "
                    f"GLY {auth} {name} 1"
                )
    cols = (
        "group_PDB id type_symbol label_atom_id label_comp_id label_asym_id label_seq_id "
        "Cartn_x Cartn_y Cartn_z auth_seq_id auth_comp_id auth_asym_id auth_atom_id "
        "pdbx_PDB_model_num"
    ).split()
    path = tmp_path / "a.cif"
    path.write_text(
        "\n".join(["data_x", "loop_", *[f"_atom_site.{c}" for c in cols], *rows]) + "\n"
    )
    assert _chain_ids(path) == [("A", 2), ("A_2", 2)]


def _gro(path: Path, numbers: list[int], gap_after: int | None = None) -> Path:
    lines, serial, x = ["t", f"{4 * len(numbers):5d}"], 0, 0.0
    for k, number in enumerate(numbers):
        for name, dx in (("N", 0.0), ("CA", 0.145), ("C", 0.25), ("O", 0.30)):
            serial += 1
            lines.append(
                f"{number % 100000:5d}{'GLY':<5}{name:>5}{serial:5d}{x + dx:8.3f}{0:8.3f}{0:8.3f}"
            )
        x += 0.38 if k != gap_after else 2.0
    lines.append("  10.0 10.0 10.0")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gro_restart_of_numbers_starts_a_chain_but_a_wrap_does_not(tmp_path):
    # bonded geometry throughout: only the numbers tell the molecules apart
    restart = _gro(tmp_path / "r.gro", [1, 2, 3, 1, 2])
    assert [n for _, n in _chain_ids(restart)] == [3, 2]
    wrap = _gro(tmp_path / "w.gro", [99998, 99999, 100000, 100001])
    assert [n for _, n in _chain_ids(wrap)] == [4]


# ----------------------------------------------------------------------------- sparse sums


def test_sparse_pair_counts_equal_dense_add_at():
    rng = np.random.default_rng(0)
    n, k_max = 17, len(INTERACTIONS)
    sums = SparsePairCounts(k_max, n)
    dense = np.zeros((k_max, n, n))
    for _ in range(5):  # five chunks
        m = int(rng.integers(0, 40))
        k, i, j = rng.integers(0, k_max, m), rng.integers(0, n, m), rng.integers(0, n, m)
        sums.update(k, i, j)
        np.add.at(dense, (k, i, j), 1.0)
    rows = np.array([0, 3, 4, 9, 16])
    for c in range(k_max):
        want = dense[c][np.ix_(rows, rows)] / 7
        got = sums.dense(c, rows, 7)
        assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
        np.testing.assert_array_equal(sums.dense(c, rows, 7, np.float32), want.astype(np.float32))


def test_residue_pair_counts_both_cells_is_symmetric_sum():
    lines = [
        ContactLine(0, "vdw", "A:GLY:1:CA", "A:GLY:2:CA"),
        ContactLine(0, "vdw", "A:GLY:2:N", "A:GLY:2:O"),
    ]
    keys = [("A", "1"), ("A", "2")]
    listed = residue_pair_counts(lines, keys, 1)["vdw"]
    both = residue_pair_counts(lines, keys, 1, cells="both")["vdw"]
    np.testing.assert_array_equal(listed, [[0, 1], [0, 1]])
    np.testing.assert_array_equal(both, listed + listed.T - np.diag(np.diag(listed)))


def test_blocked_correlation_equals_reference():
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(30, 300, 3))
    cov = TraceCovariance()
    for start in (0, 13):
        cov.update(xyz[start : start + 13] if start == 0 else xyz[13:])
    got = cov.correlation(rows_per_block=64)
    np.testing.assert_allclose(got, correlation_reference(xyz), atol=1e-12)
    assert got.tobytes() == cov.correlation(rows_per_block=1000).tobytes()


# ----------------------------------------------------------------------------- pair precision


@pytest.mark.parametrize("contacts", [None, TVJ_TSV])
def test_float32_pairs_are_the_float64_values_rounded(tmp_path, contacts):
    wide = md_features(TVJ_TOP, TVJ_TRJ, contacts=contacts)
    narrow = md_features(TVJ_TOP, TVJ_TRJ, contacts=contacts, pair_dtype="float32")
    for key, values in narrow.pair.items():
        assert values.dtype == np.float32
        np.testing.assert_array_equal(values, wide.pair[key].astype(np.float32), err_msg=key)
    assert narrow.residues.equals(wide.residues)
    write_md_features(narrow, tmp_path / "n")
    back = load_md_features(tmp_path / "n")
    assert all(back.pair[k].dtype == np.float32 for k in back.pair)
    assert (tmp_path / "n.pair.npz").stat().st_size < 0.8 * (
        write_md_features(wide, tmp_path / "w")[1].stat().st_size
    )


def test_bad_pair_dtype_is_one_error_line_and_nothing_written(tmp_path, run_cli, capsys):
    out = tmp_path / "out"
    capsys.readouterr()
    args = ["features", "md", "-t", str(TVJ_TOP), "-x", str(TVJ_TRJ), "-o", str(out / "x")]
    assert run_cli([*args, "--pair-dtype", "float16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "pair dtype must be one of" in err[0]
    assert not out.exists()
