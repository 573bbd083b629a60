"""Complexes in periodic boxes: molecules made whole, chains kept together and continuous.

The system is the HIV-protease dimer of PDB 1HVR (chains A and B, tests/data/pbc), turned
35 degrees and moved 1 nm every frame: the known true frames. From them the tests write what
engines write: each chain put back into the box by its centre (``gmx trjconv -pbc mol``), or
every atom put into the box (molecules broken), in a cubic box, a rhombic dodecahedron and a
truncated octahedron. The references are independent of our code: the true frames themselves
(imaging may only add one box vector per frame to all atoms) and MDTraj's RMSF and DSSP on
them.
"""

from __future__ import annotations

import gzip
import math

import mdtraj as md
import numpy as np
import pytest

from seqdance.cli import main
from seqdance.features.md import md_features
from seqdance.features.trajectory import open_system

D = 7.4  # nm, the box of the report
BOXES = {
    "cubic": np.diag([D, D, D]),
    "dodecahedron": np.array([[D, 0, 0], [0, D, 0], [D / 2, D / 2, D * math.sqrt(2) / 2]]),
    "octahedron": np.array(
        [
            [D, 0, 0],
            [D / 3, D * 2 * math.sqrt(2) / 3, 0],
            [-D / 3, D * math.sqrt(2) / 3, D * math.sqrt(6) / 3],
        ]
    ),
}
N_FRAMES = 8


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


@pytest.fixture(scope="module")
def dimer(tmp_path_factory, data_path):
    """The 1HVR protein atoms tumbling: (truth (F, n, 3) nm, MDTraj topology)."""
    folder = tmp_path_factory.mktemp("hvr")
    pdb = folder / "1hvr.pdb"
    pdb.write_bytes(gzip.decompress(data_path("pbc", "1hvr.pdb.gz").read_bytes()))
    protein = md.load(str(pdb))
    protein = protein.atom_slice(protein.topology.select("protein"))
    assert [c.chain_id for c in protein.topology.chains] == ["A", "B"]
    x0 = protein.xyz[0].astype(np.float64)
    centre = x0.mean(axis=0)
    frames = []
    for f in range(N_FRAMES):
        turn = _rotation(np.array([1.0, 2.0, 0.5]), math.radians(35 * f))
        move = np.array([D / 2, D / 2, D / 2]) + f * np.array([0.9, -0.6, 0.4])
        frames.append((x0 - centre) @ turn.T + move)
    return np.array(frames), protein.topology


def _wrap_chains(truth: np.ndarray, box: np.ndarray, topology) -> np.ndarray:
    """Each chain's centre put into the box, by whole box vectors (``-pbc mol``)."""
    out = truth.copy()
    inv = np.linalg.inv(box)
    for chain in topology.chains:
        atoms = [a.index for a in chain.atoms]
        n = np.floor(truth[:, atoms].mean(axis=1) @ inv)  # (F, 3)
        out[:, atoms] -= (n @ box)[:, None, :]
    return out


def _wrap_atoms(truth: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Every atom put into the box: molecules broken across it (``-pbc atom``)."""
    return truth - np.floor(truth @ np.linalg.inv(box)) @ box


def _write(folder, name, xyz, topology, box) -> tuple:
    traj = md.Trajectory(xyz.astype(np.float32), topology)
    if box is not None:
        traj.unitcell_vectors = np.repeat(box[None], len(xyz), axis=0).astype(np.float32)
    top, trj = folder / f"{name}.pdb", folder / f"{name}.dcd"
    md.Trajectory(xyz[:1].astype(np.float32), topology).save_pdb(str(top))
    traj.save_dcd(str(trj))
    return top, trj


def _imaged(top, trj, pbc="cluster", chunk=3):
    """Frames as our reader gives them (chunks of 3: continuity across chunks)."""
    prepared, source = open_system(top, trj)
    source.set_pbc(pbc)
    atoms = np.arange(prepared.n_atoms)
    source.first_frame(atoms, prepared.topology)
    xyz = np.concatenate([b.xyz for b in source.blocks(atoms, chunk, 1, prepared.topology)])
    return xyz, source.notes


def _assert_truth_up_to_one_box_vector(got, truth, box):
    """Every frame equals the true one moved as a whole by one lattice vector."""
    d = got.astype(np.float64) - truth  # (F, n, 3)
    np.testing.assert_allclose(d, np.repeat(d[:, :1], d.shape[1], axis=1), atol=2e-4)
    frac = d[:, 0] @ np.linalg.inv(box)
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-4)


def _min_interchain(xyz, topology) -> np.ndarray:
    """Smallest A-B C-alpha distance per frame, in the given coordinates (no box)."""
    a = [x.index for x in topology.atoms if x.name == "CA" and x.residue.chain.index == 0]
    b = [x.index for x in topology.atoms if x.name == "CA" and x.residue.chain.index == 1]
    diff = xyz[:, a, None, :] - xyz[:, None, b, :]
    return np.sqrt((diff**2).sum(-1)).min(axis=(1, 2))


def _mdtraj_reference(truth, topology):
    """RMSF (C-alpha superposition on frame 0) and helix fraction of the true frames."""
    traj = md.Trajectory(truth.astype(np.float32), topology)
    ca = topology.select("name CA")
    traj.superpose(traj, 0, atom_indices=ca)
    rmsf = md.rmsf(traj, None, atom_indices=ca)
    helix = (md.compute_dssp(traj, simplified=False) == "H").mean(axis=0)
    return rmsf, helix


@pytest.mark.parametrize("shape", list(BOXES))
def test_tumbling_dimer_wrapped_by_chain_is_put_back_together(tmp_path, dimer, shape):
    truth, topology = dimer
    box = BOXES[shape]
    wrapped = _wrap_chains(truth, box, topology)
    assert _min_interchain(truth, topology).max() < 0.7  # the dimer is in contact
    assert _min_interchain(wrapped, topology).max() > 2.0  # split apart in some frame
    top, trj = _write(tmp_path, shape, wrapped, topology, box)
    got, notes = _imaged(top, trj)
    _assert_truth_up_to_one_box_vector(got, truth, box)
    assert any("chains were moved" in n and f"of {N_FRAMES} frames" in n for n in notes)
    feats = md_features(top, trj)
    rmsf, helix = _mdtraj_reference(truth, topology)
    assert rmsf.max() < 1e-3  # a rigid body: no fluctuation at all
    np.testing.assert_allclose(feats.residues.rmsf, rmsf, atol=2e-4)
    np.testing.assert_allclose(feats.residues.ss_H, helix, atol=1e-12)
    assert feats.pair["vdw"][:99, 99:].sum() + feats.pair["vdw"][99:, :99].sum() > 0


@pytest.mark.parametrize("shape", list(BOXES))
def test_complex_broken_across_the_box_is_made_whole_and_together(tmp_path, dimer, shape):
    truth, topology = dimer
    truth = truth + np.array([D / 2, 0, 0])  # the box edge through the protein in frame 0
    box = BOXES[shape]
    broken = _wrap_atoms(truth, box)
    bonds = np.array([[a.index, b.index] for a, b in topology.bonds])
    lengths = np.linalg.norm(broken[:, bonds[:, 0]] - broken[:, bonds[:, 1]], axis=-1)
    assert (lengths.max(axis=1) > 2.0).all()  # broken in every frame
    top, trj = _write(tmp_path, shape, broken, topology, box)
    got, notes = _imaged(top, trj)
    _assert_truth_up_to_one_box_vector(got, truth, box)
    assert any(f"made whole in {N_FRAMES}" in n for n in notes)
    rmsf, _ = _mdtraj_reference(truth, topology)
    np.testing.assert_allclose(md_features(top, trj).residues.rmsf, rmsf, atol=2e-4)


def test_whole_and_together_frames_are_not_touched(tmp_path, dimer):
    """The true frames with a box: no coordinate moves, the features are exactly those of
    the same frames without a box, and no note."""
    truth, topology = dimer
    top, trj = _write(tmp_path, "boxed", truth, topology, BOXES["dodecahedron"])
    top0, trj0 = _write(tmp_path, "plain", truth, topology, None)
    got, notes = _imaged(top, trj)
    raw = md.load(str(trj), top=str(top)).xyz
    assert np.array_equal(got, raw)
    assert not any("periodic box" in n for n in notes)
    boxed, plain = md_features(top, trj), md_features(top0, trj0)
    assert boxed.residues.equals(plain.residues)
    for key in plain.pair:
        assert np.array_equal(boxed.pair[key], plain.pair[key], equal_nan=True), key


def test_whole_mode_leaves_chains_apart_and_none_leaves_frames_as_read(tmp_path, dimer):
    truth, topology = dimer
    box = BOXES["cubic"]
    broken = _wrap_atoms(truth, box)
    top, trj = _write(tmp_path, "broken", broken, topology, box)
    whole, _ = _imaged(top, trj, pbc="whole")
    bonds = np.array([[a.index, b.index] for a, b in topology.bonds])
    lengths = np.linalg.norm(whole[:, bonds[:, 0]] - whole[:, bonds[:, 1]], axis=-1)
    assert lengths.max() < 0.25  # every molecule whole ...
    chains = _wrap_chains(truth, box, topology)
    top2, trj2 = _write(tmp_path, "chains", chains, topology, box)
    apart, notes = _imaged(top2, trj2, pbc="whole")
    assert _min_interchain(apart, topology).max() > 2.0  # ... but chains not moved
    assert not any("periodic box" in n for n in notes)
    raw, notes = _imaged(top, trj, pbc="none")
    assert np.array_equal(raw, md.load(str(trj), top=str(top)).xyz)


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_cli_pbc_option(tmp_path, dimer, capsys):
    """``--pbc none`` turns imaging off (the split dimer shows a huge RMSF); the default puts
    it back together and says so; a bad value is one error line and writes nothing."""
    truth, topology = dimer
    top, trj = _write(tmp_path, "mol", _wrap_chains(truth, BOXES["cubic"], topology),
                      topology, BOXES["cubic"])  # fmt: skip
    base = ["features", "md", "-t", str(top), "-x", str(trj), "--no-progress"]
    assert _run([*base, "-o", str(tmp_path / "on")]) == 0
    assert "note: periodic box: chains were moved" in capsys.readouterr().err
    assert _run([*base, "-o", str(tmp_path / "off"), "--pbc", "none"]) == 0
    assert "periodic box" not in capsys.readouterr().err
    on = np.genfromtxt(tmp_path / "on.residue.csv", delimiter=",", names=True, dtype=None)
    off = np.genfromtxt(tmp_path / "off.residue.csv", delimiter=",", names=True, dtype=None)
    assert on["rmsf"].max() < 1e-3 and off["rmsf"].max() > 1.0
    contacts = ["contacts", "-t", str(top), "-x", str(trj), "--no-progress"]
    assert _run([*contacts, "-o", str(tmp_path / "on.tsv")]) == 0
    assert _run([*contacts, "-o", str(tmp_path / "off.tsv"), "--pbc", "none"]) == 0
    capsys.readouterr()
    frames_on = _interchain_frames(tmp_path / "on.tsv")
    assert frames_on == set(range(N_FRAMES))  # the dimer interface in every frame
    assert len(_interchain_frames(tmp_path / "off.tsv")) < N_FRAMES
    for args in (base, contacts):
        out = tmp_path / "bad"
        assert _run([*args, "-o", str(out), "--pbc", "sideways"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "--pbc" in err[0]
        assert not list(tmp_path.glob("bad*"))


def _interchain_frames(tsv) -> set[int]:
    frames = set()
    for line in tsv.read_text().splitlines():
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[2].split(":")[0] != cols[3].split(":")[0]:
            frames.add(int(cols[0]))
    return frames


@pytest.mark.parametrize("name", ["1hvr.pdb.gz", "4E43.pdb.gz"])
def test_crystal_cell_as_box_moves_nothing(data_path, name):
    """Crystal structures as deposited, their CRYST1 cell as the box (1HVR hexagonal, a
    triclinic box; 4E43 orthorhombic, with a peptide chain; both with ligands and chains of
    single-atom waters): whole and together, so every coordinate is exactly as read without
    imaging, equal to MDTraj's reading of the file, and there is no note."""
    path = data_path("pbc", name)
    prepared, source = open_system(path, path)
    atoms = np.arange(prepared.n_atoms)
    got = np.concatenate([b.xyz for b in source.blocks(atoms, 10, 1, prepared.topology)])
    box = next(source.blocks(atoms, 10, 1, prepared.topology)).box[0]
    assert name == "4E43.pdb.gz" or abs(box[1, 0]) > 1.0  # 1HVR's cell is not rectangular
    plain = open_system(path, path)[1]
    plain.set_pbc("none")
    raw = np.concatenate([b.xyz for b in plain.blocks(atoms, 10, 1, prepared.topology)])
    assert np.array_equal(got, raw)
    np.testing.assert_allclose(got, md.load(str(path)).xyz, atol=1e-6)
    assert not any("periodic box" in n for n in source.notes)
