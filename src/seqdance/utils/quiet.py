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
def native_stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null while the block runs (C-level buffers included)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no usable stdout: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    _flush_c_stdio()
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        _flush_c_stdio()  # what the C code buffered goes to /dev/null, not to the user
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def quiet_next(iterator: Iterator[T]) -> T:
    """``next(iterator)`` with C-level standard output silenced (files open lazily)."""
    with native_stdout_silenced():
        return next(iterator)
