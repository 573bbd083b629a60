"""``predict`` and ``embed`` on several processes: shards of FASTA records.

A shard is a run of whole batches of the one-process pass (the windows of all records sorted
by length, batched under the token budget: :func:`seqdance.inference.predict.make_batches`),
cut only where no record is split. Every forward pass therefore sees the batch one process
would, and the records come out in the one-process order when the shards are read in order:
the outputs are the same bytes whatever the number of ranks.

- ``predict``: each rank writes the files of its shards' records straight into the output
  folder (one output group per record, as one process does) and then a small shard file
  (the records' index rows) to ``OUT/shards/``; rank 0 writes ``index.csv`` from them.
- ``embed``: each rank writes its shards' embeddings to ``OUT.shards/``; rank 0 reads them
  one shard at a time and writes the HDF5 file with the one-process writer.

Shard files are removed after a successful run; a rerun of a killed run computes only the
shards whose file is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqdance.inference import sharding
from seqdance.inference.embed import embed, write_embeddings
from seqdance.inference.fasta import FastaRecord
from seqdance.inference.fasta_index import record_ids, record_lengths, records_digest
from seqdance.inference.predict import make_batches, window_plan
from seqdance.inference.store import INDEX_NAME, safe_stems, write_record_index
from seqdance.inference.store_file import assemble_store, write_records_h5
from seqdance.inference.store_predict import PredictOutputs, write_records
from seqdance.model.quantize import state_fingerprint
from seqdance.utils.io import check_output_file, h5_output
from seqdance.utils.memory import trim_heap
from seqdance.utils.progress import progress_bar

SHARDS_DIR = "shards"  # predict: OUT/shards/ (removed after a successful run)


def record_shards(
    lengths: Sequence[int], token_budget: int, window: int | None, max_tokens: int
) -> list[sharding.Shard]:
    """Shards of records: consecutive whole batches of the one-process pass, at least
    ``max_tokens`` padded tokens a shard (the last may have fewer), cut between records.

    Parameters
    ----------
    lengths : sequence of int, shape=(N,)
        Residues of each record.
    token_budget, window : as :func:`seqdance.inference.predict.iter_pieces`.
    max_tokens : int
        Tokens (batch size x (longest + 2), summed over batches) after which a shard ends.

    Returns
    -------
    Shards whose ``items`` are record indices in the order one process finishes them.
    """
    widths: list[int] = []  # (P,) residues of each window, records in input order
    owner: list[int] = []  # (P,) record of each window
    left = [0] * len(lengths)  # windows of each record not yet batched
    for index, length in enumerate(lengths):
        for w in window_plan(length, window):
            widths.append(w.stop - w.start)
            owner.append(index)
            left[index] += 1
    shards: list[sharding.Shard] = []
    items: list[int] = []
    tokens = 0
    for batch in make_batches(widths, token_budget):
        for piece in batch:  # a record's windows are consecutive in the sorted order
            if not items or items[-1] != owner[piece]:
                items.append(owner[piece])
            left[owner[piece]] -= 1
        tokens += len(batch) * (max(widths[p] for p in batch) + 2)
        if tokens >= max_tokens and left[owner[batch[-1]]] == 0:
            shards.append(sharding.Shard(len(shards), tuple(items), tokens))
            items, tokens = [], 0
    if items:
        shards.append(sharding.Shard(len(shards), tuple(items), tokens))
    return shards


def _shard_tokens(shard_tokens: int | None) -> int:
    if shard_tokens is not None:
        return shard_tokens
    return int(os.environ.get("SEQDANCE_SHARD_TOKENS", sharding.SHARD_TOKENS))


def predict_sharded(
    group: sharding.Group,
    net,
    records: Sequence[FastaRecord],
    out: str | os.PathLike,
    options: PredictOutputs,
    *,
    pdb: str | os.PathLike | None = None,
    progress: bool = False,
    shard_tokens: int | None = None,
) -> Path | None:
    """:func:`seqdance.inference.store_predict.predict_records` over the ranks of ``group``:
    the same files, and ``index.csv`` written by rank 0. Returns its path on rank 0, None on
    the others. ``shard_tokens``: default ``$SEQDANCE_SHARD_TOKENS`` or 65,536."""
    out = Path(out)
    ids, lengths = record_ids(records), record_lengths(records)
    stems = safe_stems(ids)
    shards = record_shards(lengths, options.token_budget, options.window,
                           _shard_tokens(shard_tokens))  # fmt: skip
    key = _predict_key(net, records, options, pdb)

    def compute(shard: sharding.Shard) -> dict[str, np.ndarray]:
        chosen = sorted(shard.items)  # input order: the batches of the one-process pass
        shown = progress and group.is_main
        rows = write_records(net, [records[i] for i in chosen], [stems[i] for i in chosen],
                             out, options, pdb=pdb, progress=shown)  # fmt: skip
        trim_heap()
        return {
            "items": np.array(chosen, dtype=np.int64),
            "files": np.array([",".join(row["files"]) for row in rows], dtype=str),  # type: ignore[arg-type]
        }

    parts = sharding.run_shards(group, out / SHARDS_DIR, key, shards, compute)
    if parts is None:
        return None
    rows: list[dict[str, object]] = [{} for _ in ids]
    for part in parts:
        for index, files in zip(part["items"].tolist(), part["files"].tolist(), strict=True):
            rows[index] = {"id": ids[index], "stem": stems[index], "length": lengths[index],
                           "files": files.split(",")}  # fmt: skip
    path = write_record_index(out / INDEX_NAME, rows)
    sharding.remove_shards(out / SHARDS_DIR, key)
    return path


def _predict_key(net, records, options: PredictOutputs, pdb) -> str:
    """The name of a predict run's shards: a hash of the records, options and weights."""
    manifest = {
        "records": records_digest(records),
        "pairs": list(options.pairs),
        "options": [
            options.pair_band,
            options.pair_format,
            options.pair_dtype,
            options.window,
            options.attention,
            options.plots,
            options.token_budget,
        ],
        "pdb": [str(pdb), sorted(options.pdb_records)],
        "model": state_fingerprint(net),
    }
    return "predict-" + sharding.digest(manifest)


def predict_to_store(
    group: sharding.Group,
    net,
    records: Sequence[FastaRecord],
    out: str | os.PathLike,
    options: PredictOutputs,
    *,
    progress: bool = False,
    shard_tokens: int | None = None,
) -> Path | None:
    """Predict ``records`` into the one-file store ``out`` (``seqdance.inference.store_file``)
    on the ranks of ``group``; a single process is a group of one, and takes the same path.

    Each shard's records go to ``OUT.shards/{key}-{k}.h5`` (written atomically); rank 0 then
    copies every record's group into ``out`` (one-process order) and writes the index, so the
    bytes do not depend on the number of ranks, and a killed run (one process or many)
    resumes from the finished shards. Returns ``out`` on rank 0, None elsewhere.
    """
    out = check_output_file(out)
    ids, lengths = record_ids(records), record_lengths(records)
    stems = safe_stems(ids)
    shards = record_shards(lengths, options.token_budget, options.window,
                           _shard_tokens(shard_tokens))  # fmt: skip
    key = "store-" + _predict_key(net, records, options, None)
    mine = sharding.deal(shards, group.world)[group.rank]
    shown = progress and group.is_main
    bar = progress_bar(total=sum(len(shards[k].items) for k in mine), desc="predict",
                       unit="seq", enabled=shown)  # fmt: skip

    def write(path: Path, shard: sharding.Shard) -> None:
        chosen = sorted(shard.items)  # input order: the batches of the one-process pass
        with h5_output(path) as h5:
            write_records_h5(h5.create_group("records"), net, [records[i] for i in chosen],
                             [stems[i] for i in chosen], options)  # fmt: skip
        bar.update(len(chosen))
        trim_heap()

    folder = out.with_name(f"{out.name}.shards")
    try:
        paths = sharding.shard_files(group, folder, key, shards, None, write=write, suffix=".h5")
    finally:
        bar.close()
    if paths is None:
        return None
    assemble_store(out, paths, [s.items for s in shards], ids, stems, lengths, options)
    sharding.remove_shards(folder, key)
    return out


def embed_sharded(
    group: sharding.Group,
    net,
    records: Sequence[FastaRecord],
    out: str | os.PathLike,
    *,
    token_budget: int,
    window: int | None = None,
    progress: bool = False,
    shard_tokens: int | None = None,
) -> Path | None:
    """:func:`seqdance.inference.embed.embed` and
    :func:`~seqdance.inference.embed.write_embeddings` over the ranks of ``group``: rank 0
    writes the HDF5 file ``out`` from the shard files (``OUT.shards/``), one shard in memory
    at a time, records in the one-process order. Returns ``out`` on rank 0, None elsewhere."""
    out = check_output_file(out)
    ids, lengths = record_ids(records), record_lengths(records)
    shards = record_shards(lengths, token_budget, window, _shard_tokens(shard_tokens))
    manifest = {
        "records": records_digest(records),
        "options": [token_budget, window],
        "model": state_fingerprint(net),
    }
    key = "embed-" + sharding.digest(manifest)

    def compute(shard: sharding.Shard) -> dict[str, np.ndarray]:
        chosen = sorted(shard.items)
        done = list(embed(net, [records[i].sequence for i in chosen], token_budget=token_budget,
                          window=window, progress=progress and group.is_main))  # fmt: skip
        trim_heap()
        return {
            "items": np.array([chosen[i] for i, _ in done], dtype=np.int64),  # finishing order
            "residues": np.concatenate([residues for _, residues in done]),  # (sum L, E)
        }

    folder = out.with_name(f"{out.name}.shards")
    paths = sharding.shard_files(group, folder, key, shards, compute)
    if paths is None:
        return None

    def items() -> Iterator[tuple[str, np.ndarray]]:
        for path in paths:
            arrays = sharding.read_shard(path)
            start = 0
            for index in arrays["items"].tolist():
                stop = start + lengths[index]
                yield ids[index], arrays["residues"][start:stop]  # (L, E)
                start = stop

    write_embeddings(out, items())
    sharding.remove_shards(folder, key)
    return out


# -- one process: the same shards, one at a time, no shard files ---------------------------
def predict_in_shards(
    net, records: Sequence[FastaRecord], out: str | os.PathLike, options: PredictOutputs,
    *, pdb: str | os.PathLike | None = None, progress: bool = False,
) -> Path:  # fmt: skip
    """:func:`~seqdance.inference.store_predict.predict_records` a shard at a time: the same
    files, but only one shard's sequences are read from ``records`` (a
    :class:`~seqdance.inference.fasta_index.FastaIndex`: a FASTA of any size in flat
    memory). Returns the index table."""
    ids, lengths = record_ids(records), record_lengths(records)
    stems = safe_stems(ids)
    shards = record_shards(lengths, options.token_budget, options.window, _shard_tokens(None))
    rows: list[dict[str, object]] = [{} for _ in ids]
    with progress_bar(total=len(ids), desc="predict", unit="seq", enabled=progress) as bar:
        for shard in shards:
            chosen = sorted(shard.items)
            done = write_records(net, [records[i] for i in chosen], [stems[i] for i in chosen],
                                 out, options, pdb=pdb)  # fmt: skip
            for index, row in zip(chosen, done, strict=True):
                rows[index] = row
            bar.update(len(chosen))
            trim_heap()
    return write_record_index(Path(out) / INDEX_NAME, rows)


def embed_in_shards(
    net, records: Sequence[FastaRecord], out: str | os.PathLike, *, token_budget: int,
    window: int | None = None, progress: bool = False,
) -> Path:  # fmt: skip
    """:func:`~seqdance.inference.embed.embed` into
    :func:`~seqdance.inference.embed.write_embeddings` a shard at a time (records in the
    one-process order, the same bytes), one shard's sequences read from ``records``."""
    ids, lengths = record_ids(records), record_lengths(records)
    shards = record_shards(lengths, token_budget, window, _shard_tokens(None))

    def items() -> Iterator[tuple[str, np.ndarray]]:
        with progress_bar(total=len(ids), desc="embed", unit="seq", enabled=progress) as bar:
            for shard in shards:
                chosen = sorted(shard.items)
                sequences = [records[i].sequence for i in chosen]
                for i, residues in embed(net, sequences, token_budget=token_budget,
                                         window=window):  # fmt: skip
                    yield ids[chosen[i]], residues  # (L, E)
                    bar.update(1)
                trim_heap()

    return write_embeddings(out, items())
