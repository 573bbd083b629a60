"""predict/embed: FASTA input, token-budget batches, windows for long sequences, CLI files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference import embed, predict, read_fasta
from seqdance.inference.bfactor import read_bfactor_scale
from seqdance.inference.fasta import parse_fasta
from seqdance.inference.predict import make_batches
from seqdance.inference.windows import Window, merge_pairs, merge_residues, plan_windows
from seqdance.model.alphabet import batch_encode
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS

ROOT = Path(__file__).resolve().parents[1]
FASTA = """>p53_frag some description
MEEPQSDPSVEPPLSQETFSDLWKLLPENNVL
SPLPSQAMDDLMLSP
>short
gshm*
>mid
ACDEFGHIKLMNPQRSTVWYACDEFG
"""


@pytest.fixture(scope="module")
def model(make_tiny_model):
    return make_tiny_model(0, noise=0.2)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


# -- FASTA ------------------------------------------------------------------------------
def test_fasta_records_are_joined_upper_cased_and_checked(tmp_path):
    path = tmp_path / "in.fasta"
    path.write_text(FASTA)
    records = read_fasta(path)
    assert [r.id for r in records] == ["p53_frag", "short", "mid"]
    assert records[0].sequence == "MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSP"
    assert records[1].sequence == "GSHM"  # lower case accepted, stop codon dropped


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (">a\nACDJ\n", SeqDanceError, r"record 'a': invalid residue 'J' at position 4"),
        (">a\nAC\n>a\nDE\n", SeqDanceError, "duplicate record id 'a'"),
        ("ACDE\n", InputFileError, "line 1 comes before the first '>'"),
        ("\n\n", InputFileError, "no FASTA records"),
        (">a/b\nAC\n", SeqDanceError, "cannot be used as a file name"),
        (">a\n\n>b\nAC\n", SeqDanceError, "record 'a': empty sequence"),
    ],
)
def test_fasta_errors(text, error, message):
    with pytest.raises(error, match=message):
        parse_fasta(text)


# -- batching ---------------------------------------------------------------------------
def test_batches_are_length_sorted_and_within_budget():
    lengths = [50, 10, 30, 10, 200, 20]
    batches = make_batches(lengths, token_budget=70)
    assert [i for b in batches for i in b] == [1, 3, 5, 2, 0, 4]
    for batch in batches:
        assert len(batch) == 1 or len(batch) * (max(lengths[i] for i in batch) + 2) <= 70


def test_predict_batches_equal_one_at_a_time_and_the_naive_forward(naive_forward, model):
    seqs = [r.sequence for r in parse_fasta(FASTA)]
    batched = predict(model, seqs, token_budget=10_000)
    for seq, out in zip(seqs, predict(model, seqs, token_budget=1), strict=True):
        assert out.residue.shape == (len(seq), len(RESIDUE_CHANNELS))
    singles = predict(model, seqs, token_budget=1)
    for seq, one, many in zip(seqs, singles, batched, strict=True):
        np.testing.assert_allclose(many.residue, one.residue, atol=1e-5)
        np.testing.assert_allclose(many.pair, one.pair, atol=1e-5)
        ids, mask = batch_encode([seq])
        residue, pair, _ = naive_forward(model, ids, mask)
        np.testing.assert_allclose(many.residue, residue[0, 1:-1].numpy(), atol=1e-4)
        np.testing.assert_allclose(many.pair, pair[0, 1:-1, 1:-1].numpy(), atol=1e-4)


# -- windows ----------------------------------------------------------------------------
def test_window_plan_covers_the_sequence_with_the_minimum_overlap():
    assert plan_windows(1022) == [Window(0, 1022, 1022)]
    windows = plan_windows(2500, width=1022, min_overlap=256)
    assert windows[0].start == 0 and windows[-1].stop == 2500
    assert all(w.stop - w.start == 1022 for w in windows)
    assert all(a.stop - b.start >= 256 for a, b in zip(windows, windows[1:], strict=False))
    assert len(windows) == 3  # 2 windows could not overlap by 256
    w = Window(10, 20, 30).weights()
    assert w.tolist() == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    assert Window(0, 10, 30).weights().tolist() == list(range(10, 0, -1))  # no cut at 0


def test_merge_is_a_weighted_mean_and_pairs_outside_windows_are_nan():
    windows = [Window(0, 6, 10), Window(4, 10, 10)]
    res = merge_residues(windows, [np.ones((6, 2)), 3 * np.ones((6, 2))])
    w0, w1 = windows[0].weights(), windows[1].weights()  # overlap: residues 4 and 5
    expected_4 = (w0[4] * 1 + w1[0] * 3) / (w0[4] + w1[0])
    assert res[0, 0] == 1 and res[9, 1] == 3 and res[4, 0] == pytest.approx(expected_4)
    pair = merge_pairs(windows, [np.ones((6, 6, 1)), 3 * np.ones((6, 6, 1))])
    assert np.isnan(pair[0, 9, 0]) and np.isnan(pair[9, 0, 0])
    assert pair[1, 2, 0] == 1 and pair[8, 7, 0] == 3


def test_long_sequences_run_in_one_pass_by_default(naive_forward, model):
    """The authors run any length in one pass: a 1,030-residue sequence (T = 1,032 tokens, past
    ESM2's 1,024) equals the naive forward of the whole sequence, no window merged in."""
    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 1030))
    (out,) = predict(model, [seq])
    ids, mask = batch_encode([seq])
    residue, pair, _ = naive_forward(model, ids, mask)
    np.testing.assert_allclose(out.residue, residue[0, 1:-1].numpy(), atol=1e-4)
    np.testing.assert_allclose(out.pair, pair[0, 1:-1, 1:-1].numpy(), atol=1e-4)
    (windowed,) = predict(model, [seq], window=1022)  # the option: windows, merged
    assert not np.isnan(out.pair).any() and np.isnan(windowed.pair[0, -1]).all()


def test_long_sequences_are_windowed_and_merged(model):
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 60))
    (out,) = predict(model, [seq], window=25)
    windows = plan_windows(60, width=25, min_overlap=6)  # the default: a quarter window
    direct = predict(model, [seq[w.start : w.stop] for w in windows])
    assert out.residue.shape == (60, 50) and out.pair.shape == (60, 60, 13)
    expected = merge_residues(windows, [d.residue for d in direct])
    np.testing.assert_allclose(out.residue, expected, atol=1e-6)
    np.testing.assert_allclose(out.residue[:5], direct[0].residue[:5], atol=1e-6)
    np.testing.assert_allclose(out.residue[-5:], direct[-1].residue[-5:], atol=1e-6)
    assert np.isnan(out.pair[0, 59]).all() and not np.isnan(out.pair[0, 24]).any()
    ss = slice(3, 11)  # softmax groups still sum to one after the merge
    np.testing.assert_allclose(out.residue[:, ss].sum(1), 1.0, atol=1e-5)


# -- embed ------------------------------------------------------------------------------
def test_embeddings_equal_the_trunk_last_hidden_state(naive_model, model):
    seqs = [r.sequence for r in parse_fasta(FASTA)]
    pytest.importorskip("transformers")  # the reference trunk
    trunk = naive_model.stock_trunk(model)  # transformers' EsmModel, same weights
    got = dict(embed(model, seqs))
    for i, seq in enumerate(seqs):
        ids, mask = batch_encode([seq])
        with torch.no_grad():
            hidden = trunk(input_ids=ids, attention_mask=mask).last_hidden_state[0, 1:-1]
        np.testing.assert_allclose(got[i], hidden.numpy(), atol=1e-5)


# -- CLI --------------------------------------------------------------------------------
def test_cli_predict_writes_tables_arrays_plots_and_attention(run_cli, model, model_dir, tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(FASTA)
    out = tmp_path / "out"
    args = ["predict", str(fasta), "--model", str(model_dir), "--out", str(out)]
    assert run_cli([*args, "--plots", "--attention", "--no-progress", "--device", "cpu"]) == 0
    records = read_fasta(fasta)
    expected = predict(model, [r.sequence for r in records])
    for record, exp in zip(records, expected, strict=True):
        lines = (out / f"{record.id}.residue.csv").read_text().splitlines()
        assert lines[0].split(",") == ["position", "residue", *RESIDUE_CHANNELS]
        assert len(lines) == len(record.sequence) + 1
        first = lines[1].split(",")
        assert first[:2] == ["1", record.sequence[0]]
        np.testing.assert_allclose(np.array(first[2:], float), exp.residue[0], rtol=1e-5)
        with np.load(out / f"{record.id}.pair.npz") as pair:
            assert list(pair.keys()) == list(PAIR_CHANNELS)
            np.testing.assert_allclose(pair["corr"], exp.pair[..., PAIR_CHANNELS.index("corr")])
        with np.load(out / f"{record.id}.attention.npz") as att:
            n = len(record.sequence)
            assert att["attention"].shape == (2, 4, n, n)
            ids, mask = batch_encode([record.sequence])
            with torch.no_grad():
                maps = model(ids, mask, pair=False, return_attentions=True).attentions
            np.testing.assert_allclose(att["attention"], maps[0, :, :, 1:-1, 1:-1], atol=1e-3)
        for png in ("profiles", "pairs"):
            assert (out / f"{record.id}.{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))


def test_cli_embed_writes_one_group_per_record(run_cli, model, model_dir, tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(FASTA)
    h5_path = tmp_path / "emb.h5"
    assert (
        run_cli(["embed", str(fasta), "-m", str(model_dir), "-o", str(h5_path), "--no-progress"])
        == 0
    )
    seqs = {r.id: r.sequence for r in read_fasta(fasta)}
    with h5py.File(h5_path) as h5:
        assert sorted(h5) == sorted(seqs)
        for rid, seq in seqs.items():
            residues = h5[rid]["residues"][:]
            assert residues.shape == (len(seq), 32)
            np.testing.assert_allclose(h5[rid]["mean"][:], residues.mean(0), rtol=1e-5)


@pytest.mark.parametrize(
    ("fasta_text", "extra", "message"),
    [
        (">x\nACDZZ1\n", [], "record 'x': invalid residue '1' at position 6"),
        (">x\nACD\n", ["--model", "nonexistent/dir/update_3.pt"], "model file or folder not found"),
        (">x\nACD\n", ["--model", "seqdance35"], "unknown model 'seqdance35'"),
        (">x\nACD\n", ["--device", "cuda"], "no CUDA device"),
    ],
)
def test_cli_bad_inputs_fail_with_one_line_and_no_output(
    run_cli, model_dir, tmp_path, capsys, fasta_text, extra, message
):
    if "--device" in extra and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    fasta = tmp_path / "in.fasta"
    fasta.write_text(fasta_text)
    out = tmp_path / "out"
    args = ["predict", str(fasta), "--out", str(out), "--no-progress"]
    if "--model" not in extra:
        args += ["--model", str(model_dir)]
    assert run_cli(args + extra) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())
    h5_path = tmp_path / "e.h5"
    embed_args = ["embed", str(fasta), "-o", str(h5_path), "--no-progress"]
    assert run_cli(embed_args + (args[-2:] if "--model" not in extra else []) + extra) == 1
    assert not h5_path.exists()


def test_cli_pdb_writes_rmsf_as_bfactors(run_cli, model, model_dir, tmp_path, capsys):
    import prody

    structure = ROOT / "tests/data/nma/2g3r.pdb"  # one chain, A, 119 residues
    seq = (
        "SFVGLRVVAKWSSNGYFYSGKITRDVGAGKYKLLFDDGYECDVLGKDILLCDPIPLDTEVTALSEDEYFSAGVVKGH"
        "RKESGELYYSIEKEGQRKWYKRMAVILSLEQGNRLREQYGLG"
    )
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">tudor\n{seq}\n>other\nMKV\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-m", str(model_dir), "-o", str(out), "--no-progress"]
    assert run_cli([*args, "--pdb", str(structure)]) == 0
    assert sorted(p.name for p in out.glob("*.pdb")) == ["tudor.rmsf.pdb"]
    (expected,) = predict(model, [seq])
    rmsf = expected.residue[:, RESIDUE_CHANNELS.index("rmsf_nor")]
    written = prody.parsePDB(str(out / "tudor.rmsf.pdb"))
    calphas = written.select("protein and name CA")
    scale = read_bfactor_scale(out / "tudor.rmsf.pdb")
    assert 10 <= np.abs(calphas.getBetas()).max() < 100
    np.testing.assert_allclose(calphas.getBetas() / scale, rmsf, atol=0.0051 / scale)
    assert written.numAtoms() == prody.parsePDB(str(structure)).numAtoms()

    fasta.write_text(">other\nMKV\n")
    assert run_cli([*args, "--out", str(tmp_path / "none"), "--pdb", str(structure)]) == 1
    assert "no FASTA record has the sequence" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
