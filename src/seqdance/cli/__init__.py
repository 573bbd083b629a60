"""Command line: ``seqdance VERB ...``, a thin layer over the library functions.

User errors (bad files, bad sequences, bad options) end as one ``error: ...`` line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from seqdance.cli import analyze as _analyze  # noqa: F401  (registers commands)
from seqdance.cli import contacts as _contacts  # noqa: F401  (registers commands)
from seqdance.cli import dataset as _dataset  # noqa: F401  (registers commands)
from seqdance.cli import demo as _demo  # noqa: F401  (registers commands)
from seqdance.cli import features as _features  # noqa: F401  (registers commands)
from seqdance.cli import model as _model  # noqa: F401  (registers commands)
from seqdance.cli import mutations as _mutations  # noqa: F401  (registers commands)
from seqdance.cli import score as _score  # noqa: F401  (registers commands)
from seqdance.cli import train as _train  # noqa: F401  (registers commands)
from seqdance.cli.app import app
from seqdance.errors import SeqDanceError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``seqdance`` console command.

    Typer (standalone mode) reports usage errors itself and exits; our own user errors and
    file-system errors propagate out of it and are printed here as one line.
    """
    try:
        app(args=argv, prog_name="seqdance")
    except SeqDanceError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # missing, unreadable or unwritable files
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
