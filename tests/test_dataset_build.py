"""Dataset build from real inputs: values, resume, kill -9, Dask, bad rows, CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from seqdance.cli import main
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.check import check_dataset
from seqdance.data.store import INDEX_COLUMNS, pair_key, res_key
from seqdance.schema import CUBE_ROOT_CHANNELS, MD_PAIR_CHANNELS, MD_RESIDUE_CHANNELS

DATA = Path(__file__).parent / "data"
TVJ = DATA / "md" / "3tvj_I"
XND = DATA / "md" / "5xnd"
NMA = DATA / "nma"
HEADER = "name,source,kind,topology,trajectory,structure,label"


def write_manifest(folder: Path, lines: list[str], header: str = HEADER) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def real_rows() -> list[str]:
    return [
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,mdCATH,md,{XND / '5xnd_topology.pdb'},{XND / '5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train",
        f"2KCF,proteinflow_sabdab,nma,,,{NMA / '2KCF.pdb'},train",
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_contents(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa.keys()) == sorted(fb.keys())
        for key in fa.keys():
            np.testing.assert_array_equal(fa[key][()], fb[key][()])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("build")
    bad = folder / "not_a_structure.pdb"
    bad.write_text("this is not a PDB file\n")
    lines = real_rows() + [
        f"ghost,ATLAS,md,{folder / 'missing.pdb'},{folder / 'missing.dcd'},,train",
        "oddkind,ATLAS,xyz,,,,train",
        f"broken,proteinflow_pdb,nma,,,{bad},train",
    ]
    manifest = write_manifest(folder, lines)
    report = build_dataset(manifest, folder / "out", BuildConfig(workers=1, progress=False))
    return folder, manifest, report


def test_build_reports_bad_rows_and_builds_the_others(built):
    _, _, report = built
    assert sorted(report.built) == ["2KCF", "2g3r", "3tvj_I", "5xnd"]
    assert sorted(report.failed) == ["broken", "ghost", "oddkind"]
    assert "no such file" in report.failed["ghost"]
    assert "unknown kind 'xyz'" in report.failed["oddkind"]
    assert "not_a_structure.pdb" in report.failed["broken"]


def test_index_and_layout(built):
    folder, _, _ = built
    index = pd.read_csv(folder / "out" / "index.csv", keep_default_na=False)
    assert list(index.columns) == list(INDEX_COLUMNS)
    rows = index.set_index("name")
    assert rows.loc["3tvj_I", "kind"] == "md" and rows.loc["2g3r", "kind"] == "nma"
    assert rows.loc["5xnd", "label"] == "test"
    assert rows.loc["2KCF", "group"] == "Proteinflow"
    assert rows.loc["3tvj_I", "group"] == "ATLAS_GPCRmd_PED_mdCATH"
    with h5py.File(folder / "out" / "features.h5", "r") as h5:
        for name, row in rows.iterrows():
            t = len(row["modify_seq"]) + 2
            assert row["length"] == t - 2
            width = (47, 10) if row["kind"] == "md" else (3, 3)
            assert h5[res_key(name)].shape == (t, width[0])
            assert h5[pair_key(name)].shape == (t, t, width[1])
            assert h5[res_key(name)].dtype == np.float32
    assert not list((folder / "out" / "staging").iterdir())  # merged staging removed
    assert check_dataset(folder / "out").ok


def test_md_values_equal_the_feature_extractor(built):
    from seqdance.features.md import md_features

    folder, _, _ = built
    md = md_features(TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd")
    with h5py.File(folder / "out" / "features.h5", "r") as h5:
        res = h5[res_key("3tvj_I")][()]
        pair = h5[pair_key("3tvj_I")][()]
    assert (
        (res[[0, -1]] == -1).all()
        and (pair[[0, -1]] == -1).all()
        and (pair[:, [0, -1]] == -1).all()
    )
    column = {"rmsf_nor": "rmsf"}
    for k, channel in enumerate(MD_RESIDUE_CHANNELS):
        expected = md.residues[column.get(channel, channel)].to_numpy()
        expected = np.where(np.isnan(expected), -1.0, expected)
        np.testing.assert_allclose(res[1:-1, k], expected, rtol=1e-6, atol=1e-7)
    for k, channel in enumerate(MD_PAIR_CHANNELS):
        expected = md.pair[channel]
        if channel in CUBE_ROOT_CHANNELS:
            expected = np.cbrt(expected)
        np.testing.assert_allclose(pair[1:-1, 1:-1, k], expected, rtol=1e-6, atol=1e-7)
    # the authors' reference: vdw reaches 8.5 contacts per frame, stored as 8.5 ** (1/3)
    assert pair[..., 0].max() == pytest.approx(8.5 ** (1 / 3), rel=1e-6)


def test_nma_values_equal_the_authors_reference(built):
    folder, _, _ = built
    reference = np.load(NMA / "nma_residue_pair_features_2g3r.npz")
    with h5py.File(folder / "out" / "features.h5", "r") as h5:
        res = h5[res_key("2g3r")][()]
        pair = h5[pair_key("2g3r")][()]
        seq = h5[res_key("2g3r")].attrs["sequence"]
    assert len(seq) == 119
    np.testing.assert_allclose(res[1:-1], reference["gnm_msf"].T, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(
        pair[1:-1, 1:-1], np.moveaxis(reference["anm_cor"], 0, -1), atol=1e-4
    )


def test_rerun_skips_everything_and_changes_nothing(built):
    folder, manifest, _ = built
    out = folder / "out"
    before = {
        p.name: (digest(p), p.stat().st_mtime_ns) for p in (out / "features.h5", out / "index.csv")
    }
    report = build_dataset(manifest, out, BuildConfig(progress=False))
    assert report.built == [] and report.merged == []
    assert sorted(report.skipped) == ["2KCF", "2g3r", "3tvj_I", "5xnd"]
    after = {
        p.name: (digest(p), p.stat().st_mtime_ns) for p in (out / "features.h5", out / "index.csv")
    }
    assert after == before


def test_cli_build_exit_status_and_messages(built, capsys):
    folder, manifest, _ = built
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "build", str(manifest), "--out", str(folder / "out"), "--no-progress"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error: oddkind: unknown kind 'xyz'" in err
    assert "Traceback" not in err
    assert "0 built, 4 already done, 3 failed" in err


def test_manifest_level_errors_are_one_line(tmp_path, capsys):
    manifest = write_manifest(tmp_path, ["a,ATLAS,md", "a,ATLAS,md"], header="name,source,kind")
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "build", str(manifest), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert "duplicate name(s) a" in capsys.readouterr().err
    missing_columns = write_manifest(tmp_path, ["a,md"], header="name,kind")
    with pytest.raises(SystemExit):
        main(["dataset", "build", str(missing_columns), "--out", str(tmp_path / "out")])
    assert "lacks column(s) source" in capsys.readouterr().err
    assert not (tmp_path / "out" / "features.h5").exists()


def test_relative_paths_and_sequence_override(tmp_path):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "k.pdb").write_bytes((NMA / "2KCF.pdb").read_bytes())
    header = HEADER + ",sequence"
    seq = "A" * 36
    manifest = write_manifest(
        tmp_path,
        [
            f"k,proteinflow_pdb,nma,,,inputs/k.pdb,train,{seq}",
            "short,proteinflow_pdb,nma,,,inputs/k.pdb,,AAA",
        ],
        header=header,
    )
    report = build_dataset(manifest, tmp_path / "out", BuildConfig(progress=False))
    assert report.built == ["k"]
    assert "manifest sequence has 3 residues, the files 36" in report.failed["short"]
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert index.loc[0, "modify_seq"] == seq


# ----------------------------------------------------------------------------- kill -9

_BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from seqdance.data.build import BuildConfig, build_dataset
    build_dataset(sys.argv[1], sys.argv[2], BuildConfig(workers=1, progress=False))
    """
)

_SLOW_MERGE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from seqdance.data.store import merge_into, read_staged
    def slow():
        for path in sorted(Path(sys.argv[1]).glob("*.npz")):
            yield read_staged(path)
            time.sleep(0.5)
    merge_into(sys.argv[2], slow())
    """
)


def nma_copies_manifest(folder: Path, n: int) -> Path:
    lines = [f"p{i},proteinflow_pdb,nma,,,{NMA / '2KCF.pdb'},train" for i in range(n)]
    return write_manifest(folder, lines)


def wait_for(condition, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def test_kill_during_extraction_then_resume(tmp_path):
    manifest = nma_copies_manifest(tmp_path, 8)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(manifest), str(out)])
    try:
        wait_for(
            lambda: len(list((out / "staging").glob("p*.npz"))) >= 2 or proc.poll() is not None
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    staged_before = sorted(p.name for p in (out / "staging").glob("p*.npz"))
    assert len(staged_before) >= 2
    report = build_dataset(manifest, out, BuildConfig(progress=False))
    assert report.ok
    assert set(report.skipped) >= {p.removesuffix(".npz") for p in staged_before}
    assert len(report.skipped) + len(report.built) == 8
    assert check_dataset(out).ok
    reference = build_dataset(manifest, tmp_path / "ref", BuildConfig(progress=False))
    assert reference.ok
    same_contents(out / "features.h5", tmp_path / "ref" / "features.h5")
    assert sorted(pd.read_csv(out / "index.csv")["name"]) == [f"p{i}" for i in range(8)]


def test_kill_while_writing_the_hdf5_then_resume(tmp_path):
    manifest = nma_copies_manifest(tmp_path, 4)
    out = tmp_path / "out"
    # a first build stores p0..p3; then four more proteins are staged for the next merge
    assert build_dataset(manifest, out, BuildConfig(progress=False)).ok
    features = out / "features.h5"
    before = digest(features)
    bigger = nma_copies_manifest(tmp_path, 8)
    from seqdance.data.build import stage_row
    from seqdance.data.manifest import read_manifest

    for row in read_manifest(bigger)[4:]:
        stage_row(row, out)  # out/staging now holds p4..p7 only
    # kill -9 a merge while it writes its temporary HDF5 file
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_MERGE_SCRIPT, str(out / "staging"), str(features)]
    )
    try:
        wait_for(lambda: any(out.glob(".features.h5.*")) or proc.poll() is not None)
        time.sleep(0.7)  # inside the merge: some records written, not all
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert digest(features) == before  # the published file is untouched
    assert any(out.glob(".features.h5.*"))  # the half-written temporary is left behind
    report = build_dataset(bigger, out, BuildConfig(progress=False))
    assert report.ok and sorted(report.merged) == ["p4", "p5", "p6", "p7"]
    assert not any(out.glob(".features.h5.*"))
    assert check_dataset(out).ok
    with h5py.File(features, "r") as h5:
        assert len(h5.keys()) == 16


# ----------------------------------------------------------------------------- Dask


def test_build_on_a_dask_scheduler_on_loopback(tmp_path):
    from distributed import LocalCluster

    manifest = write_manifest(tmp_path, real_rows()[2:])  # the two NMA proteins
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        config = BuildConfig(scheduler=cluster.scheduler_address, progress=False)
        report = build_dataset(manifest, tmp_path / "dask", config)
    assert report.ok and sorted(report.built) == ["2KCF", "2g3r"]
    local = build_dataset(manifest, tmp_path / "local", BuildConfig(progress=False))
    assert local.ok
    same_contents(tmp_path / "dask" / "features.h5", tmp_path / "local" / "features.h5")


def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    from seqdance.errors import SeqDanceError

    manifest = write_manifest(tmp_path, real_rows()[2:3])
    config = BuildConfig(scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout=1.0)
    with pytest.raises(SeqDanceError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        build_dataset(manifest, tmp_path / "o", config)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_build_on_dask_scheduler_and_worker_processes(tmp_path):
    """`dask scheduler` + `dask worker` on 127.0.0.1, then `seqdance dataset build --scheduler`."""
    bin_dir = Path(sys.executable).parent
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", port,
         "--dashboard-address", ":0", "--no-show"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    worker = subprocess.Popen(
        [bin_dir / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
         "--host", "127.0.0.1", "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        manifest = write_manifest(tmp_path, real_rows()[:1] + real_rows()[3:])  # 3tvj_I + 2KCF
        done = subprocess.run(
            [bin_dir / "seqdance", "dataset", "build", str(manifest), "--out", str(tmp_path / "o"),
             "--scheduler", address, "--no-progress"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert done.returncode == 0, done.stderr
    assert "2 built, 0 already done, 0 failed" in done.stderr
    assert check_dataset(tmp_path / "o").ok
    with h5py.File(tmp_path / "o" / "features.h5", "r") as h5:
        assert h5[res_key("3tvj_I")].shape == (40, 47)


def test_two_builds_cannot_write_one_folder(tmp_path):

    from seqdance.data.build import LOCK_FILE
    from seqdance.errors import SeqDanceError

    manifest = write_manifest(tmp_path, real_rows()[3:])
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(out / LOCK_FILE)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SeqDanceError, match="another build is writing"):
            build_dataset(manifest, out, BuildConfig(progress=False))
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel releases the lock of a killed process
        holder.wait()
    assert build_dataset(manifest, out, BuildConfig(progress=False)).ok


def test_every_row_failing_is_reported_not_a_traceback(tmp_path, capsys):
    manifest = write_manifest(
        tmp_path, [f"ghost,ATLAS,md,{tmp_path / 'missing.pdb'},{tmp_path / 'missing.dcd'},,train"]
    )
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "build", str(manifest), "--out", str(out), "--workers", "1"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "ghost" in err and "no such file" in err and "Traceback" not in err
    assert not (out / "features.h5").exists() and not (out / "index.csv").exists()
