"""``seqdance contacts``: GetContacts-equivalent interaction detection over a trajectory."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import PBC_HELP, app
from seqdance.errors import SeqDanceError
from seqdance.features.getcontacts import write_contacts
from seqdance.utils.progress import progress_bar

ITYPES_HELP = (
    "Interaction types, GetContacts style: hb sb pc ps ts hp vdw, or hbbb hbsb hbss, or all. "
    "Give several after one flag (--itypes hb sb), repeat the flag, or separate with commas."
)


@app.command(
    "contacts",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
def contacts(
    ctx: typer.Context,
    topology: Path = typer.Option(
        ...,
        "--topology",
        "-t",
        help="Topology: PDB, mmCIF, GRO, PSF, AMBER PRMTOP (.prmtop/.parm7/.top), TPR, PQR, "
        "PDBQT, CHARMM CRD/COR, Desmond DMS, MOL2, H5; .gz/.bz2/.xz read as they are.",
    ),
    trajectory: Path = typer.Option(
        ...,
        "--trajectory",
        "-x",
        help="Trajectory: DCD, XTC, TRR, AMBER NetCDF/mdcrd, GROMOS TRC, NAMD binary COOR, H5, "
        "multi-frame GRO, multi-model PDB ...",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output GetContacts TSV file."),
    itypes: list[str] | None = typer.Option(None, "--itypes", help=ITYPES_HELP),
    stride: int = typer.Option(1, "--stride", min=1, help="Analyse every N-th frame."),
    selection: str = typer.Option(
        "protein", "--selection", "-s", help="MDTraj selection of the atoms to consider."
    ),
    chunk_size: int = typer.Option(
        100, "--chunk-size", min=1, help="Frames read into memory at a time."
    ),
    pbc: str = typer.Option(
        "cluster",
        "--pbc",
        help=PBC_HELP,
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Detect atomic interactions in every frame (GetContacts' rules, no VMD needed).

    Writes GetContacts' dynamic-contacts TSV, one line per frame and interacting pair.

    Hydrogen bonds and hydrophobic contacts need explicit hydrogens in the topology.
    """
    from seqdance.features.contacts import detect_contacts  # mdtraj: only when the command runs

    chosen = list(itypes or [])
    if ctx.args:  # GetContacts' "--itypes hb sb pc": the words after the first one land here
        if itypes is None:
            raise SeqDanceError(f"unexpected argument(s): {' '.join(ctx.args)}")
        chosen.extend(ctx.args)
    bars: list = []
    header, lines = detect_contacts(
        topology,
        trajectory,
        itypes=chosen or ("all",),
        stride=stride,
        selection=selection,
        chunk_size=chunk_size,
        on_frames=lambda n: bars[0].update(n),
        pbc=pbc,
    )
    for message in lines.warnings:
        typer.echo(f"warning: {message}", err=True)
    bars.append(
        progress_bar(total=header.total_frames, unit="frame", desc="contacts", enabled=progress)
    )
    try:
        write_contacts(out, header, lines)
    finally:
        bars[0].close()
    source = getattr(lines, "source", None)
    if source is not None:
        for note in [*source.notes, *source.summary()]:
            typer.echo(f"note: {note}", err=True)
    typer.echo(f"{header.total_frames} frames -> {out}", err=True)
