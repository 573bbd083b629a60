"""Sharded inference: 2 processes (``--workers 2`` and ``torchrun``) write the same bytes as
one, and a run with a rank killed by SIGKILL resumes without recomputing finished shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqdance.inference.sharding import Shard, cut_shards, deal

REPO = Path(__file__).resolve().parents[1]
GYM = REPO / "tests" / "data" / "scoring" / "proteingym"
ASSAY = GYM / "IF1_ECOLI_Kelsic_2016"
SEQDANCE = [sys.executable, "-m", "seqdance"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--no-python"]  # fmt: skip


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _seqdance_exe(tmp_path: Path) -> str:
    """A script that runs ``python -m seqdance`` (torchrun --no-python needs an executable)."""
    exe = tmp_path / "seqdance-exe"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m seqdance "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def _run(argv, **env):
    return subprocess.run(argv, capture_output=True, text=True, env=_env(**env), timeout=600)


# -- the plan: checked against a direct enumeration --------------------------------------------
def test_cut_shards_keeps_order_alignment_and_budget():
    lengths = [10] * 23
    shards = cut_shards(lengths, 60, align=4)
    items = [i for s in shards for i in s.items]
    assert items == list(range(23))  # every item once, in order
    assert all(len(s.items) % 4 == 0 for s in shards[:-1])  # whole batches
    assert all(s.tokens == 10 * len(s.items) <= 60 or len(s.items) == 4 for s in shards)
    assert [len(s.items) for s in shards] == [4, 4, 4, 4, 4, 3]  # 8 items would be 80 > 60


def test_deal_is_longest_first_and_balanced():
    tokens = [50, 10, 40, 30, 30, 20]
    shards = [Shard(k, (k,), t) for k, t in enumerate(tokens)]
    ranks = deal(shards, 2)
    # by hand: 50 -> r0, 40 -> r1, 30 (#3) -> r1 (40 < 50), 30 (#4) -> r0 (50 < 70),
    # 20 -> r1 (70 < 80), 10 -> r0 (80 < 90)
    assert ranks == [[0, 1, 4], [2, 3, 5]]
    loads = [sum(tokens[k] for k in r) for r in ranks]
    assert sorted(i for r in ranks for i in r) == list(range(6))
    assert max(loads) - min(loads) <= max(tokens)
    assert deal(shards, 2) == ranks  # deterministic
    assert deal(shards, 1) == [list(range(6))]


# -- 2 processes, same bytes -------------------------------------------------------------------
def test_workers_2_score_and_scan_are_byte_identical(run_cli, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQDANCE_SHARD_TOKENS", "600")  # several shards for 40 mutants
    common = ["-m", str(tiny_dir), "--fasta", f"{ASSAY}.fasta", "--token-budget", "150"]
    score = ["score", *common, "--mutations", f"{ASSAY}.csv", "--properties", "sasa_mean,psi,corr"]
    assert run_cli([*score, "-o", str(tmp_path / "one.csv")]) == 0
    assert run_cli([*score, "-o", str(tmp_path / "two.csv"), "--workers", "2"]) == 0
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    assert not (tmp_path / "two.csv.shards").exists()  # shards removed after the write
    scan = ["scan", *common, "--positions", "1-30", "--properties", "rmsf_nor,corr",
            "--plot", "rmsf_nor", "--no-progress"]  # fmt: skip
    assert run_cli([*scan, "-o", str(tmp_path / "s1")]) == 0
    assert run_cli([*scan, "-o", str(tmp_path / "s2"), "--workers", "2"]) == 0
    assert (tmp_path / "s1/scan.csv").read_bytes() == (tmp_path / "s2/scan.csv").read_bytes()
    assert len(list((tmp_path / "s2/parts").glob("block_*.npz"))) == 4


def test_workers_bad_input_is_one_error_line(tiny_dir, tmp_path):
    out = tmp_path / "x.csv"
    result = _run([*SEQDANCE, "score", "-m", str(tiny_dir), "--fasta", f"{ASSAY}.fasta",
                   "--mutations", str(tmp_path / "missing.csv"), "-o", str(out),
                   "--workers", "2"])  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1, result.stderr
    assert len(errors) == 1 and "missing.csv" in errors[0], result.stderr
    assert not out.exists() and not (tmp_path / "x.csv.shards").exists()


@pytest.mark.slow
def test_torchrun_2_ranks_are_byte_identical(tiny_dir, tmp_path):
    exe = _seqdance_exe(tmp_path)
    score = ["score", "-m", str(tiny_dir), "--fasta", f"{ASSAY}.fasta", "--mutations",
             f"{ASSAY}.csv", "--token-budget", "150"]  # fmt: skip
    one = _run([*SEQDANCE, *score, "-o", str(tmp_path / "one.csv")])
    two = _run([*TORCHRUN, exe, *score, "-o", str(tmp_path / "two.csv")],
               SEQDANCE_SHARD_TOKENS="600")  # fmt: skip
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    bench = ["benchmark", "-m", str(tiny_dir), "--assays", str(GYM), "--properties",
             "sasa_mean,psi", "--no-progress", "--bootstrap-samples", "10"]  # fmt: skip
    one = _run([*SEQDANCE, *bench, "-o", str(tmp_path / "b1")])
    two = _run([*TORCHRUN, exe, *bench, "-o", str(tmp_path / "b2")])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    files = sorted(p.relative_to(tmp_path / "b1") for p in (tmp_path / "b1").rglob("*.csv"))
    assert files == sorted(p.relative_to(tmp_path / "b2") for p in (tmp_path / "b2").rglob("*.csv"))
    for name in files:
        assert (tmp_path / "b1" / name).read_bytes() == (tmp_path / "b2" / name).read_bytes()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_rank_killed_then_rerun_resumes_with_same_bytes(tiny_dir, tmp_path):
    exe = _seqdance_exe(tmp_path)
    wild_type = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTEVVNLNTAAEQLKSAGLKNAV" * 3)[:150]
    scan = ["scan", "-m", str(tiny_dir), "--sequence", wild_type, "--positions", "1-96",
            "--properties", "rmsf_nor,corr", "--plot", "rmsf_nor", "--no-progress"]  # fmt: skip
    ref = _run([*SEQDANCE, *scan, "-o", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "run"
    job = subprocess.Popen([*TORCHRUN, exe, *scan, "-o", str(out)], env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while len(list((out / "parts").glob("block_*.npz"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    ranks = [c for c in _children(job.pid)]
    assert ranks, "no rank process found"
    os.kill(max(ranks), signal.SIGKILL)  # one rank dies mid-run
    _, stderr = job.communicate(timeout=300)
    assert job.returncode != 0
    assert not (out / "scan.csv").exists()
    assert not list((out / "parts").glob(".block_*"))  # no half-written shard
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, stderr[-2000:]
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("block_*.npz")}
    assert 0 < len(finished) < 12
    again = _run([*TORCHRUN, exe, *scan, "-o", str(out)])
    assert again.returncode == 0, again.stderr[-2000:]
    assert {n: (out / "parts" / n).stat().st_mtime_ns for n in finished} == finished
    assert (out / "scan.csv").read_bytes() == (tmp_path / "ref" / "scan.csv").read_bytes()


def test_benchmark_shard_frames_round_trip_through_npz(tmp_path):
    import numpy as np
    import pandas as pd

    from seqdance.benchmark.sharded import arrays_to_frame, frame_to_arrays
    from seqdance.utils.io import save_npz

    frame = pd.DataFrame({"mutant": ["A1C", "D2E:K3L"], "target": [0.1, 1 / 3],
                          "sasa_mean": np.array([1e-17, 2.5])})  # fmt: skip
    save_npz(tmp_path / "f.npz", compressed=False, **frame_to_arrays(frame))
    with np.load(tmp_path / "f.npz", allow_pickle=False) as data:  # no pickled objects
        back = arrays_to_frame({k: data[k] for k in data.files})
    assert back.to_csv(index=False) == frame.to_csv(index=False)
    assert list(back.dtypes) == list(frame.dtypes)


# -- predict and embed: shards of records ------------------------------------------------------
def _proteins(count: int = 9) -> str:
    """A FASTA of ``count`` records of 12..76 residues (two share a length), ids to be made safe."""
    letters = "ACDEFGHIKLMNPQRSTVWY"
    records = []
    for k in range(count):
        length = 12 + 8 * k if k != 4 else 20
        seq = "".join(letters[(7 * k + 3 * i) % 20] for i in range(length))
        records.append(f">sp|P{k:05d}|R{k}\n{seq}\n")
    return "".join(records)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_record_shards_are_whole_batches_in_the_one_process_order(tiny_model):
    from seqdance.inference.embed import embed
    from seqdance.inference.fasta import parse_fasta
    from seqdance.inference.sharded_records import record_shards

    sequences = [r.sequence for r in parse_fasta(_proteins())]
    lengths = [len(s) for s in sequences]
    for window in (None, 32):
        shards = record_shards(lengths, 120, window, 100)
        # the order one process finishes the records in, from the embedding pass itself
        order = [i for i, _ in embed(tiny_model, sequences, token_budget=120, window=window)]
        assert [i for s in shards for i in s.items] == order
        assert len(shards) >= 2 and all(s.tokens >= 100 for s in shards[:-1])
    # by hand, no window: lengths by size 12 (#0), 20 (#1), 20 (#4), 28 (#2), 36, 52, 60, ...;
    # a batch of n sequences of at most w residues holds n * (w + 2) <= 120 tokens
    shards = record_shards(lengths, 120, None, 1)  # one shard per batch
    assert [s.items for s in shards[:3]] == [(0, 1, 4, 2), (3, 5), (6,)]
    assert [s.tokens for s in shards[:3]] == [4 * 30, 2 * 54, 62]
    assert [s.items for s in record_shards(lengths, 120, None, 100)] == [
        (0, 1, 4, 2), (3, 5), (6, 7), (8,)]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "out"),
    [([], ""), (["--window", "32", "--pairs", "corr,vdw"], ""), (["--attention"], ".h5"),
     (["--window", "32", "--pair-band", "5"], ".h5")],
    ids=["npz", "window-h5", "store-attention", "store-window-band"],
)  # fmt: skip
def test_workers_2_predict_is_byte_identical(run_cli, tiny_dir, tmp_path, monkeypatch, extra,
                                             out):  # fmt: skip
    """A folder of files (``out`` "") or the one-file store (``-o OUT.h5``)."""
    from seqdance.inference.store_file import PredictionStore

    monkeypatch.setenv("SEQDANCE_SHARD_TOKENS", "100")  # several shards for 9 records
    fasta = tmp_path / "in.fasta"
    fasta.write_text(_proteins())
    args = ["predict", str(fasta), "-m", str(tiny_dir), "--token-budget", "120",
            "--no-progress", *extra]  # fmt: skip
    assert run_cli([*args, "-o", str(tmp_path / f"one{out}")]) == 0
    assert run_cli([*args, "-o", str(tmp_path / f"two{out}"), "--workers", "2"]) == 0
    if out:  # shards removed, no stray temporaries; the index in FASTA order
        assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "two.h5").read_bytes()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fasta", "one.h5", "two.h5"]
        ids = PredictionStore(tmp_path / "two.h5").ids
        assert ids == [f"sp|P{k:05d}|R{k}" for k in range(9)]
        return
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 9 * 2 + 1 and "index.csv" in one  # residue table + pair file each
    assert list(two) == list(one)  # shards removed, no stray temporaries
    for name in one:
        assert two[name] == one[name], name


def test_workers_2_embed_is_byte_identical(run_cli, tiny_dir, tmp_path, monkeypatch):
    import h5py
    import numpy as np

    from seqdance.inference.embed import embed
    from seqdance.inference.fasta import parse_fasta
    from seqdance.model import load_model

    monkeypatch.setenv("SEQDANCE_SHARD_TOKENS", "100")
    fasta = tmp_path / "in.fasta"
    fasta.write_text(_proteins())
    args = ["embed", str(fasta), "-m", str(tiny_dir), "--token-budget", "120", "--window",
            "32", "--no-progress"]  # fmt: skip
    assert run_cli([*args, "-o", str(tmp_path / "one.h5")]) == 0
    assert run_cli([*args, "-o", str(tmp_path / "two.h5"), "--workers", "2"]) == 0
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "two.h5").read_bytes()
    assert not (tmp_path / "two.h5.shards").exists()
    records = parse_fasta(_proteins())
    direct = dict(embed(load_model(str(tiny_dir)), [r.sequence for r in records],
                        token_budget=120, window=32))  # fmt: skip
    with h5py.File(tmp_path / "two.h5", "r") as h5:
        assert sorted(h5) == sorted(r.id for r in records)
        for i, record in enumerate(records):
            np.testing.assert_array_equal(h5[record.id]["residues"][()], direct[i])


def test_workers_2_predict_bad_input_is_one_error_line(tiny_dir, tmp_path):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nACDE\n>b\nAC1DE\n")
    cases = (("predict", tmp_path / "missing.fasta", tmp_path / "out", "missing.fasta"),
             ("embed", bad, tmp_path / "e.h5", "record 'b': invalid residue '1'"))  # fmt: skip
    for command, fasta, out, message in cases:
        result = _run([*SEQDANCE, command, str(fasta), "-m", str(tiny_dir), "-o", str(out),
                       "--no-progress", "--workers", "2"])  # fmt: skip
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1, result.stderr
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert not out.exists() and not out.with_name(f"{out.name}.shards").exists()


@pytest.mark.slow
def test_torchrun_2_ranks_predict_and_embed_are_byte_identical(tiny_dir, tmp_path):
    exe = _seqdance_exe(tmp_path)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(_proteins())
    common = [str(fasta), "-m", str(tiny_dir), "--token-budget", "120", "--no-progress"]
    runs = (("predict", "p1", "p2"), ("embed", "e1.h5", "e2.h5"), ("predict", "s1.h5", "s2.h5"))
    for command, one, two in runs:
        args = [command, *common, "--window", "32"]
        first = _run([*SEQDANCE, *args, "-o", str(tmp_path / one)])
        second = _run([*TORCHRUN, exe, *args, "-o", str(tmp_path / two)],
                      SEQDANCE_SHARD_TOKENS="100")  # fmt: skip
        assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
        if not one.endswith(".h5"):
            assert _files(tmp_path / one) == _files(tmp_path / two)
        else:
            assert (tmp_path / one).read_bytes() == (tmp_path / two).read_bytes()
