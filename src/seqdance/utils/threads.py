"""One thread count for every compute library in the process: torch, OpenMP and BLAS (through
``threadpoolctl`` and the environment of libraries not loaded yet), Numba, and the split of
threads between worker processes.

Every ``seqdance`` command applies :func:`thread_limits` before it starts. The count is, first
found: ``--threads N``; the ``SEQDANCE_THREADS`` environment variable; ``OMP_NUM_THREADS`` when
the user set it; else :func:`default_threads` (the cores that other running work leaves idle).
When the user chose no count, training also caps it by the size of a step
(:func:`work_threads`): a tiny model trains faster on one thread. docs/benchmarks.md
("Threads") has the measured reasons for both.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
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
_chosen: list[bool] = []  # whether each of those counts was the user's choice

# A parallel step needs about this many floating-point operations per thread before a further
# thread pays for its synchronisation (training steps on 2 cores: a 2e7-FLOP step of the tiny
# model takes 12 ms on one thread and 21-34 ms on two; at 6e9 FLOP the two are equal; at
# 2.5e10, two threads are 1.6x faster; docs/benchmarks.md, "Threads").
WORK_GRAIN_FLOP = 5e9


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def running_elsewhere(samples: int = 5) -> float | None:
    """Threads running or waiting for a CPU now, other than this one: the median of a few
    reads (2 ms apart) of the kernel's count of runnable tasks (``/proc/loadavg``, 4th field),
    less one for the reader. None where the count is not available (not Linux)."""
    counts = []
    for k in range(samples):
        try:
            with open("/proc/loadavg") as handle:
                runnable = int(handle.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(max(0, runnable - 1))
        if k + 1 < samples:
            time.sleep(0.002)
    return float(statistics.median(counts))


def default_threads(
    cores: int | None = None, load: float | None = None, running: float | None = None
) -> int:
    """The count used when nothing asks for one: the cores other work leaves idle.

    ``cores`` (default: :func:`available_cores`) less the other work, rounded, at least 1. The
    other work is the smaller of the run-queue length averaged over the last minute (``load``,
    default ``os.getloadavg()[0]``) and the threads runnable right now
    (``running``, default :func:`running_elsewhere`): the average alone lags by a minute, so
    that a command run just after another one (or after the previous case of a benchmark)
    would see the finished command's load and run on one thread on an idle machine. On an
    idle machine that is every core; on a shared, busy one a single thread, because a thread
    of a parallel region that waits for a time slice makes all the others wait too
    (measured: docs/benchmarks.md, "Threads"). Several threads also sleep, instead of
    spinning, while they wait (``OMP_WAIT_POLICY=PASSIVE``, set by :func:`thread_limits`
    unless the user set it).
    """
    cores = available_cores() if cores is None else max(1, int(cores))
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average here (Windows): every core
            load = 0.0
    if running is None:
        running = running_elsewhere()
    busy = load if running is None else min(load, running)
    return max(1, min(cores, round(cores - busy)))


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


def user_chose_threads(threads: int | None = None) -> bool:
    """Whether the count comes from the user: ``threads`` given, ``SEQDANCE_THREADS`` set,
    or the user's ``OMP_NUM_THREADS``."""
    if threads is not None or os.environ.get(ENV, "").strip():
        return True
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return omp.isdigit() and int(omp) >= 1


def current_threads() -> int:
    """The count applied by the innermost :func:`thread_limits`, else :func:`resolve_threads`."""
    return _current[-1] if _current else resolve_threads()


def work_threads(flop: float) -> int:
    """Threads for a parallel step of ``flop`` floating-point operations: the count of the
    innermost :func:`thread_limits` when the user chose it; otherwise that count capped at
    one thread per :data:`WORK_GRAIN_FLOP` of the step, at least one."""
    n = current_threads()
    chosen = _chosen[-1] if _chosen else user_chose_threads()
    if chosen:
        return n
    return max(1, min(n, int(flop // WORK_GRAIN_FLOP)))


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
    chosen = user_chose_threads(threads)
    saved_env = {name: os.environ.get(name) for name in (*_THREAD_VARIABLES, "OMP_WAIT_POLICY")}
    saved_torch, saved_numba = _torch_threads(), _numba_threads()
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    if n > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _current.append(n)
    _chosen.append(chosen)
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=n):
            set_loaded_threads(n)
            yield n
    finally:
        _current.pop()
        _chosen.pop()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_torch is not None:
            sys.modules["torch"].set_num_threads(saved_torch)
        if saved_numba is not None:
            sys.modules["numba"].set_num_threads(saved_numba)
