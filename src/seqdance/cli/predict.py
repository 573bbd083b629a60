"""``seqdance predict`` and ``seqdance embed``: run a SeqDance/ESMDance model on a FASTA file."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option, dtype_option, token_budget_option

MODEL_HELP = (
    "Hub id (ChaoHou/SeqDance, ChaoHou/ESMDance), a folder with config.json + "
    "model.safetensors, or a checkpoint file such as the authors' update_N.pt."
)
ARCH_HELP = "Architecture for checkpoints without a config (8M, 35M, 150M, 650M or full name)."


def _load(model: str, arch: str | None, device: str, dtype: DType):
    """The model on ``--device`` in ``--dtype`` (score, scan, explain and analyze load so too)."""
    from seqdance.inference import pipeline

    return pipeline.load_on_device(model, arch, device, dtype.value)


@app.command("predict")
def predict_command(
    fasta: Path = typer.Argument(..., help="Protein sequences (FASTA).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    device: str = device_option(),
    dtype: DType = dtype_option(),
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
    token_budget: int = token_budget_option(),
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
    from seqdance.inference import pipeline

    n = pipeline.predict_fasta(
        fasta, model, out, arch=arch, device=device, dtype=dtype.value, plots=plots,
        attention=attention, pdb=pdb, token_budget=token_budget, window=window,
        progress=progress,
    )  # fmt: skip
    typer.echo(f"{n} records written to {out}", err=True)


@app.command("embed")
def embed_command(
    fasta: Path = typer.Argument(..., help="Protein sequences (FASTA).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output HDF5 file."),
    device: str = device_option(),
    dtype: DType = dtype_option(),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
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
    from seqdance.inference import pipeline

    n = pipeline.embed_fasta(
        fasta, model, out, arch=arch, device=device, dtype=dtype.value,
        token_budget=token_budget, window=window, progress=progress,
    )  # fmt: skip
    typer.echo(f"{n} records written to {out}", err=True)
