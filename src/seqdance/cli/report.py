"""``seqdance report``: one interactive, offline HTML page of predict/scan/explain outputs."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option
from seqdance.cli.predict import _load


def _command_line(params: dict) -> str:
    """The report's own command line, rebuilt from its options (for the page's header)."""
    words = ["seqdance", "report", str(params["prediction"]), "--out", str(params["out"])]
    for name, value in params.items():
        if name in ("prediction", "out") or value in (None, [], ()):
            continue
        flag = "--" + name.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            words += [flag, str(item)]
    return shlex.join(words)


@app.command("report")
def report_command(
    prediction: Path = typer.Argument(
        ...,
        help="{id}.residue.csv of seqdance predict ({id}.pair.npz beside it is read too), or "
        "its one-file store OUT.h5 (with --record).",
        show_default=False,
    ),
    record: str | None = typer.Option(
        None, "--record", help="The record to report from a one-file store (-o OUT.h5)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write."),
    scan: Path | None = typer.Option(None, "--scan", help="Output folder of seqdance scan."),
    explain: Path | None = typer.Option(
        None, "--explain", help="Output folder of seqdance explain."
    ),
    structure: Path | None = typer.Option(
        None, "--structure", help="PDB/mmCIF of the protein for the 3D view."
    ),
    chain: str | None = typer.Option(None, "--chain", help="Chain of the structure to use."),
    offset: int | None = typer.Option(
        None, "--offset", help="Number of the first residue (default: the scan's, else 1)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="The model that made the outputs: its weights' hash goes into the header and the "
        "scan's mutants get per-residue change profiles.",
    ),
    arch: str | None = typer.Option(None, "--arch", help="Architecture of a bare checkpoint."),
    device: str = device_option("Where --model runs (its scan profiles, float32).", "cpu"),
    scan_column: list[str] = typer.Option(
        [], "--scan-column", help="Scan score column for the heat map (repeatable)."
    ),
    title: str | None = typer.Option(None, "--title", help="Page title (default: record id)."),
) -> None:
    """Write ONE self-contained HTML report: 3D view coloured by predicted properties, linked
    per-residue tracks, pair maps, the saturation-scan heat map and explained mutants.

    The file opens offline (no server, no network). Every input is checked before it is
    written; see docs/report.md.
    """
    from seqdance.report import build

    params = {"prediction": prediction, "record": record, "out": out, "scan": scan,
              "explain": explain,
              "structure": structure, "chain": chain, "offset": offset, "model": model,
              "arch": arch, "scan_column": scan_column, "title": title}  # fmt: skip
    options = build.ReportOptions(
        structure=structure, record=record, chain=chain, offset=offset,
        scan_columns=tuple(scan_column) or None, title=title or "", model=model or "",
        command=_command_line(params),
    )  # fmt: skip
    net = _load(model, arch, device, DType.fp32) if model is not None else None
    path = build.write_html_report(out, prediction, scan=scan, explain=explain, options=options,
                              model=net)  # fmt: skip
    size = path.stat().st_size / 1e6
    typer.echo(f"report written to {path} ({size:.1f} MB)", err=True)
