"""Native readers of the paper's MD sources, on small files in the exact published layouts.

The files are made here from the real 3tvj_I trajectory (tests/data/md/3tvj_I, ATLAS): the
same frames written the way each source publishes them must give the features that plain
``md_features`` gives on the same frames as one topology + trajectory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import mdtraj as md
import numpy as np
import pytest

from helpers import write_mdcath
from seqdance.cli import main
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.store import pair_key, res_key
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.features.md import md_features
from seqdance.features.sources import SourceOptions, atlas_replicas, open_source, options_from

DATA = Path(__file__).parent / "data"
TVJ_TOP = DATA / "md" / "3tvj_I" / "3tvj_I.pdb"
TVJ_TRJ = DATA / "md" / "3tvj_I" / "3tvj_I_10frames.dcd"
SASA_TOL = 3e-3  # Shrake-Rupley moves with the chunking of frames


@pytest.fixture(scope="module")
def traj():
    return md.load(str(TVJ_TRJ), top=str(TVJ_TOP))


def _same(a, b, sasa_tol=SASA_TOL, tol=1e-6):
    assert a.n_frames == b.n_frames
    assert a.sequence == b.sequence
    for col in a.residues.columns[3:]:
        atol = sasa_tol if col.startswith("sasa") else tol
        np.testing.assert_allclose(a.residues[col], b.residues[col], atol=atol, err_msg=col)
    for key, value in b.pair.items():
        np.testing.assert_allclose(a.pair[key], value, atol=tol, err_msg=key)


def _reference(tmp_path: Path, traj, name: str):
    path = tmp_path / f"{name}.dcd"
    traj.save_dcd(str(path))
    return md_features(TVJ_TOP, path)


# ----------------------------------------------------------------------------- ATLAS


@pytest.mark.parametrize("scheme", ["{id}_R{r}.xtc", "{id}_prod_R{r}_fit.xtc"])
def test_atlas_folder_both_naming_schemes(tmp_path, traj, scheme):
    folder = tmp_path / "3tvj_I"
    folder.mkdir()
    shutil.copy(TVJ_TOP, folder / "3tvj_I.pdb")
    for r, frames in ((1, slice(0, 4)), (2, slice(4, 7)), (3, slice(7, 10))):
        traj[frames].save_xtc(str(folder / scheme.format(id="3tvj_I", r=r)))
    top, reps = atlas_replicas(folder)
    assert top.name == "3tvj_I.pdb" and sorted(reps) == [1, 2, 3]
    feats = md_features(*open_source("ATLAS", folder))
    xtc = tmp_path / "all.xtc"
    traj.save_xtc(str(xtc))
    _same(feats, md_features(TVJ_TOP, xtc))
    two = md_features(*open_source("atlas", folder, SourceOptions(replicas=(1, 2))))
    assert two.n_frames == 7


def test_atlas_fitted_file_wins_over_the_plain_one(tmp_path, traj):
    folder = tmp_path / "3tvj_I"
    folder.mkdir()
    shutil.copy(TVJ_TOP, folder / "3tvj_I.pdb")
    traj[:5].save_xtc(str(folder / "3tvj_I_R1.xtc"))
    traj[5:].save_xtc(str(folder / "3tvj_I_prod_R1_fit.xtc"))
    _, reps = atlas_replicas(folder)
    assert reps == {1: folder / "3tvj_I_prod_R1_fit.xtc"}


# ----------------------------------------------------------------------------- mdCATH


def _write_mdcath(path: Path, traj, temps=(320, 348), reps=(0, 1), per=5) -> str:
    return write_mdcath(path, traj, TVJ_TOP, temps, reps, per)


def test_mdcath_chosen_temperatures_and_replicas_pool_in_nm(tmp_path, traj):
    h5 = tmp_path / "mdcath_dataset_3tvjI00.h5"
    _write_mdcath(h5, traj)
    feats = md_features(*open_source("mdCATH", h5), chunk_size=3)
    # default 320 K, replicas 0 and 1: frames 0-4 then 1-5
    frames = [0, 1, 2, 3, 4, 1, 2, 3, 4, 5]
    _same(feats, _reference(tmp_path, traj[frames], "ref320"))
    hot = md_features(*open_source("mdCATH", tmp_path, options_from("348", "1")))
    _same(hot, _reference(tmp_path, traj[[3, 4, 5, 6, 7]], "ref348r1"))
    with pytest.raises(InputFileError, match="no temperature 379"):
        open_source("mdCATH", h5, SourceOptions(temperatures=(379,)))
    with pytest.raises(SeqDanceError, match="300 K does not exist"):
        options_from("300")


def test_mdcath_reads_in_bounded_chunks(tmp_path, traj):
    h5 = tmp_path / "mdcath_dataset_x.h5"
    _write_mdcath(h5, traj, temps=(320,), reps=(0,), per=10)
    prepared, source = open_source("mdCATH", h5)
    sizes = [
        len(b.xyz) for b in source.blocks(np.arange(prepared.n_atoms), 4, 1, prepared.topology)
    ]
    assert sizes == [4, 4, 2]
    prepared, source = open_source("mdCATH", h5)
    first = next(iter(source.blocks(np.arange(5), 4, 1, prepared.topology.subset(range(5)))))
    np.testing.assert_allclose(first.xyz[0], traj.xyz[0, :5], atol=1e-6)  # Angstrom -> nm


# ----------------------------------------------------------------------------- IDRome


def _write_idrome_cg(folder: Path, traj) -> md.Trajectory:
    """top.pdb with one bead per residue named like the residue, traj.xtc (IDRome)."""
    ca = traj.atom_slice(traj.topology.select("name CA"))
    top = md.Topology()
    chain = top.add_chain()
    for residue in ca.topology.residues:
        new = top.add_residue(residue.name, chain, residue.resSeq)
        top.add_atom(residue.name, md.element.carbon, new)
    for i in range(top.n_atoms - 1):
        top.add_bond(top.atom(i), top.atom(i + 1))
    cg = md.Trajectory(ca.xyz, top, unitcell_lengths=np.full((ca.n_frames, 3), 20.0),
                       unitcell_angles=np.full((ca.n_frames, 3), 90.0))  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    cg[-1].save_pdb(str(folder / "top.pdb"))
    cg.save_xtc(str(folder / "traj.xtc"))
    return cg


def test_idrome_drops_the_first_frames_and_gives_rmsf_and_corr(tmp_path, traj):
    long = md.join([traj, traj[:4]])  # 14 frames; the reader drops 10
    folder = tmp_path / "Q9NYB0" / "1_38"
    cg = _write_idrome_cg(folder, long)
    feats = md_features(*open_source("IDRome", folder))
    assert feats.n_frames == 4 and "X" not in feats.sequence
    kept = md.load(str(folder / "traj.xtc"), top=str(folder / "top.pdb"))[10:]
    kept.superpose(kept, 0)
    np.testing.assert_allclose(feats.residues.rmsf, md.rmsf(kept, None), atol=1e-6)
    assert feats.residues.sasa_mean.isna().all() and (feats.pair["vdw"] == -1).all()
    assert any("first 10 frames" in n for n in feats.notes) and cg.n_frames == 14


def test_idrome_backmapped_trajectory_gives_all_features(tmp_path, traj):
    long = md.join([traj, traj[:4]])
    folder = tmp_path / "idr"
    _write_idrome_cg(folder, long)
    shutil.copy(TVJ_TOP, folder / "top_all.pdb")
    long.save_dcd(str(folder / "traj_all.dcd"))
    feats = md_features(*open_source("IDRome", folder))
    _same(feats, _reference(tmp_path, long[10:], "aa"))


# ----------------------------------------------------------------------------- PED


def test_ped_ensemble_with_varying_atoms(tmp_path, traj):
    """Model 3 lacks five hydrogens: they are dropped from every model, with a note."""
    text = []
    drop = {a.index for a in traj.topology.atoms if a.element.symbol == "H"}
    drop = set(sorted(drop)[:5])
    for k in range(traj.n_frames):
        path = tmp_path / f"m{k}.pdb"
        traj[k].save_pdb(str(path))
        body = [line for line in path.read_text().splitlines() if line.startswith("ATOM")]
        if k == 2:
            body = [line for i, line in enumerate(body) if i not in drop]
        text += [f"MODEL     {k + 1:4d}", *body, "ENDMDL"]
    ped = tmp_path / "PED00001e001.pdb"
    ped.write_text("\n".join(text) + "\nEND\n")
    feats = md_features(*open_source("PED", ped))
    assert any("5 atoms missing" in n for n in feats.notes)
    keep = [a.index for a in traj.topology.atoms if a.index not in drop]
    sub = traj.atom_slice(keep)
    top, trj, models = tmp_path / "sub.pdb", tmp_path / "sub.dcd", tmp_path / "sub_models.pdb"
    sub[0].save_pdb(str(top))
    sub.save_pdb(str(models))  # the same 0.001 A rounding as the ensemble file
    md.load(str(models)).save_dcd(str(trj))
    _same(feats, md_features(top, trj), tol=1e-5)  # float32 nm conversions differ in rounding


# ----------------------------------------------------------------------------- GPCRmd


def _with_water(traj) -> md.Trajectory:
    """The protein plus a chain of water and sodium ions, as in a solvated system."""
    top = traj.topology.copy()
    chain = top.add_chain()
    extra = []
    for k in range(4):
        res = top.add_residue("HOH", chain, 900 + k)
        hydrogen = md.element.hydrogen
        for name, el in (("O", md.element.oxygen), ("H1", hydrogen), ("H2", hydrogen)):
            top.add_atom(name, el, res)
        extra += [[2.0 + k, 2.0, 2.0], [2.09 + k, 2.0, 2.0], [2.0 + k, 2.09, 2.0]]
    res = top.add_residue("NA", chain, 990)
    top.add_atom("NA", md.element.sodium, res)
    extra.append([1.0, 3.0, 3.0])
    xyz = np.concatenate(
        [traj.xyz, np.repeat(np.array(extra, np.float32)[None], traj.n_frames, 0)], 1
    )
    return md.Trajectory(xyz, top, unitcell_lengths=traj.unitcell_lengths,
                         unitcell_angles=traj.unitcell_angles)  # fmt: skip


def test_gpcrmd_folder_protein_only(tmp_path, traj):
    system = _with_water(traj)
    folder = tmp_path / "gpcrmd_85"
    folder.mkdir()
    system[0].save_pdb(str(folder / "10166_dyn_85.pdb"))
    system[:5].save_dcd(str(folder / "10163_trj_85.dcd"))
    system[5:].save_dcd(str(folder / "10164_trj_85.dcd"))
    feats = md_features(*open_source("GPCRmd", folder))
    _same(feats, md_features(TVJ_TOP, TVJ_TRJ))


# ----------------------------------------------------------------------------- CLI, build


def test_cli_source_option(tmp_path, traj, capsys):
    h5 = tmp_path / "mdcath_dataset_d.h5"
    _write_mdcath(h5, traj, temps=(320,), reps=(0, 1, 2))
    prefix = tmp_path / "out" / "d"
    args = ["features", "md", "--source", "mdCATH", "-i", str(h5), "--replicas", "0,2",
            "-o", str(prefix), "--no-progress"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    err = capsys.readouterr().err
    assert "10 frames" in err and "replica 2: 5 frames read, 5 used" in err


def test_manifest_mixing_all_six_sources_builds(tmp_path, traj):
    root = tmp_path / "downloads"
    atlas = root / "atlas" / "3tvj_I"
    atlas.mkdir(parents=True)
    shutil.copy(TVJ_TOP, atlas / "3tvj_I.pdb")
    traj[:5].save_xtc(str(atlas / "3tvj_I_R1.xtc"))
    traj[5:].save_xtc(str(atlas / "3tvj_I_R2.xtc"))
    (root / "mdcath").mkdir()
    _write_mdcath(root / "mdcath" / "mdcath_dataset_3tvjA00.h5", traj)
    _write_idrome_cg(root / "idrome" / "P1_1_38", md.join([traj, traj[:4]]))
    ped = root / "ped" / "PED1.pdb"
    ped.parent.mkdir()
    traj.save_pdb(str(ped))
    gpcr = root / "gpcrmd"
    gpcr.mkdir()
    system = _with_water(traj)
    system[0].save_pdb(str(gpcr / "1_dyn_1.pdb"))
    system.save_dcd(str(gpcr / "2_trj_1.dcd"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "name,source,kind,path,temperatures,replicas,structure,label\n"
        "atlas1,ATLAS,md,downloads/atlas/3tvj_I,,,,train\n"
        "mdcath1,mdCATH,md,downloads/mdcath/mdcath_dataset_3tvjA00.h5,320;348,0,,train\n"
        "idr1,IDRome,md,downloads/idrome/P1_1_38,,,,train\n"
        "ped1,PED,md,downloads/ped/PED1.pdb,,,,train\n"
        "gpcr1,GPCRmd,md,downloads/gpcrmd,,,,test\n"
        f"pf1,proteinflow_pdb,nma,,,,{DATA / 'nma' / '2g3r.pdb'},train\n"
    )
    report = build_dataset(manifest, tmp_path / "ds", BuildConfig(progress=False))
    assert report.failed == {}
    assert sorted(report.merged) == ["atlas1", "gpcr1", "idr1", "mdcath1", "ped1", "pf1"]
    with h5py.File(tmp_path / "ds" / "features.h5", "r") as h5:
        assert h5[res_key("atlas1")].shape == (40, 47) and h5[pair_key("atlas1")].shape == (
            40,
            40,
            10,
        )
        idr = h5[res_key("idr1")][()]
        assert (idr[1:-1, 0] == -1).all() and (idr[1:-1, 2] > 0).all()  # rmsf only
        assert h5[res_key("pf1")].shape[1] == 3
        assert h5[res_key("mdcath1")].attrs["source"] == "mdCATH"


def test_gpcrmd_folder_with_a_multisegment_psf(tmp_path):
    """A CHARMM PSF (four segments, no chain IDs) and a DCD, as GPCRmd ships them."""
    folder = tmp_path / "gpcrmd"
    folder.mkdir()
    engines = DATA / "engines"
    shutil.copy(engines / "2r9r-1b.psf.gz", folder / "1_dyn_1.psf.gz")
    shutil.copy(engines / "2r9r-1b.dcd", folder / "2_trj_1.dcd")
    feats = md_features(*open_source("GPCRmd", folder))
    assert feats.residues.chain.tolist() == [c for c in "ABCD" for _ in range(38)]
    assert feats.n_frames == 10 and "X" not in feats.sequence


def test_contacts_on_an_ensemble_with_varying_atoms(tmp_path, traj):
    from seqdance.features.contacts import detect_contacts

    text = []
    for k in range(3):
        path = tmp_path / f"m{k}.pdb"
        traj[k].save_pdb(str(path))
        body = [line for line in path.read_text().splitlines() if line.startswith("ATOM")]
        text += [f"MODEL     {k + 1:4d}", *(body[1:] if k == 1 else body), "ENDMDL"]
    ped = tmp_path / "ens.pdb"
    ped.write_text("\n".join(text) + "\nEND\n")
    header, lines = detect_contacts(ped, ped)
    found = list(lines)
    assert header.total_frames == 3 and found
    assert any("1 atoms missing" in n for n in lines.source.notes)
