"""Training batches as a pure function of (seed, update, micro-step, group, rank).

Each update draws ``accum_steps`` micro-batches from every data group (by default with
replacement, so the groups weigh equally whatever their sizes, as the authors' one-batch-per-
group loop; ``train.sampler: authors`` reads their fixed cycled order instead,
:mod:`seqdance.train.sampler`); the proteins of a micro-batch and their random crop windows
come from a generator seeded with those five numbers. The data position saved in a checkpoint
is therefore just the update number, and a resumed run (or any rank of a DDP job) reads
exactly the batches it would have read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from seqdance.data.dataset import DatasetConfig, ProteinDataset, collate
from seqdance.errors import SeqDanceError
from seqdance.schema import DataGroup
from seqdance.train.sampler import block_position, check_group_size, rank_batches

_MASK = (1 << 63) - 1


def stream_seed(*numbers: int) -> int:
    """A 63-bit seed that mixes ``numbers`` (SplitMix64 steps); stable across runs and platforms."""
    state = 0x9E3779B97F4A7C15
    for n in numbers:
        state = (state ^ (n & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 31
        state = state * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 29
    return state & _MASK


@dataclass(frozen=True)
class BatchRequest:
    """One micro-batch: which proteins of a group, and the seed of their crop windows."""

    step: int
    micro: int
    group: str
    indices: tuple[int, ...]  # positions in the group's protein list
    crop_seeds: tuple[int, ...]


def request_for(
    seed: int, step: int, micro: int, group_id: int, group: str, n: int, batch: int, rank: int
) -> BatchRequest:
    gen = torch.Generator().manual_seed(stream_seed(seed, step, micro, group_id, rank))
    indices = torch.randint(0, n, (batch,), generator=gen).tolist()
    crops = torch.randint(0, 2**62, (batch,), generator=gen).tolist()
    return BatchRequest(step, micro, group, tuple(indices), tuple(crops))


@dataclass(frozen=True)
class SamplerPlan:
    """How proteins are drawn: ``replacement`` or ``authors`` (with its rebuild interval,
    the first update of the phase and the number of processes)."""

    kind: str = "replacement"
    reload_every: int = 200
    phase_start: int = 0
    world_size: int = 1


def authors_request(
    seed: int, step: int, micro: int, group_id: int, group: str, n: int, batch: int, rank: int,
    accum_steps: int, plan: SamplerPlan,
) -> BatchRequest:  # fmt: skip
    """The micro-batch the authors' cycled ``DistributedSampler`` loader gives (seed 0)."""
    check_group_size(group, n, batch, plan.world_size)
    batches = rank_batches(n, batch, plan.world_size, rank)
    block, j = block_position(step, micro, plan.phase_start, plan.reload_every, accum_steps)
    slot = j % len(batches)
    gen = torch.Generator().manual_seed(stream_seed(seed, block, slot, group_id, rank, 2))
    crops = torch.randint(0, 2**62, (batch,), generator=gen).tolist()
    return BatchRequest(step, micro, group, batches[slot], tuple(crops))


class GroupBatches(Dataset):
    """Map-style dataset whose keys are :class:`BatchRequest` s and whose items are batches.

    Parameters
    ----------
    dataset : ProteinDataset
        Built with the phase's crop size and ``random_crop=True``.
    """

    def __init__(self, dataset: ProteinDataset) -> None:
        self.dataset = dataset
        self.members: dict[str, list[int]] = {}
        for i, group in enumerate(dataset.groups):
            self.members.setdefault(group, []).append(i)
        # group-table order, so that every rank iterates the groups alike
        self.groups = [g.name for g in dataset.group_table if g.name in self.members]
        if not self.groups:
            raise SeqDanceError("the training set has no proteins")

    def __len__(self) -> int:  # not used for sampling; requests are the keys
        return len(self.dataset)

    def __getitem__(self, request: BatchRequest) -> dict:
        members = self.members[request.group]
        items = []
        for index, crop_seed in zip(request.indices, request.crop_seeds, strict=True):
            # the dataset draws its crop start from the global generator: fork and seed it
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(crop_seed)
                items.append(self.dataset[members[index]])
        batch = collate(items)
        batch["step"], batch["micro"] = request.step, request.micro
        return batch

    def requests(
        self, seed: int, start: int, stop: int, batch_size: int, accum_steps: int, rank: int,
        plan: SamplerPlan | None = None,
    ) -> Iterator[BatchRequest]:  # fmt: skip
        """Requests of updates ``start..stop-1`` in the order the loop consumes them."""
        plan = plan or SamplerPlan()
        ids = {g.name: i for i, g in enumerate(self.dataset.group_table)}
        for step in range(start, stop):
            for micro in range(accum_steps):
                for group in self.groups:
                    n = len(self.members[group])
                    args = (seed, step, micro, ids[group], group, n, batch_size, rank)
                    if plan.kind == "authors":
                        yield authors_request(*args, accum_steps, plan)
                    else:
                        yield request_for(*args)


def phase_loader(
    root: str,
    label: str | None,
    crop_size: int,
    clamp: float | None,
    groups: tuple[DataGroup, ...] | None = None,
) -> GroupBatches:
    """The training proteins of ``root`` read with one phase's crop size; ``groups``: the data
    group table (default: every published source, :data:`seqdance.schema.DATA_GROUPS`)."""
    config = DatasetConfig(crop_size=crop_size, random_crop=True, clamp=clamp)
    return GroupBatches(ProteinDataset(root, label=label, config=config, group_table=groups))


def iterate_batches(
    batches: GroupBatches,
    seed: int,
    start: int,
    stop: int,
    batch_size: int,
    accum_steps: int,
    rank: int,
    num_workers: int = 0,
    plan: SamplerPlan | None = None,
) -> Iterator[dict]:
    """Batches of updates ``start..stop-1``, read ahead by ``num_workers`` processes."""
    requests = _Requests(batches, seed, start, stop, batch_size, accum_steps, rank, plan)
    loader = DataLoader(
        batches,
        batch_size=None,
        sampler=requests,
        num_workers=num_workers,
        collate_fn=None,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if num_workers else None,
        # its own generator: creating the iterator must not draw from the global one (dropout)
        generator=torch.Generator().manual_seed(seed),
    )
    yield from loader


class _Requests:
    """A lazy, re-iterable sampler over the requests of a range of updates."""

    def __init__(self, batches: GroupBatches, seed, start, stop, batch_size, accum_steps, rank,
                 plan=None):  # fmt: skip
        self.batches = batches
        self.args = (seed, start, stop, batch_size, accum_steps, rank, plan)
        self.length = max(0, stop - start) * accum_steps * len(batches.groups)

    def __iter__(self) -> Iterator[BatchRequest]:
        return self.batches.requests(*self.args)

    def __len__(self) -> int:
        return self.length
