"""``seqdance dataset build|check|split|weights``: the training dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app

dataset_app = typer.Typer(
    help="Build, check, split and weight the training dataset (features.h5 + index.csv).",
    no_args_is_help=True,
)
app.add_typer(dataset_app, name="dataset")

MAX_LISTED = 50


@dataset_app.command("build")
def build(
    manifest: Path = typer.Argument(
        ...,
        help="Manifest CSV: name,source,kind,topology,trajectory,structure,label.",
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder (features.h5, index.csv)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Local worker processes."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (tcp://HOST:PORT) to run the build on."
    ),
    stride: int = typer.Option(1, "--stride", min=1, help="Use every STRIDE-th MD frame."),
    keep_staging: bool = typer.Option(
        False, "--keep-staging", help="Keep OUT/staging/*.npz after merging."
    ),
    symmetric_interactions: bool = typer.Option(
        False,
        "--symmetric-interactions",
        help="Count each MD contact line at both cells (i, j) and (j, i). Default: at the one "
        "cell in GetContacts' atom order, as the authors' dataset.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Extract MD/NMA features of every manifest row into OUT/features.h5 and OUT/index.csv.

    Resumable: proteins already stored or staged are skipped, and a killed build resumes.
    A bad row is reported by name and skipped; the exit status is then 1.
    """
    from seqdance.data.build import BuildConfig, build_dataset

    config = BuildConfig(
        workers=workers,
        scheduler=scheduler,
        stride=stride,
        progress=progress,
        keep_staging=keep_staging,
        interaction_cells="both" if symmetric_interactions else "listed",
    )
    report = build_dataset(manifest, out, config)
    for name, warnings in report.warnings.items():
        for warning in warnings:
            typer.echo(f"warning: {name}: {warning}", err=True)
    for name, reason in report.failed.items():
        typer.echo(f"error: {name}: {reason}", err=True)
    typer.echo(
        f"{len(report.built)} built, {len(report.skipped)} already done, "
        f"{len(report.failed)} failed; {report.features_path}",
        err=True,
    )
    if not report.ok:
        raise typer.Exit(1)


@dataset_app.command("check")
def check(
    dataset: Path = typer.Argument(
        ..., help="Dataset folder, or a .h5 file with index.csv beside it.", show_default=False
    ),
    progress: bool = typer.Option(False, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Validate shapes, token alignment, value ranges and index/HDF5 agreement.

    Accepts our layout and the authors' published one. Exit status 1 lists the problems.
    """
    from seqdance.data.check import check_dataset

    report = check_dataset(dataset, progress=progress)
    for problem in report.problems[:MAX_LISTED]:
        typer.echo(f"problem: {problem}", err=True)
    if len(report.problems) > MAX_LISTED:
        typer.echo(f"... and {len(report.problems) - MAX_LISTED} more problems", err=True)
    status = "OK" if report.ok else f"{len(report.problems)} problems"
    typer.echo(f"{report.n_proteins} proteins checked: {status}")
    if not report.ok:
        raise typer.Exit(1)


@dataset_app.command("split")
def split(
    dataset: Path = typer.Argument(..., help="Dataset folder (its index.csv).", show_default=False),
    min_seq_id: float = typer.Option(
        0.5, "--min-seq-id", min=0.0, max=1.0, help="Cluster identity."
    ),
    coverage: float = typer.Option(0.8, "--coverage", min=0.0, max=1.0, help="MMseqs2 -c."),
    test_fraction: float = typer.Option(0.05, "--test-fraction", min=0.0, max=0.99),
    seed: int = typer.Option(0, "--seed", help="Seed of the cluster draw."),
    threads: int = typer.Option(1, "--threads", min=1, help="MMseqs2 threads."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of index.csv."),
    valid_fraction: float = typer.Option(
        0.0,
        "--valid-fraction",
        min=0.0,
        max=0.99,
        help="Also label whole clusters 'valid' (early stopping), drawn after the test ones.",
    ),
) -> None:
    """Label proteins train/test by MMseqs2 sequence clusters (whole clusters go to test).

    Adds or replaces the label and cluster columns of the index. Needs the `mmseqs` binary.
    """
    from seqdance.data.split import SplitConfig, split_dataset

    config = SplitConfig(min_seq_id, coverage, test_fraction, seed, threads,
                         valid_fraction=valid_fraction)  # fmt: skip
    index = split_dataset(dataset, config, out=out)
    n_test = int((index["label"] == "test").sum())
    n_valid = int((index["label"] == "valid").sum())
    typer.echo(
        f"{index['cluster'].nunique()} clusters; {len(index) - n_test - n_valid} train, "
        f"{n_test} test" + (f", {n_valid} valid" if valid_fraction else ""),
        err=True,
    )


@dataset_app.command("weights")
def weights(
    dataset: Path = typer.Argument(..., help="Dataset folder.", show_default=False),
    label: str = typer.Option("train", "--label", help="Proteins to use ('all' for every one)."),
    max_proteins: int | None = typer.Option(
        None, "--max-proteins", min=1, help="Read at most this many proteins per group (random)."
    ),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Default: DATASET/loss_weights.json."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Per-feature, per-group loss weights (1 / baseline RMSE; residue:pair 1:3;
    interactions:co-movement 3:1) written to DATASET/loss_weights.json."""
    from seqdance.data.loss_weights import WEIGHTS_FILE, compute_loss_weights

    result = compute_loss_weights(
        dataset,
        label=None if label == "all" else label,
        max_proteins=max_proteins,
        seed=seed,
        progress=progress,
    )
    path = result.save(out or Path(dataset) / WEIGHTS_FILE)
    typer.echo(f"loss weights of {', '.join(result.weights)} written to {path}", err=True)


@dataset_app.command("merge")
def merge(
    parts: list[Path] = typer.Argument(..., help="HDF5 files to merge.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Merged HDF5 file."),
) -> None:
    """Merge feature HDF5 files (e.g. the three published parts) into one file.

    A protein present in two parts is an error; the output appears only when complete.
    """
    from seqdance.data.store import merge_files

    names = merge_files(parts, out)
    typer.echo(f"{len(names)} proteins written to {out}", err=True)
