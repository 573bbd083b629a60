"""Command line: ``seqdance VERB ...``, a thin layer over the library functions.

User errors (bad files, bad sequences, bad options) end as one ``error: ...`` line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from seqdance.cli import features as _features  # noqa: F401  (registers commands)
from seqdance.cli.app import app
from seqdance.errors import SeqDanceError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``seqdance`` console command."""
    try:
        status = app(args=argv, prog_name="seqdance", standalone_mode=False)
    except SeqDanceError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # missing, unreadable or unwritable files
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(1)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
