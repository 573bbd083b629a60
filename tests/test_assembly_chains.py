"""Assemblies of more than 26 chains (issue 28 section 2): 30 copies of 3tvj_I.

The same assembly is written as PDB (chain letters wrapping after Z, TER records and
segment IDs), as mmCIF (author chain IDs wrapping, ``label_asym_id`` unique) and as GRO
(no chain labels at all), with one DCD of two frames for all three. Each must give the
same residues and the same features; the features are checked against MDTraj's own
whole-trajectory functions on the assembly and, for contacts, against the monomer's
(copies are 6 nm apart, so no contact crosses copies).
"""

from __future__ import annotations

import string
from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd
import pytest

from seqdance.errors import SeqDanceError
from seqdance.features.formats.pdb import open_pdb_frames
from seqdance.features.md import ANGLE_COLUMNS, PAIR_KEYS, SS_COLUMNS, md_features
from seqdance.features.md_kernels import ANGLE_EDGES, correlation_reference, dssp_class_counts
from seqdance.features.topology import load_topology
from seqdance.schema import INTERACTIONS

TVJ = Path(__file__).parent / "data" / "md" / "3tvj_I"
TVJ_TOP, TVJ_TRJ = TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd"
N_COPIES, N_RES, N_FRAMES = 30, 38, 2
SPACING_NM = 6.0
WRAPPED = [string.ascii_uppercase[k % 26] for k in range(N_COPIES)]  # A .. Z, A .. D
FILE_LABELS = [c if k < 26 else f"{c}_2" for k, c in enumerate(WRAPPED)]  # after uniquing
GRO_LABELS = list(string.ascii_uppercase) + ["AA", "AB", "AC", "AD"]  # chains found at breaks
SASA_TOL = 0.01  # nm^2, as in test_md_features


def _assembly() -> md.Trajectory:
    """30 copies of the first two frames of 3tvj_I on a 6 x 5 grid, SPACING_NM apart."""
    traj = md.load(str(TVJ_TRJ), top=str(TVJ_TOP))[:N_FRAMES]
    copies = []
    for k in range(N_COPIES):
        shift = np.array([k % 6, k // 6, 0.0], dtype=np.float32) * SPACING_NM
        one = traj[:]
        one.xyz = traj.xyz + shift
        copies.append(one)
    out = copies[0]
    for one in copies[1:]:
        out = out.stack(one)
    out.unitcell_vectors = np.tile(np.eye(3, dtype=np.float32) * 50.0, (N_FRAMES, 1, 1))
    return out


def _atoms(traj: md.Trajectory):
    """(copy, atom) of every atom, in file order."""
    per_copy = traj.n_atoms // N_COPIES
    for i, atom in enumerate(traj.topology.atoms):
        yield i // per_copy, atom


def _write_pdb(traj: md.Trajectory, path: Path) -> None:
    lines = ["CRYST1  500.000  500.000  500.000  90.00  90.00  90.00 P 1           1"]
    serial, last = 0, 0
    for copy, atom in _atoms(traj):
        if copy != last:
            lines.append("TER")
            last = copy
        serial += 1
        x, y, z = traj.xyz[0, atom.index] * 10
        name = atom.name if len(atom.name) == 4 else f" {atom.name:<3}"
        lines.append(
            f"ATOM  {serial % 100000:5d} {name} {atom.residue.name:>3} {WRAPPED[copy]}"
            f"{atom.residue.resSeq:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00      "
            f"P{copy:03d}{atom.element.symbol:>2}"
        )
    lines += ["TER", "END"]
    path.write_text("\n".join(lines) + "\n")


def _asym(k: int) -> str:
    """mmCIF-style unique chain IDs: A .. Z, AA, AB ..."""
    return string.ascii_uppercase[k] if k < 26 else "A" + string.ascii_uppercase[k - 26]


def _write_cif(traj: md.Trajectory, path: Path) -> None:
    columns = (
        "group_PDB id type_symbol label_atom_id label_comp_id label_asym_id label_seq_id "
        "Cartn_x Cartn_y Cartn_z auth_seq_id auth_comp_id auth_asym_id auth_atom_id "
        "pdbx_PDB_model_num"
    ).split()
    lines = ["data_assembly", "loop_"] + [f"_atom_site.{c}" for c in columns]
    for serial, (copy, atom) in enumerate(_atoms(traj), start=1):
        x, y, z = traj.xyz[0, atom.index] * 10
        r = atom.residue
        lines.append(
            f"ATOM {serial} {atom.element.symbol} {atom.name} {r.name} {_asym(copy)} "
            f"{r.resSeq} {x:.3f} {y:.3f} {z:.3f} {r.resSeq} {r.name} {WRAPPED[copy]} "
            f"{atom.name} 1"
        )
    path.write_text("\n".join(lines) + "\n#\n")


def _write_gro(traj: md.Trajectory, path: Path) -> None:
    lines = ["assembly of 30 copies", f"{traj.n_atoms:5d}"]
    for serial, (_, atom) in enumerate(_atoms(traj), start=1):
        x, y, z = traj.xyz[0, atom.index]
        lines.append(
            f"{atom.residue.resSeq:5d}{atom.residue.name:<5}{atom.name:>5}{serial % 100000:5d}"
            f"{x:8.3f}{y:8.3f}{z:8.3f}"
        )
    lines.append("  50.00000  50.00000  50.00000")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def assembly(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assembly")
    traj = _assembly()
    paths = {"pdb": tmp / "a.pdb", "cif": tmp / "a.cif", "gro": tmp / "a.gro"}
    _write_pdb(traj, paths["pdb"])
    _write_cif(traj, paths["cif"])
    _write_gro(traj, paths["gro"])
    trj = tmp / "a.dcd"
    traj.save_dcd(str(trj))
    return traj, paths, trj


@pytest.fixture(scope="module")
def features(assembly):
    _, paths, trj = assembly
    return {fmt: md_features(path, trj) for fmt, path in paths.items()}


@pytest.fixture(scope="module")
def monomer(tmp_path_factory):
    """The monomer's features on the same two frames."""
    trj = tmp_path_factory.mktemp("monomer") / "m.dcd"
    md.load(str(TVJ_TRJ), top=str(TVJ_TOP))[:N_FRAMES].save_dcd(str(trj))
    return md_features(TVJ_TOP, trj)


def test_topologies_keep_thirty_chains_with_unique_labels(assembly):
    _, paths, _ = assembly
    for fmt, expected in (("pdb", FILE_LABELS), ("cif", FILE_LABELS), ("gro", GRO_LABELS)):
        prepared = load_topology(paths[fmt])
        chains = [c for c in prepared.topology.chains if c.n_residues]
        assert [c.chain_id for c in chains] == expected, fmt
        assert {c.n_residues for c in chains} == {N_RES}
    notes = " ".join(load_topology(paths["pdb"]).notes)
    assert "A -> A_2" in notes and "D -> D_2" in notes


def test_three_formats_give_the_same_residues_and_features(features):
    pdb = features["pdb"]
    table = pdb.residues
    assert len(table) == N_COPIES * N_RES and pdb.n_frames == N_FRAMES
    assert table.chain.tolist() == [c for c in FILE_LABELS for _ in range(N_RES)]
    assert table.resid.tolist() == list(range(1, N_RES + 1)) * N_COPIES
    assert features["cif"].residues.chain.tolist() == table.chain.tolist()
    assert features["gro"].residues.chain.tolist() == [c for c in GRO_LABELS for _ in range(N_RES)]
    for fmt in ("cif", "gro"):
        other = features[fmt]
        assert other.sequence == pdb.sequence
        pd.testing.assert_frame_equal(
            other.residues.drop(columns="chain"), table.drop(columns="chain"), atol=1e-12
        )
        for key in PAIR_KEYS:
            np.testing.assert_array_equal(other.pair[key], pdb.pair[key], err_msg=fmt)


def test_assembly_features_match_mdtraj(assembly, features):
    traj = md.load_dcd(str(assembly[2]), top=assembly[0].topology)  # the frames as read
    table = features["pdb"].residues
    ca = traj.topology.select("name CA")
    moved = traj.superpose(traj, 0, atom_indices=ca)
    np.testing.assert_allclose(table.rmsf, md.rmsf(moved, None, atom_indices=ca), atol=1e-6)
    np.testing.assert_allclose(
        features["pdb"].pair["corr"], correlation_reference(moved.xyz[:, ca]), atol=1e-9
    )
    dssp = md.compute_dssp(traj, simplified=False)
    np.testing.assert_allclose(table[list(SS_COLUMNS)], dssp_class_counts(dssp) / N_FRAMES)
    sasa = md.shrake_rupley(traj, mode="residue")
    np.testing.assert_allclose(table.sasa_mean, sasa.mean(axis=0), atol=SASA_TOL)
    # phi of MDTraj's own chains (its PDB reader splits at TER): none crosses a copy
    _, phi = md.compute_phi(traj)
    assert phi.shape[1] == N_COPIES * (N_RES - 1)
    counts = np.stack([np.histogram(phi[:, j], bins=ANGLE_EDGES)[0] for j in range(phi.shape[1])])
    rows = [k * N_RES + r for k in range(N_COPIES) for r in range(1, N_RES)]
    got = table[list(ANGLE_COLUMNS["phi"])].to_numpy()
    np.testing.assert_allclose(got[rows], counts / N_FRAMES)
    assert np.isnan(got[[k * N_RES for k in range(N_COPIES)]]).all()


def test_contacts_stay_within_copies_and_equal_the_monomer(features, monomer):
    for name in INTERACTIONS:
        m = features["pdb"].pair[name]
        for k in range(N_COPIES):
            block = slice(k * N_RES, (k + 1) * N_RES)
            np.testing.assert_array_equal(m[block, block], monomer.pair[name], err_msg=name)
        mask = np.kron(np.eye(N_COPIES, dtype=bool), np.ones((N_RES, N_RES), dtype=bool))
        assert not m[~mask].any()


def test_repeated_labels_without_a_boundary_stay_one_error(tmp_path, assembly):
    """Two copies in ONE chain A (no TER, no segment ID): numbers repeat inside a chain."""
    traj = assembly[0]
    text = (tmp_path / "x").parent / "a.pdb"
    lines = [
        line[:21] + "A" + line[22:72] + "    " + line[76:]
        for line in assembly[1]["pdb"].read_text().splitlines()
        if line.startswith("ATOM") and line[72:76] in ("P000", "P001")
    ]
    text.write_text("\n".join(lines) + "\nEND\n")
    two = tmp_path / "two.dcd"
    traj.atom_slice(np.arange(2 * traj.n_atoms // N_COPIES)).save_dcd(str(two))
    with pytest.raises(SeqDanceError, match="share a chain and residue number"):
        md_features(text, two)


def test_multi_model_pdb_with_wrapped_letters_is_matched_per_copy(tmp_path, assembly):
    """The assembly's frames as a two-model PDB: atoms matched to the right copy of chain A."""
    traj, paths, _ = assembly
    first = paths["pdb"].read_text().splitlines()
    atoms = [line for line in first if line.startswith("ATOM")]
    models = []
    for f in range(N_FRAMES):
        body, i = [], 0
        for line in first:
            if line.startswith("ATOM"):
                x, y, z = traj.xyz[f, i] * 10
                line, i = f"{line[:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}", i + 1
            if line.startswith(("ATOM", "TER")):
                body.append(line)
        models += [f"MODEL     {f + 1:4d}", *body, "ENDMDL"]
    assert len(atoms) == traj.n_atoms
    trj = tmp_path / "models.pdb"
    trj.write_text("\n".join(models) + "\nEND\n")
    part = open_pdb_frames(trj, load_topology(paths["pdb"]), "models")
    assert part.expected == N_FRAMES and len(part.available) == traj.n_atoms and not part.notes
    (block,) = part.read(np.arange(traj.n_atoms), 10)
    # atom i of every model is atom i of the topology: PDB rounding (5e-5 nm) only
    np.testing.assert_allclose(block.xyz, traj.xyz, atol=6e-5)


def test_cli_notes_the_relabelled_chains(tmp_path, assembly, run_cli, capsys):
    """The command says what it relabelled; the last four copies selected by chain index."""
    _, paths, trj = assembly
    capsys.readouterr()
    out = tmp_path / "o"
    args = ["features", "md", "-t", str(paths["pdb"]), "-x", str(trj), "-o", str(out)]
    assert run_cli([*args, "--selection", "chainid 26 to 29", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note: a.pdb: 30 chains; chain labels repeat" in err and "A -> A_2" in err
    table = pd.read_csv(f"{out}.residue.csv", dtype={"chain": str})
    assert table.chain.tolist() == [c for c in FILE_LABELS[26:] for _ in range(N_RES)]
    assert table.resid.tolist() == list(range(1, N_RES + 1)) * 4
