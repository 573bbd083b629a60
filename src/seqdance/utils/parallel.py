"""Run one function over many inputs in worker processes, with a progress bar.

One failing input is recorded (name and one-line reason) and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from seqdance.errors import SeqDanceError, one_line
from seqdance.utils.io import is_disk_failure
from seqdance.utils.progress import progress_bar
from seqdance.utils.threads import set_loaded_threads, threads_per_worker


@dataclass
class TaskResult:
    item: Any
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(exc: BaseException) -> str:
    """One line for the user: our own errors as they are, others with their type."""
    if isinstance(exc, SeqDanceError):
        return " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {one_line(exc)}"


def _limit_threads(n_threads: int) -> None:
    """A worker's share of the command's threads: BLAS/OpenMP, torch and Numba."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n_threads)
    set_loaded_threads(n_threads)


def _call(fn: Callable[[Any], Any], item: Any) -> TaskResult:
    try:
        return TaskResult(item, value=fn(item))
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the batch
        if is_disk_failure(exc):  # ... but a full output disk stops it: no input would pass
            raise
        return TaskResult(item, error=describe_error(exc))


def run_batch(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int = 1,
    desc: str = "",
    progress: bool = True,
) -> list[TaskResult]:
    """Apply ``fn`` to every item; results in input order.

    ``workers > 1`` uses that many processes (``fn`` must be a picklable top-level
    function); BLAS threads are split between them so the cores are not oversubscribed.
    """
    items = list(items)
    workers = max(1, min(workers, len(items) or 1))
    bar = progress_bar(total=len(items), desc=desc, unit="file", enabled=progress)
    results: list[TaskResult | None] = [None] * len(items)
    try:
        if workers == 1:
            for i, item in enumerate(items):
                results[i] = _call(fn, item)
                bar.update()
        else:
            threads = threads_per_worker(workers)  # the command's threads, shared out
            with ProcessPoolExecutor(
                workers, initializer=_limit_threads, initargs=(threads,)
            ) as pool:
                futures = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return [r for r in results if r is not None]
