"""Predictions with names: per-residue tables whose columns are the schema's channels (with
units), and pair maps addressed by name, from the model or from ``predict``'s output folder.

    >>> result = predict_labelled(model, {"ubq": "MQIFVKTLTG..."})
    >>> result["ubq"].residues["rmsf_nor"]          # pandas Series, index = position (1-based)
    >>> result["ubq"].pairs["corr"]                 # (L, L) float32
    >>> kept = open_predictions("predictions/")     # pair maps read lazily from the files
    >>> kept = open_predictions("predictions.h5")   # or from predict's one-file store
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.errors import InputFileError
from seqdance.inference.predict import iter_outputs
from seqdance.inference.store import INDEX_NAME, PAIR_H5, PAIR_NPZ, PairMaps
from seqdance.inference.store_file import PredictionStore, is_store_path
from seqdance.schema import FEATURES, PAIR_CHANNELS, RESIDUE_CHANNELS

# What each output measures (the training data's units; docs/model.md).
_UNITS = {
    "sasa_mean": "nm²",
    "sasa_std": "nm²",
    "rmsf_nor": "fraction of the protein's largest RMSF",
    "ss": "fraction of frames",
    "chi": "fraction of frames",
    "phi": "fraction of frames",
    "psi": "fraction of frames",
    "nma_res": "relative GNM fluctuation in the band",
    "corr": "correlation (-1..1)",
    "nma_pair": "ANM correlation in the band (-1..1)",
}
INTERACTION_UNIT = "contacts per frame (cube root, as trained)"
UNITS: dict[str, str] = {
    c: _UNITS.get(f.name, INTERACTION_UNIT) for f in FEATURES for c in f.channels
}


@dataclass(frozen=True)
class LabelledPairs:
    """Pair maps by name: ``pairs["corr"]`` (L, L) float32; ``names``, ``units``, ``shape``.

    ``source`` is a dense (L, L, 13) array or a lazy :class:`PairMaps` (read on access).
    """

    source: object
    names: tuple[str, ...]

    @property
    def units(self) -> dict[str, str]:
        return {name: UNITS[name] for name in self.names}

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)  # type: ignore[attr-defined]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in PAIR_CHANNELS:
            raise KeyError(f"{name!r} is not a pair output; one of {', '.join(PAIR_CHANNELS)}")
        if isinstance(self.source, PairMaps):
            return self.source[name]
        return self.source[..., PAIR_CHANNELS.index(name)]  # type: ignore[index]

    def tile(self, name: str, rows: slice, cols: slice) -> np.ndarray:
        """Part of one map (from a pair store, only the chunks it touches are read)."""
        if isinstance(self.source, PairMaps):
            return self.source.tile(name, rows, cols)
        return self[name][rows, cols]


@dataclass(frozen=True)
class LabelledPrediction:
    """One record: ``residues`` (DataFrame, index ``position`` 1-based, one column per
    residue channel, ``attrs["units"]``), ``pairs`` (:class:`LabelledPairs` or None)."""

    id: str
    sequence: str
    residues: pd.DataFrame
    pairs: LabelledPairs | None


def residue_frame(residue: np.ndarray) -> pd.DataFrame:
    """(L, 50) residue outputs as a DataFrame with the schema's names and units."""
    frame = pd.DataFrame(
        residue, columns=list(RESIDUE_CHANNELS), index=pd.RangeIndex(1, len(residue) + 1)
    )
    frame.index.name = "position"
    frame.attrs["units"] = {c: UNITS[c] for c in RESIDUE_CHANNELS}
    return frame


def predict_labelled(
    model, sequences: Mapping[str, str] | Sequence[str], **options
) -> dict[str, LabelledPrediction]:
    """Predict ``sequences`` (id -> sequence, or a list: ids ``"1"``, ``"2"``, ...) and label
    the outputs; keyword options as :func:`seqdance.inference.predict.iter_outputs`."""
    if not isinstance(sequences, Mapping):
        sequences = {str(i): s for i, s in enumerate(sequences, start=1)}
    ids = list(sequences)
    results: dict[str, LabelledPrediction] = {}
    for index, out in iter_outputs(model, [sequences[i] for i in ids], **options):
        pairs = LabelledPairs(out.pair, PAIR_CHANNELS) if out.pair is not None else None
        results[ids[index]] = LabelledPrediction(
            ids[index], sequences[ids[index]], residue_frame(out.residue), pairs
        )
    return {i: results[i] for i in ids}


def open_predictions(folder: str | os.PathLike) -> dict[str, LabelledPrediction]:
    """The records of a ``seqdance predict`` output folder (by its ``index.csv``) or one-file
    store (``-o OUT.h5``), residue tables read now, pair maps (``.pair.h5`` or ``.pair.npz``,
    the store's groups) read lazily on access."""
    folder = Path(folder)
    if is_store_path(folder) and not folder.is_dir():
        return _open_store(folder)
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        raise InputFileError(f"{folder}: no {INDEX_NAME} (not an output folder of predict)")
    index = pd.read_csv(index_path, dtype=str, keep_default_na=False)
    results: dict[str, LabelledPrediction] = {}
    for rid, stem in zip(index["id"], index["stem"], strict=True):
        table = pd.read_csv(folder / f"{stem}.residue.csv", keep_default_na=False,
                            dtype={"residue": str})  # fmt: skip
        sequence = "".join(table["residue"])
        frame = residue_frame(table[list(RESIDUE_CHANNELS)].to_numpy(np.float32))
        pairs = None
        for suffix in (PAIR_H5, PAIR_NPZ):
            if (folder / f"{stem}{suffix}").is_file():
                maps = PairMaps(folder / f"{stem}{suffix}")
                pairs = LabelledPairs(maps, maps.names)
                break
        results[rid] = LabelledPrediction(rid, sequence, frame, pairs)
    return results


def _open_store(path: Path) -> dict[str, LabelledPrediction]:
    store = PredictionStore(path)
    results: dict[str, LabelledPrediction] = {}
    for row, rid in enumerate(store.ids):
        maps = store.pairs(row)
        pairs = LabelledPairs(maps, maps.names) if maps is not None else None
        results[rid] = LabelledPrediction(
            rid, store.sequence(row), residue_frame(store.residue(row)), pairs
        )
    return results
