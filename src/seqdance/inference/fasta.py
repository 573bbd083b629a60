"""FASTA input for ``predict`` and ``embed``: records checked before any work starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.model.alphabet import check_sequence


@dataclass(frozen=True)
class FastaRecord:
    """One sequence: ``id`` is the first word of the header line."""

    id: str
    sequence: str


def parse_fasta(text: str, source: str = "FASTA") -> list[FastaRecord]:
    """Records of a FASTA text; sequences upper-cased and checked against the ESM2 alphabet.

    A single trailing ``*`` (stop codon) is dropped. Ids must be unique and usable as file
    names (no ``/``), since outputs are named after them.
    """
    records: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []

    def flush() -> None:
        if header is None:
            return
        words = header.split()
        if not words:
            raise SeqDanceError(f"{source}: record {len(records) + 1} has an empty header")
        rid = words[0]
        if "/" in rid or "\\" in rid or rid in (".", ".."):
            raise SeqDanceError(f"{source}: record id {rid!r} cannot be used as a file name")
        seq = "".join(chunks).replace(" ", "")
        seq = seq[:-1] if seq.endswith("*") else seq
        records.append(FastaRecord(rid, check_sequence(rid, seq)))

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
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not content
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not a text FASTA file (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    return parse_fasta(text, source=str(path))
