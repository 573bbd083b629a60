"""FASTA input for ``predict`` and ``embed``: records checked before any work starts."""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.model.alphabet import check_sequence


@dataclass(frozen=True)
class FastaRecord:
    """One sequence: ``id`` is the first word of the header line."""

    id: str
    sequence: str


def fasta_body_lines(text: str) -> list[str]:
    """The stripped sequence lines of a record's body (blank and ``;`` lines dropped)."""
    lines = (raw.strip() for raw in text.splitlines())
    return [line for line in lines if line and not line.startswith(";")]


def make_record(header: str, chunks: Sequence[str], number: int, source: str) -> FastaRecord:
    """The checked record of a header line (without ``>``) and its stripped sequence lines;
    ``number``: its 1-based position in the file (for the empty-header error)."""
    words = header.split()
    if not words:
        raise SeqDanceError(f"{source}: record {number} has an empty header")
    rid = words[0]
    if "/" in rid or "\\" in rid or rid in (".", ".."):
        raise SeqDanceError(f"{source}: record id {rid!r} cannot be used as a file name")
    seq = "".join(chunks).replace(" ", "")
    seq = seq[:-1] if seq.endswith("*") else seq
    return FastaRecord(rid, check_sequence(rid, seq))


def parse_fasta(text: str, source: str = "FASTA") -> list[FastaRecord]:
    """Records of a FASTA text; sequences upper-cased and checked against the ESM2 alphabet.

    A single trailing ``*`` (stop codon) is dropped. Ids must be unique and usable as file
    names (no ``/``), since outputs are named after them.
    """
    records: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []

    def flush() -> None:
        if header is not None:
            records.append(make_record(header, chunks, len(records) + 1, source))

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            flush()
            header, chunks = line[1:], []
        elif header is None:
            raise InputFileError(f"{source}: line {number} comes before the first '>' header")
        else:
            chunks.append(line)
    flush()
    if not records:
        raise InputFileError(f"{source}: no FASTA records")
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise SeqDanceError(f"{source}: duplicate record id {record.id!r}")
        seen.add(record.id)
    return records


def read_fasta(path: str | os.PathLike) -> list[FastaRecord]:
    """Read and check a FASTA file (see :func:`parse_fasta`)."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a FASTA file")
    data = path.read_bytes()
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # not content
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise undecodable(path, data[skip + exc.start], skip + exc.start) from None
    return parse_fasta(text, source=str(path))


def undecodable(path: str | os.PathLike, byte: int, offset: int) -> InputFileError:
    """The error for a byte that is not UTF-8 text at ``offset`` of the file ``path``."""
    return InputFileError(f"{path}: not a text FASTA file (byte 0x{byte:02x} at offset {offset})")
