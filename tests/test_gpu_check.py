"""benchmarks/gpu_check.sh, the one command a GPU machine runs, on the CPU at tiny sizes
(``--cpu-smoke``): every case runs, each writes one JSON line with its numbers, and the
multi-process path (torchrun, 2 ranks) reports substitutions per second and the
extrapolated time for ProteinGym's 2.5 M substitutions consistently."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_every_case_on_the_cpu():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("SEQDANCE_THREADS", None)
    done = subprocess.run(["bash", str(REPO / "benchmarks/gpu_check.sh"), "--cpu-smoke"],
                          capture_output=True, text=True, env=env, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = re.search(r"(\d+) of (\d+) cases ran; results in (\S+)", done.stdout)
    assert summary, done.stdout[-3000:]
    assert summary.group(1) == summary.group(2) == "13"
    rows = [json.loads(line) for line in Path(summary.group(3)).read_text().splitlines()]
    assert len(rows) == 13 and not [r for r in rows if "failed" in r]
    cases = [r["case"] for r in rows]
    assert cases.count("predict") == 2 and cases.count("train") == 8
    assert cases.count("largest") == 1 and cases.count("throughput") == 2
    for row in rows:
        if row["case"] == "throughput":
            assert row["ranks"] == 2 and row["subs_per_s"] > 0
            hours = 2.5e6 / row["subs_per_s"] / 3600
            assert math.isclose(row["hours_for_2.5M"], hours, rel_tol=1e-9)
        elif row["case"] == "train":
            assert row["seconds_per_step"] > 0 and math.isfinite(row["loss"])
    residue = next(r for r in rows if r.get("properties") == "residue")
    every = next(r for r in rows if r.get("properties") == "all")
    assert residue["subs_per_s"] > every["subs_per_s"]  # the pair head costs time
    assert "| sharded scoring | ranks |" in done.stdout
