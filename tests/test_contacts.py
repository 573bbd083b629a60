"""Native GetContacts-equivalent interaction detection (seqdance.features.contacts).

Golden data: GetContacts' own output on 3tvj_I (tests/data/md/3tvj_I) and frame-0 lines of
GetContacts' expected 5xnd test output (getcontacts tests/test_5xnd_expected.tsv @f636210);
the slow per-frame reference benchmarks/naive_contacts.py; analytic geometry.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from seqdance.errors import SeqDanceError
from seqdance.features.contact_detector import ContactDetector
from seqdance.features.contact_rules import header_itypes, parse_itypes, protein_atoms, select_atoms
from seqdance.features.contacts import detect_contacts
from seqdance.features.getcontacts import read_contacts
from seqdance.features.topology import load_named_topology
from seqdance.schema import INTERACTIONS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "md"
TVJ_TOP = DATA / "3tvj_I" / "3tvj_I.pdb"
TVJ_TRJ = DATA / "3tvj_I" / "3tvj_I_10frames.dcd"
TVJ_TSV = DATA / "3tvj_I" / "3tvj_I_10frames_contact.tsv"
XND_TOP = DATA / "5xnd" / "5xnd_topology.pdb"
XND_TRJ = DATA / "5xnd" / "5xnd_6frames.dcd"

sys.path.insert(0, str(ROOT / "benchmarks"))
from naive_contacts import NaiveContacts  # noqa: E402


def as_set(lines) -> set[tuple[int, str, str, str]]:
    return {(line.frame, line.itype, line.atom1, line.atom2) for line in lines}


@pytest.fixture(scope="module")
def reference_3tvj():
    header, lines = read_contacts(TVJ_TSV)
    return header, as_set(lines)


# ---------------------------------------------------------------- real data


def test_3tvj_equals_getcontacts_line_for_line(reference_3tvj):
    ref_header, ref = reference_3tvj
    header, lines = detect_contacts(TVJ_TOP, TVJ_TRJ)
    mine = list(lines)
    assert len(mine) == len(ref) == 1366
    assert as_set(mine) == ref  # same orientation too: atom1 <= atom2 as GetContacts writes
    assert header.format() == ref_header.format()
    assert [line.frame for line in mine] == sorted(line.frame for line in mine)


def test_3tvj_chunks_and_stride(reference_3tvj):
    _, ref = reference_3tvj
    _, small_chunks = detect_contacts(TVJ_TOP, TVJ_TRJ, chunk_size=3)
    assert as_set(small_chunks) == ref
    header, strided = detect_contacts(TVJ_TOP, TVJ_TRJ, itypes=["hb", "sb"], stride=3)
    assert header.total_frames == 4 and header.format().split()[3:5] == ["end:9", "stride:3"]
    assert header.interaction_types == ("hb", "sb")
    expected = {x for x in ref if x[0] % 3 == 0 and x[1] in ("hbbb", "hbsb", "hbss", "sb")}
    assert as_set(strided) == expected


def test_5xnd_equals_naive_reference_and_keeps_resid_zero():
    top = load_named_topology(XND_TOP)
    pdb_xyz = md.load_pdb(str(XND_TOP), standard_names=False).xyz[0]
    traj = md.load(str(XND_TRJ), top=top)
    fast = ContactDetector(top, traj.xyz[0], bond_xyz=pdb_xyz)
    naive = NaiveContacts(top, traj.xyz[0], bond_xyz=pdb_xyz)
    lines = fast.detect(traj.xyz, first_frame=10, stride=2)
    got = as_set(lines)
    assert got == naive.detect(traj.xyz, first_frame=10, stride=2)
    assert {x[0] for x in got} == {10, 12, 14, 16, 18, 20}
    assert {x[1] for x in got} == set(INTERACTIONS)  # every family occurs on 5xnd
    # residue numbering starts at 0 and is kept as written; calcium ions are not protein
    assert any(":SER:0:" in x[2] or ":SER:0:" in x[3] for x in got)
    assert not any(":CA:20" in x[2] + x[3] for x in got)
    # frame-0 sb/pc/ps/ts lines of GetContacts' expected 5xnd output
    frame0 = {x[1:] for x in got if x[0] == 10 and x[1] in ("sb", "pc", "ps", "ts")}
    assert frame0 == {
        ("sb", "A:ARG:76:NH2", "A:GLU:82:OE1"),
        ("sb", "A:ARG:76:NH1", "A:GLU:82:OE2"),
        ("sb", "A:ARG:76:NH2", "A:GLU:82:OE2"),
        ("pc", "A:LYS:97:NZ", "A:PHE:58:CE1"),
        ("pc", "A:HIS:27:ND1", "A:PHE:25:CE1"),
        ("ts", "A:PHE:31:CE1", "A:PHE:67:CE1"),
    }


def test_without_hydrogens_warns_and_keeps_heavy_atom_contacts(run_cli, reference_3tvj, tmp_path):
    _, ref = reference_3tvj
    top = load_named_topology(TVJ_TOP)
    traj = md.load(str(TVJ_TRJ), top=top)
    heavy = top.select("not element H")
    detector = ContactDetector(top.subset(heavy), traj.xyz[0][heavy])
    assert any("no hydrogen" in w for w in detector.warnings)
    got = as_set(detector.detect(traj.xyz[:, heavy]))
    # no donors, no hp; vdw, sb and rings only involve heavy atoms, so they are unchanged
    assert got == {x for x in ref if x[1] in ("vdw", "sb", "pc", "ps", "ts")}

    pdb = tmp_path / "heavy.pdb"
    traj.atom_slice(heavy)[0].save_pdb(str(pdb))
    dcd = tmp_path / "heavy.dcd"
    traj.atom_slice(heavy).save_dcd(str(dcd))
    out = tmp_path / "heavy.tsv"
    code = run_cli(["contacts", "-t", str(pdb), "-x", str(dcd), "-o", str(out), "--no-progress"])
    assert code == 0
    _, cli_lines = read_contacts(out)
    assert {x[1] for x in as_set(cli_lines)} == {"vdw", "sb", "pc"}


def test_with_hydrogens_no_warning():
    header, lines = detect_contacts(TVJ_TOP, TVJ_TRJ, itypes="vdw")
    assert lines.warnings == []
    assert header.interaction_types == ("vdw",)


# ---------------------------------------------------------------- analytic geometry


def build(residues):
    """Topology and (n_atoms, 3) nm coordinates from (chain, resname, resSeq, atoms) tuples,
    atoms as (name, element, (x, y, z) Angstrom)."""
    top = md.Topology()
    chains: dict[str, md.core.topology.Chain] = {}
    xyz = []
    for chain_id, resname, resseq, atoms in residues:
        if chain_id not in chains:
            chains[chain_id] = top.add_chain(chain_id=chain_id)
        residue = top.add_residue(resname, chains[chain_id], resSeq=resseq)
        for name, element, pos in atoms:
            top.add_atom(name, md.element.get_by_symbol(element), residue)
            xyz.append(pos)
    return top, np.array(xyz, dtype=np.float64) / 10.0


def phe_ring(center, normal, in_plane=None, resseq=1, chain="A"):
    """The six PHE ring carbons, radius 1.39 A, around ``center`` in the plane normal to
    ``normal``."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    u = np.asarray(in_plane if in_plane is not None else np.cross(n, [1.0, 0.3, 0.1]), float)
    u = u - (u @ n) * n
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    names = ("CG", "CD1", "CE1", "CZ", "CE2", "CD2")
    atoms = [
        (name, "C", tuple(np.asarray(center) + 1.39 * (math.cos(a) * u + math.sin(a) * v)))
        for name, a in zip(names, np.radians(np.arange(0, 360, 60)), strict=True)
    ]
    return (chain, "PHE", resseq, atoms)


def detect_one(residues, itypes):
    top, xyz = build(residues)
    detector = ContactDetector(top, xyz, itypes=itypes, selection="all")
    return {x[1:] for x in as_set(detector.detect(xyz[None]))}


@pytest.mark.parametrize(
    ("center2", "normal2", "expected"),
    [
        ((0, 0, 3.5), (0, 0, 1), {"ps"}),  # face to face, stacked
        ((0, 0, 6.9), (0, 0, 1), {"ps"}),  # still within 7.0
        ((0, 0, 7.1), (0, 0, 1), set()),  # too far
        ((5, 0, 2), (0, 0, 1), set()),  # parallel but slipped: psi = 68 degrees
        ((0, 0, 3.5), (0, math.sin(math.radians(25)), math.cos(math.radians(25))), {"ps"}),
        ((0, 0, 3.5), (0, math.sin(math.radians(35)), math.cos(math.radians(35))), set()),
        ((0, 0, 4.5), (1, 0, 0), {"ts"}),  # edge to face, T shape
        ((0, 0, 5.2), (1, 0, 0), set()),  # T beyond 5.0
        ((0, 0, 4.5), (1, 0, 1), set()),  # 45 degrees: neither
    ],
)
def test_ring_stacking_analytic(center2, normal2, expected):
    residues = [phe_ring((0, 0, 0), (0, 0, 1), resseq=1), phe_ring(center2, normal2, resseq=5)]
    found = detect_one(residues, ("ps", "ts"))
    assert {t for t, _, _ in found} == expected
    for _, a, b in found:  # the ring is labelled by its lowest atom name, CE1 for PHE
        assert (a, b) == ("A:PHE:1:CE1", "A:PHE:5:CE1")


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ((0, 0, 4.0), True),  # on the ring axis
        ((0, 0, -5.9), True),  # below the ring: the normal's sign does not matter
        ((0, 0, 6.1), False),  # too far
        ((2.0, 0, 3.0), True),  # 33.7 degrees off the axis
        ((3.0, 0, 1.5), False),  # 63.4 degrees off the axis
    ],
)
def test_pication_analytic(position, expected):
    residues = [
        phe_ring((0, 0, 0), (0, 0, 1), resseq=3),
        ("A", "LYS", 10, [("NZ", "N", position)]),
    ]
    found = detect_one(residues, ("pc",))
    assert found == ({("pc", "A:LYS:10:NZ", "A:PHE:3:CE1")} if expected else set())


@pytest.mark.parametrize(("distance", "expected"), [(3.9, True), (4.0, True), (4.1, False)])
def test_salt_bridge_analytic(distance, expected):
    residues = [
        ("A", "ASP", 2, [("OD1", "O", (0, 0, 0))]),
        ("A", "ARG", 3, [("NH2", "N", (distance, 0, 0))]),  # adjacent residues still count
    ]
    found = detect_one(residues, ("sb",))
    assert found == ({("sb", "A:ARG:3:NH2", "A:ASP:2:OD1")} if expected else set())


def donor_acceptor(angle_deg, da_distance=None, acceptor=("ASP", "OD1"), donor=("SER", "OG")):
    """Donor at the origin, its H 0.96 A along x, the acceptor 1.94 A from H (or at
    ``da_distance`` on the x axis) with angle(D->H, H->A) = ``angle_deg``."""
    h = np.array([0.96, 0, 0])
    if da_distance is None:
        a = h + 1.94 * np.array(
            [math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg)), 0]
        )
    else:
        a = np.array([da_distance, 0, 0])
    h_name = "H" if donor[1] == "N" else "HG"
    return [
        ("A", donor[0], 1, [(donor[1], donor[1][0], (0, 0, 0)), (h_name, "H", tuple(h))]),
        ("A", acceptor[0], 3, [(acceptor[1], acceptor[1][0], tuple(a))]),
    ]


@pytest.mark.parametrize(
    ("angle", "distance", "expected"),
    [(0, None, True), (60, None, True), (69, None, True), (71, None, False), (100, None, False),
     (None, 3.4, True), (None, 3.6, False)],
)  # fmt: skip
def test_hydrogen_bond_angle_and_distance(angle, distance, expected):
    found = detect_one(donor_acceptor(angle or 0, distance), ("hb",))
    assert found == ({("hbss", "A:ASP:3:OD1", "A:SER:1:OG")} if expected else set())


def test_hydrogen_bond_backbone_classes_and_same_residue():
    assert detect_one(donor_acceptor(0, donor=("GLY", "N"), acceptor=("ALA", "O")), "hb") == {
        ("hbbb", "A:ALA:3:O", "A:GLY:1:N")
    }
    assert detect_one(donor_acceptor(0, donor=("GLY", "N"), acceptor=("ASP", "OD2")), "hb") == {
        ("hbsb", "A:ASP:3:OD2", "A:GLY:1:N")
    }
    # OXT is not backbone; a hydrogen-less donor gives nothing in either direction
    assert detect_one(donor_acceptor(0, acceptor=("ALA", "OXT")), "hbss") == {
        ("hbss", "A:ALA:3:OXT", "A:SER:1:OG")
    }
    same = [
        (
            "A",
            "SER",
            1,
            [("OG", "O", (0, 0, 0)), ("HG", "H", (0.96, 0, 0)), ("O", "O", (2.9, 0, 0))],
        )
    ]
    assert detect_one(same, "hb") == set()


def alanine(chain, resseq, cb):
    """ALA CB with three hydrogens (1.09 A), so its 1.7 A neighbourhood is {C, H}."""
    cb = np.asarray(cb, float)
    hs = [("HB1", "H", tuple(cb + [0, 0, 1.09])), ("HB2", "H", tuple(cb + [0, 1.03, -0.36])),
          ("HB3", "H", tuple(cb + [0, -1.03, -0.36]))]  # fmt: skip
    return (chain, "ALA", resseq, [("CB", "C", tuple(cb)), *hs])


@pytest.mark.parametrize(
    ("resseq2", "chain2", "distance", "expected"),
    [
        (3, "A", 3.85, {"vdw", "hp"}),  # C-C cutoff 1.7 + 1.7 + 0.5 = 3.9, strict
        (3, "A", 3.95, set()),
        (2, "A", 3.0, set()),  # same chain, residue numbers 1 apart: skipped
        (2, "B", 3.0, {"vdw", "hp"}),  # another chain: counted
        (1, "B", 3.0, {"vdw", "hp"}),  # same number, other chain
    ],
)
def test_vdw_and_hydrophobic_analytic(resseq2, chain2, distance, expected):
    residues = [alanine("A", 1, (0, 0, 0)), alanine(chain2, resseq2, (distance, 0, 0))]
    found = detect_one(residues, ("vdw", "hp"))
    assert {t for t, _, _ in found} == expected
    assert all(a.endswith(":CB") and b.endswith(":CB") for _, a, b in found)


def test_hydrophobic_needs_hydrogens_somewhere():
    bare = [("A", "ALA", 1, [("CB", "C", (0, 0, 0))]), ("A", "ALA", 3, [("CB", "C", (3.5, 0, 0))])]
    assert detect_one(bare, ("vdw", "hp")) == {("vdw", "A:ALA:1:CB", "A:ALA:3:CB")}


def test_disulfide_pairs_are_not_vdw():
    def cys(resseq, sg, cb):
        return ("A", "CYS", resseq, [("SG", "S", sg), ("CB", "C", cb)])

    bonded = [cys(1, (0, 0, 0), (-1.8, 0, 0)), cys(8, (2.05, 0, 0), (3.85, 0, 0))]
    assert detect_one(bonded, "vdw") == set()  # SG-SG 2.05 A: a disulfide, all pairs skipped
    apart = [cys(1, (0, 0, 0), (-1.8, 0, 0)), cys(8, (3.0, 0, 0), (4.8, 0, 0))]
    assert detect_one(apart, "vdw") == {("vdw", "A:CYS:1:SG", "A:CYS:8:SG")}


def test_protein_keyword_follows_vmd_backbone_rule():
    backbone = [("N", "N", (0, 0, 0)), ("CA", "C", (1.5, 0, 0)), ("C", "C", (2, 1.4, 0))]
    residues = [
        ("A", "ACE", 0, [("C", "C", (-3, 0, 0)), ("O", "O", (-3, 1.2, 0))]),
        ("A", "HIE", 1, [*backbone, ("O", "O", (2, 2.6, 0))]),  # AMBER name: MDTraj omits it
        ("A", "CYX", 2, [*backbone, ("OXT", "O", (2, 2.6, 0))]),
        ("A", "NA", 3, [("NA", "Na", (9, 9, 9))]),
    ]
    top, _ = build(residues)
    assert protein_atoms(top).tolist() == list(range(2, 10))
    assert select_atoms(top, "resname NA").tolist() == [10]


def test_itype_parsing():
    assert parse_itypes("all") == parse_itypes(["hb", "sb", "pc", "ps", "ts", "hp", "vdw"])
    assert set(parse_itypes("all")) == set(INTERACTIONS)
    assert parse_itypes("vdw,hbsb") == ("hbsb", "vdw")
    assert header_itypes(parse_itypes(["hb", "vdw"])) == ("hb", "vdw")
    assert header_itypes(("hbbb", "sb")) == ("hbbb", "sb")
    with pytest.raises(SeqDanceError, match="unknown interaction type 'wb'"):
        parse_itypes(["wb"])


# ---------------------------------------------------------------- command line


def test_cli_writes_getcontacts_tsv(run_cli, reference_3tvj, tmp_path):
    _, ref = reference_3tvj
    out = tmp_path / "c.tsv"
    args = ["contacts", "--topology", str(TVJ_TOP), "--trajectory", str(TVJ_TRJ)]
    assert run_cli([*args, "--out", str(out), "--itypes", "hb", "sb", "--no-progress"]) == 0
    header, lines = read_contacts(out)
    assert header.interaction_types == ("hb", "sb")
    assert as_set(lines) == {x for x in ref if x[1] in ("hbbb", "hbsb", "hbss", "sb")}
    assert run_cli([*args, "--out", str(out), "--no-progress"]) == 0
    assert as_set(read_contacts(out)[1]) == ref


@pytest.mark.parametrize(
    ("top", "trj", "rest", "message"),
    [
        (TVJ_TOP, XND_TRJ, [], "frames have 1629 atoms, the topology has 531"),  # another system
        (TVJ_TOP, Path("missing.dcd"), [], "no such trajectory file"),
        (TVJ_TOP, TVJ_TSV, [], "cannot read trajectory"),
        (TVJ_TSV, TVJ_TRJ, [], "cannot read topology"),
        (Path("missing.pdb"), TVJ_TRJ, [], "no such topology file"),
        (TVJ_TOP, TVJ_TRJ, ["-s", "resname XYZ"], "matches no atoms"),
        (TVJ_TOP, TVJ_TRJ, ["-s", "resnam (("], "bad selection"),
        (TVJ_TOP, TVJ_TRJ, ["--itypes", "hb", "wb"], "unknown interaction type"),
        (TVJ_TOP, TVJ_TRJ, ["vdw"], "unexpected argument"),
    ],
)
def test_cli_bad_input_one_line_error_no_output(run_cli, top, trj, rest, message, tmp_path, capsys):
    out = tmp_path / "out.tsv"
    argv = ["contacts", "-t", str(top), "-x", str(trj), "-o", str(out), "--no-progress", *rest]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in "\n".join(err)
    assert list(tmp_path.iterdir()) == []


def test_gro_and_xtc_inputs_agree_within_xtc_precision(reference_3tvj, tmp_path):
    _, ref = reference_3tvj
    traj = md.load(str(TVJ_TRJ), top=load_named_topology(TVJ_TOP))
    traj[0].save_gro(str(tmp_path / "t.gro"))
    traj.save_xtc(str(tmp_path / "t.xtc"))  # 0.01 A precision: borderline pairs may flip
    header, lines = detect_contacts(tmp_path / "t.gro", tmp_path / "t.xtc", chunk_size=4)
    got = as_set(lines)
    assert header.total_frames == 10
    assert len(got & ref) >= 0.99 * len(ref) and len(got - ref) <= 0.01 * len(ref)
