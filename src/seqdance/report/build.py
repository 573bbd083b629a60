"""``seqdance report``: one self-contained HTML page of a prediction, a scan and explanations.

Call :func:`write_html_report` (the command line and the demo do): it reads and checks every
input first, then writes the page atomically, so bad input leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from seqdance import __version__
from seqdance.errors import SeqDanceError
from seqdance.inference.scan import model_fingerprint, plot_columns
from seqdance.model import load_model
from seqdance.report.inputs import (
    ExplainData,
    Prediction,
    ScanData,
    check_numbering,
    read_explain,
    read_prediction,
    read_scan,
)
from seqdance.report.page import PageParts, render
from seqdance.report.profiles import scan_profiles
from seqdance.report.structure import match_structure
from seqdance.utils.io import atomic_path, check_output_file

PROFILE_BUDGET = 6_000_000  # mutant x residue values of scan profiles embedded (uint8)
PAIR_BUDGET = 4_000_000  # residue pairs x channels of pair maps embedded (uint8)


@dataclass
class ReportOptions:
    """What goes into a report besides the prediction.

    Attributes
    ----------
    structure : PDB/mmCIF of the protein (optional; without it no 3D view).
    chain : the structure's chain to use (default: the first that spells the sequence).
    offset : number of the first residue; default: the scan's or explanation's, else 1.
    scan_columns : scan score columns offered in the heat map (default: those that
        ``seqdance scan`` draws).
    title : the page title (default: the prediction's record id).
    model : the model's name as the user gave it (hub id or path), for the header.
    weights_hash : the model's parameter hash (``seqdance.inference.scan.model_fingerprint``);
        default: the scan manifest's, else the loaded model's.
    command : the command line that made the outputs or the report, for the header.
    record : with a one-file predict store as the prediction, the record id to report
        (needed when the store holds more than one record).
    max_links : most residue pairs drawn as links in the 3D view.
    pair_budget, profile_budget : sizes (values) of pair maps and scan profiles embedded.
    """

    structure: Path | None = None
    record: str | None = None
    chain: str | None = None
    offset: int | None = None
    scan_columns: tuple[str, ...] | None = None
    title: str = ""
    model: str = ""
    weights_hash: str = ""
    command: str = ""
    max_links: int = 300
    pair_budget: int = PAIR_BUDGET
    profile_budget: int = PROFILE_BUDGET


def load_parts(
    prediction: str | os.PathLike | Prediction,
    scan: str | os.PathLike | ScanData | None = None,
    explain: str | os.PathLike | ExplainData | None = None,
    options: ReportOptions | None = None,
    model=None,
) -> PageParts:
    """Read and check every input; with ``model``, compute the scan's change profiles.

    Raises :class:`~seqdance.errors.SeqDanceError` (one line) for a missing file, outputs of
    different sequences, disagreeing residue numbering, or a structure that does not match.
    """
    options = options or ReportOptions()
    pred = (
        prediction
        if isinstance(prediction, Prediction)
        else read_prediction(prediction, options.record)
    )
    scan_data = scan if scan is None or isinstance(scan, ScanData) else read_scan(scan)
    ex = explain if explain is None or isinstance(explain, ExplainData) else read_explain(explain)
    first = check_numbering(pred, scan_data, ex, options.offset)
    numbers = list(range(first, first + len(pred.sequence)))
    columns: list[str] = []
    if scan_data is not None:
        requested = list(options.scan_columns) if options.scan_columns else None
        columns = plot_columns(scan_data.score_columns, requested)
    structure = None
    if options.structure is not None:
        structure = match_structure(options.structure, pred.sequence, options.chain, first)
    notes: list[str] = []
    weights = options.weights_hash
    if model is not None:
        weights = weights or model_fingerprint(model)
    if scan_data is not None and scan_data.fingerprint:
        if weights and weights != scan_data.fingerprint:
            raise SeqDanceError(
                f"the scan was made with another model (weights {scan_data.fingerprint[:12]}..., "
                f"this model {weights[:12]}...)"
            )
        weights = weights or scan_data.fingerprint
    profiles = None
    if scan_data is not None:
        n = len(scan_data.table) * len(pred.sequence)
        if model is None:
            notes.append("scan mutants' change profiles need the model (seqdance report --model)")
        elif n > options.profile_budget:
            notes.append(
                f"scan mutants' change profiles left out ({len(scan_data.table)} mutants x "
                f"{len(pred.sequence)} residues is over the size budget); use seqdance explain"
            )
        else:
            profiles = _profiles(model, pred.sequence, scan_data, first)
    header = {
        "title": options.title or pred.name,
        "model": options.model or "(not given)",
        "weights_hash": weights or "(unknown: give --model)",
        "command": options.command or "(not given)",
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "version": __version__,
    }
    return PageParts(
        prediction=pred, numbers=numbers, scan=scan_data, scan_columns=columns, explain=ex,
        structure=structure, profiles=profiles, header=header, notes=notes,
        pair_budget=options.pair_budget, max_links=options.max_links,
    )  # fmt: skip


def report_model(spec: str, arch: str | None = None):
    """The model of ``seqdance report --model`` on the CPU, float32 (hub id, folder or file)."""
    return load_model(spec, arch=arch, device="cpu")


def _profiles(model, sequence: str, scan: ScanData, first: int):
    table = scan.table
    mutants = [(int(p) - first, str(m)) for p, m in zip(table["position"], table["mt"],
                                                          strict=True)]  # fmt: skip
    return scan_profiles(model, sequence, mutants, scan.channels)


def write_html_report(
    out: str | os.PathLike,
    prediction: str | os.PathLike | Prediction,
    *,
    scan: str | os.PathLike | ScanData | None = None,
    explain: str | os.PathLike | ExplainData | None = None,
    options: ReportOptions | None = None,
    model=None,
) -> Path:
    """Write the report of one predicted protein as a single offline HTML file.

    Parameters
    ----------
    out : the ``.html`` file to write (atomically; parent folders are created).
    prediction : ``{id}.residue.csv`` of ``seqdance predict`` (``{id}.pair.npz`` beside it
        is read when present), or a :class:`~seqdance.report.inputs.Prediction`.
    scan : the ``--out`` folder (or ``scan.csv``) of ``seqdance scan`` of the same sequence.
    explain : the ``--out`` folder (or ``explain.npz``) of ``seqdance explain``.
    options : :class:`ReportOptions` (structure, numbering, header).
    model : the model (optional): computes the scan mutants' change profiles and the
        weights' hash.

    Returns
    -------
    Path : ``out``.
    """
    out = check_output_file(out)  # before any work
    parts = load_parts(prediction, scan, explain, options, model)
    text = render(parts)
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out
