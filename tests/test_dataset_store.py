"""Stored layout, check, loss weights, split and tokens (no feature extraction needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from seqdance.alphabet import TOKENS as ESM_TOKENS
from seqdance.alphabet import encode, tokenize
from seqdance.cli import main
from seqdance.data.check import check_dataset
from seqdance.data.loss_weights import (
    LossWeights,
    baseline_rmse,
    category,
    compute_loss_weights,
    weights_from_rmse,
)
from seqdance.data.split import SplitConfig, assign_split, cluster_sequences, split_dataset
from seqdance.data.store import (
    encode_md,
    encode_nma,
    merge_into,
    pair_key,
    read_index,
    res_key,
    write_index,
)
from seqdance.errors import SeqDanceError
from seqdance.schema import INTERACTIONS, MD_RESIDUE_CHANNELS, SS_CLASSES

DATA = Path(__file__).parent / "data"
NMA = DATA / "nma"


def test_encode_md_from_the_authors_reference_files(reference_md):
    residues, pair, raw = reference_md
    res, stored = encode_md(residues, pair)
    assert res.shape == (40, 47) and stored.shape == (40, 40, 10) and res.dtype == np.float32
    assert (res[[0, -1]] == -1).all() and (stored[[0, -1]] == -1).all()
    assert (stored[:, [0, -1]] == -1).all()
    assert not np.isnan(res).any()
    # residue channels in schema order; NaN (no chi for Gly/Ala) becomes -1; RMSF stays raw
    assert MD_RESIDUE_CHANNELS[2] == "rmsf_nor"
    np.testing.assert_allclose(res[1:-1, 2], residues["rmsf"], rtol=1e-6)
    np.testing.assert_allclose(res[1:-1, 0], residues["sasa_mean"], rtol=1e-6)
    chi0 = residues["chi_0"].to_numpy()
    np.testing.assert_allclose(res[1:-1, 11], np.where(np.isnan(chi0), -1, chi0), rtol=1e-6)
    np.testing.assert_allclose(
        res[1:-1, 3:11], residues[[f"ss_{c}" for c in SS_CLASSES]], rtol=1e-6
    )
    # interaction channels cube-rooted, correlation as is
    vdw = raw[..., 0] + raw[..., 0].T - np.diag(np.diag(raw[..., 0]))
    np.testing.assert_allclose(stored[1:-1, 1:-1, 0], np.cbrt(vdw), rtol=1e-6)
    np.testing.assert_allclose(stored[1:-1, 1:-1, 9], raw[..., 9], rtol=1e-6, atol=1e-7)
    assert stored[..., 0].max() == pytest.approx(8.5 ** (1 / 3), rel=1e-6)


def test_encode_md_names_missing_columns(reference_md):
    residues, pair, _ = reference_md
    with pytest.raises(SeqDanceError, match="lack columns: psi_11"):
        encode_md(residues.drop(columns=["psi_11"]), pair)
    with pytest.raises(SeqDanceError, match="lack channels: corr"):
        encode_md(residues, {k: v for k, v in pair.items() if k != "corr"})


def test_encode_nma_transposes_bands_last():
    ref = np.load(NMA / "nma_residue_pair_features_2g3r.npz")
    res, pair = encode_nma(ref["gnm_msf"], ref["anm_cor"])
    assert res.shape == (121, 3) and pair.shape == (121, 121, 3)
    np.testing.assert_allclose(res[5, 1], ref["gnm_msf"][1, 4], rtol=1e-6)
    np.testing.assert_allclose(pair[3, 7, 2], ref["anm_cor"][2, 2, 6], rtol=1e-6)
    assert (res[0] == -1).all() and (pair[:, -1] == -1).all()


# ----------------------------------------------------------------------------- a small dataset


@pytest.fixture(scope="module")
def small(small_dataset) -> Path:
    """The shared small dataset of the authors' reference arrays (read only: copy_of to edit)."""
    return small_dataset


def copy_of(root: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(root, dest)
    return dest


def test_check_accepts_a_good_dataset(small, capsys):
    report = check_dataset(small)
    assert report.ok and report.n_proteins == 4
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "check", str(small)])
    assert exit_info.value.code == 0
    assert "4 proteins checked: OK" in capsys.readouterr().out


def _edit(root: Path, key: str, fn) -> None:
    with h5py.File(root / "features.h5", "r+") as h5:
        data = h5[key][()]
        del h5[key]
        h5.create_dataset(key, data=fn(data))


def test_check_finds_every_kind_of_problem(small, tmp_path, capsys):
    root = copy_of(small, tmp_path)

    def nan_and_bad_sum(res):
        res[5, 0] = np.nan
        res[6, 3:11] = 0.3  # ss sums to 2.4
        res[7, 1] = -0.5  # negative sasa_std
        return res

    def bad_corr(pair):
        pair[4, 5, 9] = 1.5
        pair[0, 3, 0] = 0.2  # <cls> row not -1
        return pair

    _edit(root, res_key("3tvj_I"), nan_and_bad_sum)
    _edit(root, pair_key("3tvj_I"), bad_corr)
    _edit(root, res_key("idr1"), lambda r: r[:-1])  # one row short
    with h5py.File(root / "features.h5", "r+") as h5:
        del h5[pair_key("2g3r_t")]
        h5.create_dataset("stray_res_feature", data=np.zeros((3, 3)))
        h5.create_dataset("stray_pair_feature", data=np.zeros((3, 3, 3)))
    problems = check_dataset(root).problems
    text = "\n".join(problems)
    assert "3tvj_I: residue features have 1 NaN/infinite values" in text
    assert "3tvj_I: residue ss: 1 positions do not sum to 1 (e.g. 2.4)" in text
    assert "3tvj_I: residue sasa_std: negative values (min -0.5)" in text
    assert "3tvj_I: pair corr: values outside [-1, 1] (1.5)" in text
    assert "3tvj_I: special-token rows (<cls>, <eos>) are not all -1" in text
    assert "idr1: pair shape (40, 40, 10) does not match 39 residue rows" in text
    assert "index lists 1 proteins missing from the HDF5 file, e.g. 2g3r_t" in text
    assert "HDF5 has 1 proteins missing from the index, e.g. stray" in text
    assert "HDF5: 1 datasets without a partner" in text
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "check", str(root)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("problem: ") == len(problems)


def test_check_token_alignment_and_kind(small, tmp_path):
    root = copy_of(small, tmp_path)
    index = pd.read_csv(root / "index.csv", keep_default_na=False)
    index.loc[index["name"] == "2g3r", "modify_seq"] = "ACD"
    index.loc[index["name"] == "2g3r_t", "source"] = "ATLAS"  # NMA arrays under an MD source
    index.to_csv(root / "index.csv", index=False)
    text = "\n".join(check_dataset(root).problems)
    assert "2g3r: 121 rows for a sequence of 3 residues (expected L+2 = 5)" in text
    assert "2g3r_t: md data should have 47 / 10 channels, not 3 / 3" in text


def test_check_accepts_the_authors_published_layout(reference_records, tmp_path):
    """Their HDF5: bare float64 datasets, no attributes; index: name,modify_seq,source,label."""
    recs = list(reference_records)
    with h5py.File(tmp_path / "authors.h5", "w") as h5:
        for r in recs:
            h5.create_dataset(res_key(r.name), data=r.res.astype(np.float64))
            h5.create_dataset(pair_key(r.name), data=r.pair.astype(np.float64))
    index = pd.DataFrame(
        {
            "name": [r.name for r in recs],
            "modify_seq": [r.sequence for r in recs],
            "source": [r.source for r in recs],
            "label": [r.label for r in recs],
        }
    )
    index.to_csv(tmp_path / "index.csv", index=False)
    report = check_dataset(tmp_path / "authors.h5")
    assert report.ok, report.problems
    weights = compute_loss_weights(tmp_path / "authors.h5")
    assert set(weights.weights) == {"ATLAS_GPCRmd_PED_mdCATH", "IDRome", "Proteinflow"}


# ----------------------------------------------------------------------------- loss weights


def test_baseline_rmse_analytic():
    values = np.array([[1.0, 0.0], [3.0, -1.0], [-1.0, 1.0]])  # -1 = undefined
    # channel 0: {1, 3} -> variance 1; channel 1: {0, 1} -> variance 0.25
    assert baseline_rmse(values) == pytest.approx(np.sqrt((1 + 0.25) / 2))
    assert baseline_rmse(values[:, :1]) == pytest.approx(1.0)
    assert np.isnan(baseline_rmse(np.full((3, 1), -1.0)))


def test_weights_follow_the_ratios():
    md = {
        n: r
        for n, r in zip(
            ("sasa_mean", "sasa_std", "rmsf_nor", "ss", "chi", "phi", "psi", *INTERACTIONS, "corr"),
            np.linspace(0.05, 2.0, 17),
            strict=True,
        )
    }
    w = weights_from_rmse(md)
    contribution = {}
    for name, weight in w.items():
        cat = category(name)
        contribution[cat] = contribution.get(cat, 0) + weight * md[name]
    assert contribution["residue"] == pytest.approx(1.0)
    assert contribution["interactions"] == pytest.approx(2.25)
    assert contribution["co_movement"] == pytest.approx(0.75)
    assert (contribution["interactions"] + contribution["co_movement"]) / contribution[
        "residue"
    ] == pytest.approx(3.0)
    # within a category weights are proportional to 1 / RMSE
    assert w["vdw"] * md["vdw"] == pytest.approx(w["ts"] * md["ts"])
    nma = weights_from_rmse({"nma_res": 0.5, "nma_pair": 0.2, "unused": float("nan")})
    assert nma["nma_res"] == pytest.approx(2.0) and nma["nma_pair"] == pytest.approx(15.0)
    assert nma["unused"] == 0.0


def slow_group_rmse(root: Path, names: list[str], kind: str) -> dict[str, float]:
    """Independent loop-by-loop reference of the per-group baseline RMSE."""
    from seqdance.schema import PAIR_FEATURES, RESIDUE_FEATURES

    sums: dict[str, list[float]] = {}
    with h5py.File(root / "features.h5", "r") as h5:
        for name in names:
            res = h5[res_key(name)][()].astype(np.float64)
            pair = h5[pair_key(name)][()].astype(np.float64)
            if kind == "md":
                col = res[:, 2]
                col[col != -1] /= col[col != -1].max()
            for features, arr in ((RESIDUE_FEATURES, res), (PAIR_FEATURES, pair)):
                chosen = [f for f in features if f.source == kind]
                base = chosen[0].start
                for f in chosen:
                    variances = []
                    for c in range(f.start - base, f.stop - base):
                        v = arr[..., c].ravel()
                        v = v[v != -1]
                        if len(v):
                            variances.append(np.var(v))
                    if variances:
                        sums.setdefault(f.name, []).append(np.sqrt(np.mean(variances)))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def test_loss_weights_of_a_dataset(small, tmp_path, capsys):
    weights = compute_loss_weights(small, label="train", nma_bands=False)
    assert weights.n_proteins == {"ATLAS_GPCRmd_PED_mdCATH": 1, "IDRome": 1, "Proteinflow": 1}
    expected = slow_group_rmse(small, ["3tvj_I"], "md")
    for name, value in expected.items():
        assert weights.baseline_rmse["ATLAS_GPCRmd_PED_mdCATH"][name] == pytest.approx(
            value, rel=1e-6
        )
    expected = slow_group_rmse(small, ["2g3r"], "nma")
    assert weights.baseline_rmse["Proteinflow"] == pytest.approx(expected, rel=1e-6)
    assert set(weights.weights["Proteinflow"]) == {"nma_res", "nma_pair"}
    # default: one term per NMA band (the authors' six terms), each its own baseline RMSE
    bands = compute_loss_weights(small, label="train")
    assert set(bands.weights["Proteinflow"]) == {f"nma_{k}{i}" for k in ("res", "pair")
                                                 for i in (1, 2, 3)}  # fmt: skip
    with h5py.File(small / "features.h5", "r") as h5:
        nres, npair = h5[res_key("2g3r")][()], h5[pair_key("2g3r")][()]
    for i in range(3):
        for kind, arr in (("res", nres[..., i]), ("pair", npair[..., i])):
            v = arr.ravel().astype(np.float64)
            v = v[v != -1]
            assert bands.baseline_rmse["Proteinflow"][f"nma_{kind}{i + 1}"] == pytest.approx(
                float(np.std(v)), rel=1e-6
            )
    # CLI writes DIR/loss_weights.json, readable back
    root = copy_of(small, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "weights", str(root), "--no-progress"])
    assert exit_info.value.code == 0
    data = json.loads((root / "loss_weights.json").read_text())
    assert data["groups"]["IDRome"]["n_proteins"] == 1
    loaded = LossWeights.load(root / "loss_weights.json")
    assert loaded.weight("Proteinflow", "nma_pair2") == pytest.approx(
        bands.weights["Proteinflow"]["nma_pair2"]
    )
    with pytest.raises(SeqDanceError, match="group 'IDRome', feature 'nma_res1'"):
        loaded.weight("IDRome", "nma_res1")


# ----------------------------------------------------------------------------- split


def test_assign_split_is_deterministic_and_keeps_clusters_whole():
    clusters = {f"p{i}": f"c{i % 10}" for i in range(100)}  # 10 clusters of 10
    a = assign_split(clusters, 0.05, seed=1)
    b = assign_split(dict(reversed(clusters.items())), 0.05, seed=1)
    assert a == b
    test = [n for n, lab in a.items() if lab == "test"]
    assert len(test) == 10  # one whole cluster reaches ceil(5% of 100)
    assert len({clusters[n] for n in test}) == 1
    assert assign_split({"only": "only"}, 0.5) == {"only": "train"}
    with pytest.raises(SeqDanceError):
        assign_split(clusters, 1.5)


def mutate(seq: str, fraction: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    letters = list(seq)
    for pos in rng.choice(len(seq), int(fraction * len(seq)), replace=False):
        letters[pos] = "W" if letters[pos] != "W" else "C"
    return "".join(letters)


needs_mmseqs = pytest.mark.skipif(
    shutil.which("mmseqs") is None, reason="mmseqs binary absent (apt-get install mmseqs2)"
)


@needs_mmseqs
def test_mmseqs_clusters_at_50_percent_identity():
    from seqdance.features.structure import read_calphas

    base = read_calphas(NMA / "2g3r.pdb").sequence  # 119 residues
    other = read_calphas(NMA / "2KCF.pdb").sequence
    sequences = {
        "base": base,
        "close": mutate(base, 0.2, 0),  # 80% identical
        "far": mutate(base, 0.7, 1),  # 30% identical
        "other": other,
    }
    clusters = cluster_sequences(sequences)
    assert clusters["close"] == clusters["base"]
    assert clusters["far"] != clusters["base"]
    assert clusters["other"] not in (clusters["base"], clusters["far"])


@needs_mmseqs
def test_split_command_rewrites_the_index(small, tmp_path, capsys):
    root = copy_of(small, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "split", str(root), "--test-fraction", "0.3", "--seed", "3"])
    assert exit_info.value.code == 0
    index = pd.read_csv(root / "index.csv", keep_default_na=False)
    assert {"label", "cluster"} <= set(index.columns)
    # identical sequences share a cluster and a label
    by = index.set_index("name")
    assert by.loc["3tvj_I", "cluster"] == by.loc["idr1", "cluster"]
    assert by.loc["2g3r", "label"] == by.loc["2g3r_t", "label"]
    assert set(index["label"]) == {"train", "test"}
    assert check_dataset(root).ok


def test_missing_mmseqs_is_a_clear_error(small):
    with pytest.raises(SeqDanceError, match="apt-get install mmseqs2"):
        split_dataset(small, SplitConfig(mmseqs="no-such-mmseqs-binary"))


# ----------------------------------------------------------------------------- tokens


def test_tokenize():
    ids = tokenize("LAg")
    assert ids.tolist() == [0, 4, 5, 6, 2]
    assert len(ESM_TOKENS) == 33 and ESM_TOKENS[32] == "<mask>"
    with pytest.raises(SeqDanceError, match="invalid residue 'J' at position 2"):
        tokenize("AJ", "p")


def test_vectorised_tokenize_equals_encode():
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWYXBUZO"), size=300))
    assert tokenize(seq).tolist() == encode(seq)
    assert tokenize(seq.lower()).tolist() == encode(seq)


def test_merge_published_parts(reference_records, small, tmp_path, capsys):
    recs = list(reference_records)
    for k, chunk in enumerate((recs[:1], recs[1:])):
        merge_into(tmp_path / f"part{k}.h5", chunk, existing=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "merge", str(tmp_path / "part0.h5"), str(tmp_path / "part1.h5"),
              "--out", str(tmp_path / "all.h5")])  # fmt: skip
    assert exit_info.value.code == 0
    with (
        h5py.File(tmp_path / "all.h5", "r") as merged,
        h5py.File(small / "features.h5", "r") as ref,
    ):
        assert sorted(merged.keys()) == sorted(ref.keys())
        for key in ref.keys():
            np.testing.assert_array_equal(merged[key][()], ref[key][()])
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "merge", str(tmp_path / "part0.h5"), str(tmp_path / "part0.h5"),
              "--out", str(tmp_path / "dup.h5")])  # fmt: skip
    assert exit_info.value.code == 1
    assert "3tvj_I_pair_feature is in both" in capsys.readouterr().err
    assert not (tmp_path / "dup.h5").exists()


def test_merged_parts_are_a_dataset_with_an_index(reference_records, small, tmp_path, capsys):
    """`dataset merge` writes index.csv beside its output: from each part's index, from our
    attributes, or from --index; `dataset check` then passes on the merged dataset."""
    recs = list(reference_records)
    reference = read_index(small / "index.csv")
    parts = []
    for k, chunk in enumerate((recs[:1], recs[1:])):
        folder = tmp_path / f"part{k}"
        merge_into(folder / "features.h5", chunk, existing=False)
        write_index(folder / "index.csv", pd.DataFrame([r.index_row() for r in chunk]))
        parts.append(str(folder / "features.h5"))

    def merge(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_info:
            main(["dataset", "merge", *args])
        return exit_info.value.code

    assert merge(*parts, "--out", str(tmp_path / "all" / "features.h5")) == 0

    def by_name(index: pd.DataFrame) -> pd.DataFrame:  # rows in merged-file (HDF5) order
        return index.sort_values("name", ignore_index=True)

    merged = read_index(tmp_path / "all" / "index.csv")
    pd.testing.assert_frame_equal(by_name(merged), by_name(reference))  # labels from the parts
    assert merge_check(tmp_path / "all") == 0

    for k in range(2):  # no index beside the parts: rows from the stored attributes
        (tmp_path / f"part{k}" / "index.csv").unlink()
    assert merge(*parts, "--out", str(tmp_path / "attrs.h5")) == 0
    from_attrs, expected = by_name(read_index(tmp_path / "index.csv")), by_name(reference)
    for column in ("name", "modify_seq", "source", "kind", "length"):
        assert list(from_attrs[column].astype(str)) == list(expected[column].astype(str))
    assert set(from_attrs["label"]) == {""}

    given = tmp_path / "given.csv"  # --index: e.g. the published index, rows in any order
    write_index(given, reference.iloc[::-1])
    assert merge(*parts, "--out", str(tmp_path / "g" / "features.h5"), "--index", str(given)) == 0
    pd.testing.assert_frame_equal(
        by_name(read_index(tmp_path / "g" / "index.csv")), by_name(reference)
    )

    write_index(given, reference.iloc[1:])  # a protein without a row: nothing written
    capsys.readouterr()
    assert merge(*parts, "--out", str(tmp_path / "h" / "features.h5"), "--index", str(given)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {given}: no row for 1 protein(s)")
    assert not (tmp_path / "h").exists() or not any((tmp_path / "h").iterdir())


def merge_check(root: Path) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "check", str(root)])
    return exit_info.value.code
