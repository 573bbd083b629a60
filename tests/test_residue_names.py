"""Residue numbers and names as MD engines write them (issue 22, section 2).

References: MDAnalysis' AMBER reader (residue numbers and names of a PRMTOP), MDTraj's
whole-trajectory RMSF, the PDB's chemistry of each residue written out by hand (parent amino
acids of modified residues, the amino acid of each force-field name), and the GetContacts
TSV of 3tvj_I with its labels edited.
"""

from __future__ import annotations

import warnings

import mdtraj as md
import numpy as np
import pytest

from seqdance.cli import main
from seqdance.errors import InputFileError
from seqdance.features.contacts import detect_contacts
from seqdance.features.md import md_features
from seqdance.features.topology import load_topology
from seqdance.residues import letter_notes, one_letter, sequence_of

# the amino acid each engine name stands for (AMBER, CHARMM, GROMACS/GROMOS manuals)
ENGINE_NAMES = {
    "HIE": "H", "HID": "H", "HIP": "H", "HSD": "H", "HSE": "H", "HSP": "H", "HISA": "H",
    "CYX": "C", "CYM": "C", "CYS2": "C", "ASH": "D", "GLH": "E", "LYN": "K", "LYSH": "K",
    "NALA": "A", "CLYS": "K",
}  # fmt: skip
# the parent amino acid of modified residues (PDB Chemical Component Dictionary entries)
MODIFIED = {
    "MSE": "M",  # selenomethionine
    "SEP": "S",  # phosphoserine
    "TPO": "T",  # phosphothreonine
    "PTR": "Y",  # O-phosphotyrosine
    "CSO": "C",  # S-hydroxycysteine
    "SME": "M",  # methionine sulfoxide
    "NLE": "L",  # norleucine (the dictionary's parent: LEU)
    "HYP": "P",  # 4-hydroxyproline
    "MLY": "K",  # N-dimethyl-lysine
}


def _run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


@pytest.mark.parametrize("name, letter", sorted({**ENGINE_NAMES, **MODIFIED}.items()))
def test_engine_and_modified_names_get_their_amino_acids_letter(name, letter):
    assert one_letter(name) == letter
    assert one_letter(name.lower() + " ") == letter


def test_letter_notes_list_modified_residues_and_unknowns():
    notes = letter_notes(["ALA", "MSE", "MSE", "SME", "HIE", "DAL", "HOH"])
    assert len(notes) == 2
    assert "MSE->M x2" in notes[0] and "SME->M" in notes[0] and "HIE" not in notes[0]
    assert "DAL" in notes[1] and "HOH" in notes[1]
    assert letter_notes(["ALA", "HIE", "CYX", "HSD"]) == []  # engine names need no note


def test_prmtop_residues_numbered_and_named_as_amber_does(data_path):
    """MDAnalysis numbers PRMTOP residues 1..N and keeps HIE: so must we."""
    import MDAnalysis as mda  # the test extra's reference reader

    top = data_path("names", "ache.prmtop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = mda.Universe(str(top))
    prepared = load_topology(top)
    ours = [(r.name, int(r.resSeq)) for r in prepared.topology.residues]
    reference = [
        (str(n), int(i))
        for n, i in zip(universe.residues.resnames, universe.residues.resids, strict=True)
    ]
    assert ours == reference
    assert ours[0][1] == 1 and ("HIE", 4) in ours
    # atom names as written too (MDTraj's standard names would rename some)
    assert [a.name for a in prepared.topology.atoms] == [str(n) for n in universe.atoms.names]


def test_features_md_on_prmtop_keeps_file_numbers_and_names(data_path):
    top, trj = data_path("names", "ache.prmtop"), data_path("names", "ache.mdcrd")
    features = md_features(top, trj)
    table = features.residues
    assert table["resid"].tolist() == list(range(1, 15))
    names = table["resname"].tolist()
    assert names.count("HIE") == 2 and "HIS" not in names
    hand = {"ALA": "A", "GLU": "E", "PHE": "F", "HIE": "H", "ARG": "R", "TRP": "W", "SER": "S",
            "TYR": "Y", "MET": "M", "VAL": "V", "LYS": "K"}  # fmt: skip
    assert features.sequence == "".join(hand[n] for n in names)
    # values: MDTraj's RMSF of the C-alpha atoms after superposition on frame 0
    traj = md.load(str(trj), top=str(top))
    ca = traj.topology.select("name CA")
    traj.superpose(traj, 0, atom_indices=ca)
    xyz = traj.xyz[:, ca].astype(np.float64)
    rmsf = np.sqrt(((xyz - xyz.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
    np.testing.assert_allclose(table["rmsf"].to_numpy(), rmsf, atol=2e-6)


def test_native_contact_labels_use_the_prmtop_names_and_numbers(data_path):
    top, trj = data_path("names", "ache.prmtop"), data_path("names", "ache.mdcrd")
    _, stream = detect_contacts(top, trj)
    lines = list(stream)
    labels = {lab for line in lines for lab in (line.atom1, line.atom2)}
    residues = {tuple(lab.split(":")[1:3]) for lab in labels}
    named = {(r.name, str(r.resSeq)) for r in load_topology(top).topology.residues}
    assert residues <= named and any(name == "HIE" for name, _ in residues)
    assert all(int(number) >= 1 for _, number in residues)


def test_modified_residue_spelled_as_parent_with_a_note(data_path):
    pdb = data_path("names", "neopetrosiamide_2models.pdb")
    features = md_features(pdb, pdb)
    # RCSB's canonical sequence of 2JUY (SME 24 -> M)
    assert features.sequence == "FFCPFGCALVDCGPNRPCRDTGFMSCDC"
    assert features.residues["resname"].tolist()[23] == "SME"
    assert any("SME->M" in note for note in features.notes)


# ------------------------------------------------------------------ TSV labels on the topology


def _edit_tsv(src, dst, edit):
    lines = src.read_text().splitlines()
    out = lines[:2]
    for line in lines[2:]:
        cols = line.split("\t")
        out.append("\t".join(cols[:2] + [edit(lab) for lab in cols[2:]]))
    dst.write_text("\n".join(out) + "\n")
    return dst


def _shift(label: str, by: int = 1) -> str:
    chain, name, number, atom = label.split(":")
    return f"{chain}:{name}:{int(number) + by}:{atom}"


@pytest.fixture(scope="module")
def tvj(data_path):
    folder = data_path("md", "3tvj_I")
    return (folder / "3tvj_I.pdb", folder / "3tvj_I_10frames.dcd",
            folder / "3tvj_I_10frames_contact.tsv")  # fmt: skip


def test_tsv_numbered_off_by_one_is_refused_at_its_first_label(tmp_path, tvj):
    top, trj, tsv = tvj
    shifted = _edit_tsv(tsv, tmp_path / "shifted.tsv", _shift)
    first = shifted.read_text().splitlines()[2].split("\t")[2]  # X:GLU:5:OE1
    with pytest.raises(InputFileError) as info:
        md_features(top, trj, contacts=shifted)
    message = str(info.value)
    assert "\n" not in message and repr(first) in message and "does not match" in message


def test_tsv_with_engine_names_of_the_same_residues_is_accepted(tmp_path, tvj):
    top, trj, tsv = tvj

    def rename(label: str) -> str:
        return label.replace(":CYS:", ":CYX:").replace(":ASP:", ":ASH:")

    renamed = _edit_tsv(tsv, tmp_path / "renamed.tsv", rename)
    assert ":CYX:" in renamed.read_text()
    a = md_features(top, trj, contacts=tsv)
    b = md_features(top, trj, contacts=renamed)
    for key in ("vdw", "hbbb", "sb"):
        np.testing.assert_array_equal(a.pair[key], b.pair[key])


def test_cli_tsv_mismatch_one_error_line_and_no_files(tmp_path, capsys, tvj):
    top, trj, tsv = tvj
    wrong = _edit_tsv(tsv, tmp_path / "wrong.tsv", lambda lab: _shift(lab, 100))
    out = tmp_path / "out"
    capsys.readouterr()
    code = _run_cli(["features", "md", "-t", str(top), "-x", str(trj), "-o", str(out / "x"),
                     "--contacts", str(wrong)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and "not among" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_sequence_of_matches_hand_table_for_a_mixed_list():
    names = ["ALA", "HSD", "MSE", "SEP", "CYX", "GLH", "PTR", "NLE", "XYZ"]
    assert sequence_of(names) == "AHMSCEYLX"
