"""Pure test helpers that module-level test code needs (fixtures live in ``conftest.py``):
the tiny architecture, the naive reference model, the authors' weight layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import h5py
import numpy as np
import pytest
import torch

from seqdance.model import Esm2Architecture, SeqDanceModel

ROOT = Path(__file__).resolve().parents[1]
TINY = Esm2Architecture("tiny", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64)


def load_naive_model() -> ModuleType:
    """``benchmarks/naive_model.py``: the independent reference (full pair tensor, stacked maps)."""
    spec = importlib.util.spec_from_file_location("naive_model", ROOT / "benchmarks/naive_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


naive_forward = load_naive_model().naive_forward


def authors_state_dict(model: SeqDanceModel) -> dict[str, torch.Tensor]:
    """The model's weights laid out as the authors' transformers-4.48 files are."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hidden = model.config.arch.hidden_size
    inv_freq = state.pop("esm2.rotary_embeddings.inv_freq")
    for i in range(model.config.arch.num_layers):
        state[f"esm2.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq"] = (
            inv_freq.clone()
        )
    state["esm2.embeddings.position_embeddings.weight"] = torch.randn(1026, hidden)
    state["esm2.pooler.dense.weight"] = torch.randn(hidden, hidden)
    state["esm2.pooler.dense.bias"] = torch.randn(hidden)
    return state


def hub_snapshot(cache: Path, repo_id: str) -> Path:
    """An empty snapshot folder of ``repo_id`` in the huggingface_hub cache layout
    (``models--OWNER--NAME/refs/main`` -> ``snapshots/<commit>/``); files go into it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def write_mdcath(path: Path, traj, pdb: Path, temps=(320, 348), reps=(0, 1), per=5) -> str:
    """An mdCATH file as published (Angstrom coordinates, nm box and rmsf, bytes datasets) of
    ``traj`` (an MDTraj trajectory) whose topology is the PDB file ``pdb``."""
    domain = path.stem.removeprefix("mdcath_dataset_")
    pdb_lines = [
        line for line in pdb.read_text().splitlines(keepends=True)
        if line.startswith(("ATOM", "MODEL"))
    ]  # fmt: skip
    top = traj.topology
    with h5py.File(path, "w") as h5:
        h5.attrs["layout"] = "mdcath-only-protein-v1.0"
        g = h5.create_group(domain)
        g.create_dataset("pdbProteinAtoms", data="".join(pdb_lines).encode())
        g.create_dataset("resid", data=np.array([a.residue.resSeq for a in top.atoms]))
        g.create_dataset("resname", data=np.array([a.residue.name.encode() for a in top.atoms]))
        g.create_dataset("element", data=np.array([a.element.symbol.encode() for a in top.atoms]))
        g.create_dataset("chain", data=np.array([b"A"] * top.n_atoms))
        g.attrs["numProteinAtoms"], g.attrs["numResidues"] = top.n_atoms, top.n_residues
        k = 0
        for t in temps:
            for r in reps:
                frames = traj.xyz[[(k + i) % traj.n_frames for i in range(per)]]
                k += 1
                rg = g.create_group(f"{t}/{r}")
                rg.attrs["numFrames"] = per
                rg.create_dataset("coords", data=frames * 10.0).attrs["unit"] = "Angstrom"
                rg.create_dataset("box", data=np.diag(traj.unitcell_lengths[0]))
                rg.create_dataset("rmsf", data=np.zeros(top.n_residues)).attrs["unit"] = "nm"
                rg.create_dataset("dssp", data=np.full((per, top.n_residues), b"H"))
    return domain


def cli(args: list, capsys) -> tuple[int, str]:
    """Run ``seqdance ARGS`` in this process; (exit status, stderr)."""
    from seqdance.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line stderr must be (no traceback, no warning, no box)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def proteins_fasta(count: int, seed: int = 0) -> str:
    """A FASTA text of ``count`` records of 12..80 residues (random, from ``seed``)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    lines = []
    for k in range(count):
        seq = "".join(rng.choice(letters, size=int(rng.integers(12, 81))))
        lines.append(f">rec{k:04d} synthetic\n{seq}\n")
    return "".join(lines)


def spawned_workers(pid: int) -> list[int]:
    """Process ids of the ``multiprocessing`` spawn children of ``pid`` (``--workers``
    ranks), not its resource tracker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found
