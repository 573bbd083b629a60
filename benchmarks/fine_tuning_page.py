"""CPU and wall time of docs/fine-tuning.md, block by block.

    python benchmarks/fine_tuning_page.py [--work DIR]

Runs the page's bash blocks in order, as ``tests/test_fine_tuning_doc.py`` does (a fresh
folder with the demo's bundled data as ``inputs/`` and ``configs/``, one OpenMP thread), and
prints per block the CPU time of all its processes (user + system, children included) and the
wall time, then the totals. On a loaded machine the wall time grows with the load; the CPU
time is what a quiet single-core run would take. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqdance.demo.inputs import bundled_data

ROOT = Path(__file__).parents[1]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="folder to run in (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="fine-tuning-page-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(bundled_data(), work / "inputs")
    shutil.copytree(ROOT / "configs", work / "configs")
    prelude = f'set -euo pipefail\nseqdance() {{ "{sys.executable}" -m seqdance "$@"; }}\n'
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    text = (ROOT / "docs" / "fine-tuning.md").read_text()
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        cpu, wall = children_cpu(), time.perf_counter()
        done = subprocess.run(["bash", "-c", prelude + block], cwd=work, env=env,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"block failed:\n{block}\n{done.stderr[-2000:]}")
        commands = [" ".join(w for w in ln.split()[1:3] if not w.startswith("-"))
                    for ln in block.splitlines() if ln.startswith("seqdance ")]  # fmt: skip
        blocks.append({"commands": commands, "cpu_s": round(children_cpu() - cpu, 1),
                       "wall_s": round(time.perf_counter() - wall, 1)})  # fmt: skip
    total = {k: round(sum(b[k] for b in blocks), 1) for k in ("cpu_s", "wall_s")}
    print(json.dumps({"blocks": blocks, "total": total, "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
