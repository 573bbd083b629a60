"""Bad input under torchrun: one ``error:`` line, from rank 0 only, naming the problem, and
nothing written (no output, no shard folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSAY = REPO / "tests" / "data" / "scoring" / "proteingym" / "IF1_ECOLI_Kelsic_2016"


@pytest.mark.slow
def test_torchrun_bad_input_is_one_error_line_from_rank_0(tiny_dir, tmp_path):
    exe = tmp_path / "seqdance-exe"  # torchrun --no-python runs an executable
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m seqdance "$@"\n')
    exe.chmod(0o755)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nACDE\n>b\nAC1DE\n")
    cases = (
        (["score", "-m", str(tiny_dir), "--fasta", f"{ASSAY}.fasta", "--mutations",
          str(tmp_path / "missing.csv")], tmp_path / "s.csv", "missing.csv"),
        (["embed", str(bad), "-m", str(tiny_dir)], tmp_path / "e.h5",
         "record 'b': invalid residue '1'"),
        (["scan", "-m", str(tiny_dir), "--sequence", "MKTAYIAKQR", "--positions", "5-40"],
         tmp_path / "scan", "--positions"),
    )  # fmt: skip
    for argv, out, message in cases:
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
             "--no-python", str(exe), *argv, "-o", str(out), "--no-progress"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode != 0, done.stderr[-2000:]
        assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
        assert not out.exists() and not out.with_name(f"{out.name}.shards").exists()
        assert not list(tmp_path.glob(".*tmp*"))  # no temporary left beside the outputs
