"""File helpers: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import os
import re
import signal
import socket
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError

_ACTIVE: contextvars.ContextVar[OutputGroup | None] = contextvars.ContextVar(
    "seqdance_output_group", default=None
)


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; an existing folder there is one error naming it (checked by
    commands before their work, and again when the file is written)."""
    path = Path(path)
    if path.is_dir():
        raise SeqDanceError(f"{path}: is a folder; give a file name to write")
    return path


# our temporaries: ".{final name}.{host}-{pid}.{random}.tmp{suffix}"; the host and process id
# let a later run remove those of a killed one (never those of a process still running)
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"
_STALE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9]{1,16})-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp")
_SWEPT: set[str] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_killed_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries in ``folder`` that a killed process of this machine left
    (``kill -9``, a power cut); those of running processes stay. Called once per folder and
    process by every atomic writer, so each command cleans up after a killed run by itself."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _STALE.match(entry.name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _temporary_beside(final: Path, suffix: str) -> Path:
    """An empty temporary file next to ``final``; a path that cannot take a file is one error
    naming the user's path (never the temporary name)."""
    check_output_file(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        folder = os.fspath(final.parent.resolve())
        if folder not in _SWEPT:
            _SWEPT.add(folder)
            remove_killed_temporaries(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{_HOST}-{os.getpid()}.",
                                   suffix=f".tmp{suffix}", dir=final.parent)  # fmt: skip
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
    group = _ACTIVE.get()
    if group is not None:  # inside an output group: the file joins it (renamed at its end)
        tmp = path if group.holds(path) else group.path(path, suffix)
        with _named_as(path, tmp):
            yield tmp
        return
    tmp_path = None
    try:
        with signals_deferred():  # a Ctrl-C cannot fall between creating and recording it
            tmp_path = _temporary_beside(path, suffix)
        with _named_as(path, tmp_path):
            yield tmp_path
        if tmp_path.is_file():  # mkstemp makes 0600 files: give the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


# write failures that belong to the output's file system, not to one input: a batch stops
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def is_disk_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failing output file system (full, over quota or size limit,
    read-only, I/O error): no later input can succeed, so a batch must stop on it."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


@contextlib.contextmanager
def _named_as(final: Path, tmp: Path) -> Iterator[None]:
    """A write failure in the block that names our temporary, or no file at all, names
    ``final`` instead (the user's path, never ours)."""
    try:
        yield
    except OSError as exc:
        unnamed = exc.filename is None and exc.errno in DISK_ERRNOS
        if not unnamed and os.fspath(exc.filename or "") != os.fspath(tmp):
            raise
        code = exc.errno or errno.EIO
        raise OSError(code, exc.strerror or os.strerror(code), str(final)) from None


class OutputGroup:
    """Files that appear together or not at all; see :func:`output_group`."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temporary, final)

    def path(self, final: str | os.PathLike, suffix: str | None = None) -> Path:
        """A temporary path to write ``final``'s contents to (same folder, same suffix)."""
        final = Path(final)
        suffix = suffix if suffix is not None else "".join(final.suffixes[-1:])
        with signals_deferred():  # a Ctrl-C cannot fall between creating and recording it
            tmp = _temporary_beside(final, suffix)
            self.pending.append((tmp, final))
        return tmp

    def holds(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is one of this group's temporaries (a writer given one writes it
        directly: the group renames it)."""
        return any(os.fspath(tmp) == os.fspath(path) for tmp, _ in self.pending)


@contextlib.contextmanager
def output_group(*, shared: bool = True) -> Iterator[OutputGroup]:
    """Write a record's several outputs under temporary names; rename them all at the end.

    Every :func:`atomic_path` writer called in the block (``save_npz``, ``save_figure``,
    ``h5_output``, ...) joins the group, so a command makes all its files one group by running
    its writing under one ``with output_group():``.
    If the block fails (an error, a full disk, Ctrl-C, SIGTERM through the CLI) no output of
    the group appears and every temporary is removed. The renames run with SIGINT/SIGTERM
    held back, and a rename that fails undoes the ones before it.

    ``shared=False`` makes a group of its own that writers join only through
    :meth:`OutputGroup.path`: for several groups open at once in one block (records whose
    windows interleave), which must neither join each other nor capture other writers.
    """
    outer = _ACTIVE.get() if shared else None
    if outer is not None:  # a group inside a group: its files join the outer one
        yield outer
        return
    group = OutputGroup()
    token = _ACTIVE.set(group) if shared else None  # atomic_path in the block joins the group
    try:
        try:
            yield group
        finally:
            if token is not None:
                _ACTIVE.reset(token)
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


class _LatchedFile(io.FileIO):
    """A file whose first failed write (a full disk, a file-size limit) is remembered and raised
    once; every later write is dropped so that HDF5 can still close its objects cleanly (the
    file is removed anyway). HDF5 never meets a second failure, so it prints no "Exception
    ignored" blocks and cannot crash at exit."""

    failure: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.failure is not None:
            return len(view)
        done = 0
        try:
            while done < len(view):  # a raw write may be short
                done += super().write(view[done:]) or 0
        except OSError as exc:
            self.failure = exc
            raise
        return done

    def truncate(self, size: int | None = None) -> int:
        if self.failure is not None:
            return size if size is not None else self.tell()
        try:
            return super().truncate(size)
        except OSError as exc:
            self.failure = exc
            raise


def latched_file(tmp: str | os.PathLike) -> _LatchedFile:
    """An existing (temporary) file opened for HDF5 to write through: its first failed write is
    remembered (:func:`raise_write_failure`) and later writes are dropped, so HDF5 closes."""
    return _LatchedFile(tmp, "r+b")


def raise_write_failure(raw: _LatchedFile, path: str | os.PathLike) -> None:
    """Raise the failure ``raw`` latched, if any, as one ``OSError`` naming the user's ``path``."""
    if raw.failure is not None:
        code = raw.failure.errno or errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from None


@contextlib.contextmanager
def h5_output(path: str | os.PathLike) -> Iterator:
    """Yield a writable ``h5py.File`` that replaces ``path`` only when the block succeeds.

    Every HDF5 writer goes through here. The file is written under a temporary name through a
    :class:`_LatchedFile`, so a write failure at any moment (ENOSPC, EFBIG, EIO) ends as one
    ``OSError`` naming ``path``: the temporary is removed and an existing ``path`` is untouched.
    """
    import h5py  # heavy and optional for most commands

    path = Path(path)
    with atomic_path(path) as tmp:
        raw = _LatchedFile(tmp, "r+b")
        try:
            try:
                with h5py.File(raw, "w") as h5:
                    yield h5
            except (RuntimeError, OSError, ValueError, KeyError):
                if raw.failure is None:
                    raise
            if raw.failure is not None:
                code = raw.failure.errno or errno.EIO
                raise OSError(code, os.strerror(code), str(path)) from None
        finally:
            raw.close()


@contextlib.contextmanager
def damaged_file_errors(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Reading one of our own outputs back: whatever a damaged copy makes the parser raise
    (a truncated zip, a short line, bytes that are not text, a missing key) is one
    :class:`SeqDanceError` naming ``path`` and what it should be."""
    try:
        yield
    except SeqDanceError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, pandas, NumPy, codecs: all one line
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise SeqDanceError(f"{path}: damaged or not {what} ({reason})") from None


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
