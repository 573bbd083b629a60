"""``seqdance report``: the page's data equals the outputs it reads, bad input writes nothing,
and the page works in a real browser (headless Chromium via Playwright)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report_cases import ARTIFACTS, cut_structure, make_case, sequence_of, tiled_structure
from seqdance.demo.inputs import bundled_data
from seqdance.inference.explain import explain_mutants
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.options import ScoreOptions
from seqdance.inference.scan import model_fingerprint
from seqdance.report.build import ReportOptions, load_parts, write_html_report
from seqdance.report.profiles import decode_uint8, encode_uint8
from seqdance.report.structure import match_structure
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)  # fmt: skip


@pytest.fixture(scope="module")
def case50(tmp_path_factory, make_tiny_model, run_cli):
    """50 residues (2g3r 1485-1534; reports number them 1-50), full scan, 2 explained."""
    folder = tmp_path_factory.mktemp("case50")
    structure = cut_structure(folder / "cut.pdb", 1485, 1534)
    return make_case(
        folder,
        structure,
        make_tiny_model(13, head_biases=True),
        run_cli,
        properties="sasa_mean,rmsf_nor,ss,nma_res,corr,vdw",
    )


@pytest.fixture(scope="module")
def report50(case50, tmp_path_factory, run_cli):
    out = tmp_path_factory.mktemp("r50") / "report.html"
    argv = ["report", str(case50["prediction"]), "-o", str(out), "--scan", str(case50["scan"]),
            "--explain", str(case50["explain"]), "--structure", str(case50["structure"]),
            "-m", str(case50["model"])]  # fmt: skip
    assert run_cli(argv) == 0
    return out


def page_data(path: Path) -> dict:
    text = path.read_text()
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text,
                      re.S)  # fmt: skip
    return json.loads(found[1].replace("<\\/", "</"))


# -- values ----------------------------------------------------------------------------------
def test_encoding_round_trip():
    values = np.array([[0.0, 0.5, np.nan], [1.0, -2.0, 3.0]])
    enc = encode_uint8(values, per_row=True)
    back = decode_uint8(enc)
    assert np.isnan(back[0, 2])
    assert np.allclose(back[0, :2], [0.0, 0.5], atol=0.5 / 254)
    assert np.allclose(back[1], [1.0, -2.0, 3.0], atol=5.0 / 255)


def test_page_holds_the_outputs(case50, report50, make_tiny_model):
    data = page_data(report50)
    seq = case50["sequence"]
    assert data["sequence"] == seq and data["numbers"] == list(range(1, 51))
    table = pd.read_csv(case50["prediction"])
    assert np.allclose(data["properties"]["rmsf_nor"]["values"], table["rmsf_nor"], rtol=1e-5)
    helix = table["ss_H"] + table["ss_G"] + table["ss_I"]
    assert np.allclose(data["properties"]["helix (ss_H+G+I)"]["values"], helix, rtol=1e-5)
    pair = np.load(str(case50["prediction"]).replace(".residue.csv", ".pair.npz"))
    for name in PAIR_CHANNELS:  # all 13 fit the budget at 50 residues
        enc = data["pairs"][name]["data"]
        step = (enc["hi"] - enc["lo"]) / enc["top"]
        assert np.abs(decode_uint8(enc) - pair[name]).max() <= step / 2 + 1e-6
    scan = pd.read_csv(case50["scan"] / "scan.csv")
    column = data["scan"]["columns"]["sasa_mean"]
    assert np.allclose(column["mean"], scan.groupby("position")["sasa_mean"].mean(), rtol=1e-5)
    # the header: the model's weights hash is the scan manifest's
    model = make_tiny_model(13, head_biases=True)
    assert data["header"]["weights_hash"] == model_fingerprint(model)
    assert "seqdance report" in data["header"]["command"] and data["header"]["version"]
    # the structure: sequence index 0 is residue 1485 of chain A, shift stated
    assert data["structure"]["resi"][0] == 1485 and data["structure"]["resi"][-1] == 1534
    assert "+1484" in data["structure"]["note"]
    # self-contained: no external script, style or link
    text = report50.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)


def test_scan_profile_equals_explain(case50, report50, make_tiny_model):
    """A scan mutant's profile is explain's per-residue relative change (residue channels)."""
    data = page_data(report50)
    profiles = data["scan"]["profiles"]
    row = profiles["mutants"].index(f"{case50['sequence'][4]}5W")
    values = decode_uint8(profiles["data"])[row]
    model = make_tiny_model(13, head_biases=True)
    mutants = build_mutant_set(case50["sequence"], [f"{case50['sequence'][4]}5W"], None, 1,
                               first_row=None)  # fmt: skip
    channels = [c for c in RESIDUE_CHANNELS if c.startswith(("sasa_mean", "rmsf", "ss_", "nma"))]
    ex = explain_mutants(model, mutants, channels, ScoreOptions(residues_only=True))
    expected = ex.rel_residue[0].mean(axis=1)  # (L,)
    assert np.allclose(values, expected, atol=expected.max() / 254 + 1e-6)
    assert np.argmax(values) == np.argmax(expected)


def test_structure_alignment(tmp_path, case50):
    seq = case50["sequence"]
    match = match_structure(case50["structure"], seq, first_number=1)
    assert match.chain == "A" and match.shift == 1485 and match.resi[:2] == [1485, 1486]
    # a structure covering part of the sequence is aligned by its numbers
    part = cut_structure(tmp_path / "part.pdb", 1490, 1520)
    match = match_structure(part, seq, first_number=1)
    assert match.resi[4] is None and match.resi[5] == 1490 and match.resi[35] == 1520
    assert sum(r is not None for r in match.resi) == 31


def test_bad_input_writes_nothing(case50, tmp_path, capsys, run_cli):
    out = tmp_path / "r.html"
    base = ["report", str(case50["prediction"]), "-o", str(out)]
    other = cut_structure(tmp_path / "other.pdb", 1540, 1600)  # another part of the protein
    cases = [
        ([*base, "--structure", str(other)], "no chain spells the predicted sequence"),
        ([*base, "--structure", str(tmp_path / "missing.pdb")], "file not found"),
        ([*base, "--scan", str(tmp_path / "nothing")], "file not found"),
        ([*base, "--scan", str(case50["scan"]), "--offset", "5"], "numbering differs"),
        (["report", str(tmp_path / "x.residue.csv"), "-o", str(out)], "file not found"),
    ]
    for argv, message in cases:
        assert run_cli(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
        assert not out.exists() and not list(tmp_path.glob(".r.html*"))
    # a scan of another sequence
    mutated = tmp_path / "scan"
    shutil.copytree(case50["scan"], mutated)
    table = pd.read_csv(mutated / "scan.csv")
    table.loc[table["position"] == 7, "wt"] = "W" if case50["sequence"][6] != "W" else "A"
    table.to_csv(mutated / "scan.csv", index=False)
    assert run_cli([*base, "--scan", str(mutated)]) == 1
    assert "the scan's wild type has" in capsys.readouterr().err
    assert not out.exists()
    # an existing folder as --out: named as given, before any work
    folder = tmp_path / "folder.html"
    folder.mkdir()
    assert run_cli(["report", str(case50["prediction"]), "-o", str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {folder}: is a folder; give a file name to write"]
    assert list(folder.iterdir()) == []


def test_pair_maps_too_large_for_a_page_are_not_read(case50, tmp_path):
    options = ReportOptions(pair_budget=50 * 50 // 4 - 1)  # one 50 x 50 map is over 4 budgets
    path = write_html_report(tmp_path / "nopairs.html", case50["prediction"], options=options)
    data = page_data(path)
    assert data["pairs"] is None
    assert any("pair maps left out: 50 x 50 pairs" in n for n in data["notes"])
    options = ReportOptions(pair_budget=50 * 50 // 4)  # at the limit: the first map is kept
    data = page_data(
        write_html_report(tmp_path / "one.html", case50["prediction"], options=options)
    )
    assert data["pairs"] is not None and len(data["pairs"]) == 1


def test_without_structure_or_model(case50, tmp_path):
    parts = load_parts(case50["prediction"], case50["scan"], None, ReportOptions())
    assert parts.structure is None and parts.profiles is None
    assert any("need the model" in n for n in parts.notes)
    path = write_html_report(tmp_path / "plain.html", case50["prediction"])
    data = page_data(path)
    assert data["structure"] is None and data["scan"] is None and data["explain"] is None


# -- in a browser ----------------------------------------------------------------------------
def open_page(playwright, path: Path, width: int = 1400):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
    )
    page = browser.new_page(viewport={"width": width, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"request {r.url}")
            if not r.url.startswith(("file:", "data:", "blob:")) else None)  # fmt: skip
    start = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
    load_s = time.perf_counter() - start
    return browser, page, errors, load_s


def canvas_variance(page, name: str) -> float:
    from PIL import Image

    png = ARTIFACTS / f"{name}_viewer.png"
    page.locator("#viewer").screenshot(path=str(png))
    pixels = np.asarray(Image.open(png).convert("L"), np.float64)
    return float(pixels.var())


def in_view(page, selector: str) -> dict:
    """The bounding box of ``selector`` after scrolling it into the viewport."""
    page.locator(selector).first.scroll_into_view_if_needed()
    return page.locator(selector).first.bounding_box()


def hover_middle(page, selector: str):
    box = in_view(page, selector)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_timeout(300)


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (chromium)")


@needs_chromium
def test_report_in_browser(report50, case50):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser, page, errors, load_s = open_page(pw, report50)
        try:
            page.wait_for_timeout(500)
            assert canvas_variance(page, "report50") > 50  # a molecule, not a blank canvas
            # hovering the tracks highlights that residue in the 3D view and in every plot
            hover_middle(page, "#tracks-plot .nsewdrag")
            hovered = page.locator("#hover-residue").inner_text()
            assert re.fullmatch(r"[A-Z]\d+", hovered), hovered
            number = int(hovered[1:])
            assert hovered[0] == case50["sequence"][number - 1]
            state = page.evaluate(
                "({h: window.seqdanceReport.highlighted, "
                "s: document.getElementById('scan-plot').layout.shapes})"
            )
            assert state["h"] == hovered
            assert any(s["x0"] == number for s in state["s"])
            # clicking a scan cell shows that mutant's profile and colours the 3D view by it
            box = in_view(page, "#scan-plot .nsewdrag")
            page.mouse.move(box["x"] + box["width"] * 0.31, box["y"] + box["height"] * 0.52)
            page.wait_for_timeout(200)
            page.mouse.down()
            page.mouse.up()
            page.wait_for_timeout(500)
            mutant = page.locator("#mutant-name").inner_text()
            assert re.fullmatch(r"[A-Z]\d+[A-Z]", mutant) and mutant != "V3A", mutant
            assert page.locator("#colour-select").input_value() == f"mutant {mutant}"
            assert "profile" in page.locator("#mutant-info").inner_text()
            page.screenshot(path=str(ARTIFACTS / "report50.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert load_s < 60


@needs_chromium
@pytest.mark.parametrize("n", [300, 1000])
def test_large_reports_in_browser(n, tmp_path, make_tiny_model, run_cli):
    """300 residues with a structure and a full scan: <= 15 MB; 1,000 residues: loads and
    answers a hover quickly (times printed and kept in the artefacts)."""
    from playwright.sync_api import sync_playwright

    structure = tiled_structure(tmp_path / "tiled.pdb", n)
    assert len(sequence_of(structure)) == n
    scan_args = [] if n == 300 else ["--positions", "1-30"]
    case = make_case(tmp_path, structure, make_tiny_model(13, head_biases=True), run_cli,
                     scan_args=scan_args, explain=True,
                     properties="sasa_mean,rmsf_nor,nma_res")  # fmt: skip
    out = tmp_path / f"report{n}.html"
    model = make_tiny_model(13, head_biases=True)
    options = ReportOptions(structure=structure, model="tiny", command="test")
    start = time.perf_counter()
    write_html_report(out, case["prediction"], scan=case["scan"], explain=case["explain"],
                 options=options, model=model)  # fmt: skip
    build_s = time.perf_counter() - start
    size_mb = out.stat().st_size / 1e6
    if n == 300:
        assert size_mb <= 15
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser, page, errors, load_s = open_page(pw, out)
        try:
            page.wait_for_timeout(500)
            assert canvas_variance(page, f"report{n}") > 50
            start = time.perf_counter()
            hover_middle(page, "#tracks-plot .nsewdrag")
            page.wait_for_function("document.getElementById('hover-residue').textContent !== '-'")
            hover_s = time.perf_counter() - start
            page.screenshot(path=str(ARTIFACTS / f"report{n}.png"), full_page=True)
            js_ms = page.evaluate("window.seqdanceReport.loadMs")
        finally:
            browser.close()
    timing = {
        "residues": n,
        "size_mb": round(size_mb, 2),
        "build_s": round(build_s, 1),
        "load_s": round(load_s, 2),
        "script_ms": round(js_ms),
        "hover_s": round(hover_s, 2),
    }
    (ARTIFACTS / f"timing{n}.json").write_text(json.dumps(timing))
    print(timing)
    assert errors == []
    assert load_s < 60 and hover_s < 5


def coloured_fraction(page, name: str) -> float:
    """Fraction of the viewer's pixels that are coloured (not white, grey or black)."""
    from PIL import Image

    png = ARTIFACTS / f"{name}_colours.png"
    page.locator("#viewer").screenshot(path=str(png))
    rgb = np.asarray(Image.open(png).convert("RGB"), np.int16)  # (H, W, 3)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).mean())


@needs_chromium
def test_structure_without_chain_id_is_coloured(tmp_path, make_tiny_model, run_cli):
    """A PDB with a blank chain id (the demo's 3tvj_I, as MD engines write it): the cartoon
    takes the property's colours, as a chain with an id does, not the grey of other chains."""
    from playwright.sync_api import sync_playwright

    structure = bundled_data() / "md" / "3tvj_I.pdb"
    assert {line[21] for line in structure.read_text().splitlines()
            if line.startswith("ATOM")} == {" "}  # fmt: skip
    case = make_case(tmp_path, structure, make_tiny_model(13, head_biases=True), run_cli,
                     scan_args=None, explain=False)  # fmt: skip
    out = tmp_path / "blank.html"
    assert run_cli(["report", str(case["prediction"]), "-o", str(out),
                    "--structure", str(structure)]) == 0  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser, page, errors, _ = open_page(pw, out)
        try:
            page.wait_for_timeout(500)
            assert coloured_fraction(page, "blank_chain") > 0.02
        finally:
            browser.close()
    assert errors == []
