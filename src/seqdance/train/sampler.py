"""The authors' batch order (``train.sampler: authors``), as a pure function of the update.

The authors' training script (ShenLab/SeqDance ``model/train_ddp.py`` and
``get_dataloader_cycle_iter`` in ``model/utils.py``, revision of April 2025) builds, for each
data group, a ``DataLoader`` over a ``DistributedSampler`` (shuffle on, its default seed 0,
``set_epoch`` never called; ``drop_last=True`` on the loader) and wraps it in
``itertools.cycle``; the loaders are rebuilt every ``get_dataloader_per_update`` (200) updates.
So every rebuild starts the same permutation again: each rank reads the first
``200 x update_batch`` batches of one fixed list (cycled when the list is shorter), and the
proteins past that point, or in the incomplete last batch, are never drawn. ``cycle`` replays
the batches it has stored, crops included, until the next rebuild.

Here batch ``j`` of a rebuild block is ``batches[j mod len(batches)]`` with ``batches`` the
rank's share of the epoch-0 permutation cut into whole batches; crop windows are seeded by
(seed, block start, batch position, group, rank), so a replayed batch repeats its crops within
a block and gets new ones in the next block, and a resumed run reads the same batches.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from seqdance.errors import SeqDanceError

SAMPLER_SEED = 0  # DistributedSampler's default seed, which the authors never changed


@lru_cache(maxsize=64)
def rank_batches(
    n: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = SAMPLER_SEED
) -> tuple[tuple[int, ...], ...]:
    """The batches one rank's loader yields in its first epoch (positions in the group).

    ``DistributedSampler(shuffle=True, seed=seed)`` at epoch 0: ``randperm(n)`` from a
    generator seeded with ``seed``, padded by repetition to a multiple of ``world_size``,
    every ``world_size``-th index from ``rank``; then cut into ``batch_size`` batches with the
    incomplete last one dropped (``DataLoader(drop_last=True)``).
    """
    if n < 1 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise SeqDanceError(f"sampler: bad sizes n={n}, batch={batch_size}, rank={rank}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator).tolist()
    total = math.ceil(n / world_size) * world_size
    padded = (order * math.ceil(total / n))[:total]
    share = padded[rank:total:world_size]
    whole = len(share) // batch_size
    return tuple(tuple(share[i * batch_size : (i + 1) * batch_size]) for i in range(whole))


def check_group_size(group: str, n: int, batch_size: int, world_size: int) -> None:
    """A group too small for one whole batch per rank: the authors' loader yields nothing
    (their ``cycle`` would stop the run); here it is an error naming the group."""
    if math.ceil(n / world_size) < batch_size:
        raise SeqDanceError(
            f"train.sampler=authors: data group {group} has {n} proteins, fewer than one "
            f"batch of {batch_size} per process ({world_size} processes); lower the batch "
            "size or use train.sampler=replacement"
        )


def block_position(update: int, micro: int, phase_start: int, reload_every: int,
                   accum_steps: int) -> tuple[int, int]:  # fmt: skip
    """(first update of the rebuild block, batch position inside it) of a micro-batch.

    Blocks start at the phase's first update (the authors change the crop length only at a
    rebuild) and every ``reload_every`` updates after it.
    """
    into = update - phase_start
    start = phase_start + (into // reload_every) * reload_every
    return start, (update - start) * accum_steps + micro


def never_seen_fraction(
    n: int, batch_size: int, world_size: int, accum_steps: int, reload_every: int
) -> float:
    """Fraction of a group's ``n`` proteins that no rank ever draws under the authors' scheme."""
    drawn = set()
    used = reload_every * accum_steps  # batches per rank and block
    for rank in range(world_size):
        batches = rank_batches(n, batch_size, world_size, rank)
        for batch in batches[: min(used, len(batches))]:
            drawn.update(batch)
    return 1.0 - len(drawn) / n
