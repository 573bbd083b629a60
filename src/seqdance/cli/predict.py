"""``seqdance predict`` and ``seqdance embed``: run a SeqDance/ESMDance model on a FASTA file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option, dtype_option, token_budget_option
from seqdance.cli.workers import INT8_HELP, WORKERS_HELP, sharded

MODEL_HELP = (
    "Hub id (ChaoHou/SeqDance, ChaoHou/ESMDance), a folder with config.json + "
    "model.safetensors, or a checkpoint file such as the authors' update_N.pt."
)
ARCH_HELP = "Architecture for checkpoints without a config (8M, 35M, 150M, 650M or full name)."


class FigureFormat(str, Enum):  # seqdance.utils.figures.FIGURE_FORMATS
    png = "png"
    svg = "svg"
    pdf = "pdf"


FIGURE_FORMAT_HELP = "Format of the figures: png (300 dpi), svg or pdf."


def _load(model: str, arch: str | None, device: str, dtype: DType, int8: bool = False):
    """The model on ``--device`` in ``--dtype`` (score, scan, explain and analyze load so too);
    ``int8``: its trunk's Linear layers quantized (``--int8``, CPU)."""
    from seqdance.inference import pipeline

    return pipeline.load_on_device(model, arch, device, dtype.value, int8)


@app.command("predict")
@sharded
def predict_command(
    fasta: Path = typer.Argument(..., help="Protein sequences (FASTA).", show_default=False),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output folder, or a file ending in .h5: one HDF5 store for every record "
        "(residues, pairs, attention) with a per-record index; for proteomes.",
    ),
    device: str = device_option(),
    dtype: DType = dtype_option(),
    plots: bool = typer.Option(False, "--plots", help="Also write two figures per record."),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
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
    pairs: str = typer.Option(
        "all",
        "--pairs",
        help="Pair maps to write: all, none (no pair file; the pair head is not run) or "
        "comma-separated pair outputs (vdw, hbbb, hbsb, hbss, hp, sb, pc, ps, ts, corr, "
        "nma_pair1..3, or nma_pair for all three).",
    ),
    pair_band: int | None = typer.Option(
        None,
        "--pair-band",
        help="Keep only pairs with |i - j| <= N (the others read as NaN and take no disk); "
        "writes the HDF5 pair store.",
    ),
    pair_format: str = typer.Option(
        "auto",
        "--pair-format",
        help="auto (HDF5 pair store {id}.pair.h5 with --window or --pair-band, else "
        "{id}.pair.npz), npz or h5. The store is written in tiles: memory stays bounded.",
    ),
    pair_dtype: str = typer.Option(
        "float32",
        "--pair-dtype",
        help="float32 or float16 (HDF5 pair store only; half the disk, error in docs/model.md).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
) -> None:
    """Predict the 50 residue and 13 pair dynamic properties of every FASTA record.

    Writes OUT/{id}.residue.csv (position, residue, then one column per residue output),
    OUT/{id}.pair.npz (one L x L array per pair output) or, with --window or --pair-band,
    the HDF5 pair store OUT/{id}.pair.h5, and OUT/index.csv (record id -> files). {id} is the
    record id made safe as a file name. With -o OUT.h5, all of it goes into one HDF5 store
    with a per-record index instead. Every sequence runs in one pass, as the authors'
    code; --window N predicts longer ones in overlapping windows (docs/model.md: both).
    """
    from seqdance.inference import pipeline

    n = pipeline.predict_fasta(
        fasta, model, out, arch=arch, device=device, dtype=dtype.value, plots=plots,
        attention=attention, pdb=pdb, token_budget=token_budget, window=window,
        progress=progress, pairs=pairs, pair_band=pair_band, pair_format=pair_format,
        pair_dtype=pair_dtype, figure_format=figure_format.value, int8=int8,
    )  # fmt: skip
    if n is not None:  # None: a rank other than 0 of a sharded run
        typer.echo(f"{n} records written to {out}", err=True)


@app.command("embed")
@sharded
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
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
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
    if n is not None:  # None: a rank other than 0 of a sharded run
        typer.echo(f"{n} records written to {out}", err=True)
