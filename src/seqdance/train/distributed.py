"""One process per device, as ``torchrun`` starts them: RANK, WORLD_SIZE and LOCAL_RANK.

Without those variables the run is a single process and nothing is initialised. With them,
the process group uses NCCL on GPUs and gloo on CPUs; only rank 0 logs and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from seqdance.errors import SeqDanceError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_from_environment() -> DistEnv:
    """RANK/WORLD_SIZE/LOCAL_RANK from the environment (single process when absent)."""
    return DistEnv(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def pick_device(spec: str, env: DistEnv) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.

    ``cpu``, ``cuda``, ``cuda:N`` (and ``mps`` where present) are checked against the machine:
    a device that is not there is a :class:`SeqDanceError`, not a library traceback.
    """
    spec = str(spec).strip()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", env.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise SeqDanceError(
            f"device {spec!r}: unknown (use auto, cpu, cuda or cuda:N)"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SeqDanceError(f"device {spec!r}: no CUDA device is available on this machine")
        if device.index is None:
            device = torch.device("cuda", env.local_rank % count)
        elif device.index >= count:
            raise SeqDanceError(f"device {spec!r}: this machine has {count} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise SeqDanceError(f"device {spec!r}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise SeqDanceError(f"device {spec!r}: unknown (use auto, cpu, cuda or cuda:N)")
    return device


def init_process_group(env: DistEnv, device: torch.device) -> None:
    """Join the job's process group (no-op for a single process)."""
    import torch.distributed as dist

    if not env.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)


def destroy_process_group(env: DistEnv) -> None:
    import torch.distributed as dist

    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over the ranks in place (no-op for a single process)."""
    if env.enabled:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(env: DistEnv) -> None:
    if env.enabled:
        import torch.distributed as dist

        dist.barrier()
