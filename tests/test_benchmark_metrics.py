"""ProteinGym's metrics and leaderboard aggregation: per-assay values against ProteinGym's
own functions on real assays, summaries against ProteinGym's published averages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from seqdance.benchmark.assays import read_reference
from seqdance.benchmark.metrics import (
    aggregate,
    assay_metrics,
    binarize,
    proteingym,
    read_per_assay_table,
)

DATA = Path(__file__).resolve().parent / "data" / "scoring"
REFERENCE = DATA / "proteingym_reference_DMS_substitutions.csv"
DMS_LEVEL = DATA / "DMS_substitutions_Spearman_DMS_level.csv"
PUBLISHED = DATA / "proteingym_summary_Spearman.csv"
ASSAYS = DATA / "proteingym_metrics"
FUNCTIONS = [
    "Function_Activity",
    "Function_Binding",
    "Function_Expression",
    "Function_OrganismalFitness",
    "Function_Stability",
]


def test_metrics_analytic_cases():
    target = np.arange(20, dtype=float)
    labels = binarize(target, 10.0)
    assert labels.tolist() == [0] * 10 + [1] * 10  # at or above the cutoff = fit
    best = assay_metrics(target * 2 + 1, target, labels)
    assert best == {"spearman": 1.0, "auc": 1.0, "mcc": 1.0, "ndcg": 1.0, "top_recall": 1.0,
                    "n": 20}  # fmt: skip
    worst = assay_metrics(-target, target, labels)
    assert worst["spearman"] == -1.0 and worst["auc"] == 0.0 and worst["mcc"] == -1.0
    assert worst["top_recall"] == 0.0
    # k = 2: predicted top two have min-max gains 0 and 1/19 at ranks 1, 2; ideal: 1, 18/19
    ndcg = (1 / 19 / np.log2(3)) / (1 + 18 / 19 / np.log2(3))
    assert worst["ndcg"] == pytest.approx(ndcg)
    # no labels: AUC and MCC are NaN; NaN predictions are left out
    pred = target.copy()
    pred[3] = np.nan
    partial = assay_metrics(pred, target)
    assert partial["n"] == 19 and np.isnan(partial["auc"]) and np.isnan(partial["mcc"])
    assert partial["spearman"] == 1.0


def test_benchmark_metrics_equal_proteingym_functions(run_cli, tiny_dir, tmp_path):
    """Real ProteinGym assays (without DMS_score_bin): the bin is derived from the
    reference file's cutoff, and every metric equals ProteinGym's function on the scores."""
    out = tmp_path / "bench"
    code = run_cli(
        ["benchmark", "-m", str(tiny_dir), "--assays", str(ASSAYS), "--out", str(out),
         "--reference", str(REFERENCE), "--properties", "sasa_mean,rmsf_nor,psi",
         "--bootstrap-samples", "50", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    pg = proteingym()
    reference = pd.read_csv(REFERENCE).set_index("DMS_id")
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["assay"]) == {"BLAT_ECOLX_Stiffler_2015", "IF1_ECOLI_Kelsic_2016"}
    checked = 0
    for name in ("BLAT_ECOLX_Stiffler_2015", "IF1_ECOLI_Kelsic_2016"):
        scores = pd.read_csv(out / "scores" / f"{name}.csv")
        raw = pd.read_csv(ASSAYS / f"{name}.csv")
        assert scores["mutant"].tolist() == raw["mutant"].tolist()
        cutoff = reference.loc[name, "DMS_binarization_cutoff"]
        expected_bin = [1 if x >= cutoff else 0 for x in raw["score"]]
        assert scores["DMS_score_bin"].tolist() == expected_bin
        assert 0 < sum(expected_bin) < len(expected_bin)
        frame = pd.DataFrame({"DMS_score": raw["score"], "DMS_score_bin": expected_bin})
        for prop in ("sasa_mean", "rmsf_nor", "psi", "norm_geometric_mean"):
            model = -scores[prop]  # relative change: bigger = less fit
            median_cutoff = model.median()
            model_bin = model.map(lambda x, c=median_cutoff: 1 if x >= c else 0)
            want = {
                "spearman": spearmanr(frame["DMS_score"], model)[0],
                "ndcg": pg.calc_ndcg(frame["DMS_score"], model),
                "top_recall": pg.calc_toprecall(frame["DMS_score"], model),
                "auc": roc_auc_score(y_true=frame["DMS_score_bin"], y_score=model),
                "mcc": matthews_corrcoef(y_true=frame["DMS_score_bin"], y_pred=model_bin),
            }
            got = summary[(summary["assay"] == name) & (summary["property"] == prop)].iloc[0]
            for metric, value in want.items():
                assert got[metric] == pytest.approx(value, abs=1e-12), (name, prop, metric)
            checked += 1
    assert checked == 8
    # leaderboard summaries over the two assays, one row per property
    by_model = pd.read_csv(out / "summary_by_model.csv")
    assert list(by_model.columns[:3]) == [
        "Model_name", "Average_Spearman", "Bootstrap_standard_error_Spearman",
    ]  # fmt: skip
    assert set(by_model["Model_name"]) >= {"sasa_mean", "psi", "norm_geometric_mean"}
    # both assays are OrganismalFitness of different proteins: the average is their mean
    rho = summary.pivot(index="assay", columns="property", values="spearman")
    row = by_model.set_index("Model_name").loc["psi"]
    assert row["Average_Spearman"] == pytest.approx(rho["psi"].mean())
    assert row["Function_OrganismalFitness"] == pytest.approx(rho["psi"].mean())
    assert np.isnan(row["Function_Stability"])
    for metric in ("AUC", "MCC", "NDCG", "Top_recall"):
        assert f"Average_{metric}" in pd.read_csv(out / f"summary_by_model_{metric.lower()}.csv")
    median = pd.read_csv(out / "summary_median.csv")
    assert "median" not in set(summary["assay"]) and len(median) == summary["property"].nunique()


def test_aggregate_reproduces_published_summary():
    """ProteinGym's published per-model averages (Spearman, 97 models, 217 assays) from its
    per-assay table: every model and function category to 1e-3."""
    reference = read_reference(REFERENCE)
    table = read_per_assay_table(DMS_LEVEL)["spearman"]
    ours = aggregate(table, reference, "spearman", samples=300).set_index("Model_name")
    published = pd.read_csv(PUBLISHED).set_index("Model_name")
    assert len(published) == 97 and set(published.index) == set(ours.index)
    for column in ["Average_Spearman", *FUNCTIONS]:
        diff = (ours.loc[published.index, column] - published[column]).abs()
        assert diff.max() <= 1e-3, (column, diff.idxmax(), diff.max())
    for model, values in {
        "ESM2 (35M)": (0.321, 0.314, 0.291, 0.343, 0.217, 0.439),
        "ESM2 (8M)": (0.226, 0.201, 0.260, 0.266, 0.140, 0.262),
    }.items():
        got = ours.loc[model, ["Average_Spearman", *FUNCTIONS]].to_numpy(float)
        assert np.abs(got - np.array(values)).max() <= 1e-3
    # bootstrap standard error (difference to the best model): same size as published
    se = ours.loc[published.index, "Bootstrap_standard_error_Spearman"]
    assert (se - published["Bootstrap_standard_error_Spearman"]).abs().max() <= 0.004
    assert se[published.index[0]] == 0.0  # the best model against itself


def test_cli_aggregate_proteingym_table(run_cli, tmp_path, capsys):
    out = tmp_path / "agg"
    argv = ["benchmark", "--aggregate", str(DMS_LEVEL), "--reference", str(REFERENCE)]
    assert run_cli([*argv, "--out", str(out), "--bootstrap-samples", "20"]) == 0
    summary = pd.read_csv(out / "summary_by_model.csv")
    assert list(summary.columns) == [
        "Model_name", "Average_Spearman", "Bootstrap_standard_error_Spearman", *FUNCTIONS,
        "n_assays",
    ]  # fmt: skip
    row = summary.set_index("Model_name").loc["ESM2 (35M)"]
    assert row["Average_Spearman"] == pytest.approx(0.321, abs=1e-3)
    assert row["n_assays"] == 217
    # an assay the reference does not know: one line, no output
    bad = tmp_path / "bad.csv"
    bad.write_text("DMS ID,my model\nNOT_AN_ASSAY,0.3\n")
    out2 = tmp_path / "agg2"
    ref = ["--reference", str(REFERENCE), "--out", str(out2)]
    assert run_cli(["benchmark", "--aggregate", str(bad), *ref]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: none of the 1 assays is in the reference file")
    assert not out2.exists()
    # our own per-assay table: assays named by file; unknown ones are left out with a warning
    ours = tmp_path / "summary.csv"
    pd.DataFrame(
        {
            "assay": ["BLAT_ECOLX_Stiffler_2015", "IF1_ECOLI_Kelsic_2016", "OLD_NAME_2019"],
            "property": "psi",
            "spearman": [0.1, 0.3, 0.9],
            "ndcg": [0.5, 0.7, 0.9],
            "n": 10,
        }
    ).to_csv(ours, index=False)
    out3 = tmp_path / "agg3"
    samples = ["--bootstrap-samples", "20"]
    assert (
        run_cli(["benchmark", "--aggregate", str(ours), *ref[:2], *samples, "--out", str(out3)])
        == 0
    )
    assert "1 assay(s) not in the reference file left out" in capsys.readouterr().err
    psi = pd.read_csv(out3 / "summary_by_model.csv").set_index("Model_name").loc["psi"]
    assert psi["Average_Spearman"] == pytest.approx(0.2) and psi["n_assays"] == 2
    ndcg = pd.read_csv(out3 / "summary_by_model_ndcg.csv").set_index("Model_name").loc["psi"]
    assert ndcg["Average_NDCG"] == pytest.approx(0.6)
    assert run_cli(["benchmark", "--aggregate", str(DMS_LEVEL), "--out", str(out2)]) == 1
    assert "needs --reference" in capsys.readouterr().err
