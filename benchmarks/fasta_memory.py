"""Peak memory of reading a proteome-sized FASTA: ``read_fasta`` (the whole text) against the
streaming index (``index_fasta``), and of ``seqdance embed`` (which reads through the index,
a shard at a time) against the former whole-list embed path, and of ``seqdance predict`` into
its one-file store (``-o OUT.h5``, residue outputs), on N and 10 N records.

    PYTHONPATH=src python benchmarks/fasta_memory.py [--records 2000 20000] [--window 1022]
        [--cases "seqdance embed"]

The FASTA is synthetic (seed 0): lengths log-normal with median 415 residues (sigma 0.75: mean
about 550, as the human proteome), the longest record set to 34,350 (titin), 60-letter lines.
The model is the tests' tiny architecture (2 layers, hidden size 32) with random weights,
saved to a temporary folder: the point is the memory that grows with the input, not the
model's. Every measurement is a fresh process; peak RSS is that process's ``ru_maxrss``
(``os.wait4``), and "imports only" is the floor every row shares.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seqdance.model import Esm2Architecture, SeqDanceConfig, SeqDanceModel

TINY = Esm2Architecture("tiny", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64)
LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
TITIN = 34_350

IMPORTS = "import os, seqdance.inference.pipeline, seqdance.cli\n"
CASES = {
    "imports only": "",
    "read_fasta (whole text)": (
        "from seqdance.inference.fasta import read_fasta\nread_fasta(FASTA)\n"
    ),
    "index_fasta (streaming)": (
        "from seqdance.inference.fasta_index import index_fasta\nindex_fasta(FASTA)\n"
    ),
    "embed, whole list (before)": (
        "from seqdance.inference.fasta import read_fasta\n"
        "from seqdance.inference.embed import embed, write_embeddings\n"
        "from seqdance.model import load_model\n"
        "records = read_fasta(FASTA)\n"
        "items = embed(load_model(MODEL), [r.sequence for r in records], window=WINDOW)\n"
        "write_embeddings(OUT, ((records[i].id, x) for i, x in items))\n"
    ),
    "seqdance embed (index, a shard at a time)": (
        "from seqdance.cli import main\n"
        "try:\n"
        "    main(['embed', FASTA, '-m', MODEL, '-o', OUT, '--window', str(WINDOW),\n"
        "          '--no-progress'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    ),
    "seqdance predict -o OUT.h5 --pairs none (one store)": (
        "from seqdance.cli import main\n"
        "try:\n"
        "    main(['predict', FASTA, '-m', MODEL, '-o', OUT, '--window', str(WINDOW),\n"
        "          '--pairs', 'none', '--no-progress'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "import h5py\n"
        "with h5py.File(OUT) as h5:\n"
        "    assert len(h5['index/id']) == len(h5['records'])\n"
        "print(f'store: {os.path.getsize(OUT) / 2**20:.1f} MiB', flush=True)\n"
    ),
}


def write_proteome(path: Path, count: int, seed: int = 0) -> int:
    """A FASTA of ``count`` synthetic proteins (lengths as the docstring says); residues."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(np.log(415), 0.75, count)), 20, TITIN).astype(int)
    lengths[np.argmax(lengths)] = TITIN
    with open(path, "w") as handle:
        for k, length in enumerate(lengths.tolist()):
            seq = "".join(rng.choice(LETTERS, size=length))
            body = "\n".join(seq[i : i + 60] for i in range(0, length, 60))
            handle.write(f">SYN{k:05d} synthetic protein {k} OS=Homo sapiens\n{body}\n")
    return int(lengths.sum())


def measure(code: str, **names: object) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of a fresh Python running ``code`` after the imports."""
    head = "".join(f"{k} = {v!r}\n" for k, v in names.items())
    env = dict(os.environ, SEQDANCE_THREADS="1", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", head + IMPORTS + code], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"measurement failed (exit {status}):\n{code}")
    return usage.ru_maxrss / 1024, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--window", type=int, default=1022)
    parser.add_argument("--skip-embed", action="store_true", help="readers only")
    parser.add_argument("--cases", default="", help="only the rows whose name contains this")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        torch.manual_seed(0)
        model = str(SeqDanceModel(SeqDanceConfig(arch=TINY)).eval().save_pretrained(folder / "m"))
        rows = []
        for count in args.records:
            fasta = folder / f"proteome_{count}.fasta"
            residues = write_proteome(fasta, count)
            size = fasta.stat().st_size / 2**20
            for name, code in CASES.items():
                if (args.skip_embed and "embed" in name) or args.cases not in name:
                    continue
                out = folder / f"{count}.h5"
                rss, took = measure(code, FASTA=str(fasta), MODEL=model, OUT=str(out),
                                    WINDOW=args.window)  # fmt: skip
                out.unlink(missing_ok=True)
                rows.append((count, residues, size, name, rss, took))
                print(f"{count:>7,} records {residues:>11,} residues {size:7.1f} MiB  "
                      f"{name:42s} peak RSS {rss:8.1f} MiB  {took:7.1f} s", flush=True)  # fmt: skip
    print("\n| records | residues | FASTA MiB | what | peak RSS MiB | wall s |")
    print("|---|---|---|---|---|---|")
    for count, residues, size, name, rss, took in rows:
        print(f"| {count:,} | {residues:,} | {size:.1f} | {name} | {rss:.0f} | {took:.1f} |")


if __name__ == "__main__":
    main()
