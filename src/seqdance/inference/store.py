"""What ``predict`` keeps on disk: file names from record ids, the index table, pair stores.

Pair maps are written in one of two layouts (docs/model.md, "Output files"):

* ``{stem}.pair.npz``: one (L, L) float32 array per pair channel (the default without
  ``--window``/``--pair-band``; what ``np.load`` reads).
* ``{stem}.pair.h5``: a *pair store*, one chunked, compressed HDF5 dataset (L, L) per pair
  channel, written block by block as windows are merged, so that no (L, L, 13) array is
  ever held in memory. Pairs never written (outside every window, or outside
  ``--pair-band``) read as NaN (the datasets' fill value) and take no disk. Attributes:
  ``length``, ``band`` (-1: none), ``channels``.

:class:`PairMaps` reads either layout lazily: a channel, or a tile of it, is read when asked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.schema import FEATURE_BY_NAME, PAIR_CHANNELS
from seqdance.utils.io import latched_file, raise_write_failure
from seqdance.utils.tables import join_list, write_rows

PAIR_NPZ = ".pair.npz"
PAIR_H5 = ".pair.h5"
INDEX_NAME = "index.csv"
CHUNK = 256  # residues per side of a stored tile
PAIR_DTYPES = ("float32", "float16")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_STEM = 100  # characters of a record id kept in a file name


# -- names -------------------------------------------------------------------------------
def safe_stems(ids: Sequence[str]) -> list[str]:
    """A file-name stem per record id: unique, portable, recognisable.

    Runs of characters other than letters, digits, ``.``, ``_``, ``+`` and ``-`` become
    ``_`` (``sp|P69905|HBA_HUMAN`` -> ``sp_P69905_HBA_HUMAN``), a leading ``.`` or ``-``
    becomes ``_``, and long ids are cut to 100 characters. Stems that would repeat (also
    when they differ only in case, for case-insensitive file systems) get ``~2``, ``~3``, ...
    in input order. Ids that are safe already keep their name.
    """
    stems: list[str] = []
    seen: set[str] = set()
    for rid in ids:
        stem = _UNSAFE.sub("_", rid)[:MAX_STEM]
        if not stem or stem[0] in ".-":
            stem = "_" + stem[1:] if stem else "_"
        candidate, n = stem, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem}~{n}"
        seen.add(candidate.lower())
        stems.append(candidate)
    return stems


def write_record_index(path: str | os.PathLike, rows: Sequence[dict[str, object]]) -> Path:
    """The index table (CSV): ``id``, ``stem``, ``length``, ``files`` (names joined by ``;``)."""
    return write_rows(
        path,
        ("id", "stem", "length", "files"),
        ((r["id"], r["stem"], r["length"], join_list(r["files"])) for r in rows),  # type: ignore[arg-type]
    )


def parse_pairs(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Pair channels to write: ``all`` (or None), ``none``, or a comma-separated list of pair
    channel or feature names (``corr,nma_pair``). Unknown names are one error."""
    if spec is None:
        return PAIR_CHANNELS
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if names == ["all"]:
        return PAIR_CHANNELS
    if names == ["none"]:
        return ()
    chosen: list[str] = []
    for name in names:
        feature = FEATURE_BY_NAME.get(name)
        if feature is not None and feature.kind == "pair":
            chosen.extend(feature.channels)
        elif name in PAIR_CHANNELS:
            chosen.append(name)
        else:
            raise SeqDanceError(
                f"--pairs: {name!r} is not a pair output; use none, all or names from "
                f"{', '.join(PAIR_CHANNELS)} (or nma_pair)"
            )
    if not chosen:
        raise SeqDanceError("--pairs: give none, all or comma-separated pair output names")
    return tuple(c for c in PAIR_CHANNELS if c in set(chosen))  # schema order


# -- the HDF5 pair store -----------------------------------------------------------------
def create_pair_datasets(parent, length: int, channels: Sequence[str], dtype: str = "float32",
                         band: int | None = None) -> list:  # fmt: skip
    """The pair store's layout in the h5py group or file ``parent``: attributes ``length``,
    ``band`` (-1: none) and ``channels``, and one chunked, compressed (L, L) dataset per
    channel whose unwritten pairs read as NaN. Returns the datasets, in ``channels`` order."""
    chunk = (min(length, CHUNK), min(length, CHUNK))
    parent.attrs["length"] = length
    parent.attrs["band"] = -1 if band is None else band
    parent.attrs["channels"] = ",".join(channels)
    return [
        parent.create_dataset(
            name,
            shape=(length, length),
            dtype=dtype,
            chunks=chunk,
            compression="gzip",
            compression_opts=1,
            shuffle=True,
            fillvalue=np.nan,
        )  # fmt: skip
        for name in channels
    ]


class PairStoreWriter:
    """Write one record's pair maps into an HDF5 pair store, block by block.

    Parameters
    ----------
    path : the file to write (a temporary name; the caller renames it).
    length : L, residues.
    channels : the pair channels kept (a subset of :data:`PAIR_CHANNELS`, schema order).
    dtype : ``float32`` or ``float16`` (docs/model.md: measured precision of float16).
    band : keep |i - j| <= band only (None: all pairs).
    """

    def __init__(self, path, length: int, channels: Sequence[str], dtype: str = "float32",
                 band: int | None = None, name=None) -> None:  # fmt: skip
        import h5py

        self.index = [PAIR_CHANNELS.index(c) for c in channels]
        self.name = name if name is not None else path  # the user's path, for errors
        self.raw = latched_file(path)  # a full disk: one error, HDF5 still closes cleanly
        self.file = h5py.File(self.raw, "w")
        self.closed = False
        self.sets = create_pair_datasets(self.file, length, channels, dtype, band)

    def write(self, row0: int, col0: int, values: np.ndarray) -> None:
        """Pairs ``row0 : row0 + n`` x ``col0 : col0 + m``; values (n, m, 13), all channels."""
        n, m = values.shape[:2]
        try:
            for k, ds in zip(self.index, self.sets, strict=True):
                ds[row0 : row0 + n, col0 : col0 + m] = values[..., k]
        except (RuntimeError, OSError, ValueError, KeyError):
            raise_write_failure(self.raw, self.name)  # HDF5's text names our temporary
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.file.close()
        except (RuntimeError, OSError, ValueError, KeyError):
            if self.raw.failure is None:
                raise
        finally:
            self.raw.close()
        raise_write_failure(self.raw, self.name)


# -- reading -----------------------------------------------------------------------------
def pair_file(stem_path: str | os.PathLike) -> Path | None:
    """The pair file of ``{stem}`` (``.pair.h5`` first, then ``.pair.npz``), or None."""
    for suffix in (PAIR_H5, PAIR_NPZ):
        path = Path(str(stem_path) + suffix)
        if path.is_file():
            return path
    return None


class PairMaps:
    """The pair maps of one record, read lazily from a ``.pair.h5`` store or a ``.pair.npz``,
    or from the group ``group`` of an HDF5 file (a record of ``predict``'s one-file store,
    ``seqdance.inference.store_file``).

    ``maps["corr"]`` is one (L, L) float32 array; ``maps.tile("corr", rows, cols)`` reads a
    slice only (from an HDF5 store, only the chunks it touches); ``maps[..., k]`` is channel
    ``k`` of :data:`PAIR_CHANNELS` (as a dense (L, L, 13) array would give);
    ``np.asarray(maps)`` reads everything, shape=(L, L, 13), NaN for channels not written.
    """

    def __init__(self, path: str | os.PathLike, group: str = "/") -> None:
        self.path = Path(path)
        self.group = group
        try:
            if self.hdf5:
                import h5py

                with h5py.File(self.path, "r") as h5:
                    maps = h5[group]
                    self.names = tuple(c for c in PAIR_CHANNELS if c in maps)
                    self.length = int(maps.attrs["length"])
                    band = int(maps.attrs.get("band", -1))
                    self.band = None if band < 0 else band
            else:
                with np.load(self.path, allow_pickle=False) as data:
                    self.names = tuple(c for c in PAIR_CHANNELS if c in data.files)
                    self.length = int(data[self.names[0]].shape[0]) if self.names else 0
                self.band = None
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise SeqDanceError(f"{self.path}: cannot read the pair outputs ({exc})") from exc

    @property
    def hdf5(self) -> bool:
        return self.path.suffix in (".h5", ".hdf5")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.length, self.length, len(PAIR_CHANNELS))

    def tile(self, name: str, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """Channel ``name``, rows x cols, float32 (NaN: not predicted or outside the band)."""
        if name not in self.names:
            if name in PAIR_CHANNELS:
                return np.full((self.length, self.length), np.nan, np.float32)[rows, cols]
            raise KeyError(f"{name!r} is not a pair output")
        if self.hdf5:
            import h5py

            with h5py.File(self.path, "r") as h5:
                return h5[self.group][name][rows, cols].astype(np.float32)
        with np.load(self.path, allow_pickle=False) as data:
            return data[name][rows, cols].astype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, str):
            return self.tile(key)
        if isinstance(key, tuple) and len(key) == 2 and key[0] is Ellipsis:
            return self.tile(PAIR_CHANNELS[key[1]])
        return np.asarray(self)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = np.stack([self.tile(c) for c in PAIR_CHANNELS], axis=-1)  # (L, L, 13)
        return dense if dtype is None else dense.astype(dtype)
