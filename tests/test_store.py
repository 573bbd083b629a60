"""predict's outputs for keeps: windowed merges streamed in tiles, the HDF5 pair store,
--pairs / --pair-band, safe file names and the index table, lazy readers."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest

from seqdance.inference import predict
from seqdance.inference.store import PairMaps, parse_pairs, safe_stems
from seqdance.inference.windows import (
    PairMerge,
    ResidueMerge,
    merge_pairs,
    merge_residues,
    plan_windows,
)
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS

AMINO = list("ACDEFGHIKLMNPQRSTVWY")


def _random_sequence(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(AMINO, n))


def _direct_merge(seq: str, model, width: int, overlap: int):
    """Independent reference: every window predicted on its own in one pass (no window
    option), then the weighted mean written out pair by pair from the documented rule
    (weight = distance to the nearest cut edge, counted from 1; termini do not cut)."""
    n = len(seq)
    starts = [
        int(s) for s in np.rint(np.linspace(0, n - width, -(-(n - overlap) // (width - overlap))))
    ]
    outs = predict(model, [seq[s : s + width] for s in starts], token_budget=1)
    res_sum = np.zeros((n, 50))
    res_w = np.zeros(n)
    pair_sum = np.zeros((n, n, 13))
    pair_w = np.zeros((n, n))
    for s, out in zip(starts, outs, strict=True):
        w = np.empty(width)
        for p in range(width):
            left = p + 1 if s > 0 else width + 1
            right = width - p if s + width < n else width + 1
            w[p] = min(left, right)
        res_sum[s : s + width] += w[:, None] * out.residue
        res_w[s : s + width] += w
        ww = np.outer(w, w)
        pair_sum[s : s + width, s : s + width] += ww[..., None] * out.pair
        pair_w[s : s + width, s : s + width] += ww
    with np.errstate(invalid="ignore"):
        return res_sum / res_w[:, None], pair_sum / pair_w[..., None]


# -- streaming merges ------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "width", "overlap", "band"),
                         [(100, 30, 7, None), (61, 25, 6, None), (20, 25, 6, None),
                          (300, 64, 16, 40), (90, 30, 0, 3)])  # fmt: skip
def test_streamed_merges_equal_the_dense_merge_bit_for_bit(length, width, overlap, band):
    rng = np.random.default_rng(length)
    windows = plan_windows(length, width, overlap)
    pairs = [rng.random((w.stop - w.start,) * 2 + (3,)).astype(np.float32) for w in windows]
    residues = [rng.random((w.stop - w.start, 4)).astype(np.float32) for w in windows]
    dense = merge_pairs(windows, pairs)
    if band is not None:
        i, j = np.indices((length, length))
        dense[np.abs(i - j) > band] = np.nan
    merger, res_merger = PairMerge(windows, band), ResidueMerge(windows)
    got = np.full((length, length, 3), np.nan, np.float32)
    largest = 0
    for k, (p, r) in enumerate(zip(pairs, residues, strict=True)):
        res_merger.add(k, r)
        for block in merger.add(k, p):
            n, m = block.values.shape[:2]
            got[block.row0 : block.row0 + n, block.col0 : block.col0 + m] = block.values
            largest = max(largest, n * m)
        assert len(merger.held) <= 2 + overlap // max(1, width - overlap)
    assert np.array_equal(got, dense, equal_nan=True)
    assert np.array_equal(res_merger.result(), merge_residues(windows, residues))
    assert largest <= width * (2 * width if band is None else width + 2 * band)
    with pytest.raises(ValueError, match="before window"):
        PairMerge(windows).add(1, pairs[0])


# -- windowed predict into the pair store ----------------------------------------------------
def test_windowed_store_equals_direct_unwindowed_computation(run_cli, tiny_model, tiny_dir,
                                                             tmp_path):  # fmt: skip
    seq = _random_sequence(130, 3)  # 6 windows of 30 (overlap >= 7)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">long\n{seq}\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress"]
    assert run_cli([*args, "--window", "30", "--token-budget", "64"]) == 0
    residue, pair = _direct_merge(seq, tiny_model, 30, 7)
    table = np.loadtxt(out / "long.residue.csv", skiprows=1, usecols=range(2, 52), delimiter=",")
    np.testing.assert_allclose(table, residue, rtol=2e-5, atol=1e-6)  # %.6g in the table
    maps = PairMaps(out / "long.pair.h5")
    assert maps.names == PAIR_CHANNELS and maps.shape == (130, 130, 13)
    with h5py.File(out / "long.pair.h5") as h5:
        assert h5["corr"].chunks is not None and h5["corr"].compression == "gzip"
    for k, name in enumerate(PAIR_CHANNELS):
        np.testing.assert_allclose(maps[name], pair[..., k], rtol=1e-5, atol=1e-6)
    tile = maps.tile("corr", slice(40, 70), slice(50, 90))
    np.testing.assert_allclose(tile, pair[40:70, 50:90, PAIR_CHANNELS.index("corr")], rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    assert np.isnan(maps["vdw"][0, 129]) and not np.isnan(maps["vdw"][0, 29])
    (dense,) = predict(tiny_model, [seq], window=30)  # the API's dense merge: same values
    assert np.array_equal(np.asarray(maps), dense.pair, equal_nan=True)
    index = (out / "index.csv").read_text().splitlines()
    assert index == ["id,stem,length,files", "long,long,130,long.pair.h5;long.residue.csv"]


def test_pair_band_float16_and_channel_choice(run_cli, tiny_model, tiny_dir, tmp_path):
    seq = _random_sequence(90, 4)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">b\n{seq}\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress"]
    assert run_cli([*args, "--pair-band", "5", "--pairs", "corr,nma_pair",
                    "--pair-dtype", "float16"]) == 0  # fmt: skip
    (ref,) = predict(tiny_model, [seq])  # one pass: the dense maps
    maps = PairMaps(out / "b.pair.h5")
    assert maps.names == ("corr", "nma_pair1", "nma_pair2", "nma_pair3") and maps.band == 5
    i, j = np.indices((90, 90))
    for name in maps.names:
        got, want = maps[name], ref.pair[..., PAIR_CHANNELS.index(name)]
        inside = np.abs(i - j) <= 5
        assert np.isnan(got[~inside]).all()
        np.testing.assert_allclose(got[inside], want[inside], rtol=2**-11, atol=2**-24)
    assert np.isnan(maps["vdw"]).all()  # not written
    with h5py.File(out / "b.pair.h5") as h5:
        assert h5["corr"].dtype == np.float16 and "vdw" not in h5


def test_pairs_none_and_list_in_the_npz_layout(run_cli, tiny_model, tiny_dir, tmp_path):
    seq = _random_sequence(40, 5)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">a\n{seq}\n")
    base = ["predict", str(fasta), "-m", str(tiny_dir), "--no-progress", "-o"]
    assert run_cli([*base, str(tmp_path / "none"), "--pairs", "none"]) == 0
    assert sorted(p.name for p in (tmp_path / "none").iterdir()) == ["a.residue.csv", "index.csv"]
    assert run_cli([*base, str(tmp_path / "two"), "--pairs", "vdw,corr"]) == 0
    (ref,) = predict(tiny_model, [seq])
    with np.load(tmp_path / "two" / "a.pair.npz") as data:
        assert data.files == ["vdw", "corr"]
        np.testing.assert_array_equal(data["corr"], ref.pair[..., PAIR_CHANNELS.index("corr")])
    with pytest.raises(Exception, match="not a pair output"):
        parse_pairs("corr,rmsf_nor")


def test_safe_unique_file_names_and_index(run_cli, tiny_dir, tmp_path):
    ids = ["sp|P69905|HBA_HUMAN", "sp|P69905|hba_human", "sp_P69905_HBA_HUMAN", ".hidden", "ok"]
    assert safe_stems(ids) == ["sp_P69905_HBA_HUMAN", "sp_P69905_hba_human~2",
                               "sp_P69905_HBA_HUMAN~3", "_hidden", "ok"]  # fmt: skip
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{rid} x\nMKVLA\n" for rid in ids))
    out = tmp_path / "out"
    assert run_cli(["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress",
                    "--pairs", "none"]) == 0  # fmt: skip
    rows = list(csv.reader((out / "index.csv").read_text().splitlines()[1:]))
    assert [r[0] for r in rows] == ids
    for _rid, stem, length, files in rows:
        assert length == "5" and files == f"{stem}.residue.csv"
        assert (out / files).read_text().splitlines()[1].startswith("1,M,")
        assert "|" not in files and not files.startswith(".")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--window", "1023"], "longer than the model's positions"),
        (["--pair-band", "39"], "--pair-band 39 is wider than the sequences"),
        (["--pairs", "corr,bogus"], "'bogus' is not a pair output"),
        (["--pair-dtype", "float16"], "needs the HDF5 pair store"),
        (["--pair-format", "zarr"], "use auto, npz or h5"),
    ],
)
def test_bad_options_fail_with_one_line_before_writing(run_cli, tiny_dir, tmp_path, capsys,
                                                       extra, message):  # fmt: skip
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">a\n{_random_sequence(40, 6)}\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress", *extra]
    assert run_cli(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_a_store_that_cannot_be_written_is_one_error(run_cli, tiny_dir, tmp_path, capsys):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">a\n{_random_sequence(60, 7)}\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(blocker / "out"),
            "--no-progress", "--window", "30"]  # fmt: skip
    assert run_cli(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cannot write there" in err and "\n" not in err
    assert blocker.read_text() == "not a folder"
    # the failed run leaves no output group open: the next run in this process writes its files
    good = tmp_path / "good"
    assert run_cli([*args[:5], str(good), *args[6:]]) == 0
    assert sorted(p.name for p in good.iterdir()) == ["a.pair.h5", "a.residue.csv", "index.csv"]


def test_labelled_results_carry_names_units_and_positions(tiny_model):
    from seqdance.inference.store_labelled import predict_labelled

    seqs = {"x": _random_sequence(35, 8), "y": _random_sequence(20, 9)}
    result = predict_labelled(tiny_model, seqs, window=16)
    (ref,) = predict(tiny_model, [seqs["x"]], window=16)
    frame = result["x"].residues
    assert list(frame.columns) == list(RESIDUE_CHANNELS)
    assert frame.index.tolist() == list(range(1, 36)) and frame.attrs["units"]["sasa_mean"] == "nm²"
    np.testing.assert_array_equal(frame.to_numpy(), ref.residue)
    pairs = result["x"].pairs
    assert pairs.names == PAIR_CHANNELS and pairs.units["corr"].startswith("correlation")
    np.testing.assert_array_equal(pairs["corr"], ref.pair[..., PAIR_CHANNELS.index("corr")])
    assert result["y"].sequence == seqs["y"]


def test_readers_take_the_pair_store_lazily(run_cli, tiny_model, tiny_dir, tmp_path):
    from seqdance.inference.store_labelled import open_predictions
    from seqdance.report.inputs import read_prediction

    seq = _random_sequence(70, 10)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">sp|Q1|X\n{seq}\n")
    out = tmp_path / "out"
    assert run_cli(["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--no-progress",
                    "--window", "32"]) == 0  # fmt: skip
    (ref,) = predict(tiny_model, [seq], window=32)
    pred = read_prediction(out / "sp_Q1_X.residue.csv")
    assert isinstance(pred.pair, PairMaps) and pred.pair.shape == (70, 70, 13)
    k = PAIR_CHANNELS.index("hbbb")
    np.testing.assert_array_equal(pred.pair[..., k], ref.pair[..., k])
    kept = open_predictions(out)["sp|Q1|X"]
    assert kept.sequence == seq and isinstance(kept.pairs.source, PairMaps)
    np.testing.assert_allclose(kept.residues.to_numpy(), ref.residue, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(kept.pairs.tile("corr", slice(0, 9), slice(3, 5)),
                                  ref.pair[:9, 3:5, PAIR_CHANNELS.index("corr")])  # fmt: skip
