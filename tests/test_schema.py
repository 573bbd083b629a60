"""The output schema: 50 residue and 13 pair channels, in the published order."""

import pytest

from seqdance import schema


def test_channel_counts_and_order():
    assert schema.N_RESIDUE_OUTPUTS == 50 and schema.N_PAIR_OUTPUTS == 13
    assert schema.RESIDUE_CHANNELS[:11] == (
        "sasa_mean", "sasa_std", "rmsf_nor",
        "ss_B", "ss_E", "ss_H", "ss_I", "ss_G", "ss_S", "ss_T", "ss_loop",
    )  # fmt: skip
    assert schema.RESIDUE_CHANNELS[11] == "chi_0" and schema.RESIDUE_CHANNELS[22] == "chi_11"
    assert schema.RESIDUE_CHANNELS[23] == "phi_0" and schema.RESIDUE_CHANNELS[35] == "psi_0"
    assert schema.RESIDUE_CHANNELS[47:] == ("nma_res1", "nma_res2", "nma_res3")
    assert schema.PAIR_CHANNELS == (
        "vdw", "hbbb", "hbsb", "hbss", "hp", "sb", "pc", "ps", "ts",
        "corr", "nma_pair1", "nma_pair2", "nma_pair3",
    )  # fmt: skip


def test_slices_and_activations_match_the_paper_table():
    f = schema.FEATURE_BY_NAME
    assert f["ss"].slice == slice(3, 11) and f["ss"].activation == "softmax"
    assert f["chi"].slice == slice(11, 23) and f["phi"].slice == slice(23, 35)
    assert f["psi"].slice == slice(35, 47) and f["nma_res"].slice == slice(47, 50)
    assert f["rmsf_nor"].activation == "sigmoid" and f["sasa_mean"].activation == "softplus"
    assert f["corr"].slice == slice(9, 10) and f["corr"].activation == "tanh2"
    assert f["nma_pair"].slice == slice(10, 13) and f["nma_pair"].activation == "tanh2"
    assert all(f[name].activation == "softplus" for name in schema.INTERACTIONS)


def test_stored_layouts_per_source():
    assert len(schema.MD_RESIDUE_CHANNELS) == 47 and len(schema.MD_PAIR_CHANNELS) == 10
    assert schema.NMA_RESIDUE_CHANNELS == ("nma_res1", "nma_res2", "nma_res3")
    assert schema.NMA_PAIR_CHANNELS == ("nma_pair1", "nma_pair2", "nma_pair3")
    assert schema.output_slice("residue", "md") == slice(0, 47)
    assert schema.output_slice("pair", "nma") == slice(10, 13)


def test_data_groups():
    assert [g.name for g in schema.DATA_GROUPS] == [
        "ATLAS_GPCRmd_PED_mdCATH", "IDRome", "Proteinflow",
    ]  # fmt: skip
    assert schema.group_of_source("mdCATH").name == "ATLAS_GPCRmd_PED_mdCATH"
    assert schema.group_of_source("proteinflow_sabdab").source_kind == "nma"
    with pytest.raises(KeyError, match="unknown data source"):
        schema.group_of_source("PDBbind")


def test_resolve_properties():
    assert len(schema.resolve_properties(None)) == 63
    got = schema.resolve_properties("sasa_mean,psi")
    assert got == ("sasa_mean",) + tuple(f"psi_{i}" for i in range(12))
    assert schema.resolve_properties(["ss_H", "corr"]) == ("ss_H", "corr")
    with pytest.raises(ValueError, match="unknown property 'rmsd'"):
        schema.resolve_properties("rmsd")
