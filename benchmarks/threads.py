"""Thread settings: the wall time of every heavy command under each way of choosing threads.

    python benchmarks/threads.py [--repeats 2] [--commands predict,scan] [--json out.json]

Each command runs as a user runs it (``python -m seqdance ...`` in a fresh process, import
time included) on the bundled data, small enough that the whole benchmark takes minutes:

- train: configs/tiny.yaml, 20 updates, on the demo dataset (7 proteins);
- predict, embed: 4 sequences of 263 residues (TEM-1 and three shuffles), ESM2-8M layout
  with random weights (seed 0);
- score: the 30 TEM-1 mutants of tests/data/scoring/blat_ecolx_30.csv, same model;
- scan: 1 TEM-1 position (19 mutants), same model;
- explain: 2 TEM-1 mutants, ``sasa_mean,rmsf_nor``, same model;
- features md, contacts: 3tvj_I, 10 frames; dataset build: the demo manifest (2 MD, 5 NMA).

Settings: ``OMP_NUM_THREADS`` 1 and CORES (no option), ``--threads`` 1 and CORES (no
variable), and the default (neither). Within a repeat the settings run in a shuffled order,
so that a burst of load from other processes does not always fall on the same one. Prints
the median wall time per command and setting, and the default's ratio to the best setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src/seqdance/demo/data"
MD = ROOT / "tests/data/md/3tvj_I"
SCORING = ROOT / "tests/data/scoring"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
    "SEQDANCE_THREADS", "OMP_WAIT_POLICY",
)  # fmt: skip


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def prepare(tmp: Path) -> dict[str, object]:
    """The model, FASTA, mutants, manifest and dataset the commands read."""
    import numpy as np
    import pandas as pd
    import torch

    from seqdance.inference.fasta import read_fasta
    from seqdance.model import SeqDanceConfig, SeqDanceModel, get_architecture

    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=get_architecture("8M"))).eval()
    model_dir = model.save_pretrained(tmp / "model8M")
    wild_type = read_fasta(SCORING / "blat_ecolx_wt.fasta")[0].sequence
    rng = np.random.default_rng(0)
    fasta = tmp / "four.fasta"
    shuffles = ["".join(rng.permutation(list(wild_type))) for _ in range(3)]
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate([wild_type, *shuffles])))
    mutants = [f"{wild_type[i]}{i + 24}{'GA'[wild_type[i] != 'A']}" for i in (5, 90)]
    rows = []
    for name, kind, files in (
        ("3tvj_I", "md", ("md/3tvj_I.pdb", "md/3tvj_I_10frames.dcd")),
        ("5xnd", "md", ("md/5xnd_topology.pdb", "md/5xnd_6frames.dcd")),
        *((n, "nma", (f"structures/{n}.pdb",)) for n in ("2g3r", "1GJS", "1I6C", "2M8I", "2KCF")),
    ):
        paths = [str(DEMO / f) for f in files]
        md = kind == "md"
        rows.append({
            "name": name, "source": "ATLAS" if md else "proteinflow_pdb", "kind": kind,
            "topology": paths[0] if md else "", "trajectory": paths[1] if md else "",
            "structure": "" if md else paths[0], "label": "train",
        })  # fmt: skip
    manifest = tmp / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    dataset = tmp / "dataset"
    run(["dataset", "build", str(manifest), "--out", str(dataset)], {})
    return {"model": model_dir, "fasta": fasta, "mutants": mutants, "manifest": manifest,
            "dataset": dataset}  # fmt: skip


def command_lines(inputs: dict, out: Path) -> dict[str, list[str]]:
    """Each benchmarked command's arguments, writing under ``out`` (fresh per run)."""
    model, blat = str(inputs["model"]), str(SCORING / "blat_ecolx_wt.fasta")
    on_model = ["-m", model, "--device", "cpu"]
    return {
        "train": ["train", "--config", str(ROOT / "configs/tiny.yaml"),
                  f"data.dir={inputs['dataset']}", f"out_dir={out / 'run'}",
                  "train.max_steps=20", "train.save_every=20"],
        "predict": ["predict", str(inputs["fasta"]), *on_model, "-o", str(out / "pred")],
        "embed": ["embed", str(inputs["fasta"]), *on_model, "-o", str(out / "emb.h5")],
        "score": ["score", *on_model, "--fasta", blat, "--offset", "24", "--mutations",
                  str(SCORING / "blat_ecolx_30.csv"), "-o", str(out / "score.csv")],
        "scan": ["scan", *on_model, "--fasta", blat, "--offset", "24", "--positions", "30",
                 "-o", str(out / "scan")],
        "explain": ["explain", *on_model, "--fasta", blat, "--offset", "24",
                    "--properties", "sasa_mean,rmsf_nor",
                    *(a for m in inputs["mutants"] for a in ("--mutant", m)),
                    "-o", str(out / "explain")],
        "features md": ["features", "md", "-t", str(MD / "3tvj_I.pdb"), "-x",
                        str(MD / "3tvj_I_10frames.dcd"), "-o", str(out / "md" / "3tvj_I")],
        "contacts": ["contacts", "-t", str(MD / "3tvj_I.pdb"), "-x",
                     str(MD / "3tvj_I_10frames.dcd"), "-o", str(out / "contacts.tsv")],
        "dataset build": ["dataset", "build", str(inputs["manifest"]), "--out", str(out / "ds")],
    }  # fmt: skip


def cpu_seconds_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(args: list[str], env_extra: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``python -m seqdance ARGS``, with the thread
    variables cleared first."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cpu, tick = cpu_seconds_of_children(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "seqdance", *args, "--no-progress"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds, cpu = time.perf_counter() - tick, cpu_seconds_of_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"seqdance {' '.join(args)} failed:\n{done.stderr}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--commands", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the times here")
    args = parser.parse_args()
    n = cores()
    settings = {
        "OMP_NUM_THREADS=1": ({"OMP_NUM_THREADS": "1"}, []),
        f"OMP_NUM_THREADS={n}": ({"OMP_NUM_THREADS": str(n)}, []),
        "--threads 1": ({}, ["--threads", "1"]),
        f"--threads {n}": ({}, ["--threads", str(n)]),
        "default": ({}, []),
    }
    order = random.Random(0)
    times: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inputs = prepare(tmp)
        names = list(command_lines(inputs, tmp))
        chosen = [c.strip() for c in args.commands.split(",") if c.strip()] or names
        counter = 0
        for _ in range(args.repeats):
            for name in chosen:
                keys = list(settings)
                order.shuffle(keys)
                for key in keys:
                    env_extra, extra = settings[key]
                    counter += 1
                    line = command_lines(inputs, tmp / f"run{counter}")[name]
                    seconds, cpu = run([*line, *extra], env_extra)
                    times.setdefault(name, {}).setdefault(key, []).append(seconds)
                    print(
                        f"{name:14s} {key:20s} {seconds:6.2f} s  (cpu {cpu:6.2f} s, "
                        f"load {os.getloadavg()[0]:.1f})",
                        file=sys.stderr,
                        flush=True,
                    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(json.dumps({"machine": platform.platform(), "cores": n, "load_after": load,
                      "times": times}))  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(times, indent=1))
    print(f"\n| command | {' | '.join(settings)} | default / best |")
    print("|---" * (len(settings) + 2) + "|")
    for name, by_setting in times.items():
        medians = {k: statistics.median(v) for k, v in by_setting.items()}
        best = min(v for k, v in medians.items() if k != "default")
        cells = " | ".join(f"{medians[k]:.1f}" for k in settings)
        print(f"| {name} | {cells} | {medians['default'] / best:.2f} |")


if __name__ == "__main__":
    main()
