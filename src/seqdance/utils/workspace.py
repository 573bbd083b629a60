"""Scratch tensors kept from one call to the next.

On a CPU a fresh tensor of more than a few MB is new memory from the operating system, and its
first writes cost page faults: a (2, 20, 256, 256) float32 softmax takes ~3.7 ms into a fresh
tensor and ~1.2 ms in place, and a 30 MB block of the pair head ~5 ms before its product. Code
whose large temporaries live only inside one call (not saved for a backward pass, not returned)
takes them from a :class:`Workspace` instead, which keeps one growing buffer per name.
"""

from __future__ import annotations

import math

import torch


class Workspace:
    """One reusable buffer per (name, device, dtype); a request views its first elements."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` that is valid until the next ``get(name)``."""
        numel = math.prod(shape)
        key = (name, torch.device(device), dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < numel:
            self._buffers.pop(key, None)  # free the old one first
            buffer = self._buffers[key] = torch.empty(numel, device=device, dtype=dtype)
        return buffer[:numel].view(shape)

    def clear(self) -> None:
        self._buffers.clear()


WORKSPACE = Workspace()
