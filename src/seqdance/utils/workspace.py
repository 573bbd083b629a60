"""Scratch tensors kept from one call to the next.

On a CPU a fresh tensor of more than a few MB is new memory from the operating system, and its
first writes cost page faults: a (2, 20, 256, 256) float32 softmax takes ~3.7 ms into a fresh
tensor and ~1.2 ms in place, and a 30 MB block of the pair head ~5 ms before its product. Code
whose large temporaries live only inside one call (not saved for a backward pass, not returned)
takes them from a :class:`Workspace` instead, which keeps one growing buffer per name.
"""

from __future__ import annotations

import math
import threading

import torch


class Workspace:
    """One reusable buffer per (thread, name, device, dtype); a request views its first
    elements. Buffers are per thread, so models running in parallel threads never share one;
    :meth:`clear` frees those of every thread (autograd's device threads included)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` that is valid until the next ``get(name)``
        from the same thread."""
        numel = math.prod(shape)
        key = (threading.get_ident(), name, torch.device(device), dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < numel:
            self._buffers.pop(key, None)  # free the old one first
            buffer = self._buffers[key] = torch.empty(numel, device=device, dtype=dtype)
        return buffer[:numel].view(shape)

    def clear(self) -> None:
        self._buffers.clear()


WORKSPACE = Workspace()


class TensorPool:
    """Tensors handed out and handed back, so that the next call reuses their memory.

    For tensors that outlive a call (kept for a backward pass) but not a training step; the
    pool keeps at most ``limit`` of them.
    """

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self._free: list[torch.Tensor] = []
        self._lock = threading.Lock()  # backward passes may run on autograd's device threads

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` with ``like``'s device and dtype."""
        numel = math.prod(shape)
        with self._lock:
            return self._take(shape, numel, like)

    def _take(self, shape, numel, like):
        fits = [
            i for i, t in enumerate(self._free)
            if t.numel() >= numel and t.device == like.device and t.dtype == like.dtype
        ]  # fmt: skip
        if not fits:
            return like.new_empty(shape)
        best = self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        return best[:numel].view(shape)

    def give(self, tensor: torch.Tensor) -> None:
        """Hand ``tensor`` back (its memory may be reused at once: do not read it again)."""
        base = tensor if tensor._base is None else tensor._base
        with self._lock:
            self._free.append(base.view(-1))
            if len(self._free) > self.limit:  # drop the smallest
                self._free.pop(min(range(len(self._free)), key=lambda i: self._free[i].numel()))

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
