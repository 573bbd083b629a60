"""``seqdance benchmark`` on real ProteinGym and mega-scale assays with a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from seqdance.benchmark.assays import read_proteingym_assay, subsample
from seqdance.benchmark.megascale import read_megascale
from seqdance.benchmark.metrics import spearman
from seqdance.benchmark.run import medians, orientation
from seqdance.benchmark.suites import read_assays
from seqdance.cli import main
from seqdance.errors import SeqDanceError

DATA = Path(__file__).resolve().parent / "data" / "scoring"
GYM = DATA / "proteingym"
MEGA = DATA / "megascale_system_info.csv"


def _run(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


def test_read_proteingym_assay_duplicate_columns():
    assay = read_proteingym_assay(GYM / "F7YBW8_MESOW_Aakre_2015.csv")
    assert len(assay) == 37 and len(assay.wild_type) == 93
    assert assay.mutants[0] == "L59Q" and assay.target[0] == pytest.approx(1.014096)
    assert [a.name for a in read_assays(GYM)] == [
        "F7YBW8_MESOW_Aakre_2015",
        "IF1_ECOLI_Kelsic_2016",
    ]
    assert len(read_assays(GYM, limit=1)) == 1


def test_read_megascale_sign_and_filters(capsys):
    assays = {a.name: a for a in read_megascale(MEGA)}
    assert sorted(assays) == ["1AOY", "1EM7_L7A", "1ENH"]  # EEHEE_rd3_1587 has no wild-type row
    err = capsys.readouterr().err.strip().splitlines()  # left out, but not in silence
    assert err == [f"note: {MEGA}: 1 protein(s) have mutants but no wild-type row and are "
                   "left out: EEHEE_rd3_1587"]  # fmt: skip
    table = pd.read_csv(MEGA)
    one = table[table["name"] == "1ENH__Q6C"].iloc[0]
    wt = table[table["name"] == "1ENH"].iloc[0]
    assert one["ddg_exp"] == pytest.approx(one["dg_exp"] - wt["dg_exp"])  # ddG = dG_mut - dG_wt
    assert wt["dg_exp"] < 0  # folding free energy: negative = stable, so -ddG = stability
    aenh = assays["1ENH"]
    assert aenh.target[list(aenh.mutated_sequences).index(one["sequence"])] == -one["ddg_exp"]
    assert read_assays(MEGA)[0].name == "1AOY"


def test_spearman_orientation_and_median():
    assert orientation("psi") == -1.0 and orientation("llr_masked_marginal") == 1.0
    rho, n = spearman(np.array([1.0, 2, 3, np.nan]), np.array([3.0, 2, 1, 5]))
    assert rho == pytest.approx(-1.0) and n == 3
    assert np.isnan(spearman(np.array([1.0, 2]), np.array([1.0, 2]))[0])
    rows = [
        {"assay": "a", "property": "p", "spearman": 0.1, "ndcg": 0.9, "n": 5},
        {"assay": "b", "property": "p", "spearman": 0.5, "ndcg": 0.7, "n": 5},
        {"assay": "c", "property": "p", "spearman": float("nan"), "ndcg": float("nan"), "n": 2},
        {"assay": "d", "property": "p", "spearman": 0.2, "ndcg": 0.2, "n": 5},
    ]
    (med,) = medians(rows)
    assert med["property"] == "p" and med["spearman"] == 0.2 and med["n_assays"] == 3
    assert med["ndcg"] == 0.7 and np.isnan(med["auc"])


def test_subsample_even():
    assay = read_proteingym_assay(GYM / "F7YBW8_MESOW_Aakre_2015.csv")
    small = subsample(assay, 10)
    assert len(small) == 10 and small.mutants[0] == assay.mutants[0]
    assert small.mutants[-1] == assay.mutants[-1]


def test_cli_benchmark_proteingym(tiny_dir, tmp_path):
    out = tmp_path / "bench"
    argv = ["benchmark", "-m", str(tiny_dir), "--assays", str(GYM), "--out", str(out)]
    code = _run([*argv, "--limit", "2", "--max-variants", "12", "--no-progress"])
    assert code == 0
    per_assay = pd.read_csv(out / "summary.csv")
    assert list(per_assay.columns) == [
        "assay", "property", "spearman", "auc", "mcc", "ndcg", "top_recall", "n",
    ]  # fmt: skip
    assert set(per_assay["assay"]) == {"F7YBW8_MESOW_Aakre_2015", "IF1_ECOLI_Kelsic_2016"}
    assert (per_assay["n"] == 12).all()
    for name in ("F7YBW8_MESOW_Aakre_2015", "IF1_ECOLI_Kelsic_2016"):
        scores = pd.read_csv(out / "scores" / f"{name}.csv")
        assert len(scores) == 12 and {"mutant", "target", "sasa_mean", "psi"} <= set(scores)
        for prop in ("sasa_mean", "norm_geometric_mean", "vdw"):
            expected = spearmanr(-scores[prop], scores["target"]).statistic
            got = per_assay[(per_assay["assay"] == name) & (per_assay["property"] == prop)]
            assert got["spearman"].iloc[0] == pytest.approx(expected)
    med = pd.read_csv(out / "summary_median.csv").set_index("property")
    psi = per_assay[per_assay["property"] == "psi"]["spearman"]
    assert med.loc["psi", "spearman"] == pytest.approx(np.median(psi))
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_benchmark_megascale(tiny_dir, tmp_path):
    out = tmp_path / "mega"
    code = _run(
        [
            "benchmark", "-m", str(tiny_dir), "--assays", str(MEGA), "--out", str(out),
            "--properties", "sasa_mean,psi", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["assay"]) == {"1AOY", "1EM7_L7A", "1ENH"}
    scores = pd.read_csv(out / "scores" / "1ENH.csv")
    assert "L32G:F43N" in set(scores["mutant"])  # multi-mutant named from the sequences
    assert "ss" not in set(summary["property"])


def test_cli_benchmark_errors(tiny_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = _run(
        ["benchmark", "-m", str(tiny_dir), "--assays", str(empty), "--out", str(tmp_path / "o")]
    )
    assert code == 1 and "no assay" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "X.csv").write_text("mutant,fitness\nA1G,0.1\n")
    (bad / "X.fasta").write_text(">X\nACDE\n")
    with pytest.raises(SeqDanceError, match="no score column"):
        read_assays(bad)
