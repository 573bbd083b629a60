"""Embedding analysis: mean embeddings, PCA + linear regression vs an independent computation
on a real table (MDTraj radius of gyration of 30 mega-scale wild types), CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqdance.analysis.embeddings import (
    EmbeddingConfig,
    analyze_embeddings,
    fit_pca_regression,
    mean_embeddings,
)
from seqdance.errors import SeqDanceError
from seqdance.model import SeqDanceModel
from seqdance.model.alphabet import batch_encode

TABLE = Path(__file__).parent / "data" / "analysis" / "megascale_rg.csv"


@pytest.fixture(scope="module")
def model(make_tiny_model) -> SeqDanceModel:
    return make_tiny_model(1, noise=0.3)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(TABLE)


def _trunk_means(model, table, rows_of) -> np.ndarray:
    """Independent: one unbatched trunk pass per sequence, mean over the chosen rows."""
    rows = []
    for seq in table["sequence"]:
        ids, mask = batch_encode([seq])
        with torch.no_grad():
            hidden = model.esm2(input_ids=ids, attention_mask=mask)
        rows.append(hidden[0, rows_of(len(seq))].double().mean(0).numpy())
    return np.stack(rows)  # (N, E)


@pytest.fixture(scope="module")
def embeddings(model, table) -> np.ndarray:
    """The authors' notebook: mean over all L + 2 tokens (``res_emb.mean(dim=1)``)."""
    return _trunk_means(model, table, lambda n: slice(0, n + 2))


@pytest.fixture(scope="module")
def residue_embeddings(model, table) -> np.ndarray:
    """The ``residues_only`` option: mean over the residue rows."""
    return _trunk_means(model, table, lambda n: slice(1, n + 1))


def _independent_fit(x_train, y_train, x_all, k):
    """PCA from the eigenvectors of the covariance, regression from the normal equations."""
    mean = x_train.mean(0)
    centred = x_train - mean
    eigval, eigvec = np.linalg.eigh(centred.T @ centred)
    top = eigvec[:, np.argsort(eigval)[::-1][:k]]  # (E, k)
    scores = centred @ top
    design = np.hstack([scores, np.ones((len(scores), 1))])
    beta = np.linalg.solve(design.T @ design, design.T @ y_train)
    return np.hstack([(x_all - mean) @ top, np.ones((len(x_all), 1))]) @ beta


def test_table_is_the_real_rg_of_the_structures(table):
    assert len(table) == 30 and (table["split"] == "test").sum() == 7
    row = table[table["name"] == "1ENH"].iloc[0]
    assert len(row["sequence"]) == 48 and row["sequence"].startswith("AFSSEQLARLKRE")
    assert row["rg_nm"] == pytest.approx(0.99789)
    assert table["rg_nm"].between(0.8, 1.4).all()


def test_mean_embeddings_equal_the_trunk_mean_over_all_tokens(model, table, embeddings):
    got = mean_embeddings(model, list(table["sequence"]), token_budget=300)  # several batches
    np.testing.assert_allclose(got, embeddings, atol=1e-5)


def test_residues_only_mean(model, table, embeddings, residue_embeddings):
    got = mean_embeddings(model, list(table["sequence"]), token_budget=300, residues_only=True)
    np.testing.assert_allclose(got, residue_embeddings, atol=1e-5)
    assert np.abs(embeddings - residue_embeddings).max() > 1e-2  # the special tokens count


@pytest.mark.parametrize("k", [1, 5, 12])
def test_pca_regression_equals_an_independent_computation(table, embeddings, k):
    train = (table["split"] == "train").to_numpy()
    y = table["rg_nm"].to_numpy()
    fit = fit_pca_regression(embeddings[train], y[train], k)
    want = _independent_fit(embeddings[train], y[train], embeddings, k)
    np.testing.assert_allclose(fit.predict(embeddings), want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.components @ fit.components.T, np.eye(k), atol=1e-10)
    with pytest.raises(SeqDanceError, match="components need at least"):
        fit_pca_regression(embeddings[train][:5], y[train][:5], 5)


def test_cli_metrics_predictions_and_plot(run_cli, model, table, embeddings, tmp_path):
    folder = model.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "out"
    args = ["analyze", "embeddings", "-m", str(folder), "--table", str(TABLE)]
    args += ["--target", "rg_nm", "--components", "10", "-o", str(out), "--device", "cpu"]
    assert run_cli([*args, "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "predictions.csv",
        "predictions.png",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["id", "split", "measured", "predicted"]
    assert list(predictions["id"]) == list(table["name"])

    train = (table["split"] == "train").to_numpy()
    y = table["rg_nm"].to_numpy()
    want = _independent_fit(embeddings[train], y[train], embeddings, 10)
    np.testing.assert_allclose(predictions["predicted"], want, rtol=1e-4, atol=1e-6)
    test = ~train
    r = np.corrcoef(y[test], want[test])[0, 1]
    mse = np.mean((y[test] - want[test]) ** 2)
    assert metrics["pearson_r"] == pytest.approx(r, abs=1e-4)
    assert metrics["mse"] == pytest.approx(mse, rel=1e-4)
    assert metrics["n_train"] == 23 and metrics["n_test"] == 7
    assert metrics["components"] == 10 and metrics["embedding_dim"] == 32
    assert (out / "predictions.png").read_bytes()[:4] == b"\x89PNG"


def test_components_are_capped_by_the_train_rows(model, tmp_path):
    small = pd.read_csv(TABLE).head(12)  # rows 3, 7, 11 are test: 9 train rows
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    config = EmbeddingConfig(target="rg_nm", components=200)
    analysis = analyze_embeddings(model, path, config)
    assert analysis.metrics["components"] == 8  # train rows - 1
    assert analysis.metrics["components_requested"] == 200


def test_rows_without_a_target_are_skipped(model, tmp_path):
    table = pd.read_csv(TABLE)
    table["rg_nm"] = table["rg_nm"].astype(object)
    table.loc[[0, 5], "rg_nm"] = ""
    path = tmp_path / "gaps.csv"
    table.to_csv(path, index=False)
    analysis = analyze_embeddings(model, path, EmbeddingConfig(target="rg_nm", components=4))
    assert analysis.metrics["n_skipped_missing_target"] == 2
    assert analysis.metrics["n_train"] + analysis.metrics["n_test"] == 28


def _edit(table: pd.DataFrame, case: str) -> pd.DataFrame:
    table = table.copy()
    if case == "split value":
        table.loc[4, "split"] = "validation"
    elif case == "empty test":
        table["split"] = "train"
    elif case == "letter":
        table.loc[2, "sequence"] = "ACDJKL"
    elif case == "number":
        table["rg_nm"] = table["rg_nm"].astype(object)
        table.loc[1, "rg_nm"] = "big"
    return table


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("column", ["--target", "asphericity"], "no column 'asphericity'"),
        ("seqcol", ["--sequence-column", "seq"], "no column 'seq'"),
        ("split value", [], "values 'validation'; only 'train' and 'test' are allowed"),
        ("empty test", [], "no test rows"),
        ("letter", [], "record '1EM7_V54S': invalid residue 'J' at position 4"),
        ("number", [], "row 2 (1EM7_L7A): 'big' is not a number"),
    ],
)
def test_bad_tables_fail_with_one_line_and_no_output(
    run_cli, tmp_path, capsys, case, extra, message
):
    path = tmp_path / "table.csv"
    _edit(pd.read_csv(TABLE), case).to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["analyze", "embeddings", "-m", "no-such-model", "--table", str(path), "-o", str(out)]
    if "--target" not in extra:
        args += ["--target", "rg_nm"]
    code = run_cli([*args, *extra])
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()  # checked before the model is loaded; nothing written
