"""Time per frame of ``features md`` for every input format and source layout, and the memory
of reading a whole mdCATH domain (5 temperatures x 5 replicas) in chunks.

The system is adenylate kinase from MDAnalysisTests (3,341 atoms with hydrogens, GROMACS
OPLS-AA, tests/data/engines/adk_oplsaa_protein.*): its 10 frames, twice, are written in each
layout (the same 20 frames everywhere), then ``md_features`` runs on each.

    python benchmarks/bench_sources.py [--repeat 2] [--mdcath-frames 40]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import mdtraj as md
import numpy as np

from seqdance.features.md import md_features
from seqdance.features.sources import SourceOptions, open_source

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "tests" / "data" / "engines"


def _system(tmp: Path) -> tuple[md.Trajectory, Path]:
    gro = tmp / "adk.gro"
    with gzip.open(ENGINES / "adk_oplsaa_protein.gro.gz", "rb") as fin, open(gro, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    traj = md.load(str(ENGINES / "adk_oplsaa_protein.xtc"), top=str(gro))
    traj = traj.make_molecules_whole() if traj.topology.n_bonds else traj
    return md.join([traj, traj]), gro


def _mdcath(path: Path, traj: md.Trajectory, pdb: Path, temps, reps, per: int) -> None:
    lines = [ln for ln in pdb.read_text().splitlines(keepends=True) if ln.startswith("ATOM")]
    with h5py.File(path, "w") as h5:
        g = h5.create_group(path.stem.removeprefix("mdcath_dataset_"))
        g.create_dataset("pdbProteinAtoms", data="".join(lines).encode())
        for t in temps:
            for r in reps:
                frames = traj.xyz[np.arange(per) % traj.n_frames] * 10.0
                rg = g.create_group(f"{t}/{r}")
                rg.create_dataset("coords", data=frames, chunks=(min(per, 10), *frames.shape[1:]))
                rg.create_dataset("box", data=np.diag(traj.unitcell_lengths[0]))


def _cases(tmp: Path, traj: md.Trajectory, gro: Path) -> dict[str, tuple]:
    pdb = tmp / "adk.pdb"
    traj[0].save_pdb(str(pdb))
    cases: dict[str, tuple] = {}
    traj.save_dcd(str(tmp / "adk.dcd"))
    cases["PDB + DCD"] = (pdb, tmp / "adk.dcd")
    traj.save_xtc(str(tmp / "adk.xtc"))
    cases["GRO + XTC"] = (gro, tmp / "adk.xtc")
    traj.save_gro(str(tmp / "adk_multi.gro"))
    cases["GRO + multi-frame GRO"] = (gro, tmp / "adk_multi.gro")
    traj.save_pdb(str(tmp / "adk_models.pdb"))
    cases["PED (multi-model PDB)"] = open_source("PED", tmp / "adk_models.pdb")
    atlas = tmp / "atlas"
    atlas.mkdir()
    shutil.copy(pdb, atlas / "adk.pdb")
    traj[:10].save_xtc(str(atlas / "adk_R1.xtc"))
    traj[10:].save_xtc(str(atlas / "adk_R2.xtc"))
    cases["ATLAS folder (2 replicas)"] = open_source("ATLAS", atlas)
    h5 = tmp / "mdcath_dataset_adk.h5"
    _mdcath(h5, traj, pdb, (320,), (0, 1), 10)
    cases["mdCATH HDF5 (1 T x 2 replicas)"] = open_source("mdCATH", h5)
    gpcr = tmp / "gpcrmd"
    gpcr.mkdir()
    shutil.copy(pdb, gpcr / "1_dyn_1.pdb")
    traj[:10].save_dcd(str(gpcr / "2_trj_1.dcd"))
    traj[10:].save_dcd(str(gpcr / "3_trj_1.dcd"))
    cases["GPCRmd folder (PDB + 2 DCD)"] = open_source("GPCRmd", gpcr)
    ca = traj.atom_slice(traj.topology.select("name CA"))
    top = md.Topology()
    chain = top.add_chain()
    for residue in ca.topology.residues:
        new = top.add_residue(residue.name, chain, residue.resSeq)
        top.add_atom(residue.name, md.element.carbon, new)
    cg = md.Trajectory(
        ca.xyz, top, unitcell_lengths=ca.unitcell_lengths, unitcell_angles=ca.unitcell_angles
    )
    idr = tmp / "idrome"
    idr.mkdir()
    cg[0].save_pdb(str(idr / "top.pdb"))
    cg.save_xtc(str(idr / "traj.xtc"))
    cases["IDRome CG (214 beads, rmsf + corr)"] = open_source("IDRome", idr, SourceOptions(skip=0))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--mdcath-frames", type=int, default=40, help="frames per replica")
    parser.add_argument("--mdcath-only", action="store_true", help="only the mdCATH read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        traj, gro = _system(tmp)
        print(f"system: {traj.n_atoms} atoms, {traj.n_residues} residues, {traj.n_frames} frames")
        print("| input | frames | ms/frame | read share |")
        print("|---|---|---|---|")
        for k in range(0 if args.mdcath_only else args.repeat):
            work = tmp / f"run{k}"
            work.mkdir()
            cases = _cases(work, traj, gro)
            for label, (top, trj) in cases.items():
                t0 = time.perf_counter()
                feats = md_features(top, trj)
                dt = time.perf_counter() - t0
                read = feats.timings["read"] / max(sum(feats.timings.values()), 1e-9)
                if k == args.repeat - 1:
                    per = 1000 * dt / feats.n_frames
                    print(f"| {label} | {feats.n_frames} | {per:.0f} | {read:.0%} |")
        # a whole mdCATH domain: 5 temperatures x 5 replicas, read once in chunks
        h5 = tmp / "mdcath_dataset_full.h5"
        pdb = tmp / "adk.pdb"
        traj[0].save_pdb(str(pdb))
        temps, reps = (320, 348, 379, 413, 450), (0, 1, 2, 3, 4)
        _mdcath(h5, traj, pdb, temps, reps, args.mdcath_frames)
        prepared, source = open_source("mdCATH", h5, SourceOptions(temperatures=temps))
        atoms = np.arange(prepared.n_atoms)
        tracemalloc.start()
        t0 = time.perf_counter()
        n = sum(len(b.xyz) for b in source.blocks(atoms, 100, 1, prepared.topology))
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = n * prepared.n_atoms * 3 * 4
        print(
            f"mdCATH domain, 25 replicas x {args.mdcath_frames} frames: {n} frames read in "
            f"{dt:.2f} s ({1000 * dt / n:.2f} ms/frame), peak traced memory {peak / 1e6:.1f} MB "
            f"for {size / 1e6:.1f} MB of coordinates (chunks of 100 frames)"
        )


if __name__ == "__main__":
    main()
