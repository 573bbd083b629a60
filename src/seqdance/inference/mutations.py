"""ProteinGym-style mutant notation: parse, check against a wild type, apply.

A *mutant* is a string like ``A12G`` (wild-type letter, 1-based position, new letter) or
several of them joined by ``:`` (``A12G:C15D``). ``wt``, ``WT``, ``_wt`` and the empty
string mean the wild type itself. Positions are numbered so that the first residue of
the wild-type sequence is ``offset`` (1 unless the assay says otherwise; TEM-1 assays
start at 24).

Every error names the mutant (and its row when known) in one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seqdance.errors import SeqDanceError

# Letters a mutant may introduce: the 20 standard amino acids.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
WILD_TYPE_NAMES = frozenset({"", "wt", "_wt", "wildtype", "wild_type"})
_TOKEN = re.compile(r"([A-Za-z*])(-?\d+)([A-Za-z*])")


@dataclass(frozen=True)
class Substitution:
    """One substitution: ``wt`` at ``position`` (user numbering) becomes ``mt``."""

    wt: str
    position: int
    mt: str

    def __str__(self) -> str:
        return f"{self.wt}{self.position}{self.mt}"

    def index(self, offset: int = 1) -> int:
        """0-based index into the wild-type sequence."""
        return self.position - offset


def _where(mutant: str, row: int | None) -> str:
    return f"line {row}, mutant {mutant!r}" if row is not None else f"mutant {mutant!r}"


def parse_mutant(mutant: str, row: int | None = None) -> tuple[Substitution, ...]:
    """Parse ``A12G`` / ``A12G:C15D`` (``wt`` and empty mean no substitution).

    Raises
    ------
    SeqDanceError
        On malformed text, a letter that is not a standard amino acid (``*``, ``X``, ...),
        or the same position twice.
    """
    text = str(mutant).strip()
    if text.lower() in WILD_TYPE_NAMES:
        return ()
    subs: list[Substitution] = []
    seen: set[int] = set()
    for part in text.split(":"):
        match = _TOKEN.fullmatch(part.strip())
        if match is None:
            raise SeqDanceError(
                f"{_where(text, row)}: cannot parse {part!r} (expected e.g. A12G or A12G:C15D)"
            )
        wt, pos, mt = match.group(1).upper(), int(match.group(2)), match.group(3).upper()
        for kind, letter in (("wild-type", wt), ("mutant", mt)):
            if letter not in AMINO_ACIDS:
                raise SeqDanceError(
                    f"{_where(text, row)}: unknown {kind} amino acid {letter!r} in {part!r} "
                    f"(allowed: {AMINO_ACIDS})"
                )
        if pos in seen:
            raise SeqDanceError(f"{_where(text, row)}: position {pos} is mutated twice")
        seen.add(pos)
        subs.append(Substitution(wt, pos, mt))
    return tuple(subs)


def check_substitutions(
    wild_type: str,
    subs: Sequence[Substitution],
    offset: int = 1,
    *,
    mutant: str = "",
    row: int | None = None,
) -> None:
    """Check positions and wild-type letters of ``subs`` against ``wild_type``."""
    length = len(wild_type)
    for sub in subs:
        i = sub.index(offset)
        if not 0 <= i < length:
            raise SeqDanceError(
                f"{_where(mutant or str(sub), row)}: position {sub.position} is outside the "
                f"sequence (positions {offset}..{offset + length - 1} with offset {offset})"
            )
        if wild_type[i] != sub.wt:
            raise SeqDanceError(
                f"{_where(mutant or str(sub), row)}: the wild type has {wild_type[i]!r} at "
                f"position {sub.position}, not {sub.wt!r} (offset {offset}; wrong --offset?)"
            )


def apply_substitutions(wild_type: str, subs: Sequence[Substitution], offset: int = 1) -> str:
    """The mutant sequence (``subs`` must have passed :func:`check_substitutions`)."""
    letters = list(wild_type)
    for sub in subs:
        letters[sub.index(offset)] = sub.mt
    return "".join(letters)


def diff_substitutions(
    wild_type: str, mutated: str, offset: int = 1, *, row: int | None = None
) -> tuple[Substitution, ...]:
    """Substitutions that turn ``wild_type`` into ``mutated`` (same length required)."""
    if len(mutated) != len(wild_type):
        where = f"line {row}: " if row is not None else ""
        raise SeqDanceError(
            f"{where}mutated sequence has {len(mutated)} residues, the wild type "
            f"{len(wild_type)}; only substitutions can be scored"
        )
    subs = []
    for i, (a, b) in enumerate(zip(wild_type, mutated, strict=True)):
        if a != b:
            if b not in AMINO_ACIDS:
                where = f"line {row}: " if row is not None else ""
                raise SeqDanceError(
                    f"{where}mutated sequence has unknown amino acid {b!r} at position {i + offset}"
                )
            subs.append(Substitution(a, i + offset, b))
    return tuple(subs)


def format_mutant(subs: Iterable[Substitution]) -> str:
    """ProteinGym text of ``subs`` (``wt`` when there are none)."""
    text = ":".join(str(s) for s in subs)
    return text or "wt"


@dataclass(frozen=True)
class MutantSet:
    """Checked mutants of one wild type, in input order.

    ``sequences[i]`` is the full mutant sequence of row i; ``substitutions[i]`` its
    substitutions (user numbering with ``offset``).
    """

    wild_type: str
    offset: int
    sequences: tuple[str, ...]
    substitutions: tuple[tuple[Substitution, ...], ...]

    def __len__(self) -> int:
        return len(self.sequences)


def build_mutant_set(
    wild_type: str,
    mutants: Sequence[str] | None = None,
    mutated_sequences: Sequence[str] | None = None,
    offset: int = 1,
    *,
    first_row: int | None = 2,
) -> MutantSet:
    """Check every mutant before any work starts and build the mutant sequences.

    Give ``mutants`` (ProteinGym text), ``mutated_sequences``, or both (then each pair must
    agree). Messages give the CSV line of a mutant, counting from ``first_row`` (the line
    after the header); None leaves line numbers out.
    """
    if mutants is None and mutated_sequences is None:
        raise SeqDanceError("need a 'mutant' or a 'mutated_sequence' column")
    n = len(mutants) if mutants is not None else len(mutated_sequences)  # type: ignore[arg-type]
    sequences: list[str] = []
    all_subs: list[tuple[Substitution, ...]] = []
    for k in range(n):
        row = k + first_row if first_row is not None else None
        if mutants is not None:
            text = str(mutants[k])
            subs = parse_mutant(text, row)
            check_substitutions(wild_type, subs, offset, mutant=text, row=row)
            seq = apply_substitutions(wild_type, subs, offset)
            if mutated_sequences is not None:
                given = str(mutated_sequences[k]).strip().upper()
                if given != seq:
                    raise SeqDanceError(
                        f"{_where(text, row)}: 'mutated_sequence' does not match the mutant "
                        "applied to the wild type (wrong --offset or wild type?)"
                    )
        else:
            seq = str(mutated_sequences[k]).strip().upper()  # type: ignore[index]
            subs = diff_substitutions(wild_type, seq, offset, row=row)
        sequences.append(seq)
        all_subs.append(subs)
    return MutantSet(wild_type, offset, tuple(sequences), tuple(all_subs))
