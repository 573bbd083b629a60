"""The predict and embed pipelines behind ``seqdance predict`` and ``seqdance embed``.

    FASTA records (all checked first) -> model on its device -> outputs per record -> files

:func:`load_on_device` is the CLI's one way to load ``--model`` on ``--device`` in
``--dtype`` (score, scan, explain and the analyses use it too).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from seqdance.errors import SeqDanceError
from seqdance.inference.bfactor import read_protein_chains, write_bfactors
from seqdance.inference.embed import embed, write_embeddings
from seqdance.inference.fasta import FastaRecord, read_fasta
from seqdance.inference.plots import plot_pairs, plot_profiles
from seqdance.inference.predict import (
    DEFAULT_TOKEN_BUDGET,
    iter_outputs,
    write_attention_npz,
    write_pair_npz,
    write_residue_tsv,
)
from seqdance.model.seqdance import SeqDanceModel, load_model
from seqdance.schema import RESIDUE_CHANNELS
from seqdance.train.distributed import DistEnv, pick_device
from seqdance.utils.figures import check_figure_format
from seqdance.utils.io import output_group

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_on_device(spec: str, arch: str | None, device: str, dtype: str) -> SeqDanceModel:
    """``load_model(spec)`` on ``device`` (``auto``, ``cpu``, ``cuda``: the one device picker
    of train and evaluate too) in ``dtype`` (``fp32``, ``bf16``, ``fp16``)."""
    name = pick_device(device, DistEnv())
    return load_model(spec, arch=arch, device=name, dtype=DTYPES[dtype])


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
) -> int:
    """Predict every record of ``fasta`` with the model ``spec``; returns the record count.

    Writes ``out/{id}.residue.tsv`` and ``out/{id}.pair.npz``; with ``attention``
    ``{id}.attention.npz``, with ``plots`` ``{id}.profiles.{figure_format}`` and
    ``{id}.pairs.{figure_format}`` (png, svg or pdf), with ``pdb`` ``{id}.rmsf.pdb`` for each
    record whose sequence equals one of the structure's chains. A record's files appear
    together or not at all.
    """
    out = Path(out)
    figure_format = check_figure_format(figure_format)
    records = read_fasta(fasta)  # every record checked before any work starts
    pdb_records = records_in_structure(pdb, records) if pdb is not None else set()
    net = load_on_device(spec, arch, device, dtype)
    outputs = iter_outputs(
        net,
        [r.sequence for r in records],
        attentions=attention,
        token_budget=token_budget,
        window=window,
        progress=progress,
    )
    for index, result in outputs:
        record = records[index]
        with output_group() as group:
            at = group.path
            write_residue_tsv(at(out / f"{record.id}.residue.tsv"), record.sequence,
                              result.residue)  # fmt: skip
            write_pair_npz(at(out / f"{record.id}.pair.npz"), result.pair)
            if attention:
                write_attention_npz(at(out / f"{record.id}.attention.npz"), result.attentions)
            if plots:
                stem = out / record.id
                plot_profiles(at(f"{stem}.profiles.{figure_format}"), record.id, result.residue)
                plot_pairs(at(f"{stem}.pairs.{figure_format}"), record.id, result.pair)
            if record.id in pdb_records:
                rmsf = result.residue[:, RESIDUE_CHANNELS.index("rmsf_nor")]  # (L,)
                write_bfactors(pdb, at(out / f"{record.id}.rmsf.pdb"), record.sequence, rmsf)
    return len(records)


def records_in_structure(pdb: str | os.PathLike, records: list[FastaRecord]) -> set[str]:
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
) -> int:
    """Embed every record of ``fasta`` into the HDF5 file ``out`` (one group per record id,
    ``residues`` (L, E) and ``mean`` (E,)); returns the record count."""
    records = read_fasta(fasta)
    net = load_on_device(spec, arch, device, dtype)
    items = embed(
        net,
        [r.sequence for r in records],
        token_budget=token_budget,
        window=window,
        progress=progress,
    )
    write_embeddings(out, ((records[i].id, residues) for i, residues in items))
    return len(records)
