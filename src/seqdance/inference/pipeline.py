"""The predict and embed pipelines behind ``seqdance predict`` and ``seqdance embed``.

    FASTA (every record checked first, then indexed) -> model on its device ->
    one shard of records at a time -> outputs per record -> files

:func:`load_on_device` is the CLI's one way to load ``--model`` on ``--device`` in
``--dtype`` (score, scan, explain and the analyses use it too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from seqdance.errors import SeqDanceError
from seqdance.inference import sharding
from seqdance.inference.bfactor import read_protein_chains
from seqdance.inference.fasta import FastaRecord
from seqdance.inference.fasta_index import index_fasta, record_lengths
from seqdance.inference.predict import DEFAULT_TOKEN_BUDGET
from seqdance.inference.sharded_records import (
    embed_in_shards,
    embed_sharded,
    predict_in_shards,
    predict_sharded,
    predict_to_store,
)
from seqdance.inference.store import parse_pairs
from seqdance.inference.store_file import is_store_path
from seqdance.inference.store_predict import PredictOutputs
from seqdance.model.quantize import quantize_int8
from seqdance.model.seqdance import SeqDanceModel, load_model
from seqdance.train.distributed import env_from_environment, pick_device
from seqdance.utils.io import check_output_file

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_on_device(
    spec: str, arch: str | None, device: str, dtype: str, int8: bool = False
) -> SeqDanceModel:
    """``load_model(spec)`` on ``device`` (``auto``, ``cpu``, ``cuda``: the one device picker
    of train and evaluate too) in ``dtype`` (``fp32``, ``bf16``, ``fp16``). Under ``torchrun``
    or ``--workers``, ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` (from the environment).
    ``int8``: the trunk's Linear layers dynamically quantized (CPU, fp32 only; ``--int8``,
    ``seqdance.model.quantize``)."""
    name = pick_device(device, env_from_environment())
    net = load_model(spec, arch=arch, device=name, dtype=DTYPES[dtype])
    return quantize_int8(net) if int8 else net


def predict_fasta(
    fasta: str | os.PathLike,
    spec: str,
    out: str | os.PathLike,
    *,
    arch: str | None = None,
    device: str = "auto",
    dtype: str = "fp32",
    plots: bool = False,
    figure_format: str = "png",
    attention: bool = False,
    pdb: str | os.PathLike | None = None,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    progress: bool = False,
    pairs: str = "all",
    pair_band: int | None = None,
    pair_format: str = "auto",
    pair_dtype: str = "float32",
    int8: bool = False,
) -> int | None:
    """Predict every record of ``fasta`` with the model ``spec``; returns the record count.

    Writes ``out/{stem}.residue.csv`` and the pair maps (``{stem}.pair.npz``, or the HDF5 pair
    store ``{stem}.pair.h5`` with ``window``/``pair_band``/``pair_format="h5"``; none with
    ``pairs="none"``; ``pairs`` also takes a comma-separated list of pair outputs); with
    ``attention`` ``{stem}.attention.npz``, with ``plots`` ``{stem}.profiles.{fmt}`` and
    ``{stem}.pairs.{fmt}`` (``figure_format``: png, svg or pdf), with ``pdb``
    ``{stem}.rmsf.pdb`` for each record whose sequence equals one of the structure's chains;
    and ``index.csv`` (record id -> stem, length, files). ``{stem}`` is the record id made
    safe and unique as a file name (:func:`seqdance.inference.store.safe_stems`). A record's
    files appear together or not at all. Every option is checked before the model loads.

    ``out`` ending in ``.h5`` or ``.hdf5``: one HDF5 store for every record instead
    (:mod:`seqdance.inference.store_file`: residues, pairs and attention maps by record, and
    a per-record index; not with ``plots`` or ``pdb``).

    Under ``torchrun`` or ``--workers`` (:func:`seqdance.inference.sharding.current`) the
    records are shared between the ranks (the same files); None on ranks other than 0.
    """
    one_file = is_store_path(out)
    if one_file and pdb is not None:
        raise SeqDanceError(
            "--pdb writes files per record, not into an HDF5 store; give an output folder "
            "for -o, or leave out --pdb"
        )
    records = index_fasta(fasta)  # every record checked before any work starts; read per shard
    pdb_records = records_in_structure(pdb, records) if pdb is not None else set()
    options = PredictOutputs(
        pairs=parse_pairs(pairs), pair_band=pair_band, pair_format=pair_format,
        pair_dtype=pair_dtype, window=window, attention=attention, plots=plots,
        figure_format=figure_format, token_budget=token_budget,
        pdb_records=frozenset(pdb_records), one_file=one_file,
    )  # fmt: skip
    options.check(record_lengths(records))
    if one_file:
        check_output_file(out)
    if int8 and attention:  # the int8 graph forms no attention maps
        raise SeqDanceError("--int8 writes no attention maps; leave out --attention or --int8")
    net = load_on_device(spec, arch, device, dtype, int8)
    group = sharding.current()
    if one_file:  # one process or many: the same shard files, assembled by rank 0
        found = predict_to_store(group, net, records, out, options, progress=progress)
        return None if found is None else len(records)
    if group.sharded:
        found = predict_sharded(group, net, records, out, options, pdb=pdb, progress=progress)
        return None if found is None else len(records)
    predict_in_shards(net, records, out, options, pdb=pdb, progress=progress)
    return len(records)


def records_in_structure(pdb: str | os.PathLike, records: Sequence[FastaRecord]) -> set[str]:
    """Ids of the records whose sequence equals one of the protein chains of ``pdb``."""
    _, chains = read_protein_chains(pdb)
    sequences = {seq for _, _, seq in chains}
    matched = {r.id for r in records if r.sequence in sequences}
    if not matched:
        raise SeqDanceError(f"--pdb {pdb}: no FASTA record has the sequence of one of its chains")
    return matched


def embed_fasta(
    fasta: str | os.PathLike,
    spec: str,
    out: str | os.PathLike,
    *,
    arch: str | None = None,
    device: str = "auto",
    dtype: str = "fp32",
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    window: int | None = None,
    progress: bool = False,
) -> int | None:
    """Embed every record of ``fasta`` into the HDF5 file ``out`` (one group per record id,
    ``residues`` (L, E) and ``mean`` (E,)); returns the record count (None on ranks other
    than 0 of a sharded run: :func:`predict_fasta`)."""
    records = index_fasta(fasta)
    net = load_on_device(spec, arch, device, dtype)
    group = sharding.current()
    if group.sharded:
        found = embed_sharded(group, net, records, out, token_budget=token_budget,
                              window=window, progress=progress)  # fmt: skip
        return None if found is None else len(records)
    embed_in_shards(net, records, out, token_budget=token_budget, window=window,
                    progress=progress)  # fmt: skip
    return len(records)
