"""``predict``'s one-file store: every record's outputs in one HDF5 file (``-o OUT.h5``).

    FASTA records -> shards of whole batches -> a shard file per shard (the records' groups)
    -> rank 0 copies the groups into OUT.h5, shard after shard -> the per-record index

A proteome gives one file instead of two files a record. The layout (docs/model.md):

    attrs      format = "seqdance predictions", version, residue_channels, pair_channels,
               band (-1: all pairs), window (-1: one pass)
    index/     id, stem (str), length (int64): one row per record, in FASTA order
    records/{stem}/            attrs id, sequence
        residue                (L, 50) float32, columns in schema order
        pair/{channel}         (L, L) the pair store's layout (``store.create_pair_datasets``:
                               chunked, compressed, NaN where not predicted); not with
                               ``--pairs none``
        attention              (layers, heads, L, L) float16 (``--attention``)

``{stem}`` is the record id made safe (``store.safe_stems``), the same name a folder run
gives its files. The store is assembled from shard files (``OUT.h5.shards/``) by
:func:`copy_record` (one fixed sequence of HDF5 operations; pair tiles moved as stored, never
decompressed), so one process and any number of ranks write the same bytes, and a killed run
resumes from the finished shards.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.inference.fasta import FastaRecord
from seqdance.inference.predict import iter_pieces
from seqdance.inference.store import PairMaps, create_pair_datasets
from seqdance.inference.store_predict import PredictOutputs
from seqdance.inference.windows import PairMerge, ResidueMerge
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import damaged_file_errors, h5_output
from seqdance.utils.memory import trim_heap

FORMAT = "seqdance predictions"
VERSION = 1
STORE_SUFFIXES = (".h5", ".hdf5")


def is_store_path(out: str | os.PathLike) -> bool:
    """Whether ``predict -o out`` means the one-file store (a name ending in .h5 or .hdf5)."""
    return Path(out).suffix.lower() in STORE_SUFFIXES


# -- writing -----------------------------------------------------------------------------
class _Record:
    """One record being written into its group: residue rows merged as windows arrive,
    pair rows merged in blocks and written to the group's pair datasets."""

    def __init__(self, group, plan, options: PredictOutputs) -> None:
        self.group = group
        self.residue = ResidueMerge(plan)
        self.pairs = None
        if options.pairs:
            self.pairs = PairMerge(plan, options.pair_band)
            self.sets = create_pair_datasets(group.create_group("pair"), plan[0].length,
                                             options.pairs, options.pair_dtype,
                                             options.pair_band)  # fmt: skip
            self.index = [PAIR_CHANNELS.index(c) for c in options.pairs]

    def add_pairs(self, k: int, values: np.ndarray) -> None:
        for block in self.pairs.add(k, values):  # values (n, n, 13)
            n, m = block.values.shape[:2]
            rows, cols = slice(block.row0, block.row0 + n), slice(block.col0, block.col0 + m)
            for channel, ds in zip(self.index, self.sets, strict=True):
                ds[rows, cols] = block.values[..., channel]


def write_records_h5(
    parent, net, records: Sequence[FastaRecord], stems: Sequence[str], options: PredictOutputs
) -> None:
    """Predict ``records`` into groups ``parent[stem]`` (the layout above). Pairs are written
    in blocks as windows are merged: no (L, L, 13) array is held for a windowed record."""
    open_records: dict[int, _Record] = {}
    for index, k, plan, piece in iter_pieces(
        net, [r.sequence for r in records], pair=bool(options.pairs),
        attentions=options.attention, token_budget=options.token_budget, window=options.window,
    ):  # fmt: skip
        rec = open_records.get(index)
        if rec is None:
            group = parent.create_group(stems[index])
            group.attrs["id"] = records[index].id
            group.attrs["sequence"] = records[index].sequence
            rec = open_records[index] = _Record(group, plan, options)
        rec.residue.add(k, piece.residue)
        if rec.pairs is not None:
            rec.add_pairs(k, piece.pair)
        if piece.attentions is not None:  # one window: checked by PredictOutputs.check
            rec.group.create_dataset("attention", data=piece.attentions.astype(np.float16))
        del piece
        if k + 1 == len(plan):
            residue = open_records.pop(index).residue.result()  # (L, 50)
            rec.group.create_dataset("residue", data=residue.astype(np.float32))


def copy_record(source, parent, name: str) -> None:
    """Write the record group ``source`` (of a shard file) as ``parent[name]``, always in one
    order of operations, so the bytes of the store do not depend on how the shard files were
    cut or written (HDF5's own object copy keeps the source's header layout, which does).
    Pair tiles are moved as stored (compressed chunk bytes, ``read_direct_chunk``): never
    decompressed, and tiles never written stay unwritten."""
    group = parent.create_group(name)
    group.attrs["id"] = source.attrs["id"]
    group.attrs["sequence"] = source.attrs["sequence"]
    group.create_dataset("residue", data=source["residue"][()])
    if "attention" in source:
        group.create_dataset("attention", data=source["attention"][()])
    if "pair" not in source:
        return
    maps = source["pair"]
    channels = [c for c in str(maps.attrs["channels"]).split(",") if c]
    band = int(maps.attrs["band"])
    first = maps[channels[0]]
    created = create_pair_datasets(group.create_group("pair"), int(maps.attrs["length"]),
                                   channels, first.dtype.name,
                                   None if band < 0 else band)  # fmt: skip
    for channel, target in zip(channels, created, strict=True):
        stored = maps[channel].id
        offsets = sorted(stored.get_chunk_info(k).chunk_offset
                         for k in range(stored.get_num_chunks()))  # fmt: skip
        for offset in offsets:
            mask, data = stored.read_direct_chunk(offset)
            target.id.write_direct_chunk(offset, data, mask)


def assemble_store(
    out: Path,
    paths: Sequence[Path],
    shard_items: Sequence[Sequence[int]],
    ids: Sequence[str],
    stems: Sequence[str],
    lengths: Sequence[int],
    options: PredictOutputs,
) -> Path:
    """Write ``out`` from the shard files (``paths``, holding the records ``shard_items``):
    every record's group copied a shard at a time, in the order one process finishes them
    (shards are consecutive runs of that order, so the order, and the bytes, do not depend on
    where the shards were cut), then the index (FASTA order); the file appears only when
    complete."""
    import h5py

    with h5_output(out) as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["version"] = VERSION
        h5.attrs["residue_channels"] = ",".join(RESIDUE_CHANNELS)
        h5.attrs["pair_channels"] = ",".join(options.pairs)
        h5.attrs["band"] = -1 if options.pair_band is None else options.pair_band
        h5.attrs["window"] = -1 if options.window is None else options.window
        target = h5.create_group("records")
        for path, items in zip(paths, shard_items, strict=True):
            with damaged_file_errors(path, "a shard of predict"), h5py.File(path, "r") as src:
                for i in items:
                    copy_record(src["records"][stems[i]], target, stems[i])
            trim_heap()
        text = h5py.string_dtype()
        h5.create_dataset("index/id", data=np.array(ids, dtype=object), dtype=text)
        h5.create_dataset("index/stem", data=np.array(stems, dtype=object), dtype=text)
        h5.create_dataset("index/length", data=np.asarray(lengths, dtype=np.int64))
    return out


# -- reading -----------------------------------------------------------------------------
class PredictionStore:
    """Read ``predict``'s one-file store: ``store.ids``, ``store.residue(id)`` (L, 50),
    ``store.pairs(id)`` (a lazy :class:`~seqdance.inference.store.PairMaps`, or None),
    ``store.attention(id)`` and ``store.sequence(id)``; records by id or by index row."""

    def __init__(self, path: str | os.PathLike) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise SeqDanceError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise SeqDanceError(f"{self.path}: not an HDF5 file (a predict store: -o OUT.h5)")
        with damaged_file_errors(self.path, "a predict store"), h5py.File(self.path, "r") as h5:
            if h5.attrs.get("format") != FORMAT:
                raise SeqDanceError(f"{self.path}: not a predict store (-o OUT.h5)")
            self.ids = [s.decode() for s in h5["index/id"][()]]
            self.stems = [s.decode() for s in h5["index/stem"][()]]
            self.lengths = [int(n) for n in h5["index/length"][()]]
            self.pair_channels = tuple(c for c in str(h5.attrs["pair_channels"]).split(",") if c)
        self._row = {rid: k for k, rid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, rid: object) -> bool:
        return rid in self._row

    def row(self, record: str | int) -> int:
        """The index row of a record given by id (or by row)."""
        row = record if isinstance(record, int) else self._row.get(record)
        if row is None:
            raise KeyError(f"{record!r} is not a record of {self.path}")
        return row

    def _group(self, record: str | int) -> str:
        return f"records/{self.stems[self.row(record)]}"

    def _read(self, record: str | int, name: str):
        import h5py

        with h5py.File(self.path, "r") as h5:
            group = h5[self._group(record)]
            if name in group.attrs:
                return str(group.attrs[name])
            return group[name][()] if name in group else None

    def residue(self, record: str | int) -> np.ndarray:
        """The 50 residue outputs, shape=(L, 50) float32, columns as ``RESIDUE_CHANNELS``."""
        return self._read(record, "residue")

    def sequence(self, record: str | int) -> str:
        return self._read(record, "sequence")

    def attention(self, record: str | int) -> np.ndarray | None:
        """(layers, heads, L, L) float16, or None without ``--attention``."""
        return self._read(record, "attention")

    def pairs(self, record: str | int) -> PairMaps | None:
        """The record's pair maps, read lazily, or None (``--pairs none``)."""
        if not self.pair_channels:
            return None
        return PairMaps(self.path, group=f"{self._group(record)}/pair")
