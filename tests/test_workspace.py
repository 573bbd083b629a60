"""Scratch buffers and the tensor pool (seqdance.utils.workspace) hand memory back correctly."""

from __future__ import annotations

import torch

from seqdance.utils.workspace import TensorPool, Workspace


def test_workspace_reuses_and_grows_one_buffer_per_name():
    ws = Workspace()
    a = ws.get("x", (4, 5), "cpu", torch.float32)
    b = ws.get("x", (2, 3), "cpu", torch.float32)  # smaller: the same memory
    assert b.data_ptr() == a.data_ptr() and b.shape == (2, 3)
    c = ws.get("y", (2, 3), "cpu", torch.float32)  # another name: other memory
    assert c.data_ptr() != a.data_ptr()
    d = ws.get("x", (10, 10), "cpu", torch.float32)  # larger: a new buffer
    assert d.shape == (10, 10) and d.numel() == 100
    e = ws.get("x", (3, 3), "cpu", torch.float64)  # another dtype: another buffer
    assert e.dtype == torch.float64


def test_pool_hands_back_the_smallest_fitting_tensor():
    pool = TensorPool(limit=2)
    like = torch.zeros(1)
    big, small = pool.take((10, 10), like), pool.take((3, 3), like)
    pool.give(big)
    pool.give(small)
    got = pool.take((2, 4), like)  # 8 elements: the 9-element tensor fits best
    assert got.data_ptr() == small.data_ptr() and got.shape == (2, 4)
    again = pool.take((5, 20), like)
    assert again.data_ptr() == big.data_ptr()
    fresh = pool.take((5, 20), like)  # nothing left: new memory
    assert fresh.data_ptr() not in (big.data_ptr(), small.data_ptr())
    for t in (pool.take((1,), like), pool.take((1,), like), pool.take((1,), like)):
        pool.give(t)
    assert len(pool._free) == 2  # the limit


def test_workspace_buffers_are_per_thread():
    import threading

    ws = Workspace()
    main = ws.get("x", (8,), "cpu", torch.float32)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(ws.get("x", (8,), "cpu", torch.float32)))
    thread.start()
    thread.join()
    assert seen[0].data_ptr() != main.data_ptr()
    assert ws.get("x", (8,), "cpu", torch.float32).data_ptr() == main.data_ptr()
    ws.clear()  # every thread's buffers
    assert ws._buffers == {}
