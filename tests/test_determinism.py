"""Same input, same bytes: ``features md`` and ``dataset build`` whatever the chunk size, thread
count, worker count or scheduler (issue 16).

Compared to the last bit: the residue CSV as bytes, every array of the pair NPZ and of
features.h5 as dtype, shape and raw bytes, and index.csv as bytes. (An NPZ file's own bytes
also hold zip timestamps, so its arrays are what is compared.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from seqdance.data.build import BuildConfig, build_dataset
from seqdance.features.md import md_features, output_paths, write_md_features
from seqdance.features.md_kernels import FixedBlocks, RunningMoments, TraceCovariance

DATA = Path(__file__).parent / "data"
TVJ = DATA / "md" / "3tvj_I"
XND = DATA / "md" / "5xnd"
NMA = DATA / "nma"
TRAJECTORIES = {
    "3tvj_I": (TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd"),
    "5xnd": (XND / "5xnd_topology.pdb", XND / "5xnd_6frames.dcd"),
}
HEADER = "name,source,kind,topology,trajectory,structure,label"


def _md_bytes(prefix: Path) -> dict[str, bytes]:
    csv_path, npz_path = output_paths(prefix)
    out = {"csv": csv_path.read_bytes()}
    with np.load(npz_path, allow_pickle=False) as data:
        for key in sorted(data.files):
            array = data[key]
            out[key] = f"{array.dtype}{array.shape}".encode() + array.tobytes()
    return out


def _dataset_bytes(folder: Path) -> dict[str, bytes]:
    out = {"index.csv": (folder / "index.csv").read_bytes()}
    with h5py.File(folder / "features.h5", "r") as h5:
        for key in sorted(h5.keys()):
            array = h5[key][()]
            out[key] = f"{array.dtype}{array.shape}".encode() + array.tobytes()
    return out


def _assert_same(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    assert sorted(a) == sorted(b)
    different = [key for key in a if a[key] != b[key]]
    assert not different, f"differ: {different}"


# ----------------------------------------------------------------------------- accumulators


def _fed(accumulator, rows: np.ndarray, cuts: list[int], block: int):
    blocks = FixedBlocks(accumulator, block=block)
    for part in np.split(rows, cuts):
        blocks.update(part)
    blocks.flush()
    return accumulator


def test_fixed_blocks_make_the_accumulators_independent_of_chunking():
    rng = np.random.default_rng(3)
    values = rng.normal(loc=1.7, scale=0.3, size=(257, 40)).astype(np.float32)  # SASA-like
    xyz = rng.normal(size=(257, 30, 3)).astype(np.float32)
    for block in (1, 7, 100):
        ref_m = _fed(RunningMoments(), values, [], block)
        ref_c = _fed(TraceCovariance(), xyz, [], block)
        for _ in range(5):
            cuts = sorted(rng.choice(np.arange(1, 257), size=rng.integers(1, 30), replace=False))
            m = _fed(RunningMoments(), values, cuts, block)
            c = _fed(TraceCovariance(), xyz, cuts, block)
            assert m.mean.tobytes() == ref_m.mean.tobytes() and m.m2.tobytes() == ref_m.m2.tobytes()
            assert c.m2.tobytes() == ref_c.m2.tobytes() and c.mean.tobytes() == ref_c.mean.tobytes()
        np.testing.assert_allclose(ref_m.mean, values.astype(np.float64).mean(0), rtol=1e-12)
        np.testing.assert_allclose(ref_m.std, values.astype(np.float64).std(0), rtol=1e-10)
    # without the blocks, the chunking shows in the last bits (what FixedBlocks is for)
    direct = RunningMoments()
    for part in np.split(values, [3, 50, 51, 200]):
        direct.update(part)
    whole = RunningMoments()
    whole.update(values)
    assert direct.m2.tobytes() != whole.m2.tobytes()


# ----------------------------------------------------------------------------- features md


@pytest.mark.parametrize("name", sorted(TRAJECTORIES))
def test_features_md_same_bytes_for_any_chunk_size(tmp_path, name):
    top, trj = TRAJECTORIES[name]
    results = []
    for chunk_size in (1, 3, 4, 100):
        prefix = tmp_path / f"chunk{chunk_size}"
        write_md_features(md_features(top, trj, chunk_size=chunk_size), prefix)
        results.append(_md_bytes(prefix))
    for other in results[1:]:
        _assert_same(results[0], other)


def test_features_md_same_bytes_for_omp_num_threads_1_and_2(tmp_path):
    """The CLI in fresh processes: MDTraj, BLAS and the SASA kernel with 1 or 2 threads."""
    top, trj = TRAJECTORIES["5xnd"]
    results = []
    for threads in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        env["OMP_NUM_THREADS"] = threads
        prefix = tmp_path / f"omp{threads}"
        args = [sys.executable, "-m", "seqdance", "features", "md", "-t", str(top), "-x", str(trj)]
        args += ["-o", str(prefix), "--chunk-size", "4", "--no-progress"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        results.append(_md_bytes(prefix))
    write_md_features(md_features(top, trj), tmp_path / "here")  # this process, default chunks
    _assert_same(results[0], results[1])
    _assert_same(results[0], _md_bytes(tmp_path / "here"))


# ----------------------------------------------------------------------------- dataset build


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("determinism")
    rows = [
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,mdCATH,md,{XND / '5xnd_topology.pdb'},{XND / '5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train",
    ]
    path = folder / "manifest.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def one_worker(manifest) -> dict[str, bytes]:
    out = manifest.parent / "one"
    assert build_dataset(manifest, out, BuildConfig(workers=1, progress=False)).ok
    return _dataset_bytes(out)


def test_dataset_build_same_bytes_for_one_and_two_workers(manifest, one_worker):
    out = manifest.parent / "two"
    assert build_dataset(manifest, out, BuildConfig(workers=2, progress=False)).ok
    _assert_same(one_worker, _dataset_bytes(out))


def test_dataset_build_same_bytes_on_a_dask_scheduler(manifest, one_worker):
    """Two tasks at once in one Dask worker's threads, against local processes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        config = BuildConfig(scheduler=cluster.scheduler_address, progress=False)
        out = manifest.parent / "dask"
        assert build_dataset(manifest, out, config).ok
    _assert_same(one_worker, _dataset_bytes(out))
