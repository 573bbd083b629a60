"""The ESM2 alphabet, bundled so that no tokenizer has to be downloaded.

A sequence of L residues becomes T = L + 2 tokens: ``<cls>``, one token per residue,
``<eos>``. Batches are right-padded with ``<pad>`` and come with an attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqdance.errors import SeqDanceError

# ESM2 token strings in id order (seqdance-facts.md section 1).
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
    for pos, char in enumerate(seq, start=1):
        if char not in _LETTER_ID:
            raise SeqDanceError(
                f"record {record_id!r}: invalid residue {char!r} at position {pos} "
                f"(allowed: {RESIDUE_LETTERS})"
            )
    return seq


def encode(sequence: str) -> list[int]:
    """Token ids of one (checked, upper-case) sequence, ``<cls>`` and ``<eos>`` included."""
    return [CLS_ID, *(_LETTER_ID[c] for c in sequence), EOS_ID]


def batch_encode(sequences: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and attention mask for a batch.

    Returns
    -------
    input_ids : LongTensor, shape=(B, T)
        ``T = max(len) + 2``; padding uses ``<pad>``.
    attention_mask : LongTensor, shape=(B, T)
        1 on real tokens (special tokens included), 0 on padding.
    """
    width = max(len(s) for s in sequences) + 2
    input_ids = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids = encode(seq)
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask
