"""The torch Dataset: targets in the model layout, RMSF normalisation, crops, collate, groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from seqdance.alphabet import tokenize
from seqdance.data.dataset import (
    DatasetConfig,
    ProteinDataset,
    collate,
    group_loaders,
    iterate_groups,
)
from seqdance.data.store import merge_into, write_index
from seqdance.errors import InputFileError
from seqdance.schema import N_PAIR_OUTPUTS, N_RESIDUE_OUTPUTS, output_slice

MD_RES, NMA_RES = output_slice("residue", "md"), output_slice("residue", "nma")
MD_PAIR, NMA_PAIR = output_slice("pair", "md"), output_slice("pair", "nma")


@pytest.fixture(scope="module")
def root(small_dataset):
    """The shared small dataset of the authors' reference arrays (read only)."""
    return small_dataset


@pytest.fixture(scope="module")
def stored(reference_records):
    return {r.name: r for r in reference_records}


def test_md_item_layout_and_rmsf_normalisation(root, stored):
    ds = ProteinDataset(root, config=DatasetConfig(crop_size=None, clamp=None))
    item = ds[ds.names.index("3tvj_I")]
    rec = stored["3tvj_I"]
    t = rec.length + 2
    assert item["res"].shape == (t, N_RESIDUE_OUTPUTS) and item["pair"].shape == (
        t,
        t,
        N_PAIR_OUTPUTS,
    )
    assert torch.equal(item["input_ids"], torch.from_numpy(tokenize(rec.sequence)))
    res = item["res"].numpy()
    expected = rec.res.copy()
    rmsf = expected[1:-1, 2]
    expected[1:-1, 2] = rmsf / rmsf.max()
    np.testing.assert_allclose(res[:, MD_RES], expected, rtol=1e-6)
    assert res[1:-1, 2].max() == pytest.approx(1.0)
    assert (res[:, NMA_RES] == -1).all()  # MD protein: NMA channels not measured
    assert (item["pair"][..., NMA_PAIR] == -1).all()
    np.testing.assert_array_equal(item["pair"][..., MD_PAIR].numpy(), rec.pair)
    assert item["group"] == "ATLAS_GPCRmd_PED_mdCATH"


def test_nma_item_and_clamp(root, stored):
    ds = ProteinDataset(root, label="test", config=DatasetConfig(crop_size=None, clamp=2.0))
    assert ds.names == ["2g3r_t"]
    item = ds[0]
    assert (item["res"][:, MD_RES] == -1).all() and (item["pair"][..., MD_PAIR] == -1).all()
    np.testing.assert_allclose(item["res"][:, NMA_RES].numpy(), stored["2g3r_t"].res, rtol=1e-6)
    # the authors never clip targets: by default vdw 8.5 ** (1/3) = 2.04 stays; clamp is an option
    md = ProteinDataset(root, groups=["ATLAS_GPCRmd_PED_mdCATH"])[0]
    raw_vdw = stored["3tvj_I"].pair[..., 0]  # (L+2, L+2) as stored, cube-rooted
    assert md["pair"][..., 0].max().item() == pytest.approx(float(raw_vdw.max()), rel=1e-6)
    assert md["pair"][..., 0].max() == pytest.approx(8.5 ** (1 / 3), rel=1e-4)
    clipped = ProteinDataset(root, groups=["ATLAS_GPCRmd_PED_mdCATH"],
                             config=DatasetConfig(clamp=2.0))[0]  # fmt: skip
    assert clipped["pair"].max() <= 2.0
    assert clipped["pair"][..., 0].max() == pytest.approx(2.0)


def test_training_groups_leave_mdcath_out(reference_records, tmp_path):
    """The authors' training loader: MD group = ATLAS, GPCRmd, PED; mdCATH proteins not read
    (the reading/evaluation table, DATA_GROUPS, keeps them; a config table can add them)."""
    import dataclasses

    from seqdance.schema import TRAINING_GROUPS, DataGroup

    recs = list(reference_records)
    recs.append(dataclasses.replace(recs[0], name="cath1", source="mdCATH"))
    merge_into(tmp_path / "features.h5", recs)
    write_index(tmp_path / "index.csv", pd.DataFrame([r.index_row() for r in recs]))
    everything = ProteinDataset(tmp_path)
    assert "cath1" in everything.names
    training = ProteinDataset(tmp_path, group_table=TRAINING_GROUPS)
    assert training.names == [n for n in everything.names if n != "cath1"]
    md = TRAINING_GROUPS[0]
    with_cath = (DataGroup(md.name, (*md.sources, "mdCATH"), "md"), *TRAINING_GROUPS[1:])
    ds = ProteinDataset(tmp_path, group_table=with_cath)
    assert ds.names == everything.names and ds.groups[ds.names.index("cath1")] == md.name


def test_evaluation_crop_is_n_terminal(root):
    full = ProteinDataset(root, config=DatasetConfig(crop_size=None, clamp=None))
    crop = ProteinDataset(root, config=DatasetConfig(crop_size=16, random_crop=False, clamp=None))
    for i in range(len(full)):
        a, b = full[i], crop[i]
        assert b["start"] == 0 and len(b["input_ids"]) == 16
        assert torch.equal(b["input_ids"], a["input_ids"][:16])
        assert torch.equal(b["res"], a["res"][:16]) and torch.equal(b["pair"], a["pair"][:16, :16])


def test_random_crop_is_a_window_of_the_full_item(root):
    full = ProteinDataset(root, config=DatasetConfig(crop_size=None, clamp=None))
    crop = ProteinDataset(root, config=DatasetConfig(crop_size=20, random_crop=True, clamp=None))
    torch.manual_seed(0)
    i = full.names.index("2g3r")  # 121 tokens
    a = full[i]
    starts = set()
    for _ in range(30):
        b = crop[i]
        s = b["start"]
        starts.add(s)
        assert 0 <= s <= 121 - 20
        assert torch.equal(b["input_ids"], a["input_ids"][s : s + 20])
        assert torch.equal(b["res"], a["res"][s : s + 20])
        assert torch.equal(b["pair"], a["pair"][s : s + 20, s : s + 20])
    assert len(starts) > 10
    # RMSF is normalised by the whole protein's maximum, not the window's
    md = crop[crop.names.index("3tvj_I")]
    whole = full[full.names.index("3tvj_I")]
    s = md["start"]
    assert torch.equal(md["res"][:, 2], whole["res"][s : s + 20, 2])


def test_collate_pads_with_minus_one(root):
    ds = ProteinDataset(root, config=DatasetConfig(crop_size=None))
    items = [ds[ds.names.index("3tvj_I")], ds[ds.names.index("2g3r")]]
    batch = collate(items)
    assert batch["input_ids"].shape == (2, 121)
    assert batch["res"].shape == (2, 121, 50) and batch["pair"].shape == (2, 121, 121, 13)
    assert batch["attention_mask"][0].sum() == 40 and batch["attention_mask"][1].sum() == 121
    assert (batch["input_ids"][0, 40:] == 1).all()  # <pad>
    assert (batch["res"][0, 40:] == -1).all() and (batch["pair"][0, 40:] == -1).all()
    assert (batch["pair"][0, :, 40:] == -1).all()
    assert torch.equal(batch["res"][0, :40], items[0]["res"])
    assert batch["names"] == ["3tvj_I", "2g3r"]


@pytest.mark.parametrize("workers", [0, 2])
def test_group_loaders_draw_one_batch_per_group(root, workers):
    ds = ProteinDataset(root, label="train", config=DatasetConfig(crop_size=32))
    loaders = group_loaders(ds, batch_size=3, num_workers=workers, seed=0)
    assert list(loaders) == ["ATLAS_GPCRmd_PED_mdCATH", "IDRome", "Proteinflow"]
    stream = iterate_groups(loaders)
    for _ in range(2):
        update = next(stream)
        for group, batch in update.items():
            assert batch["input_ids"].shape[0] == 3 and batch["input_ids"].shape[1] <= 32
            assert set(batch["groups"]) == {group}
        assert (update["Proteinflow"]["res"][..., MD_RES] == -1).all()


def test_missing_protein_is_a_clear_error(root, tmp_path):
    index = pd.read_csv(root / "index.csv", keep_default_na=False)
    index.loc[0, "name"] = "ghost"
    with pytest.raises(InputFileError, match="no datasets for protein 'ghost'"):
        ProteinDataset(root, index=index)
    with pytest.raises(InputFileError, match="no such dataset file"):
        ProteinDataset(tmp_path)
