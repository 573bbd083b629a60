"""The Typer application objects; command modules attach their verbs to these.

:func:`build_command` turns them into the one command line: every command gets the shared
``--threads`` and ``--progress/--no-progress`` options (unless it declares its own), runs under
one thread setting (:mod:`seqdance.utils.threads`) and one progress setting
(:mod:`seqdance.utils.progress`), and shows its boolean options as flags in ``--help``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from seqdance import __version__
from seqdance.cli.options import progress_option, threads_option
from seqdance.utils.progress import progress_enabled
from seqdance.utils.threads import thread_limits

PBC_HELP = (
    "Periodic box: 'cluster' makes molecules whole and keeps the chains of a complex "
    "together (nearest image, continuous between frames); 'whole' only makes molecules "
    "whole; 'none' uses the frames as read."
)

app = typer.Typer(
    name="seqdance",
    help="SeqDance/ESMDance: protein dynamics features, datasets, models and mutation scores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
features_app = typer.Typer(
    help="Extract dynamic features from structures (NMA) and trajectories (MD).",
    no_args_is_help=True,
)
app.add_typer(features_app, name="features")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"seqdance {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """SeqDance/ESMDance: protein dynamics features, datasets, models and mutation scores."""


def _shared_params() -> dict[str, Any]:
    """Fresh click parameters of the options every command accepts."""
    probe = typer.Typer()

    @probe.command()
    def shared(
        threads: int | None = threads_option(),
        progress: bool = progress_option(),
    ) -> None:  # pragma: no cover - never run, only read
        """Shared options."""

    wanted = ("threads", "progress")
    return {p.name: p for p in typer.main.get_command(probe).params if p.name in wanted}


def _under_settings(callback: Callable[..., Any], added: set[str]) -> Callable[..., Any]:
    """``callback`` run under the command's thread and progress settings; the options this
    module added are taken out of its arguments."""

    @functools.wraps(callback)
    def run(**params: Any) -> Any:
        threads = params.pop("threads") if "threads" in added else None
        progress = params.pop("progress") if "progress" in added else params.get("progress")
        with thread_limits(threads), progress_enabled(progress is not False):
            return callback(**params)

    return run


def _flags_as_flags(command: Any) -> None:
    """Boolean options (``--help`` too) shown as flags: Typer would print ``<bool>``."""
    for param in command.params:
        if getattr(param, "is_bool_flag", False):
            param.metavar = ""
    make_help = command.get_help_option

    @functools.wraps(make_help)
    def help_option(ctx: Any) -> Any:
        made = make_help(ctx)
        if made is not None:
            made.metavar = ""
        return made

    command.get_help_option = help_option


def _decorate(command: Any) -> None:
    if hasattr(command, "commands"):  # a group
        for sub in command.commands.values():
            _decorate(sub)
    else:
        own = {p.name for p in command.params}
        added = {name: p for name, p in _shared_params().items() if name not in own}
        command.params.extend(added.values())
        command.callback = _under_settings(command.callback, set(added))
    _flags_as_flags(command)


def build_command() -> Any:
    """The ``seqdance`` click command with the shared options and settings on every verb."""
    command = typer.main.get_command(app)
    _decorate(command)
    return command
