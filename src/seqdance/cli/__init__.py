"""Command line: ``seqdance VERB ...``, a thin layer over the library functions.

User errors (bad files, bad sequences, bad options) end as one ``error: ...`` line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from seqdance.cli import analyze as _analyze  # noqa: F401  (registers commands)
from seqdance.cli import contacts as _contacts  # noqa: F401  (registers commands)
from seqdance.cli import dataset as _dataset  # noqa: F401  (registers commands)
from seqdance.cli import demo as _demo  # noqa: F401  (registers commands)
from seqdance.cli import features as _features  # noqa: F401  (registers commands)
from seqdance.cli import mutations as _mutations  # noqa: F401  (registers commands)
from seqdance.cli import predict as _predict  # noqa: F401  (registers commands)
from seqdance.cli import report as _report  # noqa: F401  (registers commands)
from seqdance.cli import score as _score  # noqa: F401  (registers commands)
from seqdance.cli import train as _train  # noqa: F401  (registers commands)
from seqdance.cli.app import app, build_command
from seqdance.errors import SeqDanceError
from seqdance.utils.progress import clear_bars

try:  # Typer >= 0.2x carries its own copy of Click
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover - older Typer on Click
    from click import exceptions as _click

__all__ = ["app", "main"]


class Terminated(BaseException):
    """SIGTERM, raised in the main process so that ``finally`` blocks remove temporaries."""


def _install_sigterm(main_pid: int):
    """Make SIGTERM raise :class:`Terminated` here; returns the handler it replaced."""

    def handler(signum, frame):  # noqa: ARG001
        if os.getpid() != main_pid:  # a forked worker: die as SIGTERM asks
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        return None


class _Swallowed:
    """A SIGINT or SIGTERM that landed in a destructor or weakref callback (HDF5's and
    NumPy's objects have them): Python cannot raise it there, and would print "Exception
    ignored" with a traceback and carry on. The hook keeps it quiet and remembers it; the
    command then ends as interrupted, with its outputs whole (they were written in full)."""

    def __init__(self) -> None:
        self.signal: BaseException | None = None
        self.previous = sys.unraisablehook

    def __call__(self, unraisable) -> None:
        if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
            self.signal = self.signal or unraisable.exc_value
            return
        self.previous(unraisable)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``seqdance`` console command.

    Every failure a user can cause ends as one ``error: ...`` line on stderr: usage errors
    (an unknown option, a value out of range; exit 2), our own user errors and file-system
    errors (exit 1). SIGINT exits 130 and SIGTERM 143, after ``finally`` blocks have removed
    temporary files.
    """
    previous = _install_sigterm(os.getpid())
    swallowed = sys.unraisablehook = _Swallowed()
    try:
        try:
            _main(argv)
        except SystemExit as exc:
            if swallowed.signal is not None and not exc.code:  # done, but it was told to stop
                sigterm = isinstance(swallowed.signal, Terminated)
                _fail("Terminated." if sigterm else "Aborted.", 143 if sigterm else 130,
                      prefix="")  # fmt: skip
            raise
    finally:
        sys.unraisablehook = swallowed.previous
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> None:
    try:
        code = build_command().main(args=argv, prog_name="seqdance", standalone_mode=False)
    except _click.NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
        sys.exit(2)
    except _click.UsageError as exc:  # out-of-range values, unknown options
        _fail(" ".join(exc.format_message().split()), 2)
    except _click.ClickException as exc:
        _fail(" ".join(exc.format_message().split()), exc.exit_code or 1)
    except SeqDanceError as exc:
        _fail(str(exc), 1)
    except OSError as exc:  # missing, unreadable or unwritable files; a full disk
        _fail(os_error_line(exc), 1, hdf5_exit=argv is None)
    except UnicodeDecodeError as exc:  # a reader without its own check met a binary file
        _fail(f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start})", 1)
    except (KeyboardInterrupt, typer.Abort):
        _fail("Aborted.", 130, prefix="")
    except Terminated:
        _fail("Terminated.", 143, prefix="")
    if code == 130:  # Typer turns Ctrl-C into exit status 130 itself
        _fail("Aborted.", 130, prefix="")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, *, prefix: str = "error: ", hdf5_exit: bool = False) -> None:
    """The one way a command ends in failure: every open progress bar is erased first, so
    the message starts at column 0 of its own line; then the exit with ``code``."""
    clear_bars()
    sys.stdout.flush()
    typer.echo(f"{prefix}{message}", err=True)
    if hdf5_exit:  # the console command, not a caller in this process
        _exit_past_failed_hdf5_writes(code)
    sys.exit(code)


def _exit_past_failed_hdf5_writes(code: int) -> None:
    """Exit at once if HDF5 still holds a file whose write failed (a full disk).

    HDF5 cannot close such a file (its flush fails again); at interpreter exit its library
    shutdown then crashed with a segmentation fault (exit 139) after our error line. The
    temporary file is already removed; skipping that shutdown is all that is left to do.
    """
    h5py = sys.modules.get("h5py")
    if h5py is None:
        return
    try:
        names = [os.fsdecode(f.name) for f in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)]
    except Exception:  # noqa: BLE001 - nothing to learn: exit normally
        return
    if any(not os.path.exists(name) for name in names):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def os_error_line(exc: OSError) -> str:
    """An ``OSError`` as one line: what went wrong and the file it concerns."""
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or ' '.join(str(exc).split())}{where}"
