"""Silence what C extensions print on the process's standard output.

MDTraj's DCD reader (a VMD molfile plugin) ``printf``s lines such as ``dcdplugin) detected
standard 32-bit DCD file of native endianness`` every time it opens a file; in a command
whose output a person reads, or pipes, that is noise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

try:
    _LIBC = ctypes.CDLL(None)
except OSError:  # pragma: no cover - platforms without a loadable C library
    _LIBC = None


def _flush_c_stdio() -> None:
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def _native_silenced(fd: int, stream) -> Iterator[None]:
    """Send file descriptor ``fd`` to /dev/null while the block runs (C-level buffers included)."""
    try:
        stream.flush()
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no usable stream: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    _flush_c_stdio()
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        _flush_c_stdio()  # what the C code buffered goes to /dev/null, not to the user
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def native_stdout_silenced():
    """File descriptor 1 sent to /dev/null while the block runs."""
    return _native_silenced(1, sys.stdout)


def native_stderr_silenced():
    """File descriptor 2 sent to /dev/null while the block runs: for a C call that prints
    (MDTraj's superposition prints ``UNCONVERGED ROTATION MATRIX`` for a frame whose
    C-alpha atoms sit on one point); Python errors raised in the block still reach the user."""
    return _native_silenced(2, sys.stderr)


def quiet_next(iterator: Iterator[T]) -> T:
    """``next(iterator)`` with C-level standard output silenced (files open lazily)."""
    with native_stdout_silenced():
        return next(iterator)
