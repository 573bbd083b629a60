"""``predict``'s outputs on disk: which pair maps, in which layout, for each FASTA record.

    records -> windows predicted -> residues merged window by window, pairs merged in row
    blocks and written to the pair store as they are finished -> one output group per record

With a window, peak memory depends on the window, not on the sequence length: no (L, L, 13)
array is ever built (the attention maps of ``--attention`` excepted).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.inference.bfactor import write_bfactors
from seqdance.inference.fasta import FastaRecord
from seqdance.inference.plots import plot_pairs, plot_profiles
from seqdance.inference.predict import (
    DEFAULT_TOKEN_BUDGET,
    iter_outputs,
    iter_pieces,
    write_attention_npz,
    write_residue_table,
)
from seqdance.inference.store import (
    INDEX_NAME,
    PAIR_DTYPES,
    PAIR_H5,
    PAIR_NPZ,
    PairMaps,
    PairStoreWriter,
    safe_stems,
    write_record_index,
)
from seqdance.inference.windows import PairMerge, ResidueMerge
from seqdance.model.config import MAX_RESIDUES
from seqdance.schema import PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.figures import check_figure_format
from seqdance.utils.io import output_group, save_npz

PLOT_PAIRS_MAX = 3000  # residues: longer records get no pair figure (it would need L x L)


@dataclass(frozen=True)
class PredictOutputs:
    """What ``predict`` writes besides the residue tables.

    pairs: pair channels written (schema order; empty: no pair file and no pair head run).
    pair_band: keep |i - j| <= N only (None: all). pair_format: ``auto`` (``h5`` with a
    window or a band, else ``npz``), ``npz`` or ``h5``. pair_dtype: ``float32`` or
    ``float16`` (h5 only). window: residues per window (None: one pass). one_file: every
    record into one HDF5 store (``-o OUT.h5``, ``seqdance.inference.store_file``) rather
    than files in a folder.
    """

    pairs: tuple[str, ...] = PAIR_CHANNELS
    pair_band: int | None = None
    pair_format: str = "auto"
    pair_dtype: str = "float32"
    window: int | None = None
    attention: bool = False
    plots: bool = False
    figure_format: str = "png"  # png (300 dpi), svg or pdf
    token_budget: int = DEFAULT_TOKEN_BUDGET
    pdb_records: frozenset[str] = field(default_factory=frozenset)
    one_file: bool = False

    @property
    def store(self) -> bool:
        """Pairs go to an HDF5 pair store (written in blocks) rather than a dense npz."""
        if self.one_file:
            return True
        if self.pair_format == "auto":
            return self.window is not None or self.pair_band is not None
        return self.pair_format == "h5"

    def check(self, lengths: Sequence[int]) -> None:
        """Every option checked against the records before the model is loaded."""
        check_figure_format(self.figure_format)
        if self.window is not None and self.window > MAX_RESIDUES:
            raise SeqDanceError(
                f"--window {self.window} is longer than the model's positions ({MAX_RESIDUES} "
                f"residues + <cls>/<eos>); give --window {MAX_RESIDUES} or less"
            )
        if self.pair_format not in ("auto", "npz", "h5"):
            raise SeqDanceError(f"--pair-format {self.pair_format!r}: use auto, npz or h5")
        if self.one_file:
            self._check_one_file()
        if not self.pairs and (self.pair_band is not None or self.pair_format != "auto"
                               or self.pair_dtype != "float32"):  # fmt: skip
            raise SeqDanceError(
                "--pairs none writes no pair file: leave out --pair-band, --pair-format and "
                "--pair-dtype, or choose pair outputs"
            )
        if self.pair_dtype not in PAIR_DTYPES:
            raise SeqDanceError(f"--pair-dtype {self.pair_dtype!r}: use float32 or float16")
        if self.pair_dtype != "float32" and not self.store:
            raise SeqDanceError("--pair-dtype float16 needs the HDF5 pair store (--pair-format h5)")
        if self.pair_band is not None:
            if self.pair_band < 0:
                raise SeqDanceError(f"--pair-band {self.pair_band}: give 0 or more residues")
            if not self.store:
                raise SeqDanceError("--pair-band needs the HDF5 pair store (--pair-format h5)")
            longest = max(lengths)
            if self.pair_band >= longest - 1:
                raise SeqDanceError(
                    f"--pair-band {self.pair_band} is wider than the sequences (the longest has "
                    f"{longest} residues: |i - j| <= {longest - 1} keeps every pair); give a "
                    "smaller band or leave it out"
                )
        if self.window is not None and self.attention and self.one_file:
            raise SeqDanceError(
                "--attention with --window merges (layers, heads, L, L) maps in memory and "
                "is not written to an HDF5 store; give an output folder, or leave out "
                "--attention"
            )
        if self.window is not None and self.attention and self.store:
            raise SeqDanceError(
                "--attention with --window merges (layers, heads, L, L) maps in memory; "
                "give --pair-format npz to do so anyway, or leave out --attention"
            )

    def _check_one_file(self) -> None:
        """What a one-file store (``-o OUT.h5``) cannot hold: files of their own."""
        for given, flag in ((self.plots, "--plots"), (self.pdb_records, "--pdb")):
            if given:
                raise SeqDanceError(
                    f"{flag} writes files per record, not into an HDF5 store; give an output "
                    f"folder for -o, or leave out {flag}"
                )
        if self.pair_format == "npz":
            raise SeqDanceError(
                "--pair-format npz writes a file per record; an HDF5 store (-o OUT.h5) holds "
                "the pairs itself: leave out --pair-format, or give an output folder"
            )


def predict_records(
    net, records: Sequence[FastaRecord], out: str | os.PathLike, options: PredictOutputs,
    *, pdb: str | os.PathLike | None = None, progress: bool = False,
) -> Path:  # fmt: skip
    """Predict ``records`` with ``net`` into the folder ``out``; returns the index table.

    Files per record, named by :func:`seqdance.inference.store.safe_stems` of its id:
    ``{stem}.residue.csv``, the pair file (``{stem}.pair.npz`` or ``{stem}.pair.h5``, unless
    ``pairs`` is empty) and the optional attention, plots and B-factor structure. A record's
    files appear together or not at all; ``index.csv`` (id -> stem, length, files) is written
    last, listing every record.
    """
    stems = safe_stems([r.id for r in records])
    rows = write_records(net, records, stems, out, options, pdb=pdb, progress=progress)
    return write_record_index(Path(out) / INDEX_NAME, rows)


def write_records(
    net, records: Sequence[FastaRecord], stems: Sequence[str], out: str | os.PathLike,
    options: PredictOutputs, *, pdb: str | os.PathLike | None = None, progress: bool = False,
) -> list[dict[str, object]]:  # fmt: skip
    """The files of ``records`` (named ``stems``) in ``out``, as :func:`predict_records`
    writes them, without the index; returns the index rows, in the order of ``records``."""
    out = Path(out)
    rows: list[dict[str, object]] = [{} for _ in records]

    def finish(index, group, residue, pair_path, pair_for_plot, attentions) -> None:
        record, stem = records[index], stems[index]
        at = group.path
        write_residue_table(at(out / f"{stem}.residue.csv"), record.sequence, residue)
        if attentions is not None:
            write_attention_npz(at(out / f"{stem}.attention.npz"), attentions)
        if options.plots:
            fmt = options.figure_format
            plot_profiles(at(out / f"{stem}.profiles.{fmt}"), record.id, residue)
            if pair_for_plot is not None:
                plot_pairs(at(out / f"{stem}.pairs.{fmt}"), record.id, pair_for_plot)
        if record.id in options.pdb_records:
            rmsf = residue[:, RESIDUE_CHANNELS.index("rmsf_nor")]  # (L,)
            write_bfactors(pdb, at(out / f"{stem}.rmsf.pdb"), record.sequence, rmsf)
        names = sorted(final.name for _, final in group.pending)
        rows[index] = {"id": record.id, "stem": stem, "length": len(record.sequence),
                       "files": names}  # fmt: skip

    sequences = [r.sequence for r in records]
    if not options.store:
        for index, result in iter_outputs(
            net, sequences, pair=bool(options.pairs), attentions=options.attention,
            token_budget=options.token_budget, window=options.window, progress=progress,
        ):  # fmt: skip
            with output_group() as group:
                pair_path = None
                if options.pairs:
                    pair_path = group.path(out / f"{stems[index]}{PAIR_NPZ}")
                    keep = {c: result.pair[..., PAIR_CHANNELS.index(c)] for c in options.pairs}
                    save_npz(pair_path, **keep)
                plot = result.pair if options.pairs == PAIR_CHANNELS else None
                finish(index, group, result.residue, pair_path, plot, result.attentions)
    else:
        _stream(net, sequences, out, stems, options, finish, progress)
    return rows


class _Open:
    """One record being written: its output group, mergers and pair store."""

    def __init__(self, plan, path: Path | None, options: PredictOutputs) -> None:
        self.stack = contextlib.ExitStack()
        # records' windows interleave: each record is a group of its own, joined by path only
        self.group = self.stack.enter_context(output_group(shared=False))
        self.residue = ResidueMerge(plan)
        self.pairs = PairMerge(plan, options.pair_band) if path is not None else None
        self.path = self.group.path(path) if path is not None else None
        self.writer = None
        if self.path is not None:
            try:
                self.writer = PairStoreWriter(self.path, plan[0].length, options.pairs,
                                              options.pair_dtype, options.pair_band,
                                              name=path)  # fmt: skip
            except BaseException:
                self.stack.__exit__(*sys.exc_info())  # the temporaries go, nothing is left open
                raise
            self.stack.callback(self.writer.close)


def _plot_pairs_input(path, length: int, stem: str, options: PredictOutputs):
    """The dense pairs for ``--plots`` (read back from the store), or None with a note."""
    if not options.plots:
        return None
    if length <= PLOT_PAIRS_MAX and options.pairs == PAIR_CHANNELS:
        return np.asarray(PairMaps(path))
    print(f"note: {stem}: no pair figure (it needs all 13 pair maps and at most "
          f"{PLOT_PAIRS_MAX} residues)", file=sys.stderr)  # fmt: skip
    return None


def _stream(net, sequences, out: Path, stems, options: PredictOutputs, finish, progress) -> None:
    open_records: dict[int, _Open] = {}
    try:
        for index, k, plan, piece in iter_pieces(
            net, sequences, pair=bool(options.pairs), token_budget=options.token_budget,
            window=options.window, progress=progress,
        ):  # fmt: skip
            rec = open_records.get(index)
            if rec is None:
                path = out / f"{stems[index]}{PAIR_H5}" if options.pairs else None
                rec = open_records[index] = _Open(plan, path, options)
            rec.residue.add(k, piece.residue)
            if rec.pairs is not None:
                for block in rec.pairs.add(k, piece.pair):
                    rec.writer.write(block.row0, block.col0, block.values)
            del piece
            if k + 1 < len(plan):
                continue
            del open_records[index]
            with rec.stack:
                plot = None
                if rec.writer is not None:
                    rec.writer.close()
                    plot = _plot_pairs_input(rec.path, plan[0].length, stems[index], options)
                finish(index, rec.group, rec.residue.result(), rec.path, plot, None)
    except BaseException:
        info = sys.exc_info()
        for rec in open_records.values():
            rec.stack.__exit__(*info)
        raise
