"""``seqdance predict`` and ``seqdance embed``: run a SeqDance/ESMDance model on a FASTA file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from seqdance.cli.app import app

MODEL_HELP = (
    "Hub id (ChaoHou/SeqDance, ChaoHou/ESMDance), a folder with config.json + "
    "model.safetensors, or a checkpoint file such as the authors' update_N.pt."
)
ARCH_HELP = "Architecture for checkpoints without a config (8M, 35M, 150M, 650M or full name)."


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def _load(model: str, arch: str | None, device: Device, dtype: DType):
    import torch

    from seqdance.model import load_model
    from seqdance.train.distributed import DistEnv, pick_device

    name = pick_device(device.value, DistEnv())  # the one device picker (train, evaluate too)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    return load_model(model, arch=arch, device=name, dtype=torch_dtype[dtype.value])


@app.command("predict")
def predict_command(
    fasta: Path = typer.Argument(..., help="Protein sequences (FASTA).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    device: Device = typer.Option(Device.auto, "--device", help="Where to run."),
    dtype: DType = typer.Option(DType.fp32, "--dtype", help="Precision of the model."),
    plots: bool = typer.Option(False, "--plots", help="Also write PNG plots per record."),
    attention: bool = typer.Option(
        False, "--attention", help="Also write {id}.attention.npz (layers, heads, L, L; float16)."
    ),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    pdb: Path | None = typer.Option(
        None,
        "--pdb",
        help="Structure (PDB/mmCIF): write {id}.rmsf.pdb, the predicted normalised RMSF as "
        "B-factors, for each record whose sequence equals one of its chains.",
    ),
    token_budget: int = typer.Option(4096, "--token-budget", min=1, help="Tokens per batch."),
    window: int | None = typer.Option(
        None,
        "--window",
        min=16,
        help="Predict sequences longer than this many residues in overlapping windows, merged "
        "(e.g. 1022, ESM2's training length). Default: one pass at any length, as the authors.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Predict the 50 residue and 13 pair dynamic properties of every FASTA record.

    Writes OUT/{id}.residue.tsv (position, residue, then one column per residue output)
    and OUT/{id}.pair.npz (one L x L array per pair output). Every sequence runs in one pass,
    as the authors' code; --window N predicts longer ones in overlapping windows (docs/model.md).
    """
    from seqdance.inference.fasta import read_fasta
    from seqdance.inference.predict import (
        iter_outputs,
        write_attention_npz,
        write_pair_npz,
        write_residue_tsv,
    )
    from seqdance.utils.io import output_group

    records = read_fasta(fasta)  # every record checked before any work starts
    pdb_records = _records_in_structure(pdb, records) if pdb is not None else set()
    net = _load(model, arch, device, dtype)
    outputs = iter_outputs(
        net,
        [r.sequence for r in records],
        attentions=attention,
        token_budget=token_budget,
        window=window,
        progress=progress,
    )
    for index, result in outputs:
        record = records[index]
        # a record's files (tsv, npz, plots, pdb) appear together or not at all
        with output_group() as group:
            at = group.path
            write_residue_tsv(at(out / f"{record.id}.residue.tsv"), record.sequence,
                              result.residue)  # fmt: skip
            write_pair_npz(at(out / f"{record.id}.pair.npz"), result.pair)
            if attention:
                write_attention_npz(at(out / f"{record.id}.attention.npz"), result.attentions)
            if plots:
                from seqdance.inference.plots import plot_pairs, plot_profiles

                plot_profiles(at(out / f"{record.id}.profiles.png"), record.id, result.residue)
                plot_pairs(at(out / f"{record.id}.pairs.png"), record.id, result.pair)
            if record.id in pdb_records:
                from seqdance.inference.bfactor import write_bfactors
                from seqdance.schema import RESIDUE_CHANNELS

                rmsf = result.residue[:, RESIDUE_CHANNELS.index("rmsf_nor")]
                write_bfactors(pdb, at(out / f"{record.id}.rmsf.pdb"), record.sequence, rmsf)
    typer.echo(f"{len(records)} records written to {out}", err=True)


def _records_in_structure(pdb: Path, records) -> set[str]:
    from seqdance.errors import SeqDanceError
    from seqdance.inference.bfactor import read_protein_chains

    _, chains = read_protein_chains(pdb)
    sequences = {seq for _, _, seq in chains}
    matched = {r.id for r in records if r.sequence in sequences}
    if not matched:
        raise SeqDanceError(f"--pdb {pdb}: no FASTA record has the sequence of one of its chains")
    return matched


@app.command("embed")
def embed_command(
    fasta: Path = typer.Argument(..., help="Protein sequences (FASTA).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output HDF5 file."),
    device: Device = typer.Option(Device.auto, "--device", help="Where to run."),
    dtype: DType = typer.Option(DType.fp32, "--dtype", help="Precision of the model."),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = typer.Option(4096, "--token-budget", min=1, help="Tokens per batch."),
    window: int | None = typer.Option(
        None,
        "--window",
        min=16,
        help="Embed sequences longer than this many residues in overlapping windows, merged "
        "(e.g. 1022, ESM2's training length). Default: one pass at any length, as the authors.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Per-residue embeddings (the trunk's last hidden state) of every FASTA record.

    Writes one HDF5 file with a group per record id holding residues (L, E) and
    mean (E,), the mean over residues (special tokens excluded).
    """
    from seqdance.inference.embed import embed, write_embeddings
    from seqdance.inference.fasta import read_fasta

    records = read_fasta(fasta)
    net = _load(model, arch, device, dtype)
    items = embed(
        net,
        [r.sequence for r in records],
        token_budget=token_budget,
        window=window,
        progress=progress,
    )
    write_embeddings(out, ((records[i].id, residues) for i, residues in items))
    typer.echo(f"{len(records)} records written to {out}", err=True)
