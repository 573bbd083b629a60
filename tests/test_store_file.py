"""``predict -o OUT.h5``: one HDF5 store for every record, equal to what a folder run writes
(residues against the library's predictions, pairs and attention against the folder's
files), its per-record index, its reader, and its refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import one_error_line, proteins_fasta
from seqdance.errors import SeqDanceError
from seqdance.inference.fasta import read_fasta
from seqdance.inference.predict import predict
from seqdance.inference.store import PairMaps
from seqdance.inference.store_file import PredictionStore
from seqdance.inference.store_labelled import open_predictions
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS

ROOT = Path(__file__).resolve().parents[1]
BUDGET = ["--token-budget", "200"]


@pytest.fixture
def fasta(tmp_path) -> Path:
    path = tmp_path / "in.fasta"
    path.write_text(proteins_fasta(7, seed=3) + ">sp|Q9|odd id\nMKTAYIAKQRQISFVKSHFSRQ\n")
    return path


def _predict(run_cli, fasta: Path, model: Path, out: Path, *extra: str) -> None:
    args = ["predict", str(fasta), "-m", str(model), "-o", str(out), "--no-progress", *BUDGET]
    assert run_cli([*args, *extra]) == 0


def test_store_holds_the_folder_run_outputs(run_cli, tiny_dir, tiny_model, fasta, tmp_path):
    _predict(run_cli, fasta, tiny_dir, tmp_path / "one.h5", "--attention")
    _predict(run_cli, fasta, tiny_dir, tmp_path / "folder", "--attention")
    records = read_fasta(fasta)
    direct = predict(tiny_model, [r.sequence for r in records], token_budget=200)
    store = PredictionStore(tmp_path / "one.h5")
    assert store.ids == [r.id for r in records] and len(store) == 8
    assert store.lengths == [len(r.sequence) for r in records]
    assert (
        store.ids[-1] == "sp|Q9|odd" and store.stems[-1] == "sp_Q9_odd"
    )  # the folder run's file name for that id
    assert store.pair_channels == PAIR_CHANNELS
    for row, (record, want) in enumerate(zip(records, direct, strict=True)):
        stem = store.stems[row]
        assert store.sequence(record.id) == record.sequence
        np.testing.assert_array_equal(store.residue(record.id), want.residue)  # same bits
        np.testing.assert_array_equal(store.residue(row), want.residue)
        maps = store.pairs(record.id)
        with np.load(tmp_path / "folder" / f"{stem}.pair.npz") as npz:
            for name in PAIR_CHANNELS:
                np.testing.assert_array_equal(maps[name], npz[name])
        with np.load(tmp_path / "folder" / f"{stem}.attention.npz") as npz:
            np.testing.assert_array_equal(store.attention(record.id), npz["attention"])
    with h5py.File(tmp_path / "one.h5", "r") as h5:  # the documented layout
        assert h5.attrs["residue_channels"] == ",".join(RESIDUE_CHANNELS)
        assert sorted(h5) == ["index", "records"] and len(h5["records"]) == 8
        assert h5["records/rec0000/residue"].dtype == np.float32
        assert h5["records/rec0000/attention"].dtype == np.float16
    assert not (tmp_path / "one.h5.shards").exists()  # removed after success
    labelled = open_predictions(tmp_path / "one.h5")  # the named view reads the store too
    assert list(labelled) == store.ids
    np.testing.assert_array_equal(labelled["sp|Q9|odd"].residues.to_numpy(), direct[-1].residue)
    np.testing.assert_array_equal(labelled["rec0001"].pairs["vdw"], direct[1].pair[..., 0])
    with pytest.raises(KeyError, match="not a record"):
        store.residue("nope")


def test_windowed_banded_half_store_equals_the_pair_stores(run_cli, tiny_dir, tiny_model,
                                                           fasta, tmp_path):  # fmt: skip
    extra = ["--window", "32", "--pair-band", "6", "--pair-dtype", "float16", "--pairs",
             "corr,nma_pair"]  # fmt: skip
    _predict(run_cli, fasta, tiny_dir, tmp_path / "one.h5", *extra)
    _predict(run_cli, fasta, tiny_dir, tmp_path / "folder", *extra)
    records = read_fasta(fasta)
    direct = predict(tiny_model, [r.sequence for r in records], token_budget=200, window=32)
    store = PredictionStore(tmp_path / "one.h5")
    assert store.pair_channels == ("corr", "nma_pair1", "nma_pair2", "nma_pair3")  # schema order
    assert max(store.lengths) > 32  # some records are windowed
    for row, want in enumerate(direct):
        np.testing.assert_array_equal(store.residue(row), want.residue)
        got = store.pairs(row)
        ref = PairMaps(tmp_path / "folder" / f"{store.stems[row]}.pair.h5")
        assert got.band == ref.band == 6 and got.names == ref.names
        dense = np.asarray(got)  # (L, L, 13), NaN outside the band and for other channels
        np.testing.assert_array_equal(dense, np.asarray(ref))  # NaN where NaN
        i, j = np.indices(dense.shape[:2])
        assert np.isnan(dense[np.abs(i - j) > 6]).all()
        assert not np.isnan(dense[np.abs(i - j) <= 6][:, PAIR_CHANNELS.index("corr")]).any()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plots"], "--plots writes files per record"),
        (["--pdb", str(ROOT / "tests/data/nma/2g3r.pdb")], "--pdb writes files per record"),
        (["--pair-format", "npz"], "--pair-format npz writes a file per record"),
        (["--window", "32", "--attention"], "is not written to an HDF5 store"),
    ],
    ids=["plots", "pdb", "npz", "window-attention"],
)
def test_store_refuses_what_it_cannot_hold(run_cli, tiny_dir, fasta, tmp_path, capsys, extra,
                                           message):  # fmt: skip
    out = tmp_path / "one.h5"
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress"]
    assert run_cli([*args, *extra]) != 0
    assert message in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fasta"]  # nothing written


def test_store_over_a_folder_is_one_error(run_cli, tiny_dir, fasta, tmp_path, capsys):
    (tmp_path / "taken.h5").mkdir()
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(tmp_path / "taken.h5")]
    assert run_cli(args) != 0
    assert "is a folder" in one_error_line(capsys.readouterr().err)
    assert not any((tmp_path / "taken.h5").iterdir())


def test_reader_refuses_other_files(run_cli, tiny_dir, fasta, tmp_path):
    assert run_cli(["embed", str(fasta), "-m", str(tiny_dir), "-o", str(tmp_path / "e.h5"),
                    "--no-progress"]) == 0  # fmt: skip
    with pytest.raises(SeqDanceError, match="not a predict store"):
        PredictionStore(tmp_path / "e.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(SeqDanceError, match=r"junk.h5: not an HDF5 file \(a predict store"):
        PredictionStore(tmp_path / "junk.h5")
    (tmp_path / "cut.h5").write_bytes((tmp_path / "e.h5").read_bytes()[:3000])  # truncated
    with pytest.raises(SeqDanceError, match="cut.h5: damaged or not a predict store"):
        PredictionStore(tmp_path / "cut.h5")
    with pytest.raises(SeqDanceError, match="no such file"):
        PredictionStore(tmp_path / "missing.h5")


def test_store_bytes_do_not_depend_on_the_shard_size(run_cli, tiny_dir, fasta, tmp_path,
                                                     monkeypatch):  # fmt: skip
    # records' windows interleave differently in shards of other sizes: the store must not
    extra = ["--window", "32", "--pair-band", "5", "--pairs", "corr,vdw"]
    _predict(run_cli, fasta, tiny_dir, tmp_path / "one.h5", *extra)
    for tokens in ("60", "150"):
        monkeypatch.setenv("SEQDANCE_SHARD_TOKENS", tokens)
        _predict(run_cli, fasta, tiny_dir, tmp_path / f"{tokens}.h5", *extra)
        assert (tmp_path / f"{tokens}.h5").read_bytes() == (tmp_path / "one.h5").read_bytes()


def test_store_without_pairs_holds_residues_only(run_cli, tiny_dir, tiny_model, fasta, tmp_path):
    _predict(run_cli, fasta, tiny_dir, tmp_path / "res.h5", "--pairs", "none")
    store = PredictionStore(tmp_path / "res.h5")
    direct = predict(
        tiny_model, [r.sequence for r in read_fasta(fasta)], pair=False, token_budget=200
    )
    assert store.pair_channels == () and store.pairs(0) is None and store.attention(0) is None
    for row, want in enumerate(direct):
        np.testing.assert_array_equal(store.residue(row), want.residue)
    with h5py.File(tmp_path / "res.h5", "r") as h5:
        assert all(sorted(group) == ["residue"] for group in h5["records"].values())


def test_report_reads_a_record_of_the_store(run_cli, tiny_dir, fasta, tmp_path, capsys):
    from seqdance.report.inputs import read_prediction

    _predict(run_cli, fasta, tiny_dir, tmp_path / "one.h5")
    _predict(run_cli, fasta, tiny_dir, tmp_path / "folder")
    got = read_prediction(tmp_path / "one.h5", "sp|Q9|odd")
    ref = read_prediction(tmp_path / "folder" / "sp_Q9_odd.residue.csv")
    assert got.name == "sp|Q9|odd" and got.sequence == ref.sequence  # named by its id
    np.testing.assert_allclose(got.residue, ref.residue, rtol=1e-5)  # the CSV: 6 digits
    np.testing.assert_array_equal(np.asarray(got.pair), ref.pair)
    out = tmp_path / "r.html"
    store = str(tmp_path / "one.h5")
    assert run_cli(["report", store, "--record", "sp|Q9|odd", "-o", str(out)]) == 0
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      out.read_text(), re.S)  # fmt: skip
    data = json.loads(found[1].replace("<\\/", "</"))
    assert data["sequence"] == got.sequence and data["header"]["title"] == "sp|Q9|odd"
    capsys.readouterr()
    bad = tmp_path / "bad.html"
    cases = (([store], "holds 8 records: give --record ID (e.g. --record rec0000)"),
             ([store, "--record", "nope"], "no record 'nope' (--record)"),
             ([str(tmp_path / "folder" / "rec0002.residue.csv"), "--record", "rec0002"],
              "is not one"))  # fmt: skip
    for argv, message in cases:
        assert run_cli(["report", *argv, "-o", str(bad)]) == 1
        assert message in one_error_line(capsys.readouterr().err)
        assert not bad.exists()
