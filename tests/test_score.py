"""Zero-shot scoring: mutant parsing, relative-change scores against a naive computation,
combinations, ESM2 log-likelihood ratios and the ``seqdance score`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from helpers import authors_state_dict, load_naive_model
from seqdance.cli import main
from seqdance.errors import SeqDanceError
from seqdance.inference.baselines import esm_llr
from seqdance.inference.fasta import read_fasta
from seqdance.inference.mutations import (
    Substitution,
    build_mutant_set,
    format_mutant,
    parse_mutant,
)
from seqdance.inference.options import ScoreOptions
from seqdance.inference.score import score_mutants, score_sequences
from seqdance.inference.summaries import combine, quantile_normalize, summaries_for
from seqdance.model import SeqDanceConfig, SeqDanceModel, load_masked_lm
from seqdance.model.alphabet import MASK_ID, TOKEN_ID, batch_encode, encode
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS, resolve_properties

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "scoring"
TEM1_CSV = DATA / "blat_ecolx_30.csv"
TEM1_FASTA = DATA / "blat_ecolx_wt.fasta"
TEM1_OFFSET = 24


@pytest.fixture(scope="module")
def tem1() -> str:
    return read_fasta(TEM1_FASTA)[0].sequence


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory) -> Path:
    from transformers import EsmConfig, EsmForMaskedLM

    torch.manual_seed(3)
    config = EsmConfig(
        vocab_size=33,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=1026,
        position_embedding_type="rotary",
        token_dropout=True,
        mask_token_id=MASK_ID,
        pad_token_id=1,
        emb_layer_norm_before=False,
    )
    folder = tmp_path_factory.mktemp("esm")
    EsmForMaskedLM(config).save_pretrained(folder)
    return folder


# -- mutants -------------------------------------------------------------------------------
def test_parse_mutant_forms():
    assert parse_mutant("A12G") == (Substitution("A", 12, "G"),)
    assert parse_mutant("a12g:C15D") == (Substitution("A", 12, "G"), Substitution("C", 15, "D"))
    assert parse_mutant("wt") == () and parse_mutant("_wt") == () and parse_mutant("") == ()
    assert format_mutant(parse_mutant("A12G:C15D")) == "A12G:C15D"
    assert format_mutant(()) == "wt"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A12*", "unknown mutant amino acid '*'"),
        ("J12A", "unknown wild-type amino acid 'J'"),
        ("A12", "cannot parse 'A12'"),
        ("A12G:A12C", "position 12 is mutated twice"),
    ],
)
def test_parse_mutant_errors(text, message):
    with pytest.raises(SeqDanceError, match=message) as info:
        parse_mutant(text, row=5)
    assert "line 5" in str(info.value) and "\n" not in str(info.value)


def test_offset_on_tem1(tem1):
    table = pd.read_csv(TEM1_CSV)
    mutants = build_mutant_set(tem1, table["mutant"].tolist(), offset=TEM1_OFFSET)
    assert len(tem1) == 263 and table["mutant"][0] == "H24C"
    for text, seq in zip(table["mutant"], mutants.sequences, strict=True):
        sub = parse_mutant(text)[0]
        i = sub.position - TEM1_OFFSET
        assert tem1[i] == sub.wt and seq[i] == sub.mt
        assert seq[:i] == tem1[:i] and seq[i + 1 :] == tem1[i + 1 :]
    # the last residue is numbered 24 + 262 = 286 (W)
    last = build_mutant_set(tem1, ["W286A", "H24C:W286A"], offset=TEM1_OFFSET)
    assert last.sequences[1] == "C" + tem1[1:-1] + "A"
    with pytest.raises(SeqDanceError, match="has 'L' at position 24, not 'H'"):
        build_mutant_set(tem1, table["mutant"].tolist())  # default offset 1 is wrong here
    with pytest.raises(SeqDanceError, match="line 3, mutant 'W287A': position 287 is outside"):
        build_mutant_set(tem1, ["H24C", "W287A"], offset=TEM1_OFFSET)


def test_mutated_sequence_column(tem1):
    mut = build_mutant_set(tem1, ["H24C:E26D"], offset=TEM1_OFFSET).sequences[0]
    from_seq = build_mutant_set(tem1, None, [mut], offset=TEM1_OFFSET)
    assert format_mutant(from_seq.substitutions[0]) == "H24C:E26D"
    both = build_mutant_set(tem1, ["H24C:E26D"], [mut], offset=TEM1_OFFSET)
    assert both.sequences == (mut,)
    with pytest.raises(SeqDanceError, match="does not match"):
        build_mutant_set(tem1, ["H24C"], [mut], offset=TEM1_OFFSET)
    with pytest.raises(SeqDanceError, match="only substitutions"):
        build_mutant_set(tem1, None, [mut[:-1]])


# -- scores against a naive computation ----------------------------------------------------
def _naive_scores(model, wild_type, sequences, residues_only: bool = True):
    """One mutant per forward pass, full pair tensor (benchmarks/naive_model.py), float64;
    averaged over the residues (``residues_only``) or all T = L + 2 outputs (the notebook)."""
    naive = load_naive_model()
    rows_of = slice(1, -1) if residues_only else slice(None)

    def outputs(seq):
        ids, mask = batch_encode([seq])
        res, pair, _ = naive.naive_forward(model, ids, mask)
        return res[0, rows_of].double(), pair[0, rows_of, rows_of].double()

    res_wt, pair_wt = outputs(wild_type)
    rows = []
    for seq in sequences:
        res, pair = outputs(seq)
        r = ((res - res_wt).abs() / (res_wt.abs() + 0.01)).mean(dim=0)  # (50,)
        p = ((pair - pair_wt).abs() / (pair_wt.abs() + 0.01)).mean(dim=(0, 1))  # (13,)
        rows.append(torch.cat([r, p]).numpy())
    return np.stack(rows)


@pytest.fixture(scope="module")
def tem1_mutants(tem1):
    texts = ["H24C", "P25A:E26D", "wt", "W286A", "H24C", "L28P:K30E:W286Y"]
    return build_mutant_set(tem1, texts, offset=TEM1_OFFSET)


@pytest.fixture(scope="module")
def tem1_reference(tiny_model, tem1, tem1_mutants):
    """Residue means (``residues_only``), shape (6, 63)."""
    return _naive_scores(tiny_model, tem1, tem1_mutants.sequences)


@pytest.fixture(scope="module")
def tem1_reference_all(tiny_model, tem1, tem1_mutants):
    """Means over all T outputs, <cls>/<eos> included (the default, the notebook's)."""
    return _naive_scores(tiny_model, tem1, tem1_mutants.sequences, residues_only=False)


def test_default_scores_average_all_tokens(tiny_model, tem1, tem1_mutants, tem1_reference_all,
                                           tem1_reference):  # fmt: skip
    channels = resolve_properties(None)
    got = score_sequences(tiny_model, tem1, tem1_mutants.sequences, channels,
                          ScoreOptions(token_budget=600))  # fmt: skip
    np.testing.assert_allclose(got, tem1_reference_all, rtol=1e-3, atol=1e-7)
    moved = tem1_reference[[0, 1, 3, 5]]
    # the two conventions differ (by 0.5-4 % per score on the published model)
    assert np.abs(tem1_reference_all[[0, 1, 3, 5]] - moved).max() > 1e-3 * np.abs(moved).max()


def test_scores_equal_naive_on_tem1(tiny_model, tem1, tem1_mutants, tem1_reference):
    channels = resolve_properties(None)
    got = score_sequences(tiny_model, tem1, tem1_mutants.sequences, channels,
                          ScoreOptions(token_budget=600, residues_only=True))  # fmt: skip
    assert got.shape == (6, 63)
    np.testing.assert_allclose(got, tem1_reference, rtol=1e-3, atol=1e-7)
    assert np.all(got[2] == 0)  # the wild type itself
    np.testing.assert_array_equal(got[0], got[4])  # duplicates run once, same values
    assert np.all(tem1_reference[[0, 1, 3, 5]] > 0)


def test_residue_only_skips_pair_head(tiny_model, tem1, tem1_mutants, tem1_reference):
    calls = []
    handle = tiny_model.res_transform_nn.register_forward_hook(lambda *a: calls.append(1))
    try:
        got = score_sequences(
            tiny_model, tem1, tem1_mutants.sequences, resolve_properties("sasa_mean,psi"),
            ScoreOptions(residues_only=True),
        )  # fmt: skip
    finally:
        handle.remove()
    assert calls == []  # the pair head never ran
    cols = [RESIDUE_CHANNELS.index(c) for c in resolve_properties("sasa_mean,psi")]
    np.testing.assert_allclose(got, tem1_reference[:, cols], rtol=1e-3, atol=1e-7)


def test_pair_subset_matches(tiny_model, tem1, tem1_mutants, tem1_reference):
    chosen = ("rmsf_nor", "corr", "hp")
    got = score_sequences(tiny_model, tem1, tem1_mutants.sequences, chosen,
                          ScoreOptions(residues_only=True))  # fmt: skip
    ref = tem1_reference[:, [2, 50 + PAIR_CHANNELS.index("hp"), 50 + PAIR_CHANNELS.index("corr")]]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-7)  # schema order: rmsf, hp, corr


def test_windowed_long_sequence(tiny_model, tem1, tem1_mutants):
    from seqdance.inference.predict import predict

    seqs = tem1_mutants.sequences[:2]
    with pytest.raises(SeqDanceError, match="windowed scores average over residues only"):
        score_sequences(tiny_model, tem1, seqs, resolve_properties(None), ScoreOptions(window=120))
    got = score_sequences(tiny_model, tem1, seqs, resolve_properties(None),
                          ScoreOptions(window=120, residues_only=True))  # fmt: skip
    outs = predict(tiny_model, [tem1, *seqs], window=120)  # windows merged as predict does
    for k, out in enumerate(outs[1:]):
        r = np.abs(out.residue - outs[0].residue) / (np.abs(outs[0].residue) + 0.01)
        p = np.abs(out.pair - outs[0].pair) / (np.abs(outs[0].pair) + 0.01)
        assert np.isnan(p).any()  # pairs no window holds
        ref = np.concatenate([r.mean(axis=0), np.nanmean(p.reshape(-1, 13), axis=0)])
        np.testing.assert_allclose(got[k], ref, rtol=1e-4)


# -- summaries and combinations ------------------------------------------------------------
def test_summaries_follow_the_notebook():
    all_names = [s.name for s in summaries_for(resolve_properties(None))]
    assert len(all_names) == 23
    assert all_names[:10] == [
        "sasa_mean", "sasa_std", "rmsf_nor", "ss", "chi", "phi", "psi",
        "nma_res1", "nma_res2", "nma_res3",
    ]  # fmt: skip
    assert all_names[10:] == list(PAIR_CHANNELS)
    partial = [s.name for s in summaries_for(("psi_0", "psi_1", "sasa_mean"))]
    assert partial == ["sasa_mean"]  # psi is summarised only when all 12 bins are scored


def test_quantile_normalize_analytic():
    x = np.array([[5.0, 4.0, 3.0], [2.0, 1.0, 4.0], [3.0, 4.0, 6.0], [4.0, 2.0, 8.0]])
    # sorted columns: [2,3,4,5], [1,2,4,4], [3,4,6,8] -> rank means 2, 3, 14/3, 17/3
    means = np.array([2.0, 3.0, 14 / 3, 17 / 3])
    expected = np.array(
        [
            [means[3], means[2], means[0]],
            [means[0], means[0], means[1]],
            [means[1], means[3], means[2]],  # tie in column 2: row order breaks it
            [means[2], means[1], means[3]],
        ]
    )
    np.testing.assert_allclose(quantile_normalize(x), expected)


def test_combine_against_loops():
    rng = np.random.default_rng(1)
    x = rng.random((7, 5))
    got = combine(x)
    for n, row in enumerate(x):
        w = [(v + 1e-8) / sum(u + 1e-8 for u in row) for v in row]
        assert got["mean"][n] == pytest.approx(sum(row) / 5)
        assert got["max"][n] == pytest.approx(max(row))
        assert got["weighted_mean"][n] == pytest.approx(
            sum(v * wv for v, wv in zip(row, w, strict=True))
        )
        assert got["geometric_mean"][n] == pytest.approx(np.prod(row + 1e-8) ** (1 / 5))


def test_score_mutants_columns(tiny_model, tem1_mutants, tem1_reference_all):
    result = score_mutants(tiny_model, tem1_mutants, resolve_properties(None))
    cols = result.columns()
    names = list(cols)
    assert names[:63] == list(RESIDUE_CHANNELS + PAIR_CHANNELS)
    assert names[63:67] == ["ss", "chi", "phi", "psi"]
    kinds = ("mean", "max", "weighted_mean", "geometric_mean")
    assert names[67:] == [f"{p}_{c}" for p in ("raw", "norm") for c in kinds]
    psi = [RESIDUE_CHANNELS.index(f"psi_{i}") for i in range(12)]
    np.testing.assert_allclose(cols["psi"], tem1_reference_all[:, psi].mean(axis=1), rtol=1e-3)
    summaries = np.stack([cols[s.name] for s in result.summaries], axis=1)  # (6, 23)
    np.testing.assert_allclose(cols["norm_max"], quantile_normalize(summaries).max(axis=1))
    np.testing.assert_allclose(cols["raw_mean"], summaries.mean(axis=1))


# -- ESM2 baselines ------------------------------------------------------------------------
def _direct_log_probs(folder, ids):
    """The reference: transformers' own EsmForMaskedLM on the same folder."""
    from transformers import EsmForMaskedLM

    mlm = EsmForMaskedLM.from_pretrained(folder).eval()
    t = torch.tensor([ids])
    with torch.no_grad():
        return torch.log_softmax(mlm(input_ids=t).logits[0].float(), dim=-1).numpy()


def test_esm_llr_wt_and_masked(tiny_mlm, tem1):
    mlm = load_masked_lm(str(tiny_mlm))
    mutants = build_mutant_set(tem1, ["H24C", "P25A:E26D", "wt"], offset=TEM1_OFFSET)
    wt_lp = _direct_log_probs(tiny_mlm, encode(tem1))  # (T, 33)

    def llr(logp_at, subs):
        return sum(
            logp_at(s.index(TEM1_OFFSET))[TOKEN_ID[s.mt]]
            - logp_at(s.index(TEM1_OFFSET))[TOKEN_ID[s.wt]]
            for s in subs
        )

    got = esm_llr(mlm, mutants, "wt-marginal")
    expected = [llr(lambda i: wt_lp[i + 1], subs) for subs in mutants.substitutions]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert got[2] == 0.0

    def masked(i):
        ids = encode(tem1)
        ids[i + 1] = MASK_ID
        return _direct_log_probs(tiny_mlm, ids)[i + 1]

    got = esm_llr(mlm, mutants, "masked-marginal", token_budget=600)  # 2 per batch
    expected = [llr(masked, subs) for subs in mutants.substitutions]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_esm_llr_windows(tiny_mlm, tem1):
    mlm = load_masked_lm(str(tiny_mlm))
    mutants = build_mutant_set(tem1, ["W286A"], offset=TEM1_OFFSET)
    # window 100: the last residue is scored in the last window (residues 163..262)
    got = esm_llr(mlm, mutants, "wt-marginal", window=100)
    lp = _direct_log_probs(tiny_mlm, encode(tem1[163:]))[100]
    assert got[0] == pytest.approx(lp[TOKEN_ID["A"]] - lp[TOKEN_ID["W"]], rel=1e-4)


# -- command line --------------------------------------------------------------------------
def _run(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


def test_cli_score_tem1(tiny_dir, tiny_model, tiny_mlm, tem1, tmp_path):
    out = tmp_path / "scores.csv"
    code = _run(
        [
            "score", "--model", str(tiny_dir), "--fasta", str(TEM1_FASTA),
            "--mutations", str(TEM1_CSV), "--offset", "24", "--out", str(out),
            "--properties", "sasa_mean,psi,corr", "--baseline", "masked-marginal",
            "--esm-model", str(tiny_mlm),
        ]
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(out)
    source = pd.read_csv(TEM1_CSV)
    assert list(table.columns[:3]) == list(source.columns)  # input columns kept
    pd.testing.assert_frame_equal(table[source.columns], source)
    mutants = build_mutant_set(tem1, source["mutant"].tolist(), offset=TEM1_OFFSET)
    channels = resolve_properties("sasa_mean,psi,corr")
    expected = score_sequences(tiny_model, tem1, mutants.sequences, channels)
    np.testing.assert_allclose(table[list(channels)].to_numpy(), expected, rtol=1e-5)
    assert {"psi", "norm_geometric_mean", "llr_masked_marginal"} <= set(table.columns)
    assert "ss" not in table.columns and "vdw" not in table.columns


def test_cli_score_wrong_letter_leaves_no_file(tiny_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("mutant,score\nH24C,0.1\nK25A,0.2\n")
    out = tmp_path / "out.csv"
    argv = ["score", "-m", str(tiny_dir), "--fasta", str(TEM1_FASTA), "--mutations", str(bad)]
    code = _run([*argv, "--offset", "24", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and not out.exists() and list(tmp_path.iterdir()) == [bad]
    assert err == (
        "error: line 3, mutant 'K25A': the wild type has 'P' at position 25, not 'K' "
        "(offset 24; wrong --offset?)"
    )
    code = _run([*argv, "--offset", "24", "--out", str(out), "--properties", "bogus"])
    assert code == 1 and "unknown property 'bogus'" in capsys.readouterr().err
    code = _run([*argv, "--sequence", "ACDE", "--out", str(out)])
    assert code == 1 and "exactly one of --sequence and --fasta" in capsys.readouterr().err


def test_cli_score_unreachable_hub(tiny_dir, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = _run(
        [
            "score", "-m", str(tiny_dir), "--fasta", str(TEM1_FASTA), "--offset", "24",
            "--mutations", str(TEM1_CSV), "--out", str(out), "--properties", "sasa_mean",
            "--baseline", "wt-marginal", "--esm-model", "no-such-org/no-such-esm2",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and not out.exists()
    assert err[-1].startswith("error: ESM2 model 'no-such-org/no-such-esm2' is not in the local")


def test_cli_score_bf16_autocast(tiny_dir, tiny_model, tem1, tmp_path):
    out = tmp_path / "bf16.csv"
    argv = ["score", "-m", str(tiny_dir), "--fasta", str(TEM1_FASTA), "--offset", "24"]
    code = _run([*argv, "--mutations", str(TEM1_CSV), "--out", str(out), "--dtype", "bf16"])
    assert code == 0
    table = pd.read_csv(out)
    mutants = build_mutant_set(tem1, table["mutant"].tolist(), offset=TEM1_OFFSET)
    fp32 = score_sequences(tiny_model, tem1, mutants.sequences, resolve_properties(None))
    got = table[list(RESIDUE_CHANNELS + PAIR_CHANNELS)].to_numpy()
    assert not np.array_equal(got, fp32)  # really ran in bf16
    assert np.abs(got - fp32).mean() < 0.25 * np.abs(fp32).mean()  # scores ~0.6%: bf16 ulp
    rho = [spearmanr(got[:, c], fp32[:, c]).statistic for c in range(63)]
    assert np.median(rho) > 0.95


# -- the authors' notebook, as published ---------------------------------------------------
# Their output dict: one entry per feature (the NMA bands separate), residue (1, T[, k]) and
# pair (1, T, T); the notebook's score of a feature is the mean of |mt - wt| / (|wt| + 0.01)
# over ALL its elements, <cls>/<eos> rows and columns included. Written from their
# model.py / zero_shot_mutation.ipynb, independent of seqdance.schema.
NOTEBOOK_RES = {
    "sasa_mean": [0],
    "sasa_std": [1],
    "rmsf_nor": [2],
    "ss": list(range(3, 11)),
    "chi": list(range(11, 23)),
    "phi": list(range(23, 35)),
    "psi": list(range(35, 47)),
    "nma_res1": [47],
    "nma_res2": [48],
    "nma_res3": [49],
}
NOTEBOOK_PAIR = {"vdw": 0, "hbbb": 1, "hbsb": 2, "hbss": 3, "hp": 4, "sb": 5, "pc": 6, "ps": 7,
                 "ts": 8, "corr": 9, "nma_pair1": 10, "nma_pair2": 11, "nma_pair3": 12}  # fmt: skip


def _notebook_scores(model, wild_type: str, sequences) -> list[dict[str, float]]:
    naive = load_naive_model()
    model64 = model.double()

    def output(seq):
        ids, mask = batch_encode([seq])
        with torch.no_grad():
            res, pair, _ = naive.naive_forward(model64, ids, mask)
        out = {f: res[:, :, idx] for f, idx in NOTEBOOK_RES.items()}
        out.update({f: pair[:, :, :, idx] for f, idx in NOTEBOOK_PAIR.items()})
        return out

    wt = output(wild_type)
    rows = []
    for seq in sequences:
        mt = output(seq)
        rows.append({f: float((abs(mt[f] - wt[f]) / (abs(wt[f]) + 1e-2)).mean()) for f in wt})
    model.float()
    return rows


def test_cli_score_defaults_equal_the_notebook_on_published_files(tem1, tmp_path):
    """A random ESMDance-8M written as the authors' hub files (model.safetensors with their
    transformers-4.48 keys + their config.json): `seqdance score` with default options gives
    the notebook's numbers to 1e-4 relative; --residues-only gives the residue means."""
    from safetensors.torch import save_file

    torch.manual_seed(11)
    config = SeqDanceConfig.from_dict({"esm2_select": "model_8M", "model_select": "esmdance"})
    model = SeqDanceModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("esm2") and name.endswith("bias"):
                p.normal_(0, 0.3)
    folder = tmp_path / "ESMDance"
    folder.mkdir()
    save_file(authors_state_dict(model), str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"esm2_select": "model_8M", "model_select": "esmdance"}')
    wild_type = tem1[:90]  # TEM-1 residues 24..113 (a short wild type keeps the test fast)
    last = f"{wild_type[-1]}113{'A' if wild_type[-1] != 'A' else 'G'}"
    mutants = ["H24C", "P25A:E26D", last, "L28P:K30E"]
    csv = tmp_path / "m.csv"
    csv.write_text("mutant\n" + "\n".join(mutants) + "\n")
    argv = ["score", "-m", str(folder), "--sequence", wild_type, "--offset", "24",
            "--mutations", str(csv)]  # fmt: skip
    assert _run([*argv, "--out", str(tmp_path / "all.csv")]) == 0
    assert _run([*argv, "--out", str(tmp_path / "res.csv"), "--residues-only"]) == 0
    table = pd.read_csv(tmp_path / "all.csv")
    seqs = build_mutant_set(wild_type, mutants, offset=TEM1_OFFSET).sequences
    expected = _notebook_scores(model, wild_type, seqs)
    for n, row in enumerate(expected):
        for feature, value in row.items():
            assert table.loc[n, feature] == pytest.approx(value, rel=1e-4), (mutants[n], feature)
    residues = pd.read_csv(tmp_path / "res.csv")
    reference = _naive_scores(model, wild_type, seqs)  # residue means, (4, 63)
    channels = list(RESIDUE_CHANNELS + PAIR_CHANNELS)
    np.testing.assert_allclose(residues[channels].to_numpy(), reference, rtol=1e-3, atol=1e-7)
    change = np.abs(table[channels].to_numpy() / reference - 1)
    assert change.max() > 0.005  # the <cls>/<eos> rows move the scores


def test_long_sequence_runs_in_one_pass(naive_model, tiny_model):
    """Over 1,022 residues (T > 1,024 tokens): one pass by default, as the authors (rotary
    positions have no maximum); windows only when asked."""
    rng = np.random.default_rng(0)
    wild_type = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=1030))
    mutant = wild_type[:500] + ("A" if wild_type[500] != "A" else "G") + wild_type[501:]
    channels = resolve_properties("sasa_mean,corr")
    got = score_sequences(tiny_model, wild_type, [mutant], channels)
    naive = naive_model
    outs = []
    for seq in (wild_type, mutant):
        ids, mask = batch_encode([seq])
        with torch.no_grad():
            res, pair, _ = naive.naive_forward(tiny_model, ids, mask)
        outs.append((res[0, :, 0].double(), pair[0, :, :, PAIR_CHANNELS.index("corr")].double()))
    (rw, pw), (rm, pm) = outs
    expected = [float(((rm - rw).abs() / (rw.abs() + 0.01)).mean()),
                float(((pm - pw).abs() / (pw.abs() + 0.01)).mean())]  # fmt: skip
    np.testing.assert_allclose(got[0], expected, rtol=1e-3)
    windowed = score_sequences(tiny_model, wild_type, [mutant], channels,
                               ScoreOptions(window=1022, residues_only=True))  # fmt: skip
    assert not np.allclose(windowed, got)
