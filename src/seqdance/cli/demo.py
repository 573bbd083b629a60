"""``seqdance demo``: the whole pipeline on real data bundled with the package."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import device_option


@app.command("demo")
def demo_command(
    out: Path = typer.Option(..., "--out", "-o", help="New or empty output folder."),
    steps: int | None = typer.Option(
        None, "--steps", min=2, help="Training updates (default 1000; 40 with --quick)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Fewer training updates (for a smoke test)."),
    device: str = device_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    figure_format: str = typer.Option(
        "png", "--figure-format", help="Format of the figures: png (300 dpi), svg or pdf."
    ),
) -> None:
    """Run features -> dataset -> training -> predictions -> scores on bundled real data.

    Writes OUT/report.md (numbers and figures) last. The demo model is tiny and trained for
    seconds, so its predictions are not meaningful; real predictions use the published
    weights (--model ChaoHou/SeqDance or ChaoHou/ESMDance). OUT must be new or empty: an
    interrupted demo is not resumed.
    """
    from seqdance.demo import run_demo

    run_demo(out, steps=steps, quick=quick, device=device, progress=progress, echo=typer.echo,
             figure_format=figure_format)  # fmt: skip
