"""Issue 23: truncated and corrupted files of every format the project writes, read back by the
command that consumes them (real CLI, in-process): one ``error:`` line naming the file, no
traceback, nothing written. The files are made by the real commands first, then damaged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cli, one_error_line
from seqdance.cli import main

SEQUENCE = "MKTAYIAKQRQISFVKSHFSRQ"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def made(tiny_dir, tmp_path_factory) -> dict[str, Path]:
    """predict, scan and explain outputs of the tiny model, made once by the real commands."""
    root = tmp_path_factory.mktemp("made")
    fasta = root / "a.fasta"
    fasta.write_text(f">p\n{SEQUENCE}\n")
    for args in (
        ["predict", fasta, "-m", tiny_dir, "-o", root / "pred", "--no-progress"],
        ["scan", "-m", tiny_dir, "--sequence", SEQUENCE, "--positions", "2-4", "-o",
         root / "scan", "--no-progress"],
        ["explain", "-m", tiny_dir, "--sequence", SEQUENCE, "--mutant", "K2A", "-o",
         root / "explain"],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        assert exit_info.value.code == 0
    return {"pred": root / "pred", "scan": root / "scan", "explain": root / "explain"}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    else:  # binary noise in place of the text or archive
        path.write_bytes(bytes(range(256)) * 4)


# (the file damaged, relative to the made folders; the report's arguments)
TARGETS = {
    "residue.csv": ("pred/p.residue.csv", []),
    "pair.npz": ("pred/p.pair.npz", []),
    "scan.csv": ("scan/scan.csv", ["--scan", "{scan}"]),
    "explain_residues.csv": ("explain/explain_residues.csv", ["--explain", "{explain}"]),
    "explain.npz": ("explain/explain.npz", ["--explain", "{explain}"]),
}


@pytest.mark.parametrize("how", ["truncated", "empty", "binary"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_report_names_a_damaged_input(target, how, made, tmp_path, capsys):
    import shutil

    copies = {k: shutil.copytree(v, tmp_path / k) for k, v in made.items()}
    relative, extra = TARGETS[target]
    damaged = tmp_path / relative
    _damage(damaged, how)
    out = tmp_path / "r" / "report.html"
    args = [a.format(**{k: str(v) for k, v in copies.items()}) for a in extra]
    code, err = cli(["report", copies["pred"] / "p.residue.csv", "-o", out, *args], capsys)
    line = one_error_line(err)
    assert code == 1 and str(damaged.name) in line, line
    assert not out.exists()


def test_report_reads_a_scan_with_an_unusual_wild_type_letter(tiny_dir, tmp_path, capsys):
    """20 rows at an X position (no letter equals it), 19 elsewhere: read, not refused."""
    seq = "MKXAYIAKQR"
    fasta = tmp_path / "a.fasta"
    fasta.write_text(f">p\n{seq}\n")
    assert cli(["predict", fasta, "-m", tiny_dir, "-o", tmp_path / "pred", "--no-progress"],
               capsys)[0] == 0  # fmt: skip
    assert cli(["scan", "-m", tiny_dir, "--sequence", seq, "--positions", "2-4", "-o",
                tmp_path / "scan", "--no-progress"], capsys)[0] == 0  # fmt: skip
    code, err = cli(["report", tmp_path / "pred" / "p.residue.csv", "-o", tmp_path / "r.html",
                     "--scan", tmp_path / "scan"], capsys)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "r.html").is_file()
