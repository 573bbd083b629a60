"""The one opener of compressed files: gzip, bzip2, xz or none, chosen by the suffix.

:func:`open_text`/:func:`open_bytes` for readers that take a handle; :func:`local_copy` for
readers (MDTraj, MDAnalysis, ProDy) that open files by name: they get a decompressed copy in
a private temporary folder, removed when the process ends. Light: no MDTraj, no NumPy.
"""

from __future__ import annotations

import atexit
import bz2
import gzip
import io
import lzma
import shutil
import tempfile
from pathlib import Path

from seqdance.errors import InputFileError
from seqdance.errors import one_line as _one_line

COMPRESSED = (".gz", ".bz2", ".xz")


def compression(path: Path) -> str:
    """The compression suffix of ``path`` (``".gz"``, ``".bz2"``, ``".xz"``), or ``""``."""
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSED else ""


def format_name(path: Path) -> str:
    """The lower-case file name without its compression suffix (what names the format)."""
    name = path.name.lower()
    return name[: -len(compression(path))] if compression(path) else name


def open_bytes(path: Path):
    """Binary handle of ``path``, decompressed when its name ends in .gz, .bz2 or .xz."""
    kind = compression(path)
    if kind == ".gz":
        return gzip.open(path, "rb")
    if kind == ".bz2":
        return bz2.open(path, "rb")
    if kind == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def open_text(path: Path):
    """Text handle of ``path``, decompressed when its name ends in .gz, .bz2 or .xz; bad
    bytes replaced."""
    return io.TextIOWrapper(open_bytes(path), errors="replace")


_COPIES: dict[tuple, Path] = {}  # (path, size, mtime) -> its decompressed copy
_COPY_DIR: list[str] = []  # the one private folder of this process, made when first needed


def _remove_copies(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def local_copy(path: Path) -> Path:
    """``path`` itself, or for a compressed file a decompressed copy (same name without the
    compression suffix) in a private temporary folder removed when the process ends; for
    readers (MDTraj, MDAnalysis) that open files by name."""
    if not compression(path):
        return path
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if key in _COPIES and _COPIES[key].is_file():
        return _COPIES[key]
    if not _COPY_DIR:
        _COPY_DIR.append(tempfile.mkdtemp(prefix="seqdance-"))
        atexit.register(_remove_copies, _COPY_DIR[0])
    folder = Path(tempfile.mkdtemp(dir=_COPY_DIR[0]))
    target = folder / path.name[: -len(compression(path))]
    try:
        with open_bytes(path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputFileError(f"{path}: cannot decompress: {_one_line(exc)}") from None
    _COPIES[key] = target
    return target
