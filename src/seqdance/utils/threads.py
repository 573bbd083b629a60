"""One thread count for every compute library in the process: torch, OpenMP and BLAS (through
``threadpoolctl`` and the environment of libraries not loaded yet), Numba, and the split of
threads between worker processes.

Every ``seqdance`` command applies :func:`thread_limits` before it starts. The count is, first
found: ``--threads N``; the ``SEQDANCE_THREADS`` environment variable; ``OMP_NUM_THREADS`` when
the user set it; else :func:`default_threads` (the cores the machine's load leaves idle).
docs/benchmarks.md ("Threads") has the measured reason for the default.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from seqdance.errors import SeqDanceError

ENV = "SEQDANCE_THREADS"

# Read by OpenMP, BLAS and Numba when they load; set while a command runs so that libraries
# imported inside the command, and worker processes, start with the chosen count.
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)

_current: list[int] = []  # the counts applied by the enclosing thread_limits blocks


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """The count used when nothing asks for one: the cores other work leaves idle.

    ``cores`` (default: :func:`available_cores`) less the machine's run-queue length over the
    last minute (``load``, default: ``os.getloadavg()[0]``), rounded, at least 1. On an idle
    machine that is every core; on a shared, busy one a single thread, because a thread of a
    parallel region that waits for a time slice makes all the others wait too (measured:
    docs/benchmarks.md, "Threads"). Several threads also sleep, instead of spinning, while
    they wait (``OMP_WAIT_POLICY=PASSIVE``, set by :func:`thread_limits` unless the user set
    it).
    """
    cores = available_cores() if cores is None else max(1, int(cores))
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average here (Windows): every core
            load = 0.0
    return max(1, min(cores, round(cores - load)))


def _positive(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise SeqDanceError(f"{where} must be a whole number >= 1 (got {text!r})")
    return value


def resolve_threads(threads: int | None = None) -> int:
    """The thread count: ``threads``; else ``SEQDANCE_THREADS``; else ``OMP_NUM_THREADS``
    (the user's); else :func:`default_threads`."""
    if threads is not None:
        return _positive(str(threads), "--threads")
    if os.environ.get(ENV, "").strip():
        return _positive(os.environ[ENV], ENV)
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    return default_threads()


def current_threads() -> int:
    """The count applied by the innermost :func:`thread_limits`, else :func:`resolve_threads`."""
    return _current[-1] if _current else resolve_threads()


def threads_per_worker(workers: int) -> int:
    """Threads for each of ``workers`` processes so that together they use the thread count."""
    return max(1, current_threads() // max(1, workers))


def set_loaded_threads(n: int) -> None:
    """Apply ``n`` to torch and Numba where already loaded (the environment covers the others)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _numba_threads() -> int | None:
    numba = sys.modules.get("numba")
    return numba.get_num_threads() if numba is not None else None


@contextlib.contextmanager
def thread_limits(threads: int | None = None) -> Iterator[int]:
    """Run the block with the resolved thread count in every library; yields the count.

    The environment, torch's and Numba's settings and the BLAS/OpenMP limits are restored
    afterwards (a caller in the same process sees its own settings again).
    """
    n = resolve_threads(threads)
    saved_env = {name: os.environ.get(name) for name in (*_THREAD_VARIABLES, "OMP_WAIT_POLICY")}
    saved_torch, saved_numba = _torch_threads(), _numba_threads()
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    if n > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _current.append(n)
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=n):
            set_loaded_threads(n)
            yield n
    finally:
        _current.pop()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_torch is not None:
            sys.modules["torch"].set_num_threads(saved_torch)
        if saved_numba is not None:
            sys.modules["numba"].set_num_threads(saved_numba)
