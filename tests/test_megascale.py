"""The published mega-scale table (Tsuboyama 2023) read with the authors' filtering, one
Spearman per protein and the median, and the paper's suites (``benchmark --suite``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from seqdance.benchmark.megascale import TSUBOYAMA_COLUMNS, is_designed, read_tsuboyama
from seqdance.benchmark.suites import PAPER_RESULTS, suite_assays
from seqdance.cli import main
from seqdance.errors import SeqDanceError
from seqdance.model import SeqDanceModel
from seqdance.model.alphabet import batch_encode

DATA = Path(__file__).parent / "data"
TABLE = DATA / "megascale" / "Tsuboyama2023_Dataset2_Dataset3_subset.csv"


def _run(argv) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def notebook_filter(path: Path) -> pd.DataFrame:
    """The notebook's cell, step by step (pandas as they wrote it)."""
    df = pd.read_csv(path)
    df = df[(df["ddG_ML"] != "-") & (~df["mut_type"].str.contains("ins|del"))]
    df["ddG_ML"] = df["ddG_ML"].astype(float)
    ddg_mean = df[["aa_seq", "ddG_ML"]].groupby("aa_seq").mean()
    kept = df.sort_values("mut_type", ascending=False).drop_duplicates("aa_seq")
    df = pd.merge(kept[["aa_seq", "mut_type", "WT_name", "WT_cluster"]], ddg_mean,
                  on="aa_seq", how="left")  # fmt: skip
    df.index = df["WT_name"] + "$" + df["mut_type"]
    return df


def test_table_has_the_published_columns():
    header = TABLE.read_text().splitlines()[0].split(",")
    assert tuple(header) == TSUBOYAMA_COLUMNS and len(header) == 37
    # anchors from the dataset's documentation: sequences, names, the ML columns, pair name last
    assert header[:2] == ["name", "dna_seq"] and header[26:30] == [
        "aa_seq_full", "aa_seq", "mut_type", "WT_name"]  # fmt: skip
    assert header[33:] == ["dG_ML", "ddG_ML", "Stabilizing_mut", "pair_name"]


def test_filtering_equals_the_notebook():
    expected = notebook_filter(TABLE)
    assays = read_tsuboyama(TABLE)
    # two wild types of the subset (EEHEE_rd3_1587, EHEE_rd3_0053) have no 'wt' row: the
    # notebook cannot score them (no wild type to compare with); they are left out
    with_wt = sorted(set(expected.loc[expected["mut_type"] == "wt", "WT_name"]))
    assert len(with_wt) == 95 and expected["WT_name"].nunique() == 97
    assert [a.name for a in assays] == with_wt
    for assay in assays:
        rows = expected[expected["WT_name"] == assay.name]
        assert assay.wild_type == rows.loc[f"{assay.name}$wt", "aa_seq"]
        got = dict(zip(assay.mutated_sequences, assay.target, strict=True))
        want = dict(zip(rows["aa_seq"], rows["ddG_ML"], strict=True))
        assert got.keys() == want.keys()
        for seq, value in want.items():
            assert got[seq] == pytest.approx(value, rel=1e-12)
    first = assays[0]
    assert first.name == "1AOY.pdb" and len(first) == 4  # wt + 3 mutants; 3 rows dropped
    wt_index = first.mutated_sequences.index(first.wild_type)
    assert first.target[wt_index] == pytest.approx(0.1)  # wild type measured twice: mean
    assert max(first.target) == pytest.approx((0.0744012411559387 + 0.5744012411559387) / 2)
    assert all(len(s) == len(first.wild_type) for s in first.mutated_sequences)


def test_designed_selection():
    assert is_designed("EEHEE_rd4_0308.pdb") and is_designed("r10_572_TrROS_Hall.pdb")
    assert not is_designed("1AOY.pdb") and not is_designed("1EM7_L7A.pdb")
    designed = suite_assays("designed", TABLE)
    assert len(designed) == 44 and all(is_designed(a.name) for a in designed)
    with pytest.raises(SeqDanceError, match="needs the Tsuboyama2023_Dataset2_Dataset3 table"):
        suite_assays("megascale", DATA / "scoring" / "blat_ecolx_30.csv")


def _notebook_score(outputs, wild_type: str, seq: str, feature: slice) -> float:
    wt, mt = outputs(wild_type)[:, feature], outputs(seq)[:, feature]  # all T rows
    return float(((mt - wt).abs() / (wt.abs() + 0.01)).mean())


def test_benchmark_spearman_per_protein_and_median(naive_model, tiny_dir, tmp_path):
    out = tmp_path / "bench"
    argv = ["benchmark", "-m", str(tiny_dir), "--assays", str(TABLE), "--limit", "5",
            "--properties", "sasa_mean,psi", "--out", str(out), "--no-progress"]  # fmt: skip
    assert _run(argv) == 0
    summary = pd.read_csv(out / "summary.csv")
    medians = pd.read_csv(out / "summary_median.csv")  # one row per property
    model = SeqDanceModel.from_pretrained(tiny_dir).eval()
    naive = naive_model
    cache: dict[str, torch.Tensor] = {}

    def outputs(seq: str) -> torch.Tensor:
        """Residue outputs (T, 50) of one unbatched naive pass, <cls>/<eos> rows included."""
        if seq not in cache:
            ids, mask = batch_encode([seq])
            with torch.no_grad():
                cache[seq] = naive.naive_forward(model, ids, mask)[0][0].double()
        return cache[seq]

    filtered = notebook_filter(TABLE)
    names = sorted(filtered["WT_name"].unique())[:5]
    for column, feature in (("sasa_mean", slice(0, 1)), ("psi", slice(35, 47))):
        rhos = []
        for name in names:
            rows = filtered[filtered["WT_name"] == name]
            wild_type = rows.loc[f"{name}$wt", "aa_seq"]
            scores = [_notebook_score(outputs, wild_type, s, feature) for s in rows["aa_seq"]]
            rho = spearmanr(rows["ddG_ML"], scores)[0]  # negative: bigger change, less stable
            got = summary[(summary["assay"] == name) & (summary["property"] == column)]
            assert got["spearman"].iloc[0] == pytest.approx(-rho, abs=1e-9), (name, column)
            rhos.append(-rho)
        median = medians[medians["property"] == column]
        assert median["spearman"].iloc[0] == pytest.approx(np.nanmedian(rhos), abs=1e-9)


def test_suite_prints_ours_beside_the_paper(tiny_dir, tmp_path, capsys):
    argv = ["benchmark", "-m", str(tiny_dir), "--assays", str(TABLE), "--suite", "designed",
            "--limit", "3", "--properties", "sasa_mean,psi", "--out", str(tmp_path / "d"),
            "--no-progress"]  # fmt: skip
    assert _run(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("suite designed: median Spearman over 3 proteins (paper: 135)")
    medians = pd.read_csv(tmp_path / "d" / "summary_median.csv")
    ours = medians[medians["property"] == "norm_geometric_mean"]
    row = [ln for ln in lines if ln.startswith("SeqDance")][0].split()
    assert row[1] == "norm_geometric_mean"
    assert float(row[2]) == pytest.approx(ours["spearman"].iloc[0], abs=5e-4)
    assert float(row[3]) == PAPER_RESULTS["designed"]["SeqDance"]


def test_viral_suite_selects_by_taxon(tiny_dir, tmp_path, capsys):
    scoring = DATA / "scoring"
    folder = tmp_path / "assays"
    folder.mkdir()
    table = pd.read_csv(scoring / "blat_ecolx_30.csv")
    fasta = (scoring / "blat_ecolx_wt.fasta").read_text()
    for name in ("VIR1_VIRUS_X_2020", "HUM1_HUMAN_Y_2021"):
        table.assign(DMS_score=table["2500"]).to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.fasta").write_text(fasta)
    reference = tmp_path / "DMS_substitutions.csv"
    pd.DataFrame({"DMS_id": ["VIR1_VIRUS_X_2020", "HUM1_HUMAN_Y_2021"],
                  "taxon": ["Virus", "Human"]}).to_csv(reference, index=False)  # fmt: skip
    chosen = suite_assays("proteingym-viral", folder, reference, viral_release="reference")
    assert [a.name for a in chosen] == ["VIR1_VIRUS_X_2020"]
    with pytest.raises(SeqDanceError, match="needs --reference"):
        suite_assays("proteingym-viral", folder, viral_release="reference")
