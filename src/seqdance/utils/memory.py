"""Memory a long run gives back: the C heap's free pages, after each piece of work."""

from __future__ import annotations

import ctypes


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; nothing
    elsewhere). Called after each shard of ``predict`` and ``embed`` and after each shard
    copied into ``predict``'s one-file store: without it freed buffers (the forward passes',
    HDF5's) stay in the process as fragments and peak RSS grows with the number of records
    (measured: benchmarks/fasta_memory.py), though nothing is kept."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None


_LIBC = _load_libc()
