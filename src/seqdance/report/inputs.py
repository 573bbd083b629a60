"""Read the outputs of ``predict``, ``scan`` and ``explain`` for a report, and check that they
describe one protein in one residue numbering.

Every check runs before anything is written: a missing file, a table of another sequence or a
numbering that disagrees ends as one :class:`~seqdance.errors.SeqDanceError` line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.mutations import AMINO_ACIDS
from seqdance.inference.scan import MANIFEST_NAME, PARTS_DIR, SCAN_NAME
from seqdance.inference.store import PairMaps
from seqdance.inference.store_file import PredictionStore, is_store_path
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import damaged_file_errors
from seqdance.utils.tables import separator_of

RESIDUE_SUFFIX = ".residue.csv"
LEGACY_RESIDUE_SUFFIX = ".residue.tsv"  # written by versions before the one-table-format rule
PAIR_SUFFIX = ".pair.npz"
PAIR_STORE_SUFFIX = ".pair.h5"
EXPLAIN_NPZ = "explain.npz"
EXPLAIN_RESIDUES = "explain_residues.csv"
LEGACY_EXPLAIN_RESIDUES = "explain_residues.tsv"


@dataclass
class Prediction:
    """One record of ``seqdance predict``: L residues.

    residue: (L, 50) float32 by :data:`~seqdance.schema.RESIDUE_CHANNELS`;
    pair: (L, L, 13) float32 by :data:`~seqdance.schema.PAIR_CHANNELS`, or None; from an
    HDF5 pair store (``{id}.pair.h5``) a lazy :class:`~seqdance.inference.store.PairMaps`
    (``pair[..., k]`` reads channel k only).
    """

    name: str
    sequence: str
    residue: np.ndarray
    pair: np.ndarray | PairMaps | None


@dataclass
class ScanData:
    """A ``seqdance scan`` table (one row per substitution) and its manifest (or None)."""

    table: object  # DataFrame: position, wt, mt, mutant, score columns
    score_columns: list[str]
    offset: int | None  # from the manifest
    channels: list[str]  # scored channels (manifest), empty when unknown
    fingerprint: str | None  # the model's parameter hash (manifest)


@dataclass
class ExplainData:
    """``seqdance explain`` arrays, residue rows only (``<cls>``/``<eos>`` dropped).

    rel_residue: (M, L, Cr) relative changes; delta_pair: (M, L, L, Cp) mutant - wild type.
    """

    mutants: tuple[str, ...]
    offset: int
    residue_channels: tuple[str, ...]
    pair_channels: tuple[str, ...]
    rel_residue: np.ndarray | None
    delta_pair: np.ndarray | None
    wild_type: str


def _need_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputFileError(f"{what}: file not found: {path}")
    return path


def _numbers(table, columns: list[str], path: Path) -> np.ndarray:
    """``table[columns]`` as float32 (N, C); a blank or non-numeric cell (a truncated last
    line, an edited table) is an error naming its line and column."""
    import pandas as pd

    out = np.empty((len(table), len(columns)), dtype=np.float32)
    for k, column in enumerate(columns):
        raw = table[column].astype(str).str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & ~raw.str.lower().isin(["nan"]).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputFileError(
                f"{path}: line {i + 2}, column {column}: {raw.iloc[i]!r} is not a number "
                "(a truncated or edited table?)"
            )
        out[:, k] = values
    return out


def read_prediction(path: str | os.PathLike, record: str | None = None) -> Prediction:
    """``{id}.residue.csv`` of ``seqdance predict`` and, when present, ``{id}.pair.npz`` (or the
    pair store ``{id}.pair.h5``) beside it; or one record of a one-file store (``-o OUT.h5``).

    Parameters
    ----------
    path : a ``.residue.csv`` file, or ``{id}`` / ``{id}.pair.npz`` of the same record; or
        a one-file store (``.h5``/``.hdf5``).
    record : the record id in a one-file store (may be left out when it holds one record).
    """
    import pandas as pd

    path = Path(path)
    if is_store_path(path) and not path.is_dir():
        return _store_record(path, record)
    if record is not None:
        raise SeqDanceError(
            f"--record picks a record of a one-file predict store (-o OUT.h5); {path} is not one"
        )
    stem = str(path)
    for suffix in (RESIDUE_SUFFIX, LEGACY_RESIDUE_SUFFIX, PAIR_SUFFIX, PAIR_STORE_SUFFIX):
        stem = stem.removesuffix(suffix)
    legacy = Path(stem + LEGACY_RESIDUE_SUFFIX)
    tsv = legacy if legacy.is_file() and not Path(stem + RESIDUE_SUFFIX).is_file() else None
    tsv = tsv or _need_file(Path(stem + RESIDUE_SUFFIX), "prediction")
    try:
        table = pd.read_csv(tsv, sep=separator_of(tsv), keep_default_na=False,
                            dtype={"residue": str})  # fmt: skip
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{tsv}: not a residue table of seqdance predict ({exc})") from exc
    expected = ["position", "residue", *RESIDUE_CHANNELS]
    if list(table.columns) != expected:
        raise InputFileError(
            f"{tsv}: not a residue table of seqdance predict (expected the columns "
            "position, residue, sasa_mean ... nma_res3)"
        )
    if table.empty or table["position"].tolist() != list(range(1, len(table) + 1)):
        raise InputFileError(f"{tsv}: positions must run 1, 2, ... (one row per residue)")
    sequence = "".join(table["residue"].tolist())
    residue = _numbers(table, list(RESIDUE_CHANNELS), tsv)  # (L, 50)
    pair = None
    npz = Path(stem + PAIR_SUFFIX)
    store = Path(stem + PAIR_STORE_SUFFIX)
    if store.is_file() and not npz.is_file():  # the HDF5 pair store: read lazily, by channel
        pair = PairMaps(store)
        if pair.length != len(sequence):
            raise SeqDanceError(
                f"{store}: pair maps are {pair.length} x {pair.length}, the prediction has "
                f"{len(sequence)} residues"
            )
    if npz.is_file():
        with damaged_file_errors(npz, "the pair outputs of seqdance predict"):
            with np.load(npz, allow_pickle=False) as data:
                missing = [c for c in PAIR_CHANNELS if c not in data.files]
                if missing:
                    raise InputFileError(f"{npz}: no pair output {', '.join(missing)}")
                pair = np.stack([data[c] for c in PAIR_CHANNELS], axis=-1).astype(np.float32)
        if pair.shape != (len(sequence), len(sequence), len(PAIR_CHANNELS)):
            raise SeqDanceError(
                f"{npz}: pair maps are {pair.shape[0]} x {pair.shape[1]}, the prediction has "
                f"{len(sequence)} residues"
            )
    name = Path(stem).name
    return Prediction(name, sequence, residue, pair)


def read_scan(path: str | os.PathLike) -> ScanData:
    """``scan.csv`` (a file, or the ``--out`` folder of ``seqdance scan``) and its manifest."""
    import pandas as pd

    path = Path(path)
    csv = path / SCAN_NAME if path.is_dir() else path
    _need_file(csv, "scan")
    try:
        table = pd.read_csv(csv, keep_default_na=False, dtype={"wt": str, "mt": str})
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{csv}: not a scan table ({exc})") from exc
    head = ["position", "wt", "mt", "mutant"]
    if list(table.columns[:4]) != head or len(table.columns) < 5 or table.empty:
        raise InputFileError(f"{csv}: not a scan table of seqdance scan (columns {head} + scores)")
    scores = list(table.columns[4:])
    values = _numbers(table, scores, csv)  # (N, S); a truncated or damaged row is named
    for k, column in enumerate(scores):
        table[column] = values[:, k]
    counts = table.groupby("position", sort=False).size()
    wild = table.groupby("position", sort=False)["wt"].first()
    expected = np.where(wild.isin(list(AMINO_ACIDS)), 19, 20)  # X, B, ...: all 20 letters
    if (counts.to_numpy() != expected).any():
        k = int(np.argmax(counts.to_numpy() != expected))
        raise InputFileError(
            f"{csv}: position {counts.index[k]} has {counts.iloc[k]} rows, a scan has "
            f"{expected[k]} there (a truncated or edited table)"
        )
    manifest_path = csv.parent / PARTS_DIR / MANIFEST_NAME
    offset, channels, fingerprint = None, [], None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            offset = int(manifest["offset"])
            channels = list(manifest["channels"])
            fingerprint = str(manifest["model"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{manifest_path}: unreadable scan manifest ({exc})") from exc
    return ScanData(table, scores, offset, channels, fingerprint)


def read_explain(path: str | os.PathLike) -> ExplainData:
    """``explain.npz`` and the wild type of ``explain_residues.csv`` (a folder or the npz)."""
    import pandas as pd

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    npz = _need_file(folder / EXPLAIN_NPZ if path.is_dir() else path, "explain")
    legacy = folder / LEGACY_EXPLAIN_RESIDUES
    tsv = legacy if legacy.is_file() and not (folder / EXPLAIN_RESIDUES).is_file() else None
    tsv = tsv or _need_file(folder / EXPLAIN_RESIDUES, "explain")
    with damaged_file_errors(npz, "an explain.npz of seqdance explain"):
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    if "mutants" not in arrays or "rows" not in arrays:
        raise InputFileError(f"{npz}: not an explain.npz of seqdance explain")
    labels = [str(x) for x in arrays["rows"]]
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("<")]
    numbers = [int(labels[i]) for i in keep]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise InputFileError(f"{npz}: residue rows are not consecutive numbers")
    rows = np.asarray(keep)
    with damaged_file_errors(tsv, "an explain_residues.csv of seqdance explain"):
        first = pd.read_csv(tsv, sep=separator_of(tsv), usecols=["mutant", "position", "wt"],
                            dtype=str, keep_default_na=False)  # fmt: skip
        if first.empty:
            raise InputFileError(f"{tsv}: no rows")
    first = first[(first["mutant"] == first["mutant"].iloc[0]) & (first["wt"] != "")]
    letters = dict(zip(first["position"], first["wt"], strict=False))
    missing = [n for n in numbers if str(n) not in letters]
    if missing:
        raise InputFileError(
            f"{tsv}: no wild-type letter for residue {missing[0]} (a truncated or edited table)"
        )
    wild_type = "".join(letters[str(n)] for n in numbers)
    rel = arrays.get("rel_residue")
    delta = None
    if "mt_pair" in arrays and "wt_pair" in arrays:
        delta = arrays["mt_pair"] - arrays["wt_pair"][None]  # (M, T, T, Cp)
        delta = delta[:, rows][:, :, rows]
    return ExplainData(
        mutants=tuple(str(m) for m in arrays["mutants"]),
        offset=numbers[0],
        residue_channels=tuple(str(c) for c in arrays.get("residue_channels", [])),
        pair_channels=tuple(str(c) for c in arrays.get("pair_channels", [])),
        rel_residue=rel[:, rows] if rel is not None else None,
        delta_pair=delta,
        wild_type=wild_type,
    )


def check_numbering(
    prediction: Prediction,
    scan: ScanData | None,
    explain: ExplainData | None,
    offset: int | None,
) -> int:
    """The number of the first residue, agreed by every input; checks their wild types.

    ``offset`` (the user's) wins over none; a scan manifest or an explanation that numbers
    residues otherwise is refused, never shifted.
    """
    seq = prediction.sequence
    claims: list[tuple[str, int]] = []
    if offset is not None:
        claims.append(("--offset", offset))
    if scan is not None and scan.offset is not None:
        claims.append(("the scan (manifest)", scan.offset))
    if explain is not None:
        claims.append(("the explanation", explain.offset))
    first = claims[0][1] if claims else 1
    for who, value in claims:
        if value != first:
            raise SeqDanceError(
                f"residue numbering differs: {claims[0][0]} starts at {first}, {who} at {value}"
            )
    if explain is not None:
        if len(explain.wild_type) != len(seq) or explain.wild_type != seq:
            raise SeqDanceError(
                f"the explanation's wild type ({len(explain.wild_type)} residues) is not the "
                f"predicted sequence ({len(seq)} residues)"
            )
    if scan is not None:
        table = scan.table
        for pos, wt in zip(table["position"], table["wt"], strict=True):
            i = int(pos) - first
            if not 0 <= i < len(seq) or seq[i] != wt:
                have = seq[i] if 0 <= i < len(seq) else "nothing"
                raise SeqDanceError(
                    f"the scan's wild type has {wt} at position {pos}, the prediction has "
                    f"{have} there (numbering from {first}; give --offset if it differs)"
                )
    return first


def _store_record(path: Path, record: str | None) -> Prediction:
    """One record of ``predict``'s one-file store: its residues, and its pair maps read
    lazily (channels not written read as NaN)."""
    store = PredictionStore(path)
    if record is None:
        if len(store) != 1:
            raise SeqDanceError(
                f"{path} holds {len(store)} records: give --record ID "
                f"(e.g. --record {store.ids[0]})"
            )
        record = store.ids[0]
    if record not in store:
        raise SeqDanceError(f"{path}: no record {record!r} (--record)")
    row = store.row(record)  # named by its id: the page title (a folder's: the stem)
    return Prediction(record, store.sequence(row), store.residue(row), store.pairs(row))
