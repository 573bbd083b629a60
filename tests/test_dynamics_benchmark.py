"""The dynamics benchmark (``benchmark --suite dynamics``), its metric kernels, the leakage
column, the packaged ATLAS split and the viral suite's assays.

Metrics are checked against scipy on the same arrays: the predictions are recomputed with
the model's forward on the tokens, the targets read from the HDF5 file with h5py.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from seqdance.alphabet import tokenize
from seqdance.benchmark import dynamics_metrics as dm
from seqdance.benchmark.dynamics_report import (
    PEERS,
    THEIRS,
    atlas_test_split,
    run_dynamics_benchmark,
)
from seqdance.benchmark.identity import highest_identity
from seqdance.benchmark.suites import released_viral_assays, suite_assays, suite_notes
from seqdance.errors import SeqDanceError
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS

HAS_MMSEQS = shutil.which("mmseqs") is not None
needs_mmseqs = pytest.mark.skipif(not HAS_MMSEQS, reason="mmseqs (MMseqs2) not installed")


# -- kernels against scipy -----------------------------------------------------------------
def test_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    for n in (3, 7, 50):
        x = rng.integers(0, 5, n).astype(float)  # many ties
        y = x + rng.normal(0, 1, n)
        if np.ptp(x) == 0:
            continue
        assert dm.pearson_r(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
        assert dm.spearman_r(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        assert np.allclose(dm.rank_average(x), stats.rankdata(x))
    assert np.isnan(dm.pearson_r([1.0, 2.0], [2.0, 1.0]))  # too few values
    assert np.isnan(dm.spearman_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # constant


def _precision_by_loops(pred, truth, valid, sep):
    pairs = [(pred[i, j], i, j) for i in range(len(pred)) for j in range(i + sep, len(pred))
             if valid[i, j]]  # fmt: skip
    if not any(truth[i, j] for _, i, j in pairs):
        return float("nan")
    pairs.sort(key=lambda t: -t[0])  # stable: ties keep row-major order
    top = pairs[: len(pred)]
    return sum(bool(truth[i, j]) for _, i, j in top) / len(top)


def test_top_l_precision_matches_a_direct_count():
    rng = np.random.default_rng(1)
    n = 30
    pred = rng.random((n, n))
    truth = rng.random((n, n)) > 0.8
    valid = rng.random((n, n)) > 0.1
    for sep in (1, 6, 12):
        got = dm.top_l_precision(pred, truth, valid, min_separation=sep)
        assert got == pytest.approx(_precision_by_loops(pred, truth, valid, sep), abs=1e-12)
    # a perfect predictor of its own contacts scores 1
    assert dm.top_l_precision(truth.astype(float), truth, min_separation=6, top=5) == 1.0
    assert np.isnan(dm.top_l_precision(pred, np.zeros((n, n), bool)))


def test_median_se_is_seeded_and_agrees_with_scipy_bootstrap():
    values = np.random.default_rng(5).normal(0.5, 0.2, 40)
    median, se = dm.median_with_se(values, samples=4000, seed=0)
    assert median == np.median(values)
    assert dm.median_with_se(values, samples=4000, seed=0) == (median, se)  # fixed seed
    ref = stats.bootstrap((values,), np.median, n_resamples=4000, method="percentile",
                          random_state=1).standard_error  # fmt: skip
    assert se == pytest.approx(ref, rel=0.15)
    assert dm.median_with_se(np.full(9, 0.3), samples=100)[1] == 0.0
    assert np.isnan(dm.median_with_se(np.array([0.2, np.nan]))[1])  # one finite value


def test_identity_bins():
    assert [dm.identity_bin(v) for v in (0, 29.9, 30, 50, 50.1, 100, np.nan)] == [
        "<30%", "<30%", "30-50%", "30-50%", ">50%", ">50%", "unknown"]  # fmt: skip


# -- the suite end to end via the CLI --------------------------------------------------------
def _independent(model, data_dir, name):
    """Prediction (forward on the tokens) and target (h5py, RMSF / max) of one protein."""
    index = pd.read_csv(data_dir / "index.csv")
    seq = index.loc[index["name"] == name, "modify_seq"].iloc[0]
    ids = torch.from_numpy(tokenize(seq, name))[None]
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids, dtype=torch.bool))
    pred_res = out.residue[0, 1:-1].double().numpy()
    pred_pair = out.pair[0, 1:-1, 1:-1].double().numpy()
    with h5py.File(data_dir / "features.h5") as h5:
        res = h5[f"{name}_res_feature"][1:-1].astype(np.float64)  # (L, 47) MD
        pair = h5[f"{name}_pair_feature"][1:-1, 1:-1].astype(np.float64)  # (L, L, 10)
    return pred_res, pred_pair, res, pair


def test_dynamics_suite_end_to_end(tiny_model, tiny_dir, small_dataset, run_cli, tmp_path,
                                   capsys):  # fmt: skip
    out = tmp_path / "dyn"
    argv = [
        "benchmark",
        "--suite",
        "dynamics",
        "--dataset",
        str(small_dataset),
        "-m",
        str(tiny_dir),
        "--out",
        str(out),
        "--bootstrap-samples",
        "200",
        "--no-progress",
    ]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "not a published SeqDance/ESMDance model" in printed
    assert "subset: 4 proteins, 0 of the 82 ATLAS test chains" in printed
    assert "leakage not checked" in printed
    rows = pd.read_csv(out / "per_protein.csv")
    k_rmsf = RESIDUE_CHANNELS.index("rmsf_nor")
    pred_res, pred_pair, res, pair = _independent(tiny_model, small_dataset, "3tvj_I")
    md_rmsf = res[:, 2] / res[:, 2].max()  # stored channel 2 is the raw RMSF
    got = rows[(rows["protein"] == "3tvj_I") & (rows["property"] == "rmsf_nor")]
    got = dict(zip(got["metric"], got["value"], strict=True))
    assert got["pearson"] == pytest.approx(stats.pearsonr(pred_res[:, k_rmsf], md_rmsf)[0],
                                           abs=1e-5)  # fmt: skip
    assert got["spearman"] == pytest.approx(stats.spearmanr(pred_res[:, k_rmsf], md_rmsf)[0],
                                            abs=1e-5)  # fmt: skip
    # SASA mean over residues
    k_sasa = RESIDUE_CHANNELS.index("sasa_mean")
    sasa = rows[(rows["protein"] == "3tvj_I") & (rows["property"] == "sasa_mean")
                & (rows["metric"] == "pearson")]["value"].iloc[0]  # fmt: skip
    ok = res[:, 0] != -1
    assert sasa == pytest.approx(stats.pearsonr(pred_res[ok, k_sasa], res[ok, 0])[0], abs=1e-5)
    # movement correlation over the pairs i < j
    i, j = np.triu_indices(len(res), 1)
    k_corr = PAIR_CHANNELS.index("corr")
    corr = rows[(rows["protein"] == "3tvj_I") & (rows["property"] == "corr")
                & (rows["metric"] == "spearman")]["value"].iloc[0]  # fmt: skip
    assert corr == pytest.approx(stats.spearmanr(pred_pair[i, j, k_corr], pair[i, j, 9])[0],
                                 abs=1e-5)  # fmt: skip
    # vdw: top-L precision, true contact = mean contacts per frame >= 0.5 (stored cube root)
    vdw = rows[(rows["protein"] == "3tvj_I") & (rows["property"] == "vdw")]["value"].iloc[0]
    truth = (pair[..., 0] ** 3 >= 0.5) & (pair[..., 0] != -1)
    expect = _precision_by_loops(pred_pair[..., PAIR_CHANNELS.index("vdw")], truth,
                                 pair[..., 0] != -1, 6)  # fmt: skip
    assert vdw == pytest.approx(expect, abs=1e-9)
    # NMA protein: GNM band 1 profile
    pred_n, _, res_n, _ = _independent(tiny_model, small_dataset, "2g3r")
    nma = rows[(rows["protein"] == "2g3r") & (rows["property"] == "nma_res")
               & (rows["metric"] == "pearson")]["value"].iloc[0]  # fmt: skip
    k_nma = RESIDUE_CHANNELS.index("nma_res1")
    valid = res_n != -1
    assert nma == pytest.approx(stats.pearsonr(pred_n[:, k_nma:k_nma + 3][valid],
                                               res_n[valid])[0], abs=1e-5)  # fmt: skip
    # pooled over all residues of the two MD proteins, and the median over proteins
    pooled = pd.read_csv(out / "pooled.csv")
    both = [_independent(tiny_model, small_dataset, n) for n in ("3tvj_I", "idr1")]
    pp = np.concatenate([b[0][:, k_rmsf] for b in both])
    tt = np.concatenate([b[2][:, 2] / b[2][:, 2].max() for b in both])
    row = pooled[(pooled["property"] == "rmsf_nor") & (pooled["metric"] == "pearson")]
    assert row["value"].iloc[0] == pytest.approx(stats.pearsonr(pp, tt)[0], abs=1e-5)
    summary = pd.read_csv(out / "summary.csv")
    med = summary[(summary["property"] == "rmsf_nor") & (summary["metric"] == "pearson")
                  & (summary["bin"] == "all")].iloc[0]  # fmt: skip
    assert med["median"] == pytest.approx(got["pearson"], abs=1e-9)  # two identical proteins
    assert med["n_proteins"] == 2 and med["se"] == 0.0
    assert set(summary["bin"]) == {"all"}  # no training FASTA: no identity bins
    atlas = pd.read_csv(out / "atlas_protocol.csv")
    assert atlas["model"].iloc[0] == "ours"
    assert atlas["per_target_rmsf_r"].iloc[0] == pytest.approx(med["median"], abs=1e-9)
    assert (atlas["split"].iloc[1:] == THEIRS).all() and len(atlas) == 1 + len(PEERS)
    peers = atlas.iloc[1:].set_index("model")
    for peer in PEERS:  # every published row, with its numbers, input kind and source
        row = peers.loc[peer.model]
        assert (row["per_target_rmsf_r"], row["global_rmsf_r"]) == (
            peer.per_target_rmsf_r,
            peer.global_rmsf_r,
        )
        assert row["inputs"] == peer.inputs and row["source"] == peer.source
    for model in (
        "AlphaFlow-MD",
        "ESMFlow-MD",
        "ConfDiff-ESM-r3-MD",
        "DynaProt",
        "BioEmu (run by the DynaProt authors)",
    ):
        assert model in peers.index
    assert atlas["inputs"].iloc[0] == "sequence only"
    for png in ("rmsf_profiles.png", "rmsf_scatter.png"):
        with open(out / png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_dynamics_suite_options_checked_before_writing(tiny_dir, small_dataset, run_cli,
                                                       tmp_path, capsys):  # fmt: skip
    out = tmp_path / "never"
    base = ["benchmark", "--suite", "dynamics", "-m", str(tiny_dir), "--out", str(out)]
    assert run_cli(base) != 0  # no --dataset
    assert "needs --model and --dataset" in capsys.readouterr().err
    assert run_cli([*base, "--dataset", str(small_dataset), "--train-fasta",
                    str(tmp_path / "none.fasta")]) != 0  # fmt: skip
    assert "no such file" in capsys.readouterr().err
    assert run_cli([*base, "--dataset", str(small_dataset), "--contact-threshold", "0"]) != 0
    assert run_cli([*base, "--dataset", str(small_dataset), "--assays", str(tmp_path)]) != 0
    assert "takes --dataset, not --assays" in capsys.readouterr().err
    assert not out.exists()


def test_missing_mmseqs_is_one_clear_error(tiny_dir, small_dataset, run_cli, tmp_path,
                                           monkeypatch, capsys):  # fmt: skip
    fasta = tmp_path / "train.fasta"
    fasta.write_text(">x\nMKTAYIAKQR\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no mmseqs here
    out = tmp_path / "never"
    code = run_cli(
        [
            "benchmark",
            "--suite",
            "dynamics",
            "-m",
            str(tiny_dir),
            "--dataset",
            str(small_dataset),
            "--train-fasta",
            str(fasta),
            "--out",
            str(out),
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "MMseqs2 binary 'mmseqs' not found" in err and "apt-get install mmseqs2" in err
    assert not out.exists()


# -- leakage ----------------------------------------------------------------------------------
TRAIN_SEQ = "MSDKIIHLTDDSFDTDVLKADGAILVDFWAEWCGPCKMIAPILDEIADEYQGKLTVAKLNIDQNPGTAPKYGIRGIPTLLLFK"
UNRELATED = "WPHCWYNMRQEGHPWFCDYWMHKRPNWCYEGHWQMPFRYCWHNE"


@needs_mmseqs
def test_identity_identical_and_unrelated(tmp_path):
    fasta = tmp_path / "train.fasta"
    fasta.write_text(f">thioredoxin\n{TRAIN_SEQ}\n>other\nGSHMSLFDFFKNKGSAAATATDTGIATLQ\n")
    half = TRAIN_SEQ[:40] + "".join("W" if c != "W" else "P" for c in TRAIN_SEQ[40:])
    table = highest_identity({"same": TRAIN_SEQ, "none": UNRELATED, "half": half}, fasta)
    same, none = table.iloc[0], table.iloc[1]
    assert same["identity"] == 100.0 and same["in_training"] and same["closest"] == "thioredoxin"
    assert dm.identity_bin(same["identity"]) == ">50%"
    assert none["identity"] == 0.0 and not none["in_training"] and none["closest"] == ""
    assert dm.identity_bin(none["identity"]) == "<30%"
    assert not table.iloc[2]["in_training"]  # a partial match is not "in the training set"


@needs_mmseqs
def test_dynamics_suite_reports_training_members(tiny_dir, small_dataset, run_cli, tmp_path,
                                                 capsys):  # fmt: skip
    index = pd.read_csv(small_dataset / "index.csv")
    seq = index.loc[index["name"] == "3tvj_I", "modify_seq"].iloc[0]
    fasta = tmp_path / "train.fasta"
    fasta.write_text(f">atlas_3tvj_I\n{seq}\n")
    out = tmp_path / "dyn"
    assert run_cli(["benchmark", "--suite", "dynamics", "-m", str(tiny_dir), "--dataset",
                    str(small_dataset), "--train-fasta", str(fasta), "--out", str(out),
                    "--no-plots", "--no-progress", "--bootstrap-samples", "50"]) == 0  # fmt: skip
    assert "2 benchmark protein(s) are in the model's training set" in capsys.readouterr().out
    identity = pd.read_csv(out / "identity.csv").set_index("name")
    assert identity.loc["3tvj_I", "identity"] == 100.0 and identity.loc["idr1", "in_training"]
    assert identity.loc["2g3r", "identity"] < 30
    summary = pd.read_csv(out / "summary.csv")
    rmsf = summary[(summary["property"] == "rmsf_nor") & (summary["metric"] == "pearson")]
    assert set(rmsf["bin"]) == {"all", ">50%"}
    nma = summary[(summary["property"] == "nma_res") & (summary["metric"] == "pearson")]
    assert set(nma["bin"]) == {"all", "<30%"}
    assert not (out / "rmsf_profiles.png").exists()


# -- packaged data -----------------------------------------------------------------------------
def test_atlas_test_split_is_alphaflows_82_chains():
    split = atlas_test_split()
    assert len(split) == 82 and split["name"].is_unique
    assert (split["seqres"].str.len() == split["seqlen"]).all()
    assert split["name"].iloc[0] == "6o2v_A" and split["seqlen"].min() == 39


LAMBDA_ASSAYS = {
    "RCRO_LAMBD_Tsuboyama_2023_1ORC",
    "RPC1_LAMBD_Li_2019_high-expression",
    "RPC1_LAMBD_Li_2019_low-expression",
}  # Virus in 2025-04 only (fmt: skip)


def test_viral_suite_is_the_papers_23_assays():
    jan = released_viral_assays("2024-01")
    assert len(jan) == 23 and len(set(jan)) == 23
    assert "SPIKE_SARS2_Starr_2020_binding" not in jan  # 1,273 residues: over 1,022
    newer = released_viral_assays("2025-04")
    assert len(newer) == 26 and set(newer) - set(jan) == LAMBDA_ASSAYS
    with pytest.raises(SeqDanceError, match="unknown ProteinGym release"):
        released_viral_assays("2023-01")


def test_viral_suite_picks_the_release_assays_from_a_folder(data_path, tmp_path):
    scoring = data_path("scoring")
    table = pd.read_csv(scoring / "blat_ecolx_30.csv").assign(DMS_score=lambda t: t["2500"])
    fasta = (scoring / "blat_ecolx_wt.fasta").read_text()
    jan = released_viral_assays("2024-01")
    for name in (jan[0], "RCRO_LAMBD_Tsuboyama_2023_1ORC", "BLAT_ECOLX_X_2020"):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        (tmp_path / f"{name}.fasta").write_text(fasta)
    assert [a.name for a in suite_assays("proteingym-viral", tmp_path)] == [jan[0]]
    newer = suite_assays("proteingym-viral", tmp_path, viral_release="2025-04")
    assert sorted(a.name for a in newer) == sorted([jan[0], "RCRO_LAMBD_Tsuboyama_2023_1ORC"])


def test_zero_shot_suites_say_when_not_comparable():
    assert suite_notes("proteingym-viral", "ChaoHou/SeqDance", 23, None, None) == []
    notes = suite_notes("designed", "my_model/", 3, 3, 10)
    assert notes == [
        "model my_model/ is not a published SeqDance/ESMDance model: not comparable with the paper",
        "subset: at most 10 variants per assay; not comparable with the paper",
        "subset: 3 of the paper's 135 proteins; not comparable with the paper",
    ]


def test_same_bytes_whatever_the_threads(tiny_model, small_dataset, tmp_path):
    threads = torch.get_num_threads()
    written = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = tmp_path / f"t{n}"
            run_dynamics_benchmark(tiny_model, small_dataset, out, plots=False)
            written.append({f: (out / f).read_bytes() for f in ("per_protein.csv", "summary.csv")})
    finally:
        torch.set_num_threads(threads)
    assert written[0] == written[1]
