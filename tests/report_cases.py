"""Inputs for the report tests: structures cut or tiled from tests/data/nma/2g3r.pdb and the
outputs of predict/scan/explain of a tiny random model on their sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
STRUCTURE = ROOT / "data" / "nma" / "2g3r.pdb"  # chain A: 119 residues numbered 1485-1603
ARTIFACTS = ROOT.parent / "build" / "test-artifacts" / "report"


def chain_a():
    import prody

    prody.confProDy(verbosity="none")
    atoms = prody.parsePDB(str(STRUCTURE), model=1)
    return atoms.select("protein and chain A").copy()


def cut_structure(path: Path, first: int, last: int) -> Path:
    """Residues ``first..last`` of 2g3r chain A, numbering kept (1485...)."""
    import prody

    prody.writePDB(str(path), chain_a().select(f"resnum {first} to {last}").copy())
    return path


def tiled_structure(path: Path, n: int) -> Path:
    """``n`` residues: copies of 2g3r chain A side by side (40 A apart), numbered 1..n."""
    import prody

    base = chain_a()
    resnums = sorted(set(base.getResnums()))
    copies, count = [], 0
    for k in range(-(-n // len(resnums))):
        part = base.copy()
        part.setCoords(part.getCoords() + np.array([40.0 * k, 0.0, 0.0]))
        keep = resnums[: n - count]
        part = part.select(f"resnum {keep[0]} to {keep[-1]}").copy()
        part.setResnums(part.getResnums() - resnums[0] + 1 + count)
        count += len(keep)
        copies.append(part)
    whole = copies[0]
    for part in copies[1:]:
        whole = whole + part
    whole.setChids("A")
    prody.writePDB(str(path), whole)
    return path


def sequence_of(path: Path) -> str:
    from seqdance.inference.bfactor import read_protein_chains

    return read_protein_chains(path)[1][0][2]


def make_case(folder: Path, structure: Path, model, run_cli, *, scan_args=(), explain: bool = True,
              properties: str | None = None) -> dict:  # fmt: skip
    """predict + scan (+ explain) with a tiny seeded model; the paths of everything."""
    folder.mkdir(parents=True, exist_ok=True)
    model_dir = model.save_pretrained(folder / "model")
    seq = sequence_of(structure)
    fasta = folder / "protein.fasta"
    fasta.write_text(f">protein\n{seq}\n")
    props = ["--properties", properties] if properties else []
    assert run_cli(["predict", str(fasta), "-m", str(model_dir), "-o", str(folder / "pred"),
                    "--no-progress"]) == 0  # fmt: skip
    case = {"model": model_dir, "sequence": seq, "structure": structure, "fasta": fasta,
            "prediction": folder / "pred" / "protein.residue.csv", "scan": None,
            "explain": None}  # fmt: skip
    if scan_args is not None:
        assert run_cli(["scan", "-m", str(model_dir), "--fasta", str(fasta), "-o",
                        str(folder / "scan"), "--no-progress", "--plot", "sasa_mean",
                        *props, *scan_args]) == 0  # fmt: skip
        case["scan"] = folder / "scan"
    if explain:
        mutants = [f"{seq[2]}3A" if seq[2] != "A" else f"{seq[2]}3G", f"{seq[9]}10W"]
        assert run_cli(["explain", "-m", str(model_dir), "--fasta", str(fasta), "-o",
                        str(folder / "explain"), *[a for m in mutants for a in ("--mutant", m)],
                        *props]) == 0  # fmt: skip
        case["explain"] = folder / "explain"
    return case
