"""``seqdance scan`` and ``seqdance explain``: saturation scans and the dynamics behind a score."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option, dtype_option, token_budget_option
from seqdance.cli.predict import ARCH_HELP, FIGURE_FORMAT_HELP, MODEL_HELP, FigureFormat, _load
from seqdance.cli.score import (
    DTYPE_HELP,
    PROPERTIES_HELP,
    RESIDUES_ONLY_HELP,
    WINDOW_HELP,
    _score_options,
    _wild_type,
    check_properties,
)
from seqdance.cli.workers import INT8_HELP, WORKERS_HELP, sharded
from seqdance.errors import SeqDanceError
from seqdance.schema import FEATURE_BY_NAME
from seqdance.utils.io import output_group

EXPLAIN_DTYPE_HELP = (
    "Precision of the model's weights (fp32: the numbers of `seqdance score`; bf16/fp16 "
    "halve the memory, values rounded to that precision)."
)


@app.command("scan")
@sharded
def scan_command(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    sequence: str | None = typer.Option(None, "--sequence", help="Wild-type sequence."),
    fasta: Path | None = typer.Option(
        None, "--fasta", help="FASTA with the wild type (one record)."
    ),
    positions: str | None = typer.Option(
        None, "--positions", help="Positions to scan, e.g. 10-80,95 (default: all)."
    ),
    offset: int = typer.Option(1, "--offset", help="Number of the wild type's first residue."),
    properties: str | None = typer.Option(None, "--properties", help=PROPERTIES_HELP),
    plot: str | None = typer.Option(
        None,
        "--plot",
        help="Comma-separated score columns to draw (default: those of norm_geometric_mean, "
        "sasa_mean, rmsf_nor, psi, corr that were scored).",
    ),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
    device: str = device_option(),
    dtype: DType = dtype_option(DTYPE_HELP),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
    residues_only: bool = typer.Option(False, "--residues-only", help=RESIDUES_ONLY_HELP),
    window: int | None = typer.Option(None, "--window", min=16, help=WINDOW_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
) -> None:
    """Score every single substitution (19 per position) and draw heat maps.

    Scores are those of `seqdance score` on the same mutant list. Writes OUT/scan.csv
    (position, wt, mt, mutant, one column per score), OUT/scan_{column}.png (position x
    amino acid, wild type marked, per-position mean on top; .svg or .pdf with
    --figure-format) and OUT/parts/ (finished blocks of positions: a killed scan rerun with
    the same options resumes from them).
    """
    from seqdance.inference import scan, sharding, summaries

    wild_type = _wild_type(sequence, fasta)
    chosen = scan.parse_positions(positions, len(wild_type), offset)
    channels = check_properties(properties)
    requested = [c.strip() for c in plot.split(",") if c.strip()] if plot else None
    # checked before any work
    columns = scan.plot_columns(summaries.score_columns(channels), requested)
    options = _score_options(
        residues_only=residues_only, window=window, token_budget=token_budget, dtype=dtype
    )
    net = _load(model, arch, device, dtype if int8 else DType.fp32, int8)
    result = sharding.scan_sharded(
        sharding.current(), net, wild_type, out, channels, positions=chosen, offset=offset,
        options=options, progress=progress,
    )  # fmt: skip
    if result is None:  # not rank 0
        return
    scan.plot_scan(result.table, out, columns, fmt=figure_format.value)
    if result.damaged_manifest:
        typer.echo(f"note: {out / 'parts' / 'manifest.json'} was damaged: its blocks were "
                   "removed and the scan scored from the start", err=True)  # fmt: skip
    if result.damaged_blocks:
        typer.echo(f"note: {result.damaged_blocks} damaged block(s) in {out / 'parts'} "
                   "were scored again", err=True)  # fmt: skip
    if result.reused_blocks:
        typer.echo(
            f"resumed: {result.reused_blocks} finished block(s) reused, "
            f"{result.computed_blocks} scored",
            err=True,
        )
    typer.echo(
        f"{len(result.table)} substitutions at {len(chosen)} positions scored, written to "
        f"{out / 'scan.csv'} and {len(columns)} heat map(s)",
        err=True,
    )


@app.command("explain")
def explain_command(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    mutant: list[str] = typer.Option(
        ..., "--mutant", help="Mutant to explain, e.g. A24C or A24C:G30D (repeatable)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    sequence: str | None = typer.Option(None, "--sequence", help="Wild-type sequence."),
    fasta: Path | None = typer.Option(
        None, "--fasta", help="FASTA with the wild type (one record)."
    ),
    offset: int = typer.Option(1, "--offset", help="Number of the wild type's first residue."),
    properties: str | None = typer.Option(None, "--properties", help=PROPERTIES_HELP),
    pdb: Path | None = typer.Option(
        None,
        "--pdb",
        help="Structure (PDB/mmCIF) with a chain of the wild-type sequence: writes "
        "OUT/explain_{mutant}.pdb with the per-residue change as B-factors.",
    ),
    pdb_property: str | None = typer.Option(
        None,
        "--pdb-property",
        help="Feature whose relative change goes into the B-factors (e.g. rmsf_nor, psi, "
        "corr); default: the mean over all scored channels.",
    ),
    device: str = device_option(),
    dtype: DType = dtype_option(EXPLAIN_DTYPE_HELP),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
    residues_only: bool = typer.Option(False, "--residues-only", help=RESIDUES_ONLY_HELP),
    window: int | None = typer.Option(None, "--window", min=16, help=WINDOW_HELP),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
) -> None:
    """Show what changes behind a mutant's score, residue by residue and pair by pair.

    Writes OUT/explain_residues.csv (per mutant, residue and property: wild-type and
    mutant values, their difference and the relative change |mut - wt| / (|wt| + 0.01)
    that the score averages; pair properties as row means), OUT/explain_scores.csv (per
    mutant and property: the mean of those relative changes, i.e. the score, and the
    residues that change most), OUT/explain.npz (all arrays, pair maps included) and per
    mutant OUT/explain_{mutant}_profiles.png and, with pair properties,
    OUT/explain_{mutant}_pairs.png (or .svg, .pdf: --figure-format).
    """
    from seqdance.inference import bfactor, explain, explain_plots, mutations

    if any(not m.strip() for m in mutant):  # '' would explain the wild type, unasked
        raise SeqDanceError("--mutant: empty; give a substitution such as A24C or A24C:G30D")
    wild_type = _wild_type(sequence, fasta)
    channels = check_properties(properties)
    mutants = mutations.build_mutant_set(wild_type, list(mutant), None, offset, first_row=None)
    if pdb is not None and not pdb.is_file():
        raise SeqDanceError(f"--pdb: structure not found: {pdb}")
    if pdb_property is not None and pdb_property not in FEATURE_BY_NAME:
        raise SeqDanceError(f"--pdb-property: unknown feature {pdb_property!r}")
    options = _score_options(residues_only=residues_only, window=window, token_budget=token_budget)
    net = _load(model, arch, device, dtype)
    ex = explain.explain_mutants(net, mutants, channels, options)
    values = [explain.per_residue_change(ex, m, pdb_property) for m in range(len(ex.mutants))]
    if pdb is not None:  # check the structure before any output is written
        _, chains = bfactor.read_protein_chains(pdb)
        if not any(seq == wild_type for _, _, seq in chains):
            found = ", ".join(f"{cid} ({len(seq)} residues)" for cid, _, seq in chains)
            raise SeqDanceError(
                f"{pdb}: no chain has exactly the wild-type sequence of {len(wild_type)} "
                f"residues (chains: {found})"
            )
    with output_group():  # tables, arrays, figures and PDBs appear together or not at all
        written = explain.write_explanation(ex, wild_type, out)
        for m, name in enumerate(ex.mutants):
            stem = explain.file_stem(name)
            fmt = figure_format.value
            profiles = out / f"explain_{stem}_profiles.{fmt}"
            written.append(explain_plots.plot_change_profiles(ex, m, profiles, wild_type))
            if ex.rel_pair is not None:
                pairs = out / f"explain_{stem}_pairs.{fmt}"
                written.append(explain_plots.plot_pair_maps(ex, m, pairs))
            if pdb is not None:
                target = out / f"explain_{stem}.pdb"
                bfactor.write_bfactors(pdb, target, wild_type, values[m][explain.residue_rows(ex)])
                written.append(target)
    typer.echo(f"{len(ex.mutants)} mutant(s) explained, {len(written)} files in {out}", err=True)
