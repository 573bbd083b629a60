"""``seqdance features nma|md``: dynamic features from structures and trajectories."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from seqdance.cli.app import PBC_HELP, features_app
from seqdance.errors import SeqDanceError
from seqdance.features.nma import extract_nma_file
from seqdance.features.structure import structure_stem
from seqdance.utils.parallel import run_batch


@features_app.command("nma")
def nma(
    structures: list[Path] = typer.Argument(
        ..., help="PDB or mmCIF files (optionally .gz, .bz2 or .xz).", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for {stem}.nma.npz files."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes."),
    chain: str | None = typer.Option(None, "--chain", help="Use only this chain."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Normal-mode features (GNM band fluctuations, ANM band correlations) per structure.

    Writes OUT/{stem}.nma.npz with gnm_msf (3, N), anm_cor (3, N, N) and sequence. A file
    that fails is reported by name and skipped; the exit status is 1 if any failed.
    """
    _check_unique_stems(structures)
    results = run_batch(
        partial(extract_nma_file, out_dir=out, chain=chain),
        structures,
        workers=workers,
        desc="NMA",
        progress=progress,
    )
    _report(results)


def _check_unique_stems(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        stem = structure_stem(path)
        if stem in seen and seen[stem] != path:
            raise SeqDanceError(f"{seen[stem]} and {path} would both write {stem}.nma.npz")
        seen[stem] = path


def _report(results) -> None:
    """Print one line per failed input and a summary; exit 1 if anything failed."""
    failed = [r for r in results if not r.ok]
    for r in failed:
        message = r.error if r.error.startswith(str(r.item)) else f"{r.item}: {r.error}"
        typer.echo(f"error: {message}", err=True)
    typer.echo(f"{len(results) - len(failed)} of {len(results)} written", err=True)
    if failed:
        raise typer.Exit(1)


@features_app.command("md")
def md(
    topology: Path | None = typer.Option(
        None,
        "--topology",
        "-t",
        help="Topology: PDB, mmCIF, GRO, PSF, AMBER PRMTOP (.prmtop/.parm7/.top), TPR, PQR, "
        "PDBQT, CHARMM CRD/COR, Desmond DMS, H5, MOL2; .gz/.bz2/.xz read as they are. "
        "Formats and what is refused: docs/md-features.md.",
    ),
    trajectory: list[Path] | None = typer.Option(
        None,
        "--trajectory",
        "-x",
        help="Trajectory (DCD, XTC, TRR, AMBER NetCDF/mdcrd, GROMOS TRC, NAMD binary COOR, "
        "H5, GRO, multi-model PDB...); repeat the flag "
        "for replicas, whose frames are pooled.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output prefix: writes PREFIX.residue.csv and PREFIX.pair.npz."
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        help="Read a published source natively: mdCATH, ATLAS, IDRome, PED or GPCRmd "
        "(with --input instead of --topology/--trajectory).",
    ),
    input_path: Path | None = typer.Option(
        None, "--input", "-i", help="The source's file or folder, as downloaded."
    ),
    temperatures: str | None = typer.Option(
        None, "--temperatures", help="mdCATH temperatures, e.g. 320,348 (default 320)."
    ),
    replicas: str | None = typer.Option(
        None, "--replicas", help="Replicas to pool, e.g. 0,1,2 (mdCATH) or 1,2 (ATLAS)."
    ),
    skip: int | None = typer.Option(
        None, "--skip", min=0, help="Frames dropped at the start of each replica (IDRome: 10)."
    ),
    backmapped: list[Path] | None = typer.Option(
        None,
        "--backmapped",
        help="IDRome: the all-atom topology and trajectory from cg2all (give the flag twice).",
    ),
    contacts: Path | None = typer.Option(
        None,
        "--contacts",
        help="GetContacts dynamic-contacts TSV for the same frames (default: detect natively).",
    ),
    stride: int = typer.Option(1, "--stride", min=1, help="Use every N-th frame."),
    selection: str = typer.Option(
        "protein", "--selection", help="MDTraj atom selection, intersected with 'protein'."
    ),
    chunk_size: int = typer.Option(
        100, "--chunk-size", min=1, help="Frames read at a time (memory does not grow with length)."
    ),
    pbc: str = typer.Option(
        "cluster",
        "--pbc",
        help=PBC_HELP,
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    pair_dtype: str = typer.Option(
        "float64",
        "--pair-dtype",
        help="Precision of the N x N pair arrays, held and written: float64 (the authors) or "
        "float32 (half the memory and file; docs/differences.md).",
    ),
) -> None:
    """MD features of the protein residues of one trajectory (or pooled replicas).

    PREFIX.residue.csv: a row per residue (SASA, RMSF, DSSP, dihedral bins), empty = undefined.

    PREFIX.pair.npz: N x N mean contacts per frame (vdw .. ts), corr, sequence.

    Frames are superposed on frame 0 by C-alpha. C-alpha-only trajectories give rmsf, corr.
    """
    from seqdance.features import md as md_run  # mdtraj: imported only when the command runs

    if source is not None:
        if input_path is None or topology is not None or trajectory:
            raise SeqDanceError("--source needs --input (and no --topology/--trajectory)")
    elif topology is None or not trajectory:
        raise SeqDanceError("give --topology and --trajectory, or --source and --input")
    topology_arg, trajectory_arg = md_run.open_md_input(
        topology,
        trajectory or (),
        source=source,
        input_path=input_path,
        temperatures=temperatures,
        replicas=replicas,
        skip=skip,
        backmapped=backmapped,
    )
    features = md_run.md_features(
        topology_arg,
        trajectory_arg,
        contacts=contacts,
        stride=stride,
        selection=selection,
        chunk_size=chunk_size,
        progress=progress,
        pbc=pbc,
        pair_dtype=pair_dtype,
    )
    for warning in features.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for note in features.notes:
        typer.echo(f"note: {note}", err=True)
    csv_path, npz_path = md_run.write_md_features(features, out)
    typer.echo(
        f"{len(features.sequence)} residues, {features.n_frames} frames: wrote {csv_path} and "
        f"{npz_path}",
        err=True,
    )
