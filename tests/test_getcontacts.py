"""GetContacts TSV reading and the two residue-pair reductions, on the real 3tvj_I output."""

from pathlib import Path

import numpy as np
import pytest

from seqdance.errors import InputFileError
from seqdance.features.getcontacts import (
    ContactLine,
    read_contacts,
    residue_pair_counts,
    residue_pair_frequencies,
)
from seqdance.schema import INTERACTIONS

TVJ = Path(__file__).parent / "data" / "md" / "3tvj_I"
RESIDUES = [("X", str(i)) for i in range(1, 39)]


def test_counts_equal_the_authors_pair_reference():
    header, lines = read_contacts(TVJ / "3tvj_I_10frames_contact.tsv")
    assert header.total_frames == 10 and header.stride == 1
    lines = list(lines)
    counts = residue_pair_counts(lines, RESIDUES, header.total_frames)  # default: "listed"
    both = residue_pair_counts(lines, RESIDUES, header.total_frames, cells="both")
    ref = np.load(TVJ / "3tvj_I_pair_feature.npz")["array"]  # (38, 38, 10), one cell per line
    for k, itype in enumerate(INTERACTIONS):
        one = np.where(ref[:, :, k] < 0, 0.0, ref[:, :, k])
        np.testing.assert_allclose(counts[itype], one)  # the authors' cells, exactly
        np.testing.assert_allclose(both[itype], one + one.T - np.diag(np.diag(one)))
        np.testing.assert_array_equal(both[itype], both[itype].T)
    # the authors' cells follow the atom order of each line: both triangles hold values
    vdw = counts["vdw"]
    assert (np.triu(vdw, 1) > 0).sum() == 49 and (np.tril(vdw, -1) > 0).sum() == 46
    assert counts["vdw"].max() == pytest.approx(8.5)
    with pytest.raises(ValueError, match="cells must be one of"):
        residue_pair_counts(lines, RESIDUES, header.total_frames, cells="upper")


def test_frequency_counts_frames_not_lines():
    lines = [
        ContactLine(0, "vdw", "X:ALA:1:CB", "X:LEU:5:CD1"),
        ContactLine(0, "vdw", "X:ALA:1:O", "X:LEU:5:CD2"),  # same frame, same pair: once
        ContactLine(1, "vdw", "X:LEU:5:CD1", "X:ALA:1:CB"),
        ContactLine(1, "sb", "X:ALA:1:N", "X:LEU:5:O"),
    ]
    residues = [("X", "1"), ("X", "5")]
    freq = residue_pair_frequencies(lines, residues, n_frames=4)
    counts = residue_pair_counts(lines, residues, n_frames=4, cells="both")
    assert freq["vdw"][0, 1] == freq["vdw"][1, 0] == 0.5  # 2 of 4 frames
    assert counts["vdw"][0, 1] == 0.75  # 3 lines over 4 frames
    listed = residue_pair_counts(lines, residues, n_frames=4)
    assert listed["vdw"][0, 1] == 0.5 and listed["vdw"][1, 0] == 0.25  # by each line's order
    assert freq["sb"][0, 1] == 0.25 and freq["hbbb"].sum() == 0


def test_frequencies_bounded_and_below_counts_on_real_output():
    header, lines = read_contacts(TVJ / "3tvj_I_10frames_contact.tsv")
    lines = list(lines)
    freq = residue_pair_frequencies(lines, RESIDUES, header.total_frames)
    counts = residue_pair_counts(lines, RESIDUES, header.total_frames, cells="both")
    for itype in INTERACTIONS:
        assert freq[itype].min() >= 0 and freq[itype].max() <= 1
        assert np.all(freq[itype] <= counts[itype] + 1e-12)
        np.testing.assert_array_equal(freq[itype] > 0, counts[itype] > 0)


def test_not_a_getcontacts_file(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("frame\titype\n")
    with pytest.raises(InputFileError, match="not a GetContacts TSV"):
        read_contacts(path)
