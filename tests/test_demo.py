"""``seqdance demo``: the whole pipeline on the bundled data (quick mode, run once per module),
checked against the authors' reference features, the training log, an independent Spearman
and an independent re-run of the trained model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from seqdance.cli import main
from seqdance.demo import bundled_data, run_demo
from seqdance.demo.inputs import PROTEINS
from seqdance.demo.results import HEADLINE_SCORE, TINY_NOTE
from seqdance.errors import SeqDanceError
from seqdance.inference.predict import predict
from seqdance.model import load_model
from seqdance.schema import MD_PAIR_CHANNELS, PAIR_CHANNELS, RESIDUE_CHANNELS

DATA = Path(__file__).parent / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ASSAY_CSV = DATA / "scoring" / "proteingym" / "F7YBW8_MESOW_Aakre_2015.csv"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    parent = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(parent)  # a relative --out, as a user types it
    try:
        report = run_demo("run", quick=True, device="cpu", progress=False, echo=lines.append)
    finally:
        os.chdir(cwd)
    assert report.out_dir == parent / "run"
    return report, lines


def figure_links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_exists_and_references_existing_pngs(demo):
    report, _ = demo
    assert report.report_path == report.out_dir / "report.md"
    text = report.report_path.read_text()
    links = figure_links(text)
    names = {Path(link).name for link in links}
    assert {"training_curve.png", "score_scatter.png", "3tvj_I_profiles.png"} <= names
    assert {"3tvj_I_pairs.png", "F7YBW8_profiles.png", "F7YBW8_pairs.png"} <= names
    for link in links:
        path = report.out_dir / link
        assert path.is_file(), link
        assert path.read_bytes()[:8] == PNG_MAGIC, link
        assert path.stat().st_size > 5_000, link  # a drawn figure, not an empty canvas
    assert not list(report.out_dir.rglob(".*.tmp*"))  # no temporary files left behind


def test_tiny_model_warning_on_console_and_in_report(demo):
    report, lines = demo
    text = report.report_path.read_text()
    assert TINY_NOTE in text
    assert "not meaningful" in TINY_NOTE.lower() and "ChaoHou/SeqDance" in TINY_NOTE
    assert "ChaoHou/ESMDance" in TINY_NOTE
    assert lines[0] == "NOTE: " + TINY_NOTE and lines[-1] == "NOTE: " + TINY_NOTE
    steps = [line for line in lines if re.match(r"\[\d/6\] ", line)]
    assert [s[:5] for s in steps] == [f"[{i}/6]" for i in range(1, 7)]


def test_nma_features_equal_the_authors_2g3r_reference(demo):
    report, _ = demo
    ours = np.load(report.out_dir / "features" / "nma" / "2g3r.nma.npz")
    ref = np.load(DATA / "nma" / "nma_residue_pair_features_2g3r.npz")
    assert ours["gnm_msf"].shape == (3, 119) and ours["anm_cor"].shape == (3, 119, 119)
    np.testing.assert_allclose(ours["gnm_msf"], ref["gnm_msf"], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(ours["anm_cor"], ref["anm_cor"], rtol=1e-5, atol=1e-9)


def test_md_features_equal_the_authors_3tvj_reference(demo):
    """RMSF and movement correlation of 3tvj_I against the authors' MD script output."""
    report, _ = demo
    prefix = report.out_dir / "features" / "md" / "3tvj_I"
    table = pd.read_csv(f"{prefix}.residue.csv")
    ref = pd.read_csv(DATA / "md" / "3tvj_I" / "3tvj_I_res_feature.csv")
    np.testing.assert_allclose(table["rmsf"], ref["rmsf"], atol=1e-5)
    pair = np.load(f"{prefix}.pair.npz")
    ref_pair = np.load(DATA / "md" / "3tvj_I" / "3tvj_I_pair_feature.npz")["array"]  # (38, 38, 10)
    corr = ref_pair[..., MD_PAIR_CHANNELS.index("corr")]
    np.testing.assert_allclose(pair["corr"], corr, atol=1e-5)
    # the report's summary numbers come from these files
    summary = next(f for f in report.features if f.name == "3tvj_I")
    assert summary.n_residues == 38 and summary.n_frames == 10
    assert summary.values["mean RMSF (nm)"] == pytest.approx(ref["rmsf"].mean(), abs=1e-6)


def test_dataset_has_every_protein_with_its_label(demo):
    report, _ = demo
    index = pd.read_csv(report.dataset_dir / "index.csv", keep_default_na=False)
    labels = dict(zip(index["name"], index["label"], strict=True))
    assert labels == {p.name: p.label for p in PROTEINS}
    weights = json.loads((report.dataset_dir / "loss_weights.json").read_text())
    assert "ATLAS_GPCRmd_PED_mdCATH" in json.dumps(weights) and "Proteinflow" in json.dumps(weights)
    assert (report.n_train, report.n_test) == (6, 1)


def test_training_loss_falls(demo):
    report, _ = demo
    log = [json.loads(line) for line in report.train.log.read_text().splitlines()]
    assert log[-1]["step"] == report.train.steps == 40
    assert log[-1]["loss"] < 0.6 * log[0]["loss"]
    assert report.train.first_loss == log[0]["loss"]
    assert report.train.final_loss == log[-1]["loss"]
    text = report.report_path.read_text()
    assert f"**{log[0]['loss']:.4f}** -> (last logged updates) **{log[-1]['loss']:.4f}**" in text
    assert report.train.test_rmse and all(np.isfinite(v) for v in report.train.test_rmse.values())


def _documented_losses(updates: str) -> tuple[float, float]:
    """The first and last losses docs/demo.md quotes for a run of ``updates`` updates."""
    text = " ".join((Path(__file__).parents[1] / "docs/demo.md").read_text().split())
    found = re.search(rf"from ([\d.]+) to ([\d.]+) over the {updates} updates", text)
    assert found, f"docs/demo.md quotes no loss for {updates} updates"
    return float(found[1]), float(found[2])


def _digits(quoted: float) -> int:
    return len(repr(quoted).split(".")[1])


def test_documented_quick_losses_are_what_the_demo_prints(demo):
    report, _ = demo
    first, last = _documented_losses("40")
    assert round(report.train.first_loss, _digits(first)) == first
    assert round(report.train.final_loss, _digits(last)) == last


@pytest.mark.slow
def test_documented_losses_of_the_full_demo(tmp_path):
    report = run_demo(tmp_path / "run", device="cpu", progress=False, echo=lambda _: None)
    first, last = _documented_losses("1,000")
    assert round(report.train.first_loss, _digits(first)) == first
    assert round(report.train.final_loss, _digits(last)) == last


def test_spearman_in_report_equals_an_independent_recomputation(demo):
    report, _ = demo
    text = report.report_path.read_text()
    match = re.search(rf"\*\*Spearman \({HEADLINE_SCORE}\) = (-?[0-9.]+)\*\* \(n = (\d+)\)", text)
    assert match, "headline Spearman missing from the report"
    scores = pd.read_csv(report.scores.scores_csv)
    measured = pd.read_csv(ASSAY_CSV)  # the original assay: mutant -> measured fitness
    assert list(scores["mutant"]) == list(measured["mutant"])
    np.testing.assert_array_equal(scores["target"], measured["score"])
    rho = spearmanr(-scores[HEADLINE_SCORE], measured["score"]).statistic
    assert float(match.group(1)) == pytest.approx(rho, abs=5e-5)
    assert int(match.group(2)) == len(measured) == 37
    table = pd.read_csv(report.scores.spearman_csv)
    for column in ("sasa_mean", "corr", HEADLINE_SCORE):
        row = table[table["property"] == column].iloc[0]
        expected = spearmanr(-scores[column], scores["target"]).statistic
        assert row["spearman"] == pytest.approx(expected, abs=1e-12), column


def test_predictions_equal_a_rerun_of_the_trained_model(demo):
    report, _ = demo
    model = load_model(report.train.checkpoint)
    for p in report.predictions:
        table = pd.read_csv(p.residue_tsv)
        assert list(table.columns) == ["position", "residue", *RESIDUE_CHANNELS]
        assert "".join(table["residue"]) == p.sequence
        (again,) = predict(model, [p.sequence])
        np.testing.assert_allclose(table[list(RESIDUE_CHANNELS)], again.residue, atol=1e-5)
        pair = np.load(p.pair_npz)
        corr = again.pair[..., PAIR_CHANNELS.index("corr")]  # (L, L)
        np.testing.assert_allclose(pair["corr"], corr, atol=1e-5)
    assert [p.name for p in report.predictions] == ["3tvj_I", "2KCF", "F7YBW8"]


def test_html_report_holds_the_scan_and_the_structure(demo):
    """report.html: the 3tvj_I prediction, its full saturation scan and its structure."""
    report, _ = demo
    html = report.html_path
    assert html == report.out_dir / "report.html"
    text = html.read_text()
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text,
                      re.S)  # fmt: skip
    data = json.loads(found[1].replace("<\\/", "</"))
    scan = pd.read_csv(report.out_dir / "scan" / "scan.csv")
    sequence = next(p.sequence for p in report.predictions if p.name == "3tvj_I")
    assert len(scan) == 19 * len(sequence)
    assert data["structure"] is not None and "3tvj_I.pdb" in data["structure"]["note"]
    assert "report.html" in report.report_path.read_text()


def test_rerun_into_the_same_folder_refuses(demo, capsys):
    report, _ = demo
    before = report.report_path.read_bytes()
    with pytest.raises(SeqDanceError, match="not empty .*finished demo.*does not resume"):
        run_demo(report.out_dir, quick=True, progress=False, echo=lambda _: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(report.out_dir), "--quick", "--no-progress"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not empty" in err and len(err.splitlines()) == 1
    assert report.report_path.read_bytes() == before


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "x"), "--device", "tpu", "--no-progress"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "x").exists()  # nothing written before the options are checked
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SeqDanceError, match="not a folder"):
        run_demo(file, quick=True, progress=False)


def test_cli_help():
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0


def test_bundled_data_is_small_and_documented():
    root = bundled_data()
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    readme = (root / "README.md").read_text()
    for p in files:
        if p.name != "README.md":
            stem = p.name.split(".")[0]
            assert stem in readme, p.name
    for protein in PROTEINS:
        for name in protein.files:
            assert (root / name).is_file(), name


def test_cli_runs_the_demo_end_to_end(tmp_path):
    """The console command, in a fresh process: exit 0, one line per step, a report."""
    out = tmp_path / "cli_run"
    done = subprocess.run(
        [sys.executable, "-m", "seqdance", "demo", "--out", str(out), "--steps", "3",
         "--no-progress", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    steps = re.findall(r"^\[(\d)/6\]", done.stdout, flags=re.MULTILINE)
    assert steps == [str(i) for i in range(1, 7)]
    assert "not meaningful" in done.stdout.lower()
    assert "3 updates" in (out / "report.md").read_text()
    log = [json.loads(line) for line in (out / "train" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3


def test_demo_trains_on_every_bundled_training_protein(tmp_path):
    """The authors' groups leave mdCATH out; the demo's own groups take every source it ships."""
    from seqdance.demo.training import demo_train_config

    cfg = demo_train_config(tmp_path / "data", tmp_path / "run", 10, "cpu", False)
    sources = {s for g in cfg.data.groups for s in g.sources}
    assert {p.source for p in PROTEINS if p.label == "train"} <= sources
    assert "mdCATH" in sources  # 5xnd
