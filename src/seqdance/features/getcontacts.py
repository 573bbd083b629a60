"""GetContacts' dynamic-contacts TSV format: read, write, and reduce to residue pairs.

The format (contacts-spec.md section 4)::

    # total_frames:20 beg:0 end:19 stride:1 interaction_types:hb,sb,pc,ps,ts,hp,vdw
    # Columns: frame, interaction_type, atom_1, atom_2[, atom_3[, atom_4]]
    0	sb	A:ARG:76:NH2	A:GLU:82:OE1

Atom labels are ``chain:resname:resid[icode]:name``; a residue is identified by its chain
and residue number (with insertion code), never by its position in the file. When the
topology's residue names are given, a label must also name the residue as the topology
does (:class:`ResidueIndex`): a TSV numbered differently from the topology (off by one, say)
is refused at its first label that does not match instead of being shifted onto the wrong
residues.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqdance.errors import InputFileError
from seqdance.residues import standard_residue
from seqdance.schema import INTERACTIONS
from seqdance.utils.io import atomic_path

COLUMNS_LINE = "# Columns: frame, interaction_type, atom_1, atom_2[, atom_3[, atom_4]]"


class ContactLine(NamedTuple):
    frame: int  # absolute frame index (beg + i * stride)
    itype: str  # hbbb, hbsb, hbss, sb, pc, ps, ts, hp, vdw (or another GetContacts type)
    atom1: str  # chain:resname:resid:name, atom1 <= atom2 as strings
    atom2: str


@dataclass(frozen=True)
class ContactsHeader:
    total_frames: int
    beg: int = 0
    end: int = -1
    stride: int = 1
    interaction_types: tuple[str, ...] = ("hb", "sb", "pc", "ps", "ts", "hp", "vdw")

    def format(self) -> str:
        end = self.end if self.end >= 0 else self.beg + (self.total_frames - 1) * self.stride
        return (
            f"# total_frames:{self.total_frames} beg:{self.beg} end:{end} stride:{self.stride} "
            f"interaction_types:{','.join(self.interaction_types)}"
        )


def residue_key(label: str) -> tuple[str, str]:
    """``'A:ARG:25:NH1'`` -> ``('A', '25')``: chain and residue number (with insertion code)."""
    parts = label.split(":")
    if len(parts) < 4:
        raise ValueError(f"not a GetContacts atom label: {label!r}")
    return parts[0], parts[2]


class LabelError(ValueError):
    """A contact label that names no residue of the topology, or names it differently."""


def same_residue_name(label_name: str, topology_name: str) -> bool:
    """Whether a label's residue name matches the topology's: the same name, or two engine
    names of one standard amino acid (``HIS``/``HIE``/``HSD``, ``CYS``/``CYX``: a TSV
    written from the PDB of a system whose topology is AMBER's)."""
    a, b = label_name.strip().upper(), topology_name.strip().upper()
    if a == b:
        return True
    parent = standard_residue(a)
    return parent is not None and parent == standard_residue(b)


class ResidueIndex:
    """Row of each contact label: by chain and residue number with insertion code, and,
    when ``resnames`` are given, only if the label names the residue as the topology does.

    Parameters
    ----------
    residues : list of (chain, resid) tuples, one per row (resid with insertion code)
    resnames : list of str, optional, the topology's residue name of each row
    """

    def __init__(self, residues: list[tuple[str, str]], resnames: list[str] | None = None):
        self.index = {key: i for i, key in enumerate(residues)}
        self.resnames = list(resnames) if resnames is not None else None
        self._checked: dict[tuple[str, str, str], int] = {}

    def __call__(self, label: str) -> int:
        """Row of the residue of atom ``label``; :class:`LabelError` when there is none."""
        if self.resnames is None:
            key = residue_key(label)
            if key not in self.index:
                raise LabelError(
                    f"contact label {label!r} names residue {key[0]}:{key[1]}, which is not "
                    "among the selected protein residues"
                )
            return self.index[key]
        parts = label.split(":")
        if len(parts) < 4:
            raise ValueError(f"not a GetContacts atom label: {label!r}")
        full = (parts[0], parts[1], parts[2])
        row = self._checked.get(full)
        if row is not None:
            return row
        row = self.index.get((parts[0], parts[2]))
        if row is None:
            raise LabelError(
                f"contact label {label!r} names residue {parts[0]}:{parts[2]}, which is not "
                "among the selected protein residues (labels are matched on chain, residue "
                "number, insertion code and name: was the TSV made from this topology?)"
            )
        if not same_residue_name(parts[1], self.resnames[row]):
            raise LabelError(
                f"contact label {label!r} does not match the topology, whose residue "
                f"{parts[0]}:{parts[2]} is {self.resnames[row]} (labels are matched on chain, "
                "residue number, insertion code and name: is the TSV numbered differently "
                "from the topology?)"
            )
        self._checked[full] = row
        return row


def _parse_header(line: str, path: Path) -> ContactsHeader:
    fields = dict(item.split(":", 1) for item in line.lstrip("# ").split() if ":" in item)
    try:
        return ContactsHeader(
            total_frames=int(fields["total_frames"]),
            beg=int(fields.get("beg", 0)),
            end=int(fields.get("end", -1)),
            stride=int(fields.get("stride", 1)),
            interaction_types=tuple(fields.get("interaction_types", "").split(",")),
        )
    except (KeyError, ValueError):
        raise InputFileError(f"{path}: first line is not a GetContacts header: {line!r}") from None


def read_contacts(path: str | os.PathLike) -> tuple[ContactsHeader, Iterator[ContactLine]]:
    """Header and a stream of contact lines of a GetContacts TSV file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\n")
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not a GetContacts TSV (not UTF-8 text)") from None
    if not first.startswith("# total_frames"):
        raise InputFileError(f"{path}: not a GetContacts TSV (no '# total_frames' header)")
    header = _parse_header(first, path)

    def lines() -> Iterator[ContactLine]:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, raw in enumerate(fh, start=1):
                if raw.startswith("#") or not raw.strip():
                    continue
                cols = raw.rstrip("\n").split("\t")
                try:
                    yield ContactLine(int(cols[0]), cols[1], cols[2], cols[3])
                except (IndexError, ValueError):
                    raise InputFileError(f"{path}:{number}: malformed contact line") from None

    return header, lines()


def write_contacts(
    path: str | os.PathLike, header: ContactsHeader, lines: Iterable[ContactLine]
) -> Path:
    """Write a GetContacts TSV atomically (streams ``lines``; nothing appears on failure)."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(header.format() + "\n")
        fh.write(COLUMNS_LINE + "\n")
        for line in lines:
            fh.write(f"{line.frame}\t{line.itype}\t{line.atom1}\t{line.atom2}\n")
    return Path(path)


INTERACTION_CELLS = ("listed", "both")  # residue_pair_counts: one cell per line, or both cells


def residue_pair_counts(
    lines: Iterable[ContactLine],
    residues: list[tuple[str, str]],
    n_frames: int,
    itypes: tuple[str, ...] = INTERACTIONS,
    cells: str = "listed",
    resnames: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Mean number of atom-level contact lines per frame for each residue pair and type.

    ``residues`` lists ``(chain, resid)`` in row order. Returns ``{itype: (N, N)}``, zero
    where no contact was seen (contacts-spec.md section 5: SeqDance's training target, not
    GetContacts' frame frequency). ``cells``: ``"listed"`` (the authors' MD script, the
    default) counts a line only at ``(residue of atom 1, residue of atom 2)`` in the order
    GetContacts lists the two atoms, so a pair's lines split between the two cells (their
    3tvj_I reference fills 133 cells above and 132 below the diagonal); ``"both"`` counts it
    at both cells (a symmetric matrix, the sum of the two ``listed`` cells). Lines of other
    types are ignored. ``resnames`` (one per residue): labels must also name each residue
    so (:class:`ResidueIndex`). A line naming a residue not in ``residues``, or naming it
    differently, raises :class:`LabelError`.
    """
    k_arr, i_arr, j_arr = contact_cells(lines, residues, itypes, cells, resnames)
    counts = np.zeros((len(itypes), len(residues), len(residues)))  # (K, N, N)
    np.add.at(counts, (k_arr, i_arr, j_arr), 1.0)
    counts /= max(n_frames, 1)
    slot = {itype: k for k, itype in enumerate(itypes)}
    return {itype: counts[k] for itype, k in slot.items()}


def contact_cells(
    lines: Iterable[ContactLine],
    residues: list[tuple[str, str]],
    itypes: tuple[str, ...] = INTERACTIONS,
    cells: str = "listed",
    resnames: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells :func:`residue_pair_counts` adds one to, one entry per count, unsummed.

    Returns ``(k, i, j)``, three int64 arrays of shape (M,): type slot (index into
    ``itypes``), row and column. Their memory grows with the contact lines, not with N^2,
    so an accumulator over many chunks can stay sparse.
    """
    if cells not in INTERACTION_CELLS:
        raise ValueError(f"cells must be one of {', '.join(INTERACTION_CELLS)} (got {cells!r})")
    row_of = ResidueIndex(residues, resnames)
    slot = {itype: k for k, itype in enumerate(itypes)}
    ks, rows, cols = [], [], []
    for line in lines:
        k = slot.get(line.itype)
        if k is None:
            continue
        ks.append(k)
        rows.append(row_of(line.atom1))
        cols.append(row_of(line.atom2))
    k_arr = np.asarray(ks, dtype=np.int64)
    i_arr, j_arr = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if cells == "both":
        off = i_arr != j_arr
        k_arr = np.concatenate([k_arr, k_arr[off]])
        i_arr, j_arr = np.concatenate([i_arr, j_arr[off]]), np.concatenate([j_arr, i_arr[off]])
    return k_arr, i_arr, j_arr


def residue_pair_frequencies(
    lines: Iterable[ContactLine],
    residues: list[tuple[str, str]],
    n_frames: int,
    itypes: tuple[str, ...] = INTERACTIONS,
    resnames: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """GetContacts' contact frequency: the fraction of frames with at least one line of a
    type between two residues (contacts-spec.md section 5).

    This is the quantity GetContacts' ``get_contact_frequencies.py`` intends (its newest
    version drops the first line of each new frame and the last frame). Returns
    ``{itype: (N, N)}``, symmetric, in [0, 1]; arguments as :func:`residue_pair_counts`.
    """
    row_of = ResidueIndex(residues, resnames)
    slot = {itype: k for k, itype in enumerate(itypes)}
    seen: set[tuple[int, int, int, int]] = set()  # (frame, type, i, j) with i <= j
    for line in lines:
        k = slot.get(line.itype)
        if k is None:
            continue
        i, j = row_of(line.atom1), row_of(line.atom2)
        seen.add((line.frame, k, min(i, j), max(i, j)))
    freq = np.zeros((len(itypes), len(residues), len(residues)))  # (K, N, N)
    for _, k, i, j in seen:
        freq[k, i, j] += 1.0
        if i != j:
            freq[k, j, i] += 1.0
    freq /= max(n_frames, 1)
    return {itype: freq[k] for itype, k in slot.items()}
