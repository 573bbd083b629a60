"""ESM2 tokenization for the data loader (alphabet order of seqdance-facts.md section 1).

Kept apart from :mod:`seqdance.model.alphabet` so that loading data never imports the model
stack (transformers); a test checks that both alphabets agree. A sequence of L residues
becomes T = L + 2 ids: ``<cls>`` first, ``<eos>`` last.
"""

from __future__ import annotations

import numpy as np

from seqdance.errors import SeqDanceError

ESM_TOKENS: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H",
    "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip
TOKEN_ID: dict[str, int] = {tok: i for i, tok in enumerate(ESM_TOKENS)}
CLS_ID = TOKEN_ID["<cls>"]
PAD_ID = TOKEN_ID["<pad>"]
EOS_ID = TOKEN_ID["<eos>"]
RESIDUE_LETTERS = "ACDEFGHIKLMNPQRSTVWYXBUZO"

_LOOKUP = np.full(256, -1, dtype=np.int64)  # byte -> token id, -1 for letters without a token
for _letter in RESIDUE_LETTERS:
    _LOOKUP[ord(_letter)] = _LOOKUP[ord(_letter.lower())] = TOKEN_ID[_letter]


def tokenize(sequence: str, name: str = "") -> np.ndarray:
    """Token ids, shape (L + 2,) int64: ``<cls>``, one id per residue, ``<eos>``.

    Raises :class:`SeqDanceError` naming the protein and position of a letter without a token.
    """
    codes = np.frombuffer(sequence.encode("latin-1", errors="replace"), dtype=np.uint8)
    ids = np.empty(len(codes) + 2, dtype=np.int64)
    ids[0], ids[-1] = CLS_ID, EOS_ID
    ids[1:-1] = _LOOKUP[codes]
    bad = np.flatnonzero(ids[1:-1] < 0)
    if len(bad):
        pos = int(bad[0])
        raise SeqDanceError(
            f"protein {name!r}: invalid residue {sequence[pos]!r} at position {pos + 1}"
        )
    return ids
