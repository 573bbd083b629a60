"""File helpers: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; an existing folder there is one error naming it (checked by
    commands before their work, and again when the file is written)."""
    path = Path(path)
    if path.is_dir():
        raise SeqDanceError(f"{path}: is a folder; give a file name to write")
    return path


def _temporary_beside(final: Path, suffix: str) -> Path:
    """An empty temporary file next to ``final``; a path that cannot take a file is one error
    naming the user's path (never the temporary name)."""
    check_output_file(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}",
                                   dir=final.parent)  # fmt: skip
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SeqDanceError(f"{final}: cannot write there ({reason})") from None
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so that libraries that pick a
    format from the extension still work. Parent folders are created.
    """
    path = Path(path)
    suffix = suffix if suffix is not None else "".join(path.suffixes[-1:])
    tmp_path = None
    try:
        with signals_deferred():  # a Ctrl-C cannot fall between creating and recording it
            tmp_path = _temporary_beside(path, suffix)
        yield tmp_path
        if tmp_path.is_file():  # mkstemp makes 0600 files: give the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


class OutputGroup:
    """Files that appear together or not at all; see :func:`output_group`."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temporary, final)

    def path(self, final: str | os.PathLike) -> Path:
        """A temporary path to write ``final``'s contents to (same folder, same suffix)."""
        final = Path(final)
        with signals_deferred():  # a Ctrl-C cannot fall between creating and recording it
            tmp = _temporary_beside(final, "".join(final.suffixes[-1:]))
            self.pending.append((tmp, final))
        return tmp


@contextlib.contextmanager
def output_group() -> Iterator[OutputGroup]:
    """Write a record's several outputs under temporary names; rename them all at the end.

    If the block fails (an error, a full disk, Ctrl-C, SIGTERM through the CLI) no output of
    the group appears and every temporary is removed. The renames run with SIGINT/SIGTERM
    held back, and a rename that fails undoes the ones before it.
    """
    group = OutputGroup()
    try:
        yield group
        with signals_deferred():
            done: list[Path] = []
            try:
                for tmp, final in group.pending:
                    if tmp.is_file():
                        os.chmod(tmp, 0o666 & ~_umask())
                    os.replace(tmp, final)
                    done.append(final)
            except BaseException:
                for final in done:
                    final.unlink(missing_ok=True)
                raise
    finally:
        for tmp, _ in group.pending:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (they are handled right after)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):  # no POSIX signal masks here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NPZ_DATE = (1980, 1, 1, 0, 0, 0)  # every member's zip time stamp: same arrays, same bytes


def save_npz(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
    """Write a ``.npz`` atomically (what ``numpy.savez[_compressed]`` writes, but with fixed
    zip time stamps, so that the same arrays give the same bytes at any time)."""
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with atomic_path(path, suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=method, allowZip64=True) as archive:
            for name, value in arrays.items():
                member = zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_DATE)
                member.compress_type = method
                with archive.open(member, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value))  # as numpy


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically and close it (also on failure)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
