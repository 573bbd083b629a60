"""``seqdance scan``: the same numbers as ``seqdance score`` on the same mutant list,
heat-map matrices, resuming a killed scan without recomputing, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqdance.inference.fasta import read_fasta
from seqdance.inference.scan import (
    HEATMAP_ORDER,
    heatmap_matrix,
    parse_positions,
    plot_heatmap,
    scan_mutants,
)

FASTA = Path(__file__).resolve().parent / "data" / "scoring" / "proteingym"
FASTA = FASTA / "F7YBW8_MESOW_Aakre_2015.fasta"


@pytest.fixture(scope="module")
def wild_type() -> str:
    return read_fasta(FASTA)[0].sequence


def test_parse_positions_and_mutants():
    assert parse_positions("10-12,95,11", 100) == [9, 10, 11, 94]
    assert parse_positions(None, 4) == [0, 1, 2, 3]
    assert parse_positions("24-26", 10, offset=24) == [0, 1, 2]
    mutants = scan_mutants("ACD", [0, 2])
    assert len(mutants) == 38 and all(m.mt != m.wt for m in mutants)
    assert [m.mt for m in mutants[:3]] == ["C", "D", "E"] and mutants[19].index == 2


@pytest.mark.parametrize("rows", [[], ["--residues-only"]], ids=["all-tokens", "residues-only"])
def test_scan_equals_score(run_cli, tiny_dir, wild_type, tmp_path, rows):
    out = tmp_path / "scan"
    argv = ["scan", "-m", str(tiny_dir), "--fasta", str(FASTA), "--out", str(out), *rows]
    assert run_cli([*argv, "--positions", "5-6,93", "--offset", "1", "--no-progress"]) == 0
    scan = pd.read_csv(out / "scan.csv")
    assert list(scan.columns[:4]) == ["position", "wt", "mt", "mutant"]
    assert len(scan) == 3 * 19 and sorted(set(scan["position"])) == [5, 6, 93]
    assert (scan["wt"] == [wild_type[p - 1] for p in scan["position"]]).all()
    # the same mutants through `seqdance score`
    mutations = tmp_path / "mutants.csv"
    scan[["mutant"]].to_csv(mutations, index=False)
    scored = tmp_path / "scored.csv"
    score_argv = ["score", "-m", str(tiny_dir), "--fasta", str(FASTA), *rows]
    assert run_cli([*score_argv, "--mutations", str(mutations), "--out", str(scored)]) == 0
    reference = pd.read_csv(scored)
    score_columns = [c for c in reference.columns if c != "mutant"]
    assert score_columns == list(scan.columns[4:])  # 63 channels, summaries, combinations
    assert len(score_columns) == 63 + 4 + 8
    np.testing.assert_allclose(
        scan[score_columns].to_numpy(), reference[score_columns].to_numpy(), rtol=1e-5, atol=1e-9
    )
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"scan_{c}.png" for c in sorted(["norm_geometric_mean", "sasa_mean",
                                                     "rmsf_nor", "psi", "corr"])]  # fmt: skip


def test_heatmap_matrix_and_panels(tmp_path):
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list(HEATMAP_ORDER), 230))
    rows = [
        (i + 1, sequence[i], aa) for i in range(230) for aa in HEATMAP_ORDER if aa != sequence[i]
    ]
    table = pd.DataFrame(rows, columns=["position", "wt", "mt"])
    table["s"] = rng.random(len(table))
    positions, wt, matrix = heatmap_matrix(table, "s")
    assert matrix.shape == (20, 230) and list(positions[:3]) == [1, 2, 3]
    assert "".join(wt) == sequence
    k = 57
    pick = table.iloc[k]
    assert matrix[HEATMAP_ORDER.index(pick["mt"]), pick["position"] - 1] == pick["s"]
    assert np.isnan(matrix[HEATMAP_ORDER.index(sequence[10]), 10])  # wild type: no score
    assert np.isfinite(matrix).sum() == 230 * 19
    from PIL import Image

    short = plot_heatmap(table[table["position"] <= 40], "s", tmp_path / "short.png")
    long = plot_heatmap(table, "s", tmp_path / "long.png")  # 3 panels of <= 100 positions
    h_short, h_long = Image.open(short).size[1], Image.open(long).size[1]
    assert h_long == pytest.approx(3 * h_short, rel=0.25)


def _blocks(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (out / "parts").glob("b*")}


def test_killed_scan_resumes(run_cli, tiny_dir, tmp_path, capsys):
    """Kill a running scan after its first block; the rerun reuses the finished blocks
    (files untouched) and gives the same table as an uninterrupted scan."""
    out = tmp_path / "killed"
    argv = ["scan", "-m", str(tiny_dir), "--fasta", str(FASTA), "--positions", "1-24",
            "--properties", "sasa_mean,rmsf_nor,psi", "--plot", "psi", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "seqdance", *argv, "--out", str(out)], env=env)
    try:
        deadline = time.monotonic() + 300
        while not (out / "parts" / "block_00000.npz").exists():
            assert proc.poll() is None, "scan ended before its first block"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "scan.csv").exists()
    before = _blocks(out)
    assert 1 <= len(before) < 3  # 24 positions = 3 blocks of 8
    assert run_cli([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"resumed: {len(before)} finished block(s) reused, {3 - len(before)} scored" in err
    after = _blocks(out)
    assert len(after) == 3 and all(after[name] == before[name] for name in before)
    fresh = tmp_path / "fresh"
    assert run_cli([*argv, "--out", str(fresh)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "scan.csv"), pd.read_csv(fresh / "scan.csv"))
    # the parts belong to this scan: other options in the same folder are refused
    assert run_cli([*argv[:-5], "--properties", "sasa_mean", "--out", str(out)]) == 1
    assert "holds parts of another scan (different channels)" in capsys.readouterr().err


def test_scan_bad_input(run_cli, tiny_dir, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = ["scan", "-m", str(tiny_dir), "--fasta", str(FASTA), "--out", str(out)]
    cases = {
        "94": "position 94 is outside the sequence (positions 1..93 with offset 1)",
        "20-10": "empty range '20-10'",
        "a-b": "cannot parse 'a-b'",
        "0-3": "position 0 is outside the sequence",
    }
    for text, message in cases.items():
        assert run_cli([*argv, "--positions", text]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --positions") and message in err[0]
    assert run_cli([*argv, "--positions", "3", "--plot", "nope", "--no-progress"]) == 1
    assert "--plot: no score column nope" in capsys.readouterr().err
    assert not (out / "scan.csv").exists()
    assert not out.exists() or not any(out.glob("*.png"))
