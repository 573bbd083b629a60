"""The index of a merged dataset: one row per protein of the merged HDF5 file.

``seqdance dataset merge`` joins feature files (our parts, or the authors' published
parts). So that the result is a dataset (``dataset check``, ``train``), it also writes the
``index.csv`` beside it. Each part's rows come from, in this order:

1. the index the user gives (``--index``, e.g. the authors' published index);
2. the index beside the part (``PART_DIR/index.csv``, as ``dataset build`` writes it);
3. the attributes our builder stores with every protein (``sequence``, ``source``,
   ``kind``); the label is then blank.

A protein with none of these is an error that names the part: nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from seqdance.data.store import (
    INDEX_COLUMNS,
    dataset_paths,
    open_h5,
    read_index,
    res_key,
    stored_names,
)
from seqdance.errors import InputFileError


def _attribute_rows(h5, names: list[str]) -> list[dict[str, object]] | None:
    """Index rows from our builder's attributes, or None if a protein lacks them."""
    rows = []
    for name in names:
        attrs = h5[res_key(name)].attrs
        if "sequence" not in attrs:
            return None
        sequence = str(attrs["sequence"])
        rows.append(
            {
                "name": name,
                "modify_seq": sequence,
                "source": str(attrs.get("source", "")),
                "label": "",
                "kind": str(attrs.get("kind", "")),
                "length": len(sequence),
            }
        )
    return rows


def _rows_from(index: pd.DataFrame, names: list[str], where: str) -> pd.DataFrame:
    by_name = index.drop_duplicates("name").set_index("name", drop=False)
    missing = [n for n in names if n not in by_name.index]
    if missing:
        raise InputFileError(
            f"{where}: no row for {len(missing)} protein(s) of the merged files, e.g. {missing[0]}"
        )
    return by_name.loc[names].reset_index(drop=True)


def merged_index(
    parts: list[str | os.PathLike], index: str | os.PathLike | None = None
) -> pd.DataFrame:
    """The index rows of the proteins of ``parts``, in merged-file order.

    Parameters
    ----------
    parts : list of path
        HDF5 feature files, merged in this order.
    index : path, optional
        An index CSV with a row for every protein of the parts (e.g. the authors' one).

    Raises
    ------
    InputFileError
        When a protein has no row in any source (named with its part).
    """
    given = read_index(index) if index is not None else None
    frames: list[pd.DataFrame] = []
    for part in map(Path, parts):
        with open_h5(part) as h5:
            names = stored_names(h5)
            if given is not None:
                frames.append(_rows_from(given, names, str(index)))
                continue
            beside = dataset_paths(part)[1]
            if beside.is_file():
                frames.append(_rows_from(read_index(beside), names, str(beside)))
                continue
            rows = _attribute_rows(h5, names)
        if rows is None:
            raise InputFileError(
                f"{part}: no index.csv beside it and its proteins carry no 'sequence' "
                "attribute; give the index with --index (e.g. the published index file)"
            )
        frames.append(pd.DataFrame(rows, columns=list(INDEX_COLUMNS[:-1])))
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["name"])
    return merged
