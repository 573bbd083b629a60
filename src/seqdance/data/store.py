"""The stored dataset layout: one HDF5 file plus an index CSV (docs/dataset.md).

``features.h5`` holds, for each protein ``name``, two float32 datasets:

- ``{name}_res_feature``: (T, C_res), T = L + 2 rows aligned with the ESM tokens
  (row 0 is ``<cls>``, row T-1 ``<eos>``, both all -1);
- ``{name}_pair_feature``: (T, T, C_pair), rows and columns of the special tokens -1.

MD proteins store the 47 + 10 channels of :data:`seqdance.schema.MD_RESIDUE_CHANNELS` /
:data:`~seqdance.schema.MD_PAIR_CHANNELS` (interaction channels as value ** (1/3), RMSF raw),
NMA proteins the 3 + 3 NMA channels. Every missing value is -1; no NaN is stored.

``index.csv`` has one row per protein: ``name, modify_seq, source, label`` (the published
columns) and ``kind, length, group``. Each residue dataset also carries ``kind``, ``source`` and
``sequence`` attributes so that the HDF5 file describes itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import (
    CUBE_ROOT_CHANNELS,
    MD_PAIR_CHANNELS,
    MD_RESIDUE_CHANNELS,
    MISSING,
    NMA_PAIR_CHANNELS,
    NMA_RESIDUE_CHANNELS,
    Source,
    group_of_source,
)
from seqdance.utils.io import atomic_path, h5_output, save_npz

FEATURES_FILE = "features.h5"
INDEX_FILE = "index.csv"
STAGING_DIR = "staging"
INDEX_COLUMNS = ("name", "modify_seq", "source", "label", "kind", "length", "group")
DTYPE = np.float32

# Column of MDFeatures.residues that holds each stored MD residue channel (same name otherwise).
_MD_COLUMN_OF_CHANNEL = {"rmsf_nor": "rmsf"}  # stored raw, divided by its maximum when loaded

STORED_CHANNELS: dict[Source, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "md": (MD_RESIDUE_CHANNELS, MD_PAIR_CHANNELS),
    "nma": (NMA_RESIDUE_CHANNELS, NMA_PAIR_CHANNELS),
}


def res_key(name: str) -> str:
    return f"{name}_res_feature"


def pair_key(name: str) -> str:
    return f"{name}_pair_feature"


@dataclass
class ProteinRecord:
    """One protein in stored layout."""

    name: str
    sequence: str  # L one-letter codes (the published ``modify_seq``)
    source: str  # e.g. ATLAS, IDRome, proteinflow_pdb
    kind: Source  # "md" or "nma"
    res: np.ndarray  # (T, C_res) float32, T = L + 2
    pair: np.ndarray  # (T, T, C_pair) float32
    label: str = ""  # "train", "test" or "" (not split yet)

    @property
    def length(self) -> int:
        return len(self.sequence)

    def index_row(self) -> dict[str, object]:
        return {
            "name": self.name,
            "modify_seq": self.sequence,
            "source": self.source,
            "label": self.label,
            "kind": self.kind,
            "length": self.length,
            "group": group_of_source(self.source).name,
        }


# ----------------------------------------------------------------------------- encoding


def _token_aligned(values: np.ndarray) -> np.ndarray:
    """Pad residue axes with one -1 row before and after; NaN/inf become -1.

    ``values`` (L, C) -> (L+2, C) or (L, L, C) -> (L+2, L+2, C), float32.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    out = np.full((n + 2,) * (values.ndim - 1) + values.shape[-1:], MISSING, dtype=DTYPE)
    inner = (slice(1, n + 1),) * (values.ndim - 1)
    out[inner] = np.where(np.isfinite(values), values, MISSING)
    return out


def encode_md(residues: pd.DataFrame, pair: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stored MD arrays from per-residue columns and per-pair matrices.

    Parameters
    ----------
    residues : DataFrame, one row per residue (L rows) with the MD feature columns
        (``sasa_mean, sasa_std, rmsf, ss_B..ss_loop, chi_0.., phi_0.., psi_0..``); NaN = undefined.
    pair : dict of (L, L) arrays keyed ``vdw .. ts`` (mean contacts per frame) and ``corr``.

    Returns
    -------
    res : (L+2, 47) float32; pair : (L+2, L+2, 10) float32, interactions cube-rooted.
    """
    columns = [_MD_COLUMN_OF_CHANNEL.get(c, c) for c in MD_RESIDUE_CHANNELS]
    missing = [c for c in columns if c not in residues.columns]
    if missing:
        raise SeqDanceError(f"MD residue features lack columns: {', '.join(missing)}")
    res = residues[columns].to_numpy(dtype=np.float64)  # (L, 47)
    n = len(res)
    absent = [c for c in MD_PAIR_CHANNELS if c not in pair]
    if absent:
        raise SeqDanceError(f"MD pair features lack channels: {', '.join(absent)}")
    stacked = np.empty((n, n, len(MD_PAIR_CHANNELS)))  # (L, L, 10)
    for k, channel in enumerate(MD_PAIR_CHANNELS):
        matrix = np.asarray(pair[channel], dtype=np.float64)
        if matrix.shape != (n, n):
            raise SeqDanceError(
                f"MD pair channel {channel} has shape {matrix.shape}, expected {(n, n)}"
            )
        stacked[..., k] = np.cbrt(matrix) if channel in CUBE_ROOT_CHANNELS else matrix
    return _token_aligned(res), _token_aligned(stacked)


def encode_nma(gnm_msf: np.ndarray, anm_cor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stored NMA arrays: ``gnm_msf`` (3, L) -> (L+2, 3); ``anm_cor`` (3, L, L) -> (L+2, L+2, 3)."""
    gnm_msf = np.asarray(gnm_msf)
    anm_cor = np.asarray(anm_cor)
    return _token_aligned(gnm_msf.T), _token_aligned(np.moveaxis(anm_cor, 0, -1))


def kind_of_widths(res_width: int, pair_width: int) -> Source | None:
    """Which data kind stores arrays of these channel widths (None if neither)."""
    for kind, (res_channels, pair_channels) in STORED_CHANNELS.items():
        if (res_width, pair_width) == (len(res_channels), len(pair_channels)):
            return kind
    return None


# ----------------------------------------------------------------------------- staging


def staging_path(out_dir: str | os.PathLike, name: str) -> Path:
    return Path(out_dir) / STAGING_DIR / f"{name}.npz"


def write_staged(record: ProteinRecord, path: str | os.PathLike) -> Path:
    """Write one protein's arrays and metadata to a small ``.npz`` atomically (uncompressed)."""
    save_npz(
        path,
        compressed=False,
        res=record.res,
        pair=record.pair,
        name=np.array(record.name),
        sequence=np.array(record.sequence),
        source=np.array(record.source),
        kind=np.array(record.kind),
        label=np.array(record.label),
    )
    return Path(path)


def read_staged(path: str | os.PathLike) -> ProteinRecord:
    """Read a staged protein; :class:`InputFileError` if the file is unreadable or incomplete."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return ProteinRecord(
                name=str(data["name"]),
                sequence=str(data["sequence"]),
                source=str(data["source"]),
                kind=str(data["kind"]),  # type: ignore[arg-type]
                res=data["res"],
                pair=data["pair"],
                label=str(data["label"]),
            )
    except Exception as exc:  # noqa: BLE001 - any damage means "not staged"
        raise InputFileError(f"{path}: unreadable staged protein ({exc})") from None


# ----------------------------------------------------------------------------- HDF5 + index


def write_record(h5, record: ProteinRecord) -> None:
    """Add one protein's two datasets (and its attributes) to an open, writable HDF5 file."""
    res = h5.create_dataset(res_key(record.name), data=np.asarray(record.res, dtype=DTYPE))
    h5.create_dataset(pair_key(record.name), data=np.asarray(record.pair, dtype=DTYPE))
    res.attrs["kind"] = record.kind
    res.attrs["source"] = record.source
    res.attrs["sequence"] = record.sequence


def stored_names(h5) -> list[str]:
    """Names of proteins that have both datasets in an open HDF5 file, in file order."""
    keys = set(h5.keys())
    suffix = "_res_feature"
    return [
        k[: -len(suffix)]
        for k in h5.keys()
        if k.endswith(suffix) and pair_key(k[: -len(suffix)]) in keys
    ]


def merge_into(
    features_path: str | os.PathLike, records: Iterable[ProteinRecord], existing: bool = True
) -> None:
    """Write ``features_path`` = its current proteins + ``records``, via a temporary file + rename.

    ``records`` may be a generator: one protein is held in memory at a time.

    The current file is never modified: its datasets are copied into the new file, so a
    build killed at any moment leaves either the old or the new file, never a half-written one.
    """
    import h5py

    features_path = Path(features_path)
    with h5_write_errors(features_path), h5_output(features_path) as dst:
        if existing and features_path.exists():
            with h5py.File(features_path, "r") as src:
                for key in src.keys():
                    src.copy(src[key], dst, name=key)
        for record in records:
            write_record(dst, record)


def write_index(path: str | os.PathLike, index: pd.DataFrame) -> None:
    """Write the index CSV atomically (our columns first, extra columns kept after them)."""
    ordered = [c for c in INDEX_COLUMNS if c in index.columns]
    ordered += [c for c in index.columns if c not in ordered]
    with atomic_path(path) as tmp:
        index[ordered].to_csv(tmp, index=False)


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """Read an index CSV (ours or the authors'); labels and strings stay strings, blanks are ''."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such index file")
    try:
        index = pd.read_csv(path, dtype={"name": str, "label": str}, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"{path}: not a readable CSV ({exc})") from None
    if "name" not in index.columns:
        raise InputFileError(f"{path}: index has no 'name' column")
    if "modify_seq" not in index.columns and "sequence" in index.columns:
        index = index.rename(columns={"sequence": "modify_seq"})
    return index


def record_from_h5(h5, name: str) -> ProteinRecord:
    """Read one protein back from an open HDF5 file (kind from attributes or channel widths)."""
    res_ds, pair_ds = h5[res_key(name)], h5[pair_key(name)]
    kind = res_ds.attrs.get("kind") or kind_of_widths(res_ds.shape[-1], pair_ds.shape[-1]) or ""
    return ProteinRecord(
        name=name,
        sequence=str(res_ds.attrs.get("sequence", "")),
        source=str(res_ds.attrs.get("source", "")),
        kind=str(kind),  # type: ignore[arg-type]
        res=res_ds[()],
        pair=pair_ds[()],
    )


@contextlib.contextmanager
def h5_write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn HDF5's write failures into an ``OSError`` that names ``path`` (one CLI line).

    h5py reports a full disk as ``RuntimeError: ... errno = 28 ...`` (dozens of lines), or an
    ``OSError`` without a file name.
    """
    try:
        yield
    except (RuntimeError, OSError) as exc:
        text = " ".join(str(exc).split())
        code = getattr(exc, "errno", None)
        match = re.search(r"errno = (\d+)", text)
        if code is None and match:
            code = int(match.group(1))
        if code is None and "No space left" in text:
            code = errno.ENOSPC
        if code is None or (isinstance(exc, OSError) and exc.filename):
            raise
        raise OSError(code, os.strerror(code), str(path)) from None


def open_h5(path: str | os.PathLike):
    """Open an HDF5 file for reading; a missing, truncated or damaged one is named in one line."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such dataset file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:  # "truncated file: eof = ...", "file signature not found"
        reason = " ".join(str(exc).split())
        reason = reason.split("(", 1)[1].rstrip(")") if "(" in reason else reason
        raise InputFileError(f"{path}: not a readable HDF5 file ({reason})") from None


def dataset_paths(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(features.h5, index.csv)`` of a dataset folder, or of a ``.h5`` file (index beside it)."""
    root = Path(root)
    if root.suffix in (".h5", ".hdf5"):
        return root, root.with_name(INDEX_FILE)
    return root / FEATURES_FILE, root / INDEX_FILE


def merge_files(parts: list[str | os.PathLike], out: str | os.PathLike) -> list[str]:
    """Merge HDF5 files of the same layout (e.g. the three published parts) into ``out``.

    Written through a temporary file and a rename; returns the merged protein names. A name
    stored in two parts is an error (:class:`SeqDanceError`) and nothing is written.
    """
    import h5py

    owner: dict[str, Path] = {}
    for part in map(Path, parts):
        if not part.is_file():
            raise InputFileError(f"{part}: no such file")
        try:
            with h5py.File(part, "r") as h5:
                keys = list(h5.keys())
        except OSError as exc:
            raise InputFileError(f"{part}: not a readable HDF5 file ({exc})") from None
        for key in keys:
            if key in owner:
                raise SeqDanceError(f"{key} is in both {owner[key]} and {part}")
            owner[key] = part
    with h5_write_errors(out), h5_output(out) as dst:
        for part in map(Path, parts):
            with h5py.File(part, "r") as src:
                for key in src.keys():
                    src.copy(src[key], dst, name=key)
        names = stored_names(dst)
    return names
