"""``--workers N`` and ``torchrun``: one decorator that runs a command on several processes.

The command's body runs once per rank inside one agreed step
(``seqdance.inference.sharding.Group.step``): a failure on any rank ends them all with one
``error:`` line from rank 0. The body finds its group with ``sharding.current()``.
"""

from __future__ import annotations

import functools

WORKERS_HELP = (
    "Processes on this machine (torch.distributed, gloo): the work is cut into shards written "
    "to disk, so a killed run resumes; outputs are the same bytes for any N. Under torchrun, "
    "leave it out (torchrun starts the processes)."
)
INT8_HELP = (
    "CPU only: the trunk runs as an int8 ONNX Runtime graph (int8 weights, activations "
    "quantized per batch). Not the paper's numbers: see docs/differences.md for its "
    "measured parity and speed."
)


def sharded(command):
    """Run ``command`` (which takes a ``workers`` option) on its ranks: start them for
    ``--workers N``, join the group under torchrun, a single process otherwise."""

    @functools.wraps(command)
    def wrapper(**kwargs):
        from seqdance.inference import sharding

        workers = kwargs.get("workers")
        if sharding.launching(workers):
            return sharding.run_workers(workers, wrapper, kwargs)
        with sharding.joined(workers) as group, group.step():
            return command(**kwargs)

    return wrapper
