"""A FASTA file indexed in one streaming pass; records read back one at a time by seeking.

    file -> lines (bytes, one at a time) -> every record checked as parse_fasta does ->
    per record: id, length, byte range of its sequence lines -> records fetched on demand

:func:`index_fasta` accepts and rejects exactly the files :func:`~seqdance.inference.fasta.
read_fasta` does, with the same one-line errors, and gives the same records; but it never
holds the text of the file, only one record's sequence at a time while it checks it. A
human proteome (20,000 records, 11 M residues) is an index of a few hundred kilobytes.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.fasta import FastaRecord, fasta_body_lines, make_record, undecodable
from seqdance.model.alphabet import check_sequence

# the line boundaries of str.splitlines (\r\n first: one boundary)
_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class _Undecodable(InputFileError):
    """A byte that is not UTF-8: reported before any error of the records (as read_fasta)."""


def _lines(handle, path: Path) -> Iterator[tuple[tuple[int, int], str]]:
    """``((start, stop), text)`` of each line of a binary file, as ``str.splitlines`` of the
    whole decoded text gives them; ``start``/``stop``: byte offsets, stop after the break."""
    offset = 0
    for raw in handle:  # bytes up to and including b"\n"
        start = offset
        offset += len(raw)
        if start == 0 and raw.startswith(codecs.BOM_UTF8):  # a byte-order mark: not content
            raw, start = raw[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(str(undecodable(path, raw[exc.start], start + exc.start))) from None
        ascii_only = raw.isascii()
        at = 0
        for found in _BREAK.finditer(text):
            yield _span(start, text, at, found.end(), ascii_only), text[at : found.start()]
            at = found.end()
        if at < len(text):  # the last line of a file without a final newline
            yield _span(start, text, at, len(text), ascii_only), text[at:]


def _span(start: int, text: str, at: int, end: int, ascii_only: bool) -> tuple[int, int]:
    if ascii_only:
        return start + at, start + end
    return start + len(text[:at].encode()), start + len(text[:end].encode())


class FastaIndex(Sequence[FastaRecord]):
    """The records of a FASTA file, read one at a time (``index[i]``: a
    :class:`~seqdance.inference.fasta.FastaRecord`, checked and upper-cased).

    Attributes
    ----------
    path : Path
    ids : tuple of str, shape=(N,)
    lengths : numpy.ndarray of int64, shape=(N,)
        Residues of each record (after the checks: no spaces, no final ``*``).
    digest : str
        blake2b (16 bytes) of ``"\\n".join(f"{id}\\t{sequence}")`` over the records: the
        records' identity in the resume keys of sharded runs.
    """

    def __init__(self, path: Path, ids, lengths, starts, stops, digest: str) -> None:
        self.path = path
        self.ids: tuple[str, ...] = tuple(ids)
        self.lengths = np.frombuffer(lengths, dtype=np.int64)  # (N,)
        self._starts = np.frombuffer(starts, dtype=np.int64)  # (N,) first byte after header
        self._stops = np.frombuffer(stops, dtype=np.int64)  # (N,) first byte of next header
        self.digest = digest

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # negative indices; IndexError past the end
        start, stop = int(self._starts[index]), int(self._stops[index])
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(stop - start)
        rid = self.ids[index]
        try:
            seq = "".join(fasta_body_lines(data.decode("utf-8"))).replace(" ", "")
            seq = check_sequence(rid, seq[:-1] if seq.endswith("*") else seq)
        except (UnicodeDecodeError, SeqDanceError):
            seq = ""
        if len(seq) != self.lengths[index]:  # the file was edited or replaced since indexing
            raise InputFileError(f"{self.path}: changed while being read; run the command again")
        return FastaRecord(rid, seq)

    def __iter__(self) -> Iterator[FastaRecord]:
        for index in range(len(self)):
            yield self[index]


def index_fasta(path: str | os.PathLike) -> FastaIndex:
    """Check every record of a FASTA file in one streaming pass and index it.

    Same records and same errors as :func:`seqdance.inference.fasta.read_fasta` (a byte that
    is not UTF-8 anywhere in the file first, then the first bad record, then no records,
    then the first duplicate id). Memory: the index plus the longest record.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a FASTA file")
    source = str(path)
    ids: list[str] = []
    lengths, starts, stops = array("q"), array("q"), array("q")  # 8 bytes a record each
    seen: set[str] = set()
    duplicate: str | None = None
    hasher = hashlib.blake2b(digest_size=16)
    header: str | None = None
    chunks: list[str] = []

    def flush(stop: int) -> None:
        nonlocal duplicate
        if header is None:
            return
        record = make_record(header, chunks, len(ids) + 1, source)
        if record.id in seen and duplicate is None:
            duplicate = record.id
        seen.add(record.id)
        hasher.update(f"{chr(10) if ids else ''}{record.id}\t{record.sequence}".encode())
        ids.append(record.id)
        lengths.append(len(record.sequence))
        stops.append(stop)

    with open(path, "rb") as handle:
        lines = _lines(handle, path)
        end = 0
        try:
            for number, ((start, stop), raw) in enumerate(lines, start=1):
                end = stop
                line = raw.strip()
                if not line or line.startswith(";"):
                    continue
                if line.startswith(">"):
                    flush(start)
                    header, chunks = line[1:], []
                    starts.append(stop)
                elif header is None:
                    raise InputFileError(
                        f"{source}: line {number} comes before the first '>' header"
                    )
                else:
                    chunks.append(line)
            flush(end)
        except _Undecodable as exc:
            raise InputFileError(str(exc)) from None
        except SeqDanceError as exc:
            error = exc
        else:
            error = None
        if error is not None:
            try:
                for _ in lines:  # an undecodable byte later in the file is reported first
                    pass
            except _Undecodable as exc:
                raise InputFileError(str(exc)) from None
            raise error
    if not ids:
        raise InputFileError(f"{source}: no FASTA records")
    if duplicate is not None:
        raise SeqDanceError(f"{source}: duplicate record id {duplicate!r}")
    seen.clear()
    return FastaIndex(path, ids, lengths, starts, stops, hasher.hexdigest())


def record_ids(records: Sequence[FastaRecord]) -> list[str]:
    """The ids of ``records`` (a :class:`FastaIndex` answers without reading the file)."""
    if isinstance(records, FastaIndex):
        return list(records.ids)
    return [r.id for r in records]


def record_lengths(records: Sequence[FastaRecord]) -> list[int]:
    """The residues of each of ``records`` (read from the index when it is one)."""
    if isinstance(records, FastaIndex):
        return records.lengths.tolist()
    return [len(r.sequence) for r in records]


def records_digest(records: Sequence[FastaRecord]) -> str:
    """blake2b (16 bytes) of ``"\\n".join(f"{id}\\t{sequence}")``, one record at a time."""
    if isinstance(records, FastaIndex):
        return records.digest
    hasher = hashlib.blake2b(digest_size=16)
    for k, record in enumerate(records):
        hasher.update(f"{chr(10) if k else ''}{record.id}\t{record.sequence}".encode())
    return hasher.hexdigest()
