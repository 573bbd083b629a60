"""Progress bars: one look for every command, shown only on a terminal, off with
``--no-progress``, and cleared before an error line is printed.

Library functions create their bars with :func:`progress_bar`; their own ``progress``
argument and the command line's setting (:func:`progress_enabled`) must both allow it, and
standard error must be a terminal. The CLI's error path calls :func:`clear_bars` so that
``error: ...`` starts at the first column of its own line.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

_enabled: list[bool] = [True]  # the innermost progress_enabled() setting wins
_open: weakref.WeakSet = weakref.WeakSet()  # the bars made by progress_bar() and not yet closed


def bars_allowed() -> bool:
    """Whether the command line allows bars now (``--no-progress`` turns them off)."""
    return _enabled[-1]


@contextlib.contextmanager
def progress_enabled(enabled: bool) -> Iterator[None]:
    """Allow (or forbid) every bar made while the block runs."""
    _enabled.append(bool(enabled))
    try:
        yield
    finally:
        _enabled.pop()


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | float | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = True,
    **options: Any,
) -> tqdm:
    """A tqdm bar on standard error; ``enabled=False`` or ``--no-progress``: a silent one.

    Shown only when standard error is a terminal (a pipe or a log file gets no bar).
    ``options`` go to :class:`tqdm.auto.tqdm` (``initial``, ``leave``, ...).
    """
    disable = True if not (enabled and bars_allowed()) else None  # None: tqdm's TTY check
    made = tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
        **options,
    )  # fmt: skip
    if not made.disable:
        _open.add(made)
    return made


def _live_bars() -> list[tqdm]:
    found = {id(b): b for b in list(_open)}
    for cls in (tqdm, *type(tqdm).__subclasses__(tqdm)):  # bars made by other libraries too
        for made in list(getattr(cls, "_instances", ())):
            found.setdefault(id(made), made)
    return [b for b in found.values() if not getattr(b, "disable", True)]


def clear_bars() -> None:
    """Close every open bar, erasing its line, so the next text starts at column 0."""
    for made in _live_bars():
        try:
            made.leave = False
            made.close()
        except Exception:  # noqa: BLE001, S110 - a broken bar must not hide the error itself
            pass


def echo_above_bars(message: str) -> None:
    """Print a line on standard error above any open bar."""
    tqdm.write(message, file=sys.stderr)
