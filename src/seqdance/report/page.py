"""Assemble the report's data and figures into one self-contained HTML page.

The page holds Plotly.js (from the installed ``plotly`` package), 3Dmol.js (vendored, see
``vendor/README.md``), the report's own script and style (``assets/``), the figures as Plotly
JSON and the data as one JSON document. Nothing is fetched when it opens.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import plotly.io as pio
from plotly.offline import get_plotlyjs

from seqdance.inference.scan import HEATMAP_ORDER, heatmap_matrix
from seqdance.report import figures as fg
from seqdance.report.inputs import ExplainData, Prediction, ScanData
from seqdance.report.profiles import encode_uint8
from seqdance.report.structure import StructureMatch
from seqdance.schema import PAIR_CHANNELS

# pair channels in the order they are kept when the size budget runs out
PAIR_PRIORITY = ("corr", "vdw", "hbbb", "hbsb", "nma_pair1", "hbss", "hp", "sb", "pc", "ps",
                 "ts", "nma_pair2", "nma_pair3")  # fmt: skip
LINK_DEFAULTS = {"corr": 0.6, "vdw": 0.5, "nma_pair1": 0.6}


@dataclass
class PageParts:
    """Everything the page shows, read and checked (see :func:`seqdance.report.build`)."""

    prediction: Prediction
    numbers: list[int]  # residue number per sequence index
    scan: ScanData | None
    scan_columns: list[str]
    explain: ExplainData | None
    structure: StructureMatch | None
    profiles: np.ndarray | None  # (N, L) change profiles of the scan's mutants
    header: dict  # title, model, weights_hash, command, date, version
    notes: list[str]
    pair_budget: int
    max_links: int


def _asset(name: str) -> str:
    return resources.files("seqdance.report").joinpath(name).read_text(encoding="utf-8")


def _script(text: str) -> str:
    return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def _json_tag(tag_id: str, text: str) -> str:
    safe = text.replace("</", "<\\/")
    return f'<script type="application/json" id="{tag_id}">{safe}</script>'


LARGEST_MAP = 4  # one pair map is embedded up to this many times the pair budget (4,000 residues)


def _pairs(parts: PageParts) -> dict | None:
    pair = parts.prediction.pair
    if pair is None:
        return None
    n = pair.shape[0]
    if n * n > LARGEST_MAP * parts.pair_budget:  # not even one map: read nothing
        parts.notes.append(
            f"pair maps left out: {n} x {n} pairs are too many for one page; read them with "
            "seqdance.inference.store_labelled.open_predictions (tile by tile)"
        )
        return None
    kept, size = [], 0
    for name in PAIR_PRIORITY:
        if size + n * n > parts.pair_budget and kept:
            break
        kept.append(name)
        size += n * n
    left = [c for c in PAIR_CHANNELS if c not in kept]
    if left:
        parts.notes.append(
            f"pair maps of {', '.join(left)} left out to keep the file small ({n} residues)"
        )
    maps = {}
    for name in kept:
        values = pair[..., PAIR_CHANNELS.index(name)]
        maps[name] = {
            "data": encode_uint8(values),
            "unit": fg.unit_of(name),
            "signed": name in fg.SIGNED_PAIRS,
            "link": LINK_DEFAULTS.get(name, round(float(np.nanpercentile(values, 99)), 3)),
        }
    return maps


def _scan(parts: PageParts, figures: dict) -> dict | None:
    scan = parts.scan
    if scan is None:
        return None
    columns = {}
    first = parts.numbers[0]
    for column in parts.scan_columns:
        positions, wt, matrix = heatmap_matrix(scan.table, column)  # (20, P)
        columns[column] = {
            "z": encode_uint8(matrix),
            "mean": _floats(np.nanmean(matrix, axis=0)),
        }
    positions, wt, matrix = heatmap_matrix(scan.table, parts.scan_columns[0])
    figures["scan"] = fg.scan_figure(positions, wt, matrix, HEATMAP_ORDER, parts.scan_columns[0])
    out = {
        "columns": columns,
        "order": HEATMAP_ORDER,
        "positions": [int(p) - first for p in positions],  # sequence indices
        "profiles": None,
    }
    if parts.profiles is not None:
        mutants = scan.table["mutant"].tolist()
        out["profiles"] = {"mutants": mutants, "data": encode_uint8(parts.profiles, per_row=True)}
    return out


def _explain(parts: PageParts, figures: dict) -> dict | None:
    ex = parts.explain
    if ex is None:
        return None
    seq = parts.prediction.sequence
    out: dict = {"mutants": list(ex.mutants), "features": {}, "total": [], "pairs": None}
    if ex.rel_residue is not None:
        features = fg.explain_profiles(ex.rel_residue, list(ex.residue_channels))
        out["features"] = {k: _floats(v) for k, v in features.items()}
        out["total"] = _floats(ex.rel_residue.mean(axis=2))  # (M, L)
        figures["explain"] = fg.explain_figure(parts.numbers, seq, features, ex.mutants[0])
    if ex.delta_pair is not None and ex.pair_channels:
        m, n = ex.delta_pair.shape[0], ex.delta_pair.shape[1]
        keep = max(1, min(m, parts.pair_budget // max(1, n * n * len(ex.pair_channels))))
        if keep < m:
            parts.notes.append(f"pair difference maps of {m - keep} explained mutant(s) left out")
        maps = np.moveaxis(ex.delta_pair[:keep], 3, 1)  # (keep, Cp, L, L)
        out["pairs"] = {
            "channels": list(ex.pair_channels),
            "mutants": keep,
            "data": encode_uint8(maps.reshape(keep * len(ex.pair_channels), n * n), per_row=True),
        }
        figures["explain_pair"] = fg.explain_pair_figure(
            parts.numbers, ex.pair_channels[0], ex.mutants[0]
        )
    return out


def render(parts: PageParts) -> str:
    """The whole report as one HTML string."""
    pred = parts.prediction
    figures: dict = {}
    props = fg.residue_properties(pred.residue)
    scan = _scan(parts, figures)
    explain = _explain(parts, figures)
    scan_mean = None
    if scan is not None:  # per residue; NaN where not scanned
        scan_mean = np.full(len(pred.sequence), np.nan)
        first = scan["columns"][parts.scan_columns[0]]["mean"]
        scan_mean[scan["positions"]] = [np.nan if v is None else v for v in first]
    profile_label = "mutant" if (scan is not None or explain is not None) else None
    figures["tracks"] = fg.tracks_figure(
        parts.numbers, pred.sequence, pred.residue, scan_mean,
        parts.scan_columns[0] if scan is not None else None, profile_label,
    )  # fmt: skip
    pairs = _pairs(parts)
    if pairs:
        figures["pair"] = fg.pair_figure(parts.numbers, next(iter(pairs)))
    structure = None
    if parts.structure is not None:
        s = parts.structure
        structure = {"pdb": s.pdb, "chain": s.chain, "resi": s.resi, "note": s.note}
    data = {
        "header": parts.header,
        "notes": parts.notes,
        "sequence": pred.sequence,
        "numbers": parts.numbers,
        "properties": {
            k: {"values": _floats(v), "unit": fg.property_unit(k)} for k, v in props.items()
        },
        "luts": {"seq": fg.lut(fg.SEQUENTIAL), "div": fg.lut(fg.DIVERGING)},
        "colorscales": {"seq": fg.colorscale(fg.SEQUENTIAL), "div": fg.colorscale(fg.DIVERGING)},
        "changeUnit": fg.UNITS["change"],
        "structure": structure,
        "pairs": pairs,
        "scan": scan,
        "explain": explain,
        "maxLinks": parts.max_links,
    }
    figure_json = (
        "{"
        + ",".join(f"{json.dumps(k)}:{pio.to_json(f, validate=False)}" for k, f in figures.items())
        + "}"
    )
    title = html.escape(parts.header.get("title") or "seqdance report")
    pieces = {
        "title": title,
        "style": "<style>" + _asset("assets/report.css") + "</style>",
        "libraries": _script(get_plotlyjs()) + _script(_asset("vendor/3Dmol-min.js")),
        "data": _json_tag("report-data", json.dumps(data, allow_nan=False)),
        "figures": _json_tag("report-figures", figure_json),
        "script": _script(_asset("assets/report.js")),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: pieces[m[1]], _asset("assets/report.html"))


def _floats(values) -> list:
    """A (nested) list of floats rounded to 6 significant digits, None for NaN."""
    arr = np.asarray(values, np.float64)
    if arr.ndim > 1:
        return [_floats(row) for row in arr]
    return [float(f"{v:.6g}") if np.isfinite(v) else None for v in arr]
