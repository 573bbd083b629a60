"""``seqdance explain``: the reported per-residue and per-pair changes add up to the score,
and they match a plain recomputation from two forward passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqdance.inference.explain import explain_mutants
from seqdance.inference.fasta import read_fasta
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.options import ScoreOptions
from seqdance.inference.score import score_mutants
from seqdance.model.alphabet import batch_encode
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS, resolve_properties

DATA = Path(__file__).resolve().parent / "data"
FASTA = DATA / "scoring" / "proteingym" / "F7YBW8_MESOW_Aakre_2015.fasta"
PDB_2KCF = DATA / "nma" / "2KCF.pdb"


@pytest.fixture(scope="module")
def wild_type() -> str:
    return read_fasta(FASTA)[0].sequence


@pytest.mark.parametrize("residues_only", [False, True], ids=["all-tokens", "residues-only"])
def test_explain_adds_up_to_score(tiny_model, wild_type, residues_only):
    """The mean of the reported relative changes is the score of every channel and
    per-feature summary, whatever rows the score counts."""
    mutants = build_mutant_set(wild_type, ["L59Q", "L59Q:A10G", "M1W"], first_row=None)
    channels = resolve_properties(None)
    options = ScoreOptions(residues_only=residues_only)
    ex = explain_mutants(tiny_model, mutants, channels, options)
    scores = score_mutants(tiny_model, mutants, channels, options)
    assert len(ex.labels) == len(wild_type) + (0 if residues_only else 2)
    assert ex.channels == scores.channels
    np.testing.assert_allclose(ex.channel_scores(), scores.channel_scores, rtol=1e-5, atol=1e-9)
    col = {c: i for i, c in enumerate(ex.channels)}
    means = ex.channel_scores()
    for j, summary in enumerate(scores.summaries):  # e.g. psi: mean over its 12 channels
        ours = means[:, [col[c] for c in summary.channels]].mean(axis=1)
        np.testing.assert_allclose(ours, scores.summary_scores[:, j], rtol=1e-5, atol=1e-9)


def test_explain_matches_plain_recomputation(tiny_model, wild_type):
    """Independent of the score code: two plain forward passes, outputs of the residues,
    elementwise |mt - wt| / (|wt| + 0.01)."""
    mutants = build_mutant_set(wild_type, ["A10G"], first_row=None)
    ex = explain_mutants(tiny_model, mutants, ["sasa_mean", "psi_3", "corr", "vdw"])
    mutant = wild_type[:9] + "G" + wild_type[10:]
    ids, mask = batch_encode([wild_type, mutant])
    with torch.no_grad():
        out = tiny_model(ids, mask, pair=True)
    n = len(wild_type)
    special = ex.labels[0] == "<cls>"  # the score counts <cls>/<eos> (the authors' default)
    rows = slice(0, n + 2) if special else slice(1, n + 1)
    res = out.residue[:, rows].double().numpy()  # (2, T or L, 50)
    pair = out.pair[:, rows, rows].double().numpy()  # (2, T or L, T or L, 13)
    r_idx = [RESIDUE_CHANNELS.index(c) for c in ("sasa_mean", "psi_3")]
    p_idx = [PAIR_CHANNELS.index(c) for c in ("vdw", "corr")]
    rel_res = np.abs(res[1] - res[0]) / (np.abs(res[0]) + 0.01)
    rel_pair = np.abs(pair[1] - pair[0]) / (np.abs(pair[0]) + 0.01)
    if special:
        assert ex.labels[-1] == "<eos>" and len(ex.labels) == n + 2
    else:
        assert ex.labels == tuple(str(i) for i in range(1, n + 1))
    rel, rel_p = ex.rel_residue[0], ex.rel_pair[0]
    np.testing.assert_allclose(rel, rel_res[:, r_idx], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(rel_p, rel_pair[..., p_idx], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ex.mt_residue[0] - ex.wt_residue, (res[1] - res[0])[:, r_idx],
                               atol=1e-6)  # fmt: skip
    # the mutated residue changes most in this random model? at least it is reported
    assert ex.mutated == ((9 + (ex.labels[0] == "<cls>"),),)


def test_cli_explain(run_cli, tiny_dir, wild_type, tmp_path):
    out = tmp_path / "ex"
    argv = ["explain", "-m", str(tiny_dir), "--sequence", wild_type, "--out", str(out)]
    assert run_cli([*argv, "--mutant", "L59Q", "--mutant", "L59Q:A10G"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {
        "explain_residues.csv", "explain_scores.csv", "explain.npz",
        "explain_L59Q_profiles.png", "explain_L59Q_pairs.png",
        "explain_L59Q_A10G_profiles.png", "explain_L59Q_A10G_pairs.png",
    }  # fmt: skip
    residues = pd.read_csv(out / "explain_residues.csv")
    scores = pd.read_csv(out / "explain_scores.csv")
    # the TSV adds up: mean over rows of the relative change = the score column
    mean = residues.groupby(["mutant", "property"], sort=False)["rel_change"].mean()
    merged = scores.set_index(["mutant", "property"])["score"]
    np.testing.assert_allclose(mean.loc[merged.index], merged, rtol=1e-4)
    assert len(scores) == 2 * 63
    # ... and equals `seqdance score` on the same mutants
    mutations = tmp_path / "m.csv"
    mutations.write_text("mutant\nL59Q\nL59Q:A10G\n")
    scored = tmp_path / "scored.csv"
    args = ["score", "-m", str(tiny_dir), "--sequence", wild_type, "--mutations", str(mutations)]
    assert run_cli([*args, "--out", str(scored)]) == 0
    table = pd.read_csv(scored).set_index("mutant")
    for (mutant, prop), value in merged.items():
        assert value == pytest.approx(table.loc[mutant, prop], rel=1e-4, abs=1e-8)
    row = residues[(residues["mutant"] == "L59Q:A10G") & (residues["property"] == "sasa_mean")]
    at10 = row[row["position"].astype(str) == "10"].iloc[0]
    assert at10["wt"] == "A" and at10["aa"] == "G"
    assert at10["delta"] == pytest.approx(at10["mt_value"] - at10["wt_value"], abs=1e-5)
    with np.load(out / "explain.npz") as npz:
        assert npz["rel_pair"].shape[0] == 2 and npz["rel_pair"].shape[-1] == 13
        assert list(npz["mutants"]) == ["L59Q", "L59Q:A10G"]


def test_cli_explain_pdb_bfactors(run_cli, tiny_dir, tmp_path):
    from seqdance.inference.bfactor import read_bfactor_scale, read_protein_chains

    _, chains = read_protein_chains(PDB_2KCF)
    sequence = chains[0][2]
    mutant = f"{sequence[4]}5A" if sequence[4] != "A" else f"{sequence[4]}5G"
    out = tmp_path / "pdb"
    argv = ["explain", "-m", str(tiny_dir), "--sequence", sequence, "--mutant", mutant]
    extra = ["--properties", "rmsf_nor,sasa_mean", "--pdb", str(PDB_2KCF), "--out", str(out)]
    assert run_cli([*argv, *extra]) == 0
    _, written = read_protein_chains(out / f"explain_{mutant}.pdb")
    scale = read_bfactor_scale(out / f"explain_{mutant}.pdb")
    betas = np.array([r.getBetas()[0] for r in written[0][1]])
    residues = pd.read_csv(out / "explain_residues.csv")
    residues = residues[~residues["position"].astype(str).str.startswith("<")]
    expected = residues.groupby("row", sort=True)["rel_change"].mean().to_numpy()
    # the largest value fills [10, 100) after scaling: 4 significant digits survive
    assert 10 <= np.abs(betas).max() < 100 and np.log10(scale) == round(np.log10(scale))
    np.testing.assert_allclose(betas / scale, expected, atol=0.0051 / scale)


def test_cli_explain_bad_input(run_cli, tiny_dir, wild_type, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = ["explain", "-m", str(tiny_dir), "--sequence", wild_type, "--out", str(out)]
    assert run_cli([*argv, "--mutant", "K59Q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: mutant 'K59Q': the wild type has 'L'")
    assert run_cli([*argv, "--mutant", "L500Q"]) == 1
    assert "outside the sequence" in capsys.readouterr().err
    assert run_cli([*argv, "--mutant", "L59Q", "--pdb", str(PDB_2KCF)]) == 1
    assert "no chain has exactly the wild-type sequence" in capsys.readouterr().err
    assert not out.exists()


def test_explain_in_windows_adds_up_and_needs_residues_only(tiny_model, wild_type):
    """Windows as the score takes them: residue rows only, the same numbers as the score."""
    from seqdance.errors import SeqDanceError

    mutants = build_mutant_set(wild_type, ["L59Q"], first_row=None)
    channels = ["sasa_mean", "psi_3", "vdw"]
    window = len(wild_type) // 2 + 8  # two overlapping windows
    with pytest.raises(SeqDanceError, match="more than the window"):
        explain_mutants(tiny_model, mutants, channels, ScoreOptions(window=window))
    options = ScoreOptions(window=window, residues_only=True)
    ex = explain_mutants(tiny_model, mutants, channels, options)
    scores = score_mutants(tiny_model, mutants, channels, options)
    assert len(ex.labels) == len(wild_type)
    np.testing.assert_allclose(ex.channel_scores(), scores.channel_scores, rtol=1e-5, atol=1e-9)
