"""The Python API reads what the CLI reads: property names, mutants; labelled score tables;
B-factors that keep small values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqdance.errors import PropertyError, SeqDanceError
from seqdance.inference.bfactor import bfactor_scale
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.score import score_mutants, score_sequences
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS, resolve_properties

WILD_TYPE = "MKTAYIAKQRQISFVKSHFSRQ"


def test_score_sequences_takes_the_names_the_cli_takes(tiny_model):
    mutants = [WILD_TYPE[:3] + "W" + WILD_TYPE[4:], "G" + WILD_TYPE[1:]]
    by_feature = score_sequences(tiny_model, WILD_TYPE, mutants, "sasa_mean,psi")
    by_channel = score_sequences(
        tiny_model, WILD_TYPE, mutants, resolve_properties("sasa_mean,psi")
    )
    listed = score_sequences(tiny_model, WILD_TYPE, mutants, ["psi", "sasa_mean"])
    assert by_feature.shape == (2, 13)
    np.testing.assert_array_equal(by_feature, by_channel)
    np.testing.assert_array_equal(by_feature, listed)  # schema order, whatever the order given
    everything = score_sequences(tiny_model, WILD_TYPE, mutants)  # None: all 63 channels
    assert everything.shape == (2, len(RESIDUE_CHANNELS) + len(PAIR_CHANNELS))
    columns = [RESIDUE_CHANNELS.index(c) for c in resolve_properties("sasa_mean,psi")]
    np.testing.assert_allclose(everything[:, columns], by_feature, rtol=1e-5)  # fp32 sums


@pytest.mark.parametrize("names", ["rmsd", ["ss_H", "bogus"], ""])
def test_unknown_property_is_one_line_error_in_the_api(tiny_model, names):
    mutant_set = build_mutant_set(WILD_TYPE, ["A4W"])
    with pytest.raises(PropertyError) as info:
        score_mutants(tiny_model, mutant_set, names)
    assert "\n" not in str(info.value) and isinstance(info.value, SeqDanceError)


def test_score_table_is_labelled(tiny_model):
    mutants = ["A4W", "T3E:K8R"]
    scores = score_mutants(tiny_model, build_mutant_set(WILD_TYPE, mutants), "sasa_mean,psi")
    table = scores.frame(mutants)
    assert list(table.index) == mutants and table.index.name == "mutant"
    assert list(table.columns) == list(scores.columns())
    assert "norm_geometric_mean" in table.columns and "psi" in table.columns
    np.testing.assert_array_equal(table["psi_3"].to_numpy(), scores.channel_scores[:, 4])
    # psi, the feature, is the mean over its 12 channels
    psi = table[[f"psi_{i}" for i in range(12)]].mean(axis=1)
    pd.testing.assert_series_equal(table["psi"], psi, check_names=False, rtol=1e-12)
    with pytest.raises(SeqDanceError, match="1 row names for 2 mutants"):
        scores.frame(["A4W"])


@pytest.mark.parametrize(
    ("largest", "scale"),
    [(0.0031, 1e4), (0.01, 1e3), (0.0999, 1e3), (0.99994, 100), (0.99996, 10), (1.0, 10),
     (5.3, 10), (99.99, 1), (150.0, 0.1), (0.0, 1)],
)  # fmt: skip
def test_bfactor_scale_keeps_four_digits_in_six_characters(largest, scale):
    values = np.array([largest, -largest / 2, 0.0])
    assert bfactor_scale(values) == pytest.approx(scale)
    written = np.round(values * bfactor_scale(values), 2)
    assert all(len(f"{v:6.2f}") <= 6 for v in written)  # fits the PDB column
    if largest:
        assert 10 <= np.abs(written).max() < 100  # four significant digits
