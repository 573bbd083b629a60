"""Attention analysis: analytic cases, a slow per-map reference on a real dataset, CLI."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from seqdance.analysis.attention import AttentionConfig, analyze_attention, map_columns
from seqdance.analysis.attention_metrics import (
    INTERACTION_SUM,
    PairProperty,
    attention_metrics,
    average_ranks_sorted,
    pair_properties,
)
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.model import SeqDanceModel
from seqdance.model.alphabet import batch_encode
from seqdance.schema import INTERACTIONS, MD_PAIR_CHANNELS, NMA_PAIR_CHANNELS

DATA = Path(__file__).parent / "data"


# -- analytic cases -----------------------------------------------------------------------
def _corr_like(length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1, 1, (length, length))
    return (values + values.T) / 2  # (L, L)


def test_attention_equal_to_a_correlation_gives_spearman_one_and_top_l_above_one():
    length = 30
    values = _corr_like(length)
    maps = np.stack([np.abs(values), values, -values, np.full_like(values, 0.1)])  # (4, L, L)
    prop = {"corr": PairProperty("corr", "correlation", values)}
    out = attention_metrics(maps, prop)
    assert set(out) == {("corr", "top_l_ratio"), ("corr", "spearman_pos"), ("corr", "spearman_neg")}
    # |corr| as attention picks the L + 2 largest |corr| (top-L counts tokens, as the
    # authors): the best possible ratio, well above 1
    rows, cols = np.nonzero(np.abs(np.subtract.outer(np.arange(length), np.arange(length))) > 2)
    absv = np.sort(np.abs(values[rows, cols]))[::-1]
    best = absv[: length + 2].mean() / (absv[length + 2 :].mean() + 1e-8)
    assert out[("corr", "top_l_ratio")][0] == pytest.approx(best, rel=1e-12)
    assert best > 1.5
    np.testing.assert_allclose(out[("corr", "spearman_pos")][:3], [1.0, 1.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(out[("corr", "spearman_neg")][:3], [-1.0, 1.0, -1.0], atol=1e-12)
    assert np.isnan(out[("corr", "spearman_pos")][3])  # constant map: undefined


def test_interaction_auroc_is_one_for_a_perfect_map_and_one_half_for_a_constant_one():
    length = 25
    rng = np.random.default_rng(1)
    freq = np.where(rng.random((length, length)) < 0.3, rng.uniform(0.01, 2, (length, length)), 0.0)
    freq[rng.random((length, length)) < 0.05] = 0.005  # in (0, 0.01): left out of the AUROC
    maps = np.stack([freq, -freq, np.ones_like(freq), freq + 100.0])  # (4, L, L)
    prop = {"vdw": PairProperty("vdw", "interaction", freq)}
    out = attention_metrics(maps, prop)
    np.testing.assert_allclose(out[("vdw", "auroc")], [1.0, 0.0, 0.5, 1.0], atol=1e-12)
    assert out[("vdw", "top_l_ratio")][0] > 1
    # adding a constant does not change any rank-based metric
    assert out[("vdw", "top_l_ratio")][3] == pytest.approx(out[("vdw", "top_l_ratio")][0])


def test_top_l_ratio_exact_value_and_near_diagonal_and_missing_pairs_ignored():
    length = 20
    rows, cols = np.indices((length, length))
    far = np.abs(rows - cols) > 2
    values = np.full((length, length), 0.5)
    chosen = [(i, (i + 7) % length) for i in range(length)]  # L far pairs with value 1
    for i, j in chosen:
        values[i, j] = 1.0
    attention = np.random.default_rng(2).uniform(0, 0.1, (length, length))
    for i, j in chosen:
        attention[i, j] += 1.0
    # near-diagonal pairs: huge attention and values, must not count
    attention[~far] = 50.0
    values[~far] = 100.0
    # missing pairs (NaN): huge attention, must not count either
    values[0, 10] = values[3, 15] = np.nan
    attention[0, 10] = attention[3, 15] = 60.0
    prop = {"sb": PairProperty("sb", "interaction", values)}
    out = attention_metrics(attention[None], prop, top=length)  # L = residues (option)
    assert out[("sb", "top_l_ratio")][0] == pytest.approx(1.0 / (0.5 + 1e-8), rel=1e-12)
    # the authors' top-L counts tokens: the L pairs of 1 and two more of 0.5
    default = attention_metrics(attention[None], prop)
    expected = ((length + 1.0) / (length + 2)) / (0.5 + 1e-8)
    assert default[("sb", "top_l_ratio")][0] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(out[("sb", "auroc")][0])  # no pair has frequency 0: no negatives


def test_average_ranks_match_scipy_with_ties():
    from scipy.stats import rankdata

    rng = np.random.default_rng(3)
    values = np.sort(rng.integers(0, 5, (6, 40)).astype(float), axis=1)
    np.testing.assert_array_equal(average_ranks_sorted(values), rankdata(values, axis=1))


def test_pair_properties_cube_interactions_and_sum_them():
    rng = np.random.default_rng(4)
    stored = rng.uniform(0, 1, (6, 6, len(MD_PAIR_CHANNELS))).astype(np.float32)
    stored[1, 2, 0] = -1  # missing vdw at (1, 2)
    props = pair_properties(stored, MD_PAIR_CHANNELS)
    assert list(props) == [*INTERACTIONS, INTERACTION_SUM, "corr"]
    np.testing.assert_allclose(props["hbbb"].values, stored[..., 1].astype(float) ** 3, rtol=1e-12)
    np.testing.assert_allclose(props["corr"].values, stored[..., 9], rtol=1e-7)
    assert props["corr"].kind == "correlation" and props["vdw"].kind == "interaction"
    assert np.isnan(props["vdw"].values[1, 2]) and np.isnan(props[INTERACTION_SUM].values[1, 2])
    expected = (stored[..., :9].astype(float) ** 3).sum(-1)
    np.testing.assert_allclose(props[INTERACTION_SUM].values[0, 1], expected[0, 1], rtol=1e-12)
    nma = pair_properties(stored[..., :3], NMA_PAIR_CHANNELS)
    assert [p.kind for p in nma.values()] == ["correlation"] * 3


# -- slow reference on a real dataset --------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("attention")
    md, nma = DATA / "md", DATA / "nma"
    rows = [
        f"3tvj_I,ATLAS,md,{md / '3tvj_I/3tvj_I.pdb'},{md / '3tvj_I/3tvj_I_10frames.dcd'},,test",
        f"5xnd,mdCATH,md,{md / '5xnd/5xnd_topology.pdb'},{md / '5xnd/5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{nma / '2g3r.pdb'},test",
        f"2KCF,proteinflow_sabdab,nma,,,{nma / '2KCF.pdb'},train",
    ]
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "name,source,kind,topology,trajectory,structure,label\n" + "\n".join(rows) + "\n"
    )
    report = build_dataset(manifest, folder / "data", BuildConfig(workers=1, progress=False))
    assert sorted(report.built) == ["2KCF", "2g3r", "3tvj_I", "5xnd"]
    return folder / "data"


@pytest.fixture(scope="module")
def model(make_tiny_model) -> SeqDanceModel:
    return make_tiny_model(0, noise=0.3)


def _reference_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


def _reference_top_l(att: np.ndarray, value: np.ndarray, top: int) -> float:
    if len(value) <= top:
        return float("nan")
    best = np.argsort(-att, kind="stable")[:top]
    rest = np.setdiff1d(np.arange(len(value)), best)
    return np.mean(np.abs(value[best])) / (np.mean(np.abs(value[rest])) + 1e-8)


def _reference_protein(model, h5, name: str, sequence: str, kind: str) -> dict:
    """Loops over maps: attention from one unbatched forward pass, h5py read by hand."""
    ids, mask = batch_encode([sequence])
    with torch.no_grad():
        out = model(ids, mask, pair=False, return_attentions=True)
    n = len(sequence)
    attention = out.attentions[0, :, :, 1 : n + 1, 1 : n + 1].reshape(-1, n, n).numpy()
    stored = h5[f"{name}_pair_feature"][()][1:-1, 1:-1].astype(np.float64)  # (n, n, C)
    channels = MD_PAIR_CHANNELS if kind == "md" else NMA_PAIR_CHANNELS
    far = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) > 2
    props = {}
    for c, channel in enumerate(channels):
        raw = stored[..., c][far]
        if channel in INTERACTIONS:
            props[channel] = ("interaction", np.where(raw == -1, np.nan, raw**3))
        else:
            props[channel] = ("correlation", np.where(raw == -1, np.nan, raw))
    if kind == "md":
        total = np.sum([props[c][1] for c in INTERACTIONS], axis=0)
        props[INTERACTION_SUM] = ("interaction", total)
    result = {}
    for prop, (prop_kind, value) in props.items():
        ok = np.isfinite(value)
        for k in range(attention.shape[0]):
            att = attention[k][far][ok]
            v = value[ok]
            result[(prop, "top_l_ratio", k)] = _reference_top_l(att, v, n + 2)  # tokens
            if prop_kind == "correlation":
                for metric, sel in (("spearman_pos", v > 0), ("spearman_neg", v < 0)):
                    result[(prop, metric, k)] = spearmanr(att[sel], v[sel])[0]
            else:
                keep = (v == 0) | (v >= 0.01)
                result[(prop, "auroc", k)] = _reference_auroc(att[keep], v[keep] > 0)
    return result


def test_metrics_equal_a_slow_per_map_reference(dataset, model):
    analysis = analyze_attention(model, dataset, AttentionConfig(label="all"))
    assert analysis.proteins == ["2KCF", "2g3r", "3tvj_I", "5xnd"]  # index order
    table = analysis.per_protein
    columns = map_columns(2, 4)
    index = pd.read_csv(dataset / "index.csv")
    checked = 0
    with h5py.File(dataset / "features.h5", "r") as h5:
        for name, seq, kind in zip(index["name"], index["modify_seq"], index["kind"], strict=True):
            reference = _reference_protein(model, h5, name, seq, kind)
            rows = table[table["name"] == name]
            expected_props = 11 if kind == "md" else 3
            assert rows["property"].nunique() == expected_props
            for _, row in rows.iterrows():
                got = row[columns].to_numpy(dtype=float)
                want = np.array([reference[(row["property"], row["metric"], k)] for k in range(8)])
                np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, equal_nan=True)
                checked += 1
    assert checked == 2 * (2 * 10 + 3 + 3 * 3)  # MD: 10 interaction x 2 + corr x 3; NMA 3 x 3
    # some metrics really are defined (no all-NaN comparison passing by accident)
    assert np.isfinite(table[columns].to_numpy(dtype=float)).mean() > 0.9

    # the summary is the mean over the proteins where each value is defined
    summary = analysis.summary
    assert list(summary.columns) == ["layer", "head", "property", "metric", "value", "n_proteins"]
    pick = summary[(summary["property"] == "corr") & (summary["metric"] == "spearman_pos")]
    per = table[(table["property"] == "corr") & (table["metric"] == "spearman_pos")]
    for _, row in pick.iterrows():
        column = f"l{row['layer']}_h{row['head']}"
        assert row["value"] == pytest.approx(per[column].mean())
        assert row["n_proteins"] == 2
    nma = summary[summary["property"] == "nma_pair2"]
    assert set(nma["n_proteins"]) == {2} and len(nma) == 3 * 8


def test_blocks_of_maps_give_the_same_numbers():
    rng = np.random.default_rng(5)
    maps = rng.random((8, 32, 32))  # (A, L, L)
    props = pair_properties(rng.uniform(0, 1, (32, 32, 10)), MD_PAIR_CHANNELS)
    whole = attention_metrics(maps, props)
    blocks = attention_metrics(maps, props, block_elements=700)  # 1 map per block
    for key in whole:
        np.testing.assert_allclose(blocks[key], whole[key], rtol=1e-12, equal_nan=True)


# -- command line -----------------------------------------------------------------------------
def test_cli_writes_summary_table_and_plot(run_cli, dataset, model, tmp_path):
    folder = model.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "out"
    code = run_cli(
        ["analyze", "attention", "--model", str(folder), "--data", str(dataset), "--out",
         str(out), "--limit", "2", "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "attention_heatmaps.png",
        "attention_per_protein.csv",
        "attention_summary.csv",
    ]
    assert (out / "attention_heatmaps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per = pd.read_csv(out / "attention_per_protein.csv")
    assert list(per["name"].unique()) == ["2g3r", "3tvj_I"]  # label test, first 2 of the index
    summary = pd.read_csv(out / "attention_summary.csv")
    assert set(summary["n_proteins"]) <= {0, 1}  # one NMA and one MD protein
    assert len(summary) == 8 * (10 * 2 + 3 + 3 * 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/nowhere"], "no such dataset file"),
        (["--label", "train", "--data", "{data}", "--limit", "0"], "--limit"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    run_cli, dataset, tmp_path, capsys, args, message
):
    args = [a.format(tmp=tmp_path, data=dataset) for a in args]
    out = tmp_path / "out"
    code = run_cli(["analyze", "attention", "--model", "x", "--out", str(out), *args])
    assert code != 0
    err = capsys.readouterr().err
    assert message in err
    assert not out.exists()


def test_cli_no_protein_with_the_label(run_cli, dataset, tmp_path, capsys):
    index = pd.read_csv(dataset / "index.csv")
    index["label"] = "train"
    empty = tmp_path / "ds"
    empty.mkdir()
    (empty / "features.h5").symlink_to(dataset / "features.h5")
    index.to_csv(empty / "index.csv", index=False)
    out = tmp_path / "out"
    code = run_cli(["analyze", "attention", "-m", "x", "-d", str(empty), "-o", str(out)])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {empty / 'index.csv'}: no proteins with label 'test'"
    ]
    assert not out.exists()
