"""Sharded, resumable inference on several processes: ``torchrun`` or ``--workers N``.

The work of a command is cut into shards that depend on the input only, never on the number
of processes (mutants in whole batches, assays, scan blocks). Shards are dealt to the ranks
longest first by token count; each rank writes every shard it finishes atomically
(``seqdance.utils.io``), and rank 0 reads all shards in input order and writes the outputs
through the same writer as one process, so the bytes do not depend on N. A rerun of a killed
run (same inputs, same options, same model) finds the finished shards and computes only the
missing ones.

Processes and errors:

- under ``torchrun`` (RANK, WORLD_SIZE, MASTER_ADDR in the environment) every process joins
  a gloo group (only small status objects travel through it; the model runs on each rank's
  own device, ``cuda:LOCAL_RANK`` on GPUs);
- ``--workers N`` on one machine: this process is rank 0 and starts N - 1 more with
  ``torch.multiprocessing`` (spawn), joined through a ``file://`` store;
- every step that can fail on one rank (reading inputs, loading the model, computing shards,
  writing outputs) ends with all ranks agreeing on the outcome (:meth:`Group.step`): a
  failure anywhere ends every rank, and only rank 0 reports it, as one error;
- a rank that dies (or SIGTERM from the launcher) is an error on rank 0 at its next step;
  shards are written atomically, so none is ever half-written.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.mutations import MutantSet
from seqdance.inference.options import ScoreOptions
from seqdance.inference.scan import BLOCK_POSITIONS, ScanResult, run_scan
from seqdance.inference.score import score_sequences
from seqdance.inference.summaries import MutationScores, ordered_channels, summarise_scores
from seqdance.model.quantize import state_fingerprint
from seqdance.utils.io import save_npz

SHARD_TOKENS = 1 << 16  # tokens (sequences x (L + 2)) per shard of a mutant list
RERUN_HINT = "rerun the same command to resume: finished shards are kept"
_TIMEOUT = datetime.timedelta(minutes=30)
# (rank, world, init method) of a --workers process; None outside one
_LOCAL: tuple[int, int, str] | None = None


# -- shards --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    """A piece of work: ``items`` (indices into the command's input list) and its cost."""

    index: int
    items: tuple[int, ...]
    tokens: int


def cut_shards(lengths: Sequence[int], max_tokens: int, *, align: int = 1) -> list[Shard]:
    """Consecutive items in input order, in groups of ``align``, at most ``max_tokens`` tokens
    a shard (at least one group).

    Parameters
    ----------
    lengths : sequence of int, shape=(N,)
        Tokens of each item.
    max_tokens : int
    align : int
        Shards hold whole groups of this many items (a batch of the scorer), so that the
        batches inside a shard are those of one unsharded pass.
    """
    shards: list[Shard] = []
    items: list[int] = []
    tokens = 0
    for start in range(0, len(lengths), max(1, align)):
        group = list(range(start, min(len(lengths), start + max(1, align))))
        cost = int(sum(lengths[i] for i in group))
        if items and tokens + cost > max_tokens:
            shards.append(Shard(len(shards), tuple(items), tokens))
            items, tokens = [], 0
        items.extend(group)
        tokens += cost
    if items:
        shards.append(Shard(len(shards), tuple(items), tokens))
    return shards


def deal(shards: Sequence[Shard], world: int) -> list[list[int]]:
    """Shard indices per rank: longest first, each to the least-loaded rank (ties: the lower
    rank, then the lower index); each rank's list in ascending order. Deterministic."""
    load = [0] * world
    ranks: list[list[int]] = [[] for _ in range(world)]
    for shard in sorted(shards, key=lambda s: (-s.tokens, s.index)):
        r = min(range(world), key=lambda k: (load[k], k))
        ranks[r].append(shard.index)
        load[r] += shard.tokens
    return [sorted(r) for r in ranks]


def digest(manifest: dict) -> str:
    """A short hash of a JSON-able description of the work (inputs, options, model)."""
    text = json.dumps(manifest, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# -- the process group ---------------------------------------------------------------------
class _Agreed(SeqDanceError):
    """A failure every rank knows of (no further agreement needed)."""


class Group:
    """This process's place in a sharded run; a single process when ``world == 1``."""

    def __init__(self, rank: int = 0, world: int = 1, *, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.sharded = False  # whether the command uses shards (--workers or torchrun)
        self._previous_sigterm = None
        self._threads = torch.get_num_threads()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def agree(self, error: str | None) -> None:
        """All ranks share their outcome; any failure ends every rank: rank 0 raises it as
        a :class:`SeqDanceError`, the others leave quietly (``SystemExit(0)``: rank 0
        carries the exit status)."""
        if not self.distributed:
            if error is not None:
                raise SeqDanceError(error)
            return
        import torch.distributed as dist

        outcomes: list[str | None] = [None] * self.world
        try:
            dist.all_gather_object(outcomes, error)
        except (RuntimeError, ValueError) as exc:  # a rank died: the group is broken
            raise _Agreed(f"a worker process stopped ({_reason(exc)}); {RERUN_HINT}") from None
        failed = [(r, e) for r, e in enumerate(outcomes) if e is not None]
        if failed:
            if not self.is_main:
                raise SystemExit(0)
            rank, message = failed[0]
            raise _Agreed(message if rank == 0 else f"rank {rank}: {message}")

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Run a block that can fail on some ranks; every rank leaves it together (see
        :meth:`agree`). A single process raises as usual."""
        if not self.distributed:
            yield
            return
        error = None
        try:
            yield
        except _Agreed:  # agreed already in an inner step
            raise
        except SeqDanceError as exc:
            error = str(exc)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            error = f"{exc.strerror or ' '.join(str(exc).split())}{where}"
        self.agree(error)

    def close(self) -> None:
        """Leave the process group (after a last barrier) and restore signals and threads."""
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            torch.set_num_threads(self._threads)
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)


def _reason(exc: BaseException) -> str:
    """The first sentence of a gloo error, without its source location
    (``[.../pair.cc:553] Connection closed by peer [127.0.0.1]:1234. ...``)."""
    text = re.sub(r"\[[^\]\s]*:\d+\]\s*", "", " ".join(str(exc).split()))
    return re.split(r"\.\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".")[:120]


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise _Agreed(f"stopped by the launcher (another rank failed or the job was "
                        f"cancelled); {RERUN_HINT}")  # fmt: skip


def join(workers: int | None = None) -> Group:
    """This process's :class:`Group`: from ``torchrun``'s environment, from ``--workers``,
    or a single process. Joins the gloo group (the control messages; the model runs on each
    rank's own device) and, on CPUs, splits the cores between the ranks on this machine."""
    import torch.distributed as dist

    if _LOCAL is not None:
        rank, world, init = _LOCAL
        local_rank, local_world = rank, world
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if workers is not None and workers > 1:
            raise SeqDanceError("--workers: not under torchrun (it starts the processes)")
        rank, world, init = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    else:
        return Group()
    group = Group(rank, world, local_rank=local_rank)
    if not dist.is_initialized():
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world,
                                timeout=_TIMEOUT)  # fmt: skip
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    try:
        group._previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
    return group


def launching(workers: int | None) -> bool:
    """Whether a command given ``--workers`` must start its processes (not inside a run)."""
    return (
        workers is not None
        and workers > 1
        and _LOCAL is None
        and int(os.environ.get("WORLD_SIZE", "1")) == 1
    )


def run_workers(workers: int, fn: Callable, kwargs: dict):
    """Run ``fn(**kwargs)`` on ``workers`` ranks of this machine: this process is rank 0, the
    others are spawned (``torch.multiprocessing``); each calls :func:`join` inside ``fn``.

    ``fn`` and ``kwargs`` must pickle (a module-level function, plain values). Returns rank
    0's result; a worker that dies is an error on rank 0 at its next step.
    """
    import torch.multiprocessing as mp

    global _LOCAL
    folder = tempfile.mkdtemp(prefix="seqdance-workers-")
    init = Path(folder, "store").as_uri()
    context = mp.start_processes(
        _worker, args=(workers, init, fn, kwargs), nprocs=workers - 1, join=False,
        start_method="spawn",
    )  # fmt: skip
    _LOCAL = (0, workers, init)
    finished = False
    try:
        result = fn(**kwargs)
        finished = True
        return result
    finally:
        _LOCAL = None
        if finished:  # the others finish their last step too
            with contextlib.suppress(Exception):
                while not context.join(timeout=60):
                    pass
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)


def _worker(index: int, workers: int, init: str, fn: Callable, kwargs: dict) -> None:
    """Rank ``index + 1`` of :func:`run_workers` (a spawned process)."""
    global _LOCAL
    _LOCAL = (index + 1, workers, init)
    os.environ["LOCAL_RANK"] = str(index + 1)  # the device picker's cuda:LOCAL_RANK
    try:
        fn(**kwargs)
    except (SeqDanceError, OSError):  # agreed with rank 0, which reports it
        sys.exit(1)


# -- running shards ------------------------------------------------------------------------
def shard_path(folder: Path, key: str, index: int, suffix: str = ".npz") -> Path:
    return folder / f"{key}-{index:05d}{suffix}"


def _read(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError):
        return None  # unreadable: computed again


def run_shards(
    group: Group,
    folder: str | os.PathLike,
    key: str,
    shards: Sequence[Shard],
    compute: Callable[[Shard], dict[str, np.ndarray]],
) -> list[dict[str, np.ndarray]] | None:
    """Compute this rank's missing shards and write each to ``folder/{key}-{k}.npz``.

    Returns, on rank 0, every shard's arrays in shard order (None on the other ranks).
    ``compute`` returns arrays that ``numpy.savez`` writes without pickling.
    """
    paths = shard_files(group, folder, key, shards, compute)
    return None if paths is None else [read_shard(p) for p in paths]


def shard_files(
    group: Group,
    folder: str | os.PathLike,
    key: str,
    shards: Sequence[Shard],
    compute: Callable[[Shard], dict[str, np.ndarray]] | None,
    *,
    write: Callable[[Path, Shard], None] | None = None,
    suffix: str = ".npz",
) -> list[Path] | None:
    """:func:`run_shards`, but rank 0 gets the shard files (in shard order), checked readable,
    to read one at a time (:func:`read_shard`): memory stays that of one shard.

    ``write(path, shard)`` instead of ``compute``: the shard writes its own file (atomically,
    e.g. through ``seqdance.utils.io.h5_output``) named ``{key}-{k}{suffix}``; a file that
    exists is a finished shard."""
    folder = Path(folder)
    mine = deal(shards, group.world)[group.rank]
    with group.step():
        folder.mkdir(parents=True, exist_ok=True)
        for k in mine:
            path = shard_path(folder, key, k, suffix)
            for stale in folder.glob(f".{path.name}.*"):  # a killed write's temporary
                stale.unlink(missing_ok=True)
            if write is not None:
                if not path.is_file():
                    write(path, shards[k])
            elif _read(path) is None:
                save_npz(path, compressed=False, **compute(shards[k]))
    if not group.is_main:
        return None
    paths = [shard_path(folder, key, shard.index, suffix) for shard in shards]
    for shard, path in zip(shards, paths, strict=True):
        if not path.is_file():  # removed under our feet
            raise SeqDanceError(f"{folder}: shard {shard.index} is missing; {RERUN_HINT}")
    return paths


def read_shard(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a shard file written by :func:`shard_files`."""
    arrays = _read(path)
    if arrays is None:
        raise SeqDanceError(f"{path}: shard is missing or unreadable; {RERUN_HINT}")
    return arrays


def remove_shards(folder: str | os.PathLike, key: str) -> None:
    """Remove a finished run's shard files (and the folder when it is left empty); kept when
    ``$SEQDANCE_KEEP_SHARDS`` is 1 (to see which shards a resumed run computed again)."""
    if os.environ.get("SEQDANCE_KEEP_SHARDS", "0") == "1":
        return
    folder = Path(folder)
    for path in folder.glob(f"{key}-*.*"):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


# -- the commands' sharded work ------------------------------------------------------------
def score_mutants_sharded(
    group: Group,
    model,
    mutants: MutantSet,
    properties: Sequence[str],
    options: ScoreOptions,
    folder: str | os.PathLike,
    *,
    shard_tokens: int | None = None,
) -> MutationScores | None:
    """:func:`~seqdance.inference.score.score_mutants` over the ranks of ``group``.

    Shards hold whole batches of the unsharded pass (the unique mutant sequences in order,
    ``token_budget // (L + 2)`` a batch), so every forward pass sees the batch one process
    would: the scores are the same bytes whatever the number of ranks. Shards go to
    ``folder`` and are removed once rank 0 has them all. Returns the scores on rank 0, None on
    the others. ``shard_tokens``: default ``$SEQDANCE_SHARD_TOKENS`` or :data:`SHARD_TOKENS`.
    """
    if shard_tokens is None:
        shard_tokens = int(os.environ.get("SEQDANCE_SHARD_TOKENS", SHARD_TOKENS))
    channels = ordered_channels(properties)
    unique = list(dict.fromkeys(mutants.sequences))
    length = len(mutants.wild_type) + 2
    batch = max(1, options.token_budget // length)
    shards = cut_shards([length] * len(unique), max(shard_tokens, batch * length), align=batch)
    manifest = {
        "wild_type": mutants.wild_type,
        "sequences": hashlib.blake2b("\n".join(unique).encode(), digest_size=16).hexdigest(),
        "channels": list(channels),
        "options": repr(options),
        "model": state_fingerprint(model),
    }
    key = "score-" + digest(manifest)

    def compute(shard: Shard) -> dict[str, np.ndarray]:
        chosen = [unique[i] for i in shard.items]
        return {"scores": score_sequences(model, mutants.wild_type, chosen, channels, options)}

    parts = run_shards(group, folder, key, shards, compute)
    if parts is None:
        return None
    scores = np.concatenate([p["scores"] for p in parts], axis=0)  # (U, C)
    index = {s: i for i, s in enumerate(unique)}
    remove_shards(folder, key)
    return summarise_scores(channels, scores[[index[s] for s in mutants.sequences]])


def scan_sharded(group: Group, model, wild_type: str, out_dir: str | os.PathLike,
                 properties: Sequence[str], **kwargs) -> ScanResult | None:  # fmt: skip
    """:func:`~seqdance.inference.scan.run_scan` over the ranks of ``group``: its blocks of
    positions are the shards (``OUT/parts/``), dealt evenly; rank 0 then runs the scan, which
    reads every block and writes ``scan.csv``. Returns the result on rank 0, None elsewhere."""
    if not group.distributed:
        return run_scan(model, wild_type, out_dir, properties, **kwargs)
    positions = kwargs.get("positions")
    count = len(wild_type) if positions is None else len(set(positions))
    size = kwargs.get("block_positions", BLOCK_POSITIONS)
    blocks = [Shard(k, (), min(size, count - k * size)) for k in range(-(-count // size))]
    with group.step():
        run_scan(model, wild_type, out_dir, properties,
                 blocks=deal(blocks, group.world)[group.rank], **kwargs)  # fmt: skip
    if not group.is_main:
        return None
    return run_scan(model, wild_type, out_dir, properties, **kwargs)


_CURRENT: list[Group] = []


def current() -> Group:
    """The group of the running command (a single process outside :func:`joined`)."""
    return _CURRENT[-1] if _CURRENT else Group()


@contextlib.contextmanager
def joined(workers: int | None = None) -> Iterator[Group]:
    """:func:`join`, the group made :func:`current`, left (:meth:`Group.close`) at the end."""
    group = join(workers)
    group.sharded = workers is not None or group.distributed
    _CURRENT.append(group)
    try:
        yield group
    finally:
        _CURRENT.pop()
        group.close()
