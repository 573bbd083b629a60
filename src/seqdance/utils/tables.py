"""One rule for the tables the package writes (docs/outputs.md).

Every table is CSV: comma-separated, UTF-8, one header row, ``.`` as the decimal point,
fields quoted only when they hold a comma, a quote or a line break (RFC 4180, as pandas and
the ``csv`` module write them). A cell that holds a list joins its items with ``;``. The
only tab-separated files are GetContacts' contact lists, a format of their own that
GetContacts' tools read. Readers accept ``.tsv`` files of earlier versions by their suffix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from seqdance.utils.io import atomic_path

LIST_SEPARATOR = ";"


def join_list(items: Iterable[object]) -> str:
    """The items of a list-valued cell, joined by :data:`LIST_SEPARATOR`."""
    return LIST_SEPARATOR.join(str(item) for item in items)


def separator_of(path: str | os.PathLike) -> str:
    """``\\t`` for a ``.tsv`` file (earlier versions wrote some tables so), else ``,``."""
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def write_rows(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    """Write a CSV table atomically (the file appears only when complete)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
