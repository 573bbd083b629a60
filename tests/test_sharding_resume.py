"""``predict`` and ``embed`` with ``--workers 2``: a worker killed by SIGKILL mid-run ends the
run with at most one ``error:`` line and no output; the same command again computes only the
missing shards (finished shard files and record files keep their mtime) and writes the same
bytes as one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from helpers import proteins_fasta, spawned_workers
from seqdance.inference.sharded_records import record_shards
from seqdance.inference.sharding import deal

REPO = Path(__file__).resolve().parents[1]
SEQDANCE = [sys.executable, "-m", "seqdance"]
RECORDS = 160  # small records: many shards of one or two batches each
BUDGET = 120  # --token-budget
SHARD_TOKENS = "100"  # $SEQDANCE_SHARD_TOKENS: one batch a shard


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(SEQDANCE_SHARD_TOKENS=SHARD_TOKENS, SEQDANCE_KEEP_SHARDS="1")
    return env


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def _kill_worker_mid_run(argv: list[str], shards: Path, rank1: list[int],
                        suffix: str) -> tuple[int, str, int]:  # fmt: skip
    """Start ``argv`` (``--workers 2``), SIGKILL rank 1 once it has written a shard and two
    shards exist (``*{suffix}`` files); (exit status, stderr) of rank 0 and the killed
    process id."""
    job = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and job.poll() is None:
            done = {int(p.stem.rsplit("-", 1)[1]) for p in shards.glob(f"[!.]*-*{suffix}")}
            if len(done) >= 2 and done & set(rank1):
                break
            time.sleep(0.005)
        workers = spawned_workers(job.pid)
        assert len(workers) == 1, f"rank 1 not found (exit {job.poll()})"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    return job.returncode, stderr, workers[0]


def _check_killed(killed: tuple[int, str, int], shards: Path, total: int,
                  suffix: str) -> dict[str, int]:  # fmt: skip
    """What a killed run must leave: failure, <= 1 error line and no traceback, readable
    finished shards only (temporaries only of the killed process); their mtimes."""
    code, stderr, pid = killed
    assert code != 0
    for tmp in _temporaries(shards.parent):  # SIGKILL mid-write: the rerun removes it
        assert f"-{pid}." in tmp.name, tmp
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1 and "Traceback" not in stderr, stderr[-2000:]
    assert all("rerun the same command" in e and ".cc:" not in e for e in errors), errors
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob(f"[!.]*{suffix}")}
    assert 0 < len(finished) < total, (len(finished), total)
    for name in finished:  # every shard under its final name is whole
        assert _shard_records(shards / name)
    return finished


def _shard_records(path: Path) -> list[int]:
    """The record indices a finished shard file holds (npz: ``items``; HDF5: record groups,
    each with its residue table)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return data["items"].tolist()
    with h5py.File(path, "r") as h5:
        records = h5["records"]
        assert all(records[name]["residue"].shape[1] == 50 for name in records)
        return sorted(int(name.removeprefix("rec")) for name in records)


def _plan(tmp_path: Path, window: int | None) -> tuple[Path, list[int], int]:
    fasta = tmp_path / "in.fasta"
    fasta.write_text(proteins_fasta(RECORDS))
    from seqdance.inference.fasta import read_fasta

    lengths = [len(r.sequence) for r in read_fasta(fasta)]
    shards = record_shards(lengths, BUDGET, window, int(SHARD_TOKENS))
    return fasta, deal(shards, 2)[1], len(shards)


def _seqdance(args: list[str], out: Path, *extra: str) -> None:
    """Run ``seqdance ARGS -o OUT EXTRA`` to the end; it must succeed."""
    done = subprocess.run([*SEQDANCE, *args, "-o", str(out), *extra], env=_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def _reference_then_killed_run(command: str, model: Path, tmp_path: Path, ref: str, out: Path,
                               shards: Path, suffix: str = ".npz",
                               ) -> tuple[list[str], dict[str, int], int]:  # fmt: skip
    """A one-process reference run into ``tmp_path / ref``, then a ``--workers 2`` run into
    ``out`` whose rank 1 is killed mid-run; returns the arguments, the finished shards'
    mtimes (checked by :func:`_check_killed`) and the number of shards."""
    fasta, rank1, total = _plan(tmp_path, None)
    args = [command, str(fasta), "-m", str(model), "--token-budget", str(BUDGET),
            "--no-progress"]  # fmt: skip
    _seqdance(args, tmp_path / ref)
    killed = _kill_worker_mid_run([*SEQDANCE, *args, "-o", str(out), "--workers", "2"],
                                  shards, rank1, suffix)  # fmt: skip
    return args, _check_killed(killed, shards, total, suffix), total


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


def test_predict_worker_killed_then_rerun_resumes_with_same_bytes(tiny_dir, tmp_path):
    out = tmp_path / "run"
    shards = out / "shards"
    args, finished, total = _reference_then_killed_run("predict", tiny_dir, tmp_path, "ref",
                                                       out, shards)  # fmt: skip
    assert not (out / "index.csv").exists()
    records = {}  # the files of the finished shards' records (ids are their own stems)
    for name in finished:
        for index in _shard_records(shards / name):
            for file in (f"rec{index:04d}.residue.csv", f"rec{index:04d}.pair.npz"):
                records[file] = (out / file).stat().st_mtime_ns
    _seqdance(args, out, "--workers", "2")  # the rerun
    assert {n: (shards / n).stat().st_mtime_ns for n in finished} == finished
    assert {n: (out / n).stat().st_mtime_ns for n in records} == records  # not written again
    assert len(list(shards.glob("*.npz"))) == total and len(records) >= 2 * len(finished)
    assert not _temporaries(out)  # the killed process's temporaries are gone too
    got = {n: b for n, b in _files(out).items() if not n.startswith("shards/")}
    want = _files(tmp_path / "ref")
    assert len(want) == 2 * RECORDS + 1 and list(got) == list(want)
    for name in want:  # index.csv, residue tables, pair files
        assert got[name] == want[name], name


def test_embed_worker_killed_then_rerun_resumes_with_same_bytes(tiny_dir, tmp_path):
    out = tmp_path / "run.h5"
    shards = tmp_path / "run.h5.shards"
    args, finished, total = _reference_then_killed_run("embed", tiny_dir, tmp_path, "ref.h5",
                                                       out, shards)  # fmt: skip
    assert not out.exists()
    _seqdance(args, out, "--workers", "2")  # the rerun
    assert {n: (shards / n).stat().st_mtime_ns for n in finished} == finished
    assert len(list(shards.glob("*.npz"))) == total and not _temporaries(tmp_path)
    assert out.read_bytes() == (tmp_path / "ref.h5").read_bytes()


def test_predict_store_worker_killed_then_rerun_resumes_with_same_bytes(tiny_dir, tmp_path):
    # predict -o OUT.h5: shards are HDF5 files of record groups, assembled by rank 0
    out = tmp_path / "run.h5"
    shards = tmp_path / "run.h5.shards"
    args, finished, total = _reference_then_killed_run("predict", tiny_dir, tmp_path, "ref.h5",
                                                       out, shards, ".h5")  # fmt: skip
    assert not out.exists()
    _seqdance(args, out, "--workers", "2")  # the rerun
    assert {n: (shards / n).stat().st_mtime_ns for n in finished} == finished
    assert len(list(shards.glob("*.h5"))) == total and not _temporaries(tmp_path)
    assert out.read_bytes() == (tmp_path / "ref.h5").read_bytes()
