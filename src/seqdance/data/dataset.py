"""Read a built dataset for training: a torch ``Dataset``, cropping, collate, per-group loaders.

Each item holds the protein's ESM tokens and its targets laid out as the model's outputs:
``res`` (T, 50) and ``pair`` (T, T, 13), with -1 in every channel that its data source does
not measure (NMA channels of an MD protein and vice versa), on special tokens and on padding.

Load-time transforms (as the authors' loader): RMSF divided by its per-protein maximum (before
cropping). Targets are not clipped (the authors never clip: SASA means reach 2.1 nm^2, cube-rooted
vdw counts 2.04 in their own 3tvj_I sample); ``clamp`` clips them to [-clamp, clamp] as an option
(-1 markers are unaffected).
Proteins longer than ``crop_size`` tokens are cropped to a window: at a random start for
training, at the N-terminus for evaluation. Only the window of the pair array is read from disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from seqdance.alphabet import PAD_ID, tokenize
from seqdance.data.store import (
    STORED_CHANNELS,
    dataset_paths,
    kind_of_widths,
    open_h5,
    pair_key,
    read_index,
    res_key,
)
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import (
    DATA_GROUPS,
    MISSING,
    N_PAIR_OUTPUTS,
    N_RESIDUE_OUTPUTS,
    DataGroup,
    find_group,
    group_of_source,
    output_slice,
)

RMSF_CHANNEL = STORED_CHANNELS["md"][0].index("rmsf_nor")  # stored raw, normalised on load


@dataclass(frozen=True)
class DatasetConfig:
    """How items are read."""

    crop_size: int | None = 256  # tokens (special tokens included); None: never crop
    random_crop: bool = True  # False: N-terminal window (evaluation)
    clamp: float | None = None  # clamp targets to [-clamp, clamp]; None: never (the authors)


def normalise_rmsf(res: np.ndarray) -> np.ndarray:
    """Divide the stored RMSF column of MD residue features (T, 47) by its maximum, in place.

    Rows with RMSF -1 (special tokens, missing residues) stay -1.
    """
    rmsf = res[:, RMSF_CHANNEL]  # (T,)
    valid = rmsf != MISSING
    if valid.any():
        top = rmsf[valid].max()
        if top > 0:
            rmsf[valid] /= top
    return res


def crop_start(n_tokens: int, crop_size: int | None, random: bool, generator=None) -> int:
    """First token of the window: 0 when no crop is needed or for evaluation."""
    if crop_size is None or n_tokens <= crop_size or not random:
        return 0
    return int(torch.randint(0, n_tokens - crop_size + 1, (1,), generator=generator))


def to_targets(res: np.ndarray, pair: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Place stored channels into the model's output layout.

    ``res`` (T, C_res), ``pair`` (T, T, C_pair) -> (T, 50), (T, T, 13) float32, -1 elsewhere.
    """
    t = res.shape[0]
    res_out = np.full((t, N_RESIDUE_OUTPUTS), MISSING, dtype=np.float32)  # (T, 50)
    pair_out = np.full((t, t, N_PAIR_OUTPUTS), MISSING, dtype=np.float32)  # (T, T, 13)
    res_out[:, output_slice("residue", kind)] = res
    pair_out[:, :, output_slice("pair", kind)] = pair
    return res_out, pair_out


class ProteinDataset(Dataset):
    """Proteins of a built dataset (``DIR`` with ``features.h5`` + ``index.csv``).

    Parameters
    ----------
    root : dataset folder, or a ``.h5`` file with ``index.csv`` beside it.
    label : keep only rows with this label (``train``/``test``); None keeps all.
    groups : keep only these data groups (names of the group table).
    config : crop size, crop mode and clamp.
    index : an index table to use instead of ``index.csv``.
    group_table : the data groups sources belong to; default :data:`seqdance.schema.DATA_GROUPS`
        (every published source; an unknown source is an error). With a table given, proteins
        of sources it does not list are left out (e.g. mdCATH under the authors' training
        groups, :data:`seqdance.schema.TRAINING_GROUPS`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        label: str | None = None,
        groups: Sequence[str] | None = None,
        config: DatasetConfig | None = None,
        index=None,
        group_table: Sequence[DataGroup] | None = None,
    ) -> None:
        self.features_path, index_path = dataset_paths(root)
        if not self.features_path.is_file():
            raise InputFileError(f"{self.features_path}: no such dataset file")
        index = read_index(index_path) if index is None else index.copy()
        for column in ("modify_seq", "source"):
            if column not in index.columns:
                raise InputFileError(f"{index_path}: index has no {column!r} column")
        if label is not None:
            if "label" not in index.columns:
                raise InputFileError(f"{index_path}: index has no 'label' column (run split)")
            index = index[index["label"] == label]
        self.left_out: dict[str, int] = {}
        if group_table is None:
            self.group_table: tuple[DataGroup, ...] = DATA_GROUPS
            index = index.assign(group=[group_of_source(str(s)).name for s in index["source"]])
        else:
            self.group_table = tuple(group_table)
            found = [find_group(str(s), self.group_table) for s in index["source"]]
            index = index.assign(group=[g.name if g is not None else None for g in found])
            outside = index["group"].isna()
            # proteins whose source is in no group of the table: {source: count}
            self.left_out = index.loc[outside, "source"].astype(str).value_counts().to_dict()
            index = index[~outside]
        if groups is not None:
            index = index[index["group"].isin(list(groups))]
        self.index = index.reset_index(drop=True)
        self.config = config or DatasetConfig()
        self.names: list[str] = list(self.index["name"])
        self.groups: list[str] = list(self.index["group"])
        self.sequences: list[str] = [str(s) for s in self.index["modify_seq"]]
        self._tokens = [tokenize(s, n) for n, s in zip(self.names, self.sequences, strict=True)]
        self._h5 = None
        self._pid: int | None = None
        self._kinds = self._read_kinds()

    # h5py handles cannot cross processes: each DataLoader worker opens its own.
    def _file(self):
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = open_h5(self.features_path)
            self._pid = os.getpid()
        return self._h5

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None
        return state

    def _read_kinds(self) -> list[str]:
        h5 = self._file()
        kinds = []
        for name, seq in zip(self.names, self.sequences, strict=True):
            if res_key(name) not in h5 or pair_key(name) not in h5:
                raise InputFileError(f"{self.features_path}: no datasets for protein {name!r}")
            res_ds, pair_ds = h5[res_key(name)], h5[pair_key(name)]
            kind = kind_of_widths(res_ds.shape[-1], pair_ds.shape[-1])
            if kind is None:
                raise InputFileError(
                    f"{name}: channel widths {res_ds.shape[-1]}/{pair_ds.shape[-1]} unknown"
                )
            if res_ds.shape[0] != len(seq) + 2:
                raise InputFileError(
                    f"{name}: {res_ds.shape[0]} feature rows for {len(seq)} residues (expected L+2)"
                )
            kinds.append(kind)
        return kinds

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        name, kind = self.names[i], self._kinds[i]
        h5 = self._file()
        res = h5[res_key(name)][()]  # (T, C_res), the whole protein (small)
        if kind == "md":
            normalise_rmsf(res)
        t = res.shape[0]
        start = crop_start(t, self.config.crop_size, self.config.random_crop)
        stop = t if self.config.crop_size is None else min(t, start + self.config.crop_size)
        res = res[start:stop]
        pair = h5[pair_key(name)][start:stop, start:stop, :]  # (W, W, C_pair): window only
        if self.config.clamp is not None:
            c = self.config.clamp
            np.clip(res, -c, c, out=res)
            np.clip(pair, -c, c, out=pair)
        res_t, pair_t = to_targets(res, pair, kind)
        tokens = self._tokens[i][start:stop]  # (W,)
        return {
            "name": name,
            "group": self.groups[i],
            "start": start,
            "input_ids": torch.from_numpy(tokens),
            "res": torch.from_numpy(res_t),
            "pair": torch.from_numpy(pair_t),
        }


def collate(items: list[dict]) -> dict:
    """Pad a list of items to one batch.

    Returns ``input_ids`` (B, T) padded with ``<pad>``, ``attention_mask`` (B, T) 1 on real
    tokens, ``res`` (B, T, 50) and ``pair`` (B, T, T, 13) padded with -1, and the lists
    ``names``, ``groups``, ``starts``.
    """
    width = max(len(it["input_ids"]) for it in items)
    b = len(items)
    input_ids = torch.full((b, width), PAD_ID, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((b, width), dtype=torch.long)  # (B, T)
    res = torch.full((b, width, N_RESIDUE_OUTPUTS), MISSING)  # (B, T, 50)
    pair = torch.full((b, width, width, N_PAIR_OUTPUTS), MISSING)  # (B, T, T, 13)
    for k, it in enumerate(items):
        n = len(it["input_ids"])
        input_ids[k, :n] = it["input_ids"]
        attention_mask[k, :n] = 1
        res[k, :n] = it["res"]
        pair[k, :n, :n] = it["pair"]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "res": res,
        "pair": pair,
        "names": [it["name"] for it in items],
        "groups": [it["group"] for it in items],
        "starts": [it["start"] for it in items],
    }


def group_loaders(
    dataset: ProteinDataset,
    batch_size: int,
    num_workers: int = 0,
    seed: int = 0,
    samples_per_epoch: int = 10**9,
) -> dict[str, DataLoader]:
    """One loader per data group present in ``dataset``, each drawing with replacement.

    The authors draw one batch from each group per update, so that the groups weigh equally
    whatever their sizes; iterate them with :func:`iterate_groups`.
    """
    loaders = {}
    for offset, group in enumerate(g.name for g in dataset.group_table):
        indices = [i for i, g in enumerate(dataset.groups) if g == group]
        if not indices:
            continue
        generator = torch.Generator().manual_seed(seed + offset)
        subset = Subset(dataset, indices)
        sampler = RandomSampler(
            subset, replacement=True, num_samples=samples_per_epoch, generator=generator
        )
        loaders[group] = DataLoader(
            subset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate,
            persistent_workers=num_workers > 0,
            generator=generator,
        )
    if not loaders:
        raise SeqDanceError("the dataset has no proteins to load")
    return loaders


def iterate_groups(loaders: dict[str, DataLoader]) -> Iterator[dict[str, dict]]:
    """Endless stream of updates: each one a dict ``group -> batch``, one batch per group."""
    iterators = {g: iter(dl) for g, dl in loaders.items()}
    while True:
        batches = {}
        for group, it in iterators.items():
            try:
                batches[group] = next(it)
            except StopIteration:
                iterators[group] = iter(loaders[group])
                batches[group] = next(iterators[group])
        yield batches
