"""The ESM2 alphabet, bundled so that no tokenizer has to be downloaded.

A sequence of L residues becomes T = L + 2 tokens: ``<cls>``, one token per residue,
``<eos>`` (docs/model.md). NumPy only, so the data loader can tokenize
without importing the model stack; :mod:`seqdance.model.alphabet` adds torch batching.
"""

from __future__ import annotations

import numpy as np

from seqdance.errors import SeqDanceError

# ESM2 token strings in id order.
TOKENS: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H",
    "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
CLS_ID = TOKEN_ID["<cls>"]
PAD_ID = TOKEN_ID["<pad>"]
EOS_ID = TOKEN_ID["<eos>"]
MASK_ID = TOKEN_ID["<mask>"]
VOCAB_SIZE = len(TOKENS)  # 33

# One-letter residue codes a sequence may contain: the 20 standard amino acids and the
# ambiguous/rare codes the ESM2 alphabet has tokens for.
RESIDUE_LETTERS = "ACDEFGHIKLMNPQRSTVWYXBUZO"
_LETTER_ID = {c: TOKEN_ID[c] for c in RESIDUE_LETTERS}
_LOOKUP = np.full(256, -1, dtype=np.int64)  # byte -> token id, -1 for letters without a token
for _letter in RESIDUE_LETTERS:
    _LOOKUP[ord(_letter)] = _LOOKUP[ord(_letter.lower())] = TOKEN_ID[_letter]


def _invalid(record_id: str, sequence: str, pos: int) -> SeqDanceError:
    return SeqDanceError(
        f"record {record_id!r}: invalid residue {sequence[pos]!r} at position {pos + 1} "
        f"(allowed: {RESIDUE_LETTERS})"
    )


def check_sequence(record_id: str, sequence: str) -> str:
    """Upper-case ``sequence`` and check that every letter has an ESM2 token.

    Raises
    ------
    SeqDanceError
        Naming the record and the 1-based position of the first invalid letter.
    """
    seq = sequence.upper()
    if not seq:
        raise SeqDanceError(f"record {record_id!r}: empty sequence")
    for pos, char in enumerate(seq):
        if char not in _LETTER_ID:
            raise _invalid(record_id, seq, pos)
    return seq


def encode(sequence: str) -> list[int]:
    """Token ids of one (checked, upper-case) sequence, ``<cls>`` and ``<eos>`` included."""
    return [CLS_ID, *(_LETTER_ID[c] for c in sequence), EOS_ID]


def tokenize(sequence: str, name: str = "") -> np.ndarray:
    """Token ids, shape (L + 2,) int64: ``<cls>``, one id per residue, ``<eos>``.

    Vectorised; accepts lower case. Raises :class:`SeqDanceError` naming the record and the
    position of a letter without a token.
    """
    codes = np.frombuffer(sequence.encode("latin-1", errors="replace"), dtype=np.uint8)
    ids = np.empty(len(codes) + 2, dtype=np.int64)
    ids[0], ids[-1] = CLS_ID, EOS_ID
    ids[1:-1] = _LOOKUP[codes]
    bad = np.flatnonzero(ids[1:-1] < 0)
    if len(bad):
        raise _invalid(name, sequence, int(bad[0]))
    return ids
