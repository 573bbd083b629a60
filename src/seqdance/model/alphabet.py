"""The ESM2 alphabet for the model: :mod:`seqdance.alphabet` plus torch batching.

A sequence of L residues becomes T = L + 2 tokens: ``<cls>``, one token per residue,
``<eos>``. Batches are right-padded with ``<pad>`` and come with an attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqdance.alphabet import (  # noqa: F401  (re-exported: the model's alphabet)
    CLS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    RESIDUE_LETTERS,
    TOKEN_ID,
    TOKENS,
    VOCAB_SIZE,
    check_sequence,
    encode,
    tokenize,
)


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
