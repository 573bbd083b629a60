"""Shrake-Rupley SASA kernel (seqdance.features.sasa).

Independent paths: MDTraj's own ``shrake_rupley`` (called one frame at a time, see below) on
real trajectories and on synthetic clusters that stress the kernel's shortcuts (dense,
nearly coincident atoms, atoms inside others, far from the origin); a plain all-pairs,
all-points re-implementation of MDTraj's formula in numpy; analytic areas of an isolated
sphere and of two overlapping spheres; the authors' reference SASA for 3tvj_I.

MDTraj's multi-frame call carries each thread's previous per-atom areas into the next frame
(a reused buffer that is not cleared), so only its one-frame calls give the definition.
"""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd
import pytest

from seqdance.features.sasa import (
    N_SPHERE_POINTS,
    PROBE_RADIUS,
    atomic_radii,
    residue_groups,
    shrake_rupley,
    sphere_points,
)

DATA = Path(__file__).parent / "data" / "md"
TVJ = DATA / "3tvj_I"
TRAJECTORIES = {
    "3tvj_I": (TVJ / "3tvj_I.pdb", TVJ / "3tvj_I_10frames.dcd"),
    "5xnd": (DATA / "5xnd" / "5xnd_topology.pdb", DATA / "5xnd" / "5xnd_6frames.dcd"),
}
TOL = 1e-4  # nm^2: the bound; one sphere point of a carbon is ~1.2e-3 nm^2


def _protein(name: str) -> md.Trajectory:
    top, trj = TRAJECTORIES[name]
    traj = md.load(str(trj), top=str(top))
    return traj.atom_slice(traj.topology.select("protein"))


def _mdtraj_one_frame_at_a_time(traj: md.Trajectory, mode: str) -> np.ndarray:
    return np.concatenate([md.shrake_rupley(traj[f], mode=mode) for f in range(traj.n_frames)])


def _slow_reference(xyz: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """MDTraj's formula, every atom against every other at every point, float32 like its C code.

    ``xyz`` (N, 3), van der Waals ``radii`` (N,) -> per-atom areas (N,).
    """
    x = np.asarray(xyz, np.float32)
    r = np.asarray(radii, np.float32) + np.float32(PROBE_RADIUS)
    points = sphere_points(N_SPHERE_POINTS)
    constant = np.float32(4.0 * np.pi / N_SPHERE_POINTS)
    areas = np.zeros(len(x), np.float32)
    for i in range(len(x)):
        d = x[i] - x  # (N, 3)
        d2 = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2]
        cut = r[i] + r
        near = np.flatnonzero((d2 < cut * cut) & (np.arange(len(x)) != i))
        p = x[i] + r[i] * points  # (P, 3) float32
        q = p[:, None, :] - x[near][None, :, :]  # (P, M, 3)
        q2 = (q[..., 0] * q[..., 0] + q[..., 1] * q[..., 1]) + q[..., 2] * q[..., 2]
        covered = (q2 < (r[near] * r[near])[None, :]).any(axis=1)
        areas[i] = np.float32((~covered).sum()) * ((constant * r[i]) * r[i])
    return areas


def _trajectory(xyz: np.ndarray, elements: list[str]) -> md.Trajectory:
    top = md.Topology()
    chain = top.add_chain()
    for k, symbol in enumerate(elements):
        residue = top.add_residue("UNK", chain)
        top.add_atom(f"{symbol}{k}", md.element.get_by_symbol(symbol), residue)
    return md.Trajectory(np.asarray(xyz, np.float32), top)


# ----------------------------------------------------------------------------- MDTraj


@pytest.mark.parametrize("name", sorted(TRAJECTORIES))
def test_equals_mdtraj_on_real_trajectories(name):
    traj = _protein(name)
    radii = atomic_radii(traj.topology)
    groups = residue_groups(traj.topology)
    atoms = shrake_rupley(traj.xyz, radii, threads=1)
    residues = shrake_rupley(traj.xyz, radii, groups, traj.n_residues, threads=2)
    assert atoms.shape == (traj.n_frames, traj.n_atoms) and atoms.dtype == np.float32
    assert residues.shape == (traj.n_frames, traj.n_residues)
    np.testing.assert_allclose(atoms, _mdtraj_one_frame_at_a_time(traj, "atom"), atol=TOL, rtol=0)
    expected = _mdtraj_one_frame_at_a_time(traj, "residue")
    np.testing.assert_allclose(residues, expected, atol=TOL, rtol=0)
    assert residues.sum() > 10 * traj.n_frames  # nm^2: a real protein surface, not zeros


def test_mdtraj_multi_frame_call_differs_after_its_first_frame():
    """What the comparison above avoids: MDTraj's reused per-thread buffer (MDTraj 1.9-1.11)."""
    traj = _protein("3tvj_I")
    ours = shrake_rupley(traj.xyz, atomic_radii(traj.topology), threads=1)
    one_thread = md.shrake_rupley(traj)  # frames in order in one call
    np.testing.assert_allclose(ours[0], one_thread[0], atol=TOL)
    assert np.abs(ours[1:] - one_thread[1:]).max() > 1e-4


def test_radii_are_mdtraj_table_hydrogens_included():
    traj = _protein("5xnd")
    radii = atomic_radii(traj.topology)
    by_element = {a.element.symbol: radii[a.index] for a in traj.topology.atoms}
    assert by_element["H"] == np.float32(0.12) and by_element["C"] == np.float32(0.17)
    assert by_element["N"] == np.float32(0.155) and by_element["O"] == np.float32(0.152)
    ca = traj.topology.select("name CA")[0]
    assert atomic_radii(traj.topology, change_radii={"C": 0.2})[ca] == np.float32(0.2)
    with pytest.raises(ValueError, match="no atomic radius"):
        atomic_radii(_virtual_site_topology())


def _virtual_site_topology():
    top = md.Topology()
    residue = top.add_residue("HOH", top.add_chain())
    top.add_atom("MW", md.element.virtual_site, residue)
    return top


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_mdtraj_and_slow_reference_on_hard_clusters(seed):
    """Dense random clusters: near-coincident atoms, atoms buried in bigger ones, far offsets."""
    rng = np.random.default_rng(seed)
    n = 120
    elements = list(rng.choice(["H", "C", "N", "O", "S"], size=n))
    xyz = rng.uniform(0.0, 1.4, size=(3, n, 3))  # ~40 atoms/nm^3, many overlaps
    xyz[1, 1:20] = xyz[1, 0] + rng.normal(scale=0.02, size=(19, 3))  # within MIN_CAP_DISTANCE
    xyz[2] += np.array([512.3, -300.7, 77.1])  # large coordinates: float32 rounding matters
    traj = _trajectory(xyz, elements)
    radii = atomic_radii(traj.topology)
    ours = shrake_rupley(traj.xyz, radii, threads=2)
    np.testing.assert_allclose(ours, _mdtraj_one_frame_at_a_time(traj, "atom"), atol=TOL, rtol=0)
    for f in range(traj.n_frames):
        np.testing.assert_array_equal(ours[f], _slow_reference(traj.xyz[f], radii))
    assert (ours > 0).any() and (ours == 0).any()


# ----------------------------------------------------------------------------- analytic


@pytest.mark.parametrize("element", ["H", "C", "N", "O", "S"])
def test_isolated_atom_is_four_pi_r_squared(element):
    traj = _trajectory(np.array([[[1.3, -2.0, 0.7]]]), [element])
    radius = float(atomic_radii(traj.topology)[0]) + PROBE_RADIUS
    area = shrake_rupley(traj.xyz, atomic_radii(traj.topology), threads=1)[0, 0]
    # all 960 points accessible; MDTraj's float32 quadrature of 4 pi R^2
    r32 = np.float32(atomic_radii(traj.topology)[0]) + np.float32(PROBE_RADIUS)
    constant = np.float32(4.0 * np.pi / N_SPHERE_POINTS)
    assert area == np.float32(N_SPHERE_POINTS) * ((constant * r32) * r32)
    assert area == pytest.approx(4.0 * np.pi * radius**2, rel=1e-6)


def test_two_overlapping_spheres_match_the_spherical_cap_formula():
    rng = np.random.default_rng(7)
    ra, rb = 0.17, 0.152  # carbon, oxygen
    big_a, big_b = ra + PROBE_RADIUS, rb + PROBE_RADIUS
    point_area = 4.0 * np.pi * np.array([big_a, big_b]) ** 2 / N_SPHERE_POINTS
    for d in np.linspace(0.08, big_a + big_b - 0.005, 25):
        e = rng.normal(size=3)
        e /= np.linalg.norm(e)
        xyz = np.array([[[0.4, -1.1, 2.0], [0.4, -1.1, 2.0]]])
        xyz[0, 1] += d * e
        traj = _trajectory(xyz, ["C", "O"])
        radii = atomic_radii(traj.topology)
        got = shrake_rupley(traj.xyz, radii, threads=1)[0]
        # exposed area of sphere a: 2 pi R_a^2 (1 + cos t), cos t = (R_a^2 + d^2 - R_b^2) / 2 R_a d
        cos_a = np.clip((big_a**2 + d**2 - big_b**2) / (2 * big_a * d), -1, 1)
        cos_b = np.clip((big_b**2 + d**2 - big_a**2) / (2 * big_b * d), -1, 1)
        expected = 2.0 * np.pi * np.array([big_a**2 * (1 + cos_a), big_b**2 * (1 + cos_b)])
        # the golden spiral's error on a cap at 960 points: a few points (measured <= 6)
        np.testing.assert_array_less(np.abs(got - expected), 12 * point_area)
        np.testing.assert_array_equal(got, _slow_reference(traj.xyz[0], radii))


# ----------------------------------------------------------------------------- properties


def test_threads_and_frame_grouping_do_not_change_a_bit():
    traj = _protein("5xnd")
    radii, groups = atomic_radii(traj.topology), residue_groups(traj.topology)
    one = shrake_rupley(traj.xyz, radii, groups, threads=1)
    two = shrake_rupley(traj.xyz, radii, groups, threads=2)
    singles = np.concatenate([shrake_rupley(traj.xyz[f : f + 1], radii, groups) for f in range(6)])
    reversed_ = shrake_rupley(traj.xyz[::-1], radii, groups, threads=2)[::-1]
    for other in (two, singles, reversed_):
        assert one.tobytes() == other.tobytes()


def test_group_sums_are_float32_sums_in_atom_order():
    traj = _protein("3tvj_I")
    radii, groups = atomic_radii(traj.topology), residue_groups(traj.topology)
    atoms = shrake_rupley(traj.xyz[:2], radii, threads=1)
    residues = shrake_rupley(traj.xyz[:2], radii, groups, threads=1)
    expected = np.zeros_like(residues)
    for a, g in enumerate(groups):
        expected[:, g] += atoms[:, a]
    assert residues.tobytes() == expected.tobytes()


def test_authors_reference_sasa_is_reproduced():
    """The authors' 3tvj_I SASA (MDTraj 1.9.9, one frame per call) to float32 rounding."""
    from seqdance.features.md import md_features

    ref = pd.read_csv(TVJ / "3tvj_I_res_feature.csv")
    got = md_features(*TRAJECTORIES["3tvj_I"], contacts=TVJ / "3tvj_I_10frames_contact.tsv")
    for column in ("sasa_mean", "sasa_std"):
        np.testing.assert_allclose(got.residues[column], ref[column], atol=1e-5, rtol=0)


def test_bad_inputs_are_value_errors():
    radii = np.full(2, 0.17, np.float32)
    with pytest.raises(ValueError, match="shape"):
        shrake_rupley(np.zeros((2, 3)), radii)
    with pytest.raises(ValueError, match="radii"):
        shrake_rupley(np.zeros((1, 3, 3)), radii)
    with pytest.raises(ValueError, match="group indices"):
        shrake_rupley(np.zeros((1, 2, 3)), radii, groups=np.array([0, 5]), n_groups=2)
    with pytest.raises(ValueError, match="non-finite"):
        shrake_rupley(np.full((1, 2, 3), np.nan), radii)
    assert shrake_rupley(np.zeros((0, 2, 3)), radii).shape == (0, 2)


def test_default_threads_follow_the_openmp_limit():
    from threadpoolctl import threadpool_limits

    from seqdance.features.sasa import _thread_count

    assert _thread_count(3, n_frames=2) == 2 and _thread_count(1, n_frames=10) == 1
    with threadpool_limits(1, user_api="openmp"):
        assert _thread_count(None, n_frames=10) == 1


def test_far_apart_atoms_do_not_blow_up_the_grid():
    xyz = np.array([[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [3.0e7, -2.0e7, 1.0e7]]], np.float32)
    traj = _trajectory(xyz, ["C", "C", "O"])
    radii = atomic_radii(traj.topology)
    got = shrake_rupley(traj.xyz, radii, threads=1)[0]
    np.testing.assert_array_equal(got, _slow_reference(traj.xyz[0], radii))
    assert got[2] == pytest.approx(4 * np.pi * (0.152 + PROBE_RADIUS) ** 2, rel=1e-6)
