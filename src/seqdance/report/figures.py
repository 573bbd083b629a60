"""The report's Plotly figures: residue tracks, pair map, saturation heat map, explanations.

Figures are built here with Plotly and handed to the page as JSON; the page's script fills
large arrays (pair maps) from compact encodings and links the figures to the 3D view.
Colour maps: Viridis (sequential) and cmocean's balance (diverging, zero in the middle), both
perceptually uniform and readable with the common colour-vision deficiencies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb
from plotly.subplots import make_subplots

from seqdance.schema import FEATURE_UNITS, RESIDUE_CHANNELS, RESIDUE_FEATURES

SEQUENTIAL = "Viridis"
DIVERGING = "balance"
# Okabe-Ito colours (colour-blind safe) for categorical lines
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
UNITS = {  # the schema's units (also those of the static figures)
    **FEATURE_UNITS,
    "interaction": FEATURE_UNITS["vdw"],  # predicted on the cube-root scale
    "change": "relative change |mut-wt|/(|wt|+0.01)",
}
SIGNED_PAIRS = ("corr", "nma_pair1", "nma_pair2", "nma_pair3")
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 11}
TRACK_HEIGHT = 120  # pixels per residue track


def unit_of(channel: str) -> str:
    """The unit of a residue or pair channel (schema name) for legends."""
    for key in ("sasa_mean", "sasa_std", "rmsf_nor", "corr"):
        if channel == key:
            return UNITS[key]
    for prefix in ("nma_res", "nma_pair", "ss", "chi", "phi", "psi"):
        if channel.startswith(prefix):
            return UNITS[prefix]
    return UNITS["interaction"]


def lut(name: str, n: int = 256) -> list[str]:
    """``n`` hex colours sampled along a Plotly colour scale (the 3D view's colours)."""
    colours = sample_colorscale(name, list(np.linspace(0, 1, n)))  # "rgb(r, g, b)"
    return ["#" + "".join(f"{round(float(c)):02x}" for c in unlabel_rgb(rgb)) for rgb in colours]


def colorscale(name: str) -> list:
    """A Plotly colour scale as [[fraction, colour], ...]."""
    return [list(x) for x in get_colorscale(name)]


def residue_properties(residue: np.ndarray) -> dict[str, np.ndarray]:
    """Residue properties offered in the colour menu and tracks: name -> (L,) values.

    Helix/strand/coil fractions sum DSSP classes (H+G+I, E+B, the rest).
    """
    col = {c: residue[:, i] for i, c in enumerate(RESIDUE_CHANNELS)}
    out = {
        "rmsf_nor": col["rmsf_nor"],
        "sasa_mean": col["sasa_mean"],
        "sasa_std": col["sasa_std"],
        "helix (ss_H+G+I)": col["ss_H"] + col["ss_G"] + col["ss_I"],
        "strand (ss_E+B)": col["ss_E"] + col["ss_B"],
        "coil (ss_S+T+loop)": col["ss_S"] + col["ss_T"] + col["ss_loop"],
    }
    for c in RESIDUE_CHANNELS:
        if c.startswith("ss_") or c.startswith("nma_res"):
            out[c] = col[c]
    return out


def property_unit(name: str) -> str:
    if "(ss_" in name:
        return UNITS["ss"]
    return unit_of(name)


def _layout(fig: go.Figure, height: int, title: str) -> None:
    fig.update_layout(
        height=height,
        title={"text": title, "x": 0.01, "font": {"size": 13}},
        font=FONT,
        margin={"l": 70, "r": 20, "t": 36, "b": 40},
        plot_bgcolor="white",
        hovermode="x",
        showlegend=True,
        legend={"orientation": "h", "y": -0.06, "x": 0, "yanchor": "top"},
    )


def tracks_figure(
    numbers: Sequence[int],
    sequence: str,
    residue: np.ndarray,
    scan_mean: np.ndarray | None,
    scan_column: str | None,
    profile_label: str | None,
) -> go.Figure:
    """Linked per-residue tracks sharing the x axis (residue number).

    Rows: RMSF, SASA, secondary structure fractions (stacked), NMA bands, then the mean scan
    score per position (with a scan) and a mutant's change profile (with a scan or an
    explanation; the page fills it when a mutant is chosen). The mutant row is the last trace.
    """
    props = residue_properties(residue)
    rows = ["rmsf_nor", "sasa_mean", "secondary structure", "NMA bands"]
    if scan_mean is not None:
        rows.append(f"scan mean: {scan_column}")
    if profile_label is not None:
        rows.append("mutant profile")
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.025)
    x = list(numbers)
    text = [f"{a}{n}" for a, n in zip(sequence, numbers, strict=True)]
    hover = "%{text}: %{y:.3g}<extra>%{fullData.name}</extra>"

    def line(y, name, row, colour, **kw):
        fig.add_trace(go.Scatter(x=x, y=np.asarray(y, np.float32), name=name, text=text,
                                 hovertemplate=hover, line={"color": colour, "width": 1.5},
                                 legendgroup=str(row), **kw), row=row, col=1)  # fmt: skip

    line(props["rmsf_nor"], "rmsf_nor", 1, OKABE_ITO[0], showlegend=False)
    line(props["sasa_mean"], "sasa_mean", 2, OKABE_ITO[1], showlegend=False)
    ss = ("helix (ss_H+G+I)", "strand (ss_E+B)", "coil (ss_S+T+loop)")
    for name, colour in zip(ss, ("#D55E00", "#0072B2", "#BBBBBB"), strict=True):
        line(props[name], name.split()[0], 3, colour, stackgroup="ss")
    for k in range(3):
        line(props[f"nma_res{k + 1}"], f"nma_res{k + 1}", 4, OKABE_ITO[k + 2])
    units = ["÷ protein max", "nm²", "fraction", "relative"]
    titles = ["RMSF (norm.)", "SASA", "sec. structure", "NMA bands"]
    row = 5
    if scan_mean is not None:
        fig.add_trace(go.Bar(x=x, y=np.asarray(scan_mean, np.float32), text=text,
                             name=f"mean {scan_column}", hovertemplate=hover, showlegend=False,
                             marker={"color": OKABE_ITO[3]}), row=row, col=1)  # fmt: skip
        titles.append("scan mean")
        units.append("rel. change")
        row += 1
    if profile_label is not None:
        line(np.full(len(x), np.nan), profile_label, row, OKABE_ITO[5], showlegend=False)
        titles.append("mutant")
        units.append("rel. change")
    for r, (title, unit) in enumerate(zip(titles, units, strict=True), start=1):
        fig.update_yaxes(title={"text": f"{title}<br><sub>{unit}</sub>", "font": {"size": 10}},
                         row=r, col=1, gridcolor="#eee", zeroline=False)  # fmt: skip
    fig.update_xaxes(showgrid=False, showspikes=True, spikemode="across", spikethickness=1)
    fig.update_xaxes(title={"text": "residue number"}, row=len(rows), col=1)
    _layout(fig, TRACK_HEIGHT * len(rows) + 90, "Predicted per-residue properties")
    return fig


def pair_figure(numbers: Sequence[int], channel: str) -> go.Figure:
    """A zoomable L x L heat map of one pair channel; ``z`` is filled by the page."""
    signed = channel in SIGNED_PAIRS
    fig = go.Figure(go.Heatmap(
        x=list(numbers), y=list(numbers), z=[[0.0]], name=channel,
        colorscale=colorscale(DIVERGING if signed else SEQUENTIAL), zmid=0 if signed else None,
        colorbar={"title": {"text": f"{channel}<br>{unit_of(channel)}", "side": "right"}},
        hovertemplate="residues %{y} - %{x}<br>%{z:.3g}<extra></extra>",
    ))  # fmt: skip
    _layout(fig, 560, "Predicted pair map")
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_xaxes(title="residue number", constrain="domain")
    fig.update_yaxes(title="residue number", scaleanchor="x", autorange="reversed")
    return fig


def scan_figure(positions, wild_type: Sequence[str], matrix: np.ndarray, order: str,
                column: str) -> go.Figure:  # fmt: skip
    """Saturation heat map: amino acid (rows, ``order``) x position; NaN at the wild type."""
    names = [[f"{w}{p}{aa}" for p, w in zip(positions, wild_type, strict=True)] for aa in order]
    fig = go.Figure(go.Heatmap(
        x=list(int(p) for p in positions), y=list(order), z=matrix.astype(np.float32),
        customdata=names, colorscale=colorscale(SEQUENTIAL), hoverongaps=False,
        colorbar={"title": {"text": f"{column}<br>{UNITS['change']}", "side": "right"}},
        hovertemplate="%{customdata}<br>score %{z:.4g}<extra></extra>",
    ))  # fmt: skip
    _layout(fig, 420, f"Saturation scan: {column} (click a cell for its profile)")
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_xaxes(title="position")
    fig.update_yaxes(title="substitution", autorange="reversed", tickfont={"size": 9})
    return fig


def explain_profiles(rel_residue: np.ndarray, channels: Sequence[str]) -> dict[str, np.ndarray]:
    """Per residue feature, its mean relative change over its scored channels: (M, L)."""
    out = {}
    for feature in RESIDUE_FEATURES:
        idx = [channels.index(c) for c in feature.channels if c in channels]
        if idx:
            out[feature.name] = rel_residue[:, :, idx].mean(axis=2)
    return out


def explain_figure(numbers: Sequence[int], sequence: str, features: dict[str, np.ndarray],
                   mutant: str) -> go.Figure:  # fmt: skip
    """Change profiles of one mutant (the first; the page switches mutants), one line per
    residue feature."""
    fig = go.Figure()
    text = [f"{a}{n}" for a, n in zip(sequence, numbers, strict=True)]
    for k, (name, values) in enumerate(features.items()):
        fig.add_trace(go.Scatter(
            x=list(numbers), y=values[0].astype(np.float32), name=name, text=text,
            line={"color": OKABE_ITO[k % len(OKABE_ITO)], "width": 1.4},
            hovertemplate="%{text}: %{y:.3g}<extra>%{fullData.name}</extra>",
        ))  # fmt: skip
    _layout(fig, 330, f"Explain {mutant}: change per residue and feature")
    fig.update_yaxes(title={"text": f"relative change<br><sub>{UNITS['change']}</sub>"},
                     gridcolor="#eee")  # fmt: skip
    fig.update_xaxes(title="residue number", showspikes=True, spikemode="across")
    fig.update_layout(legend={"y": -0.2})
    return fig


def explain_pair_figure(numbers: Sequence[int], channel: str, mutant: str) -> go.Figure:
    """Pair difference map (mutant - wild type) of one channel; ``z`` filled by the page."""
    fig = go.Figure(go.Heatmap(
        x=list(numbers), y=list(numbers), z=[[0.0]], colorscale=colorscale(DIVERGING), zmid=0,
        colorbar={"title": {"text": f"Δ {channel}<br>mut - wt, {unit_of(channel)}"}},
        hovertemplate="residues %{y} - %{x}<br>Δ %{z:.3g}<extra></extra>",
    ))  # fmt: skip
    _layout(fig, 500, f"Explain {mutant}: pair difference map")
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_xaxes(title="residue number", constrain="domain")
    fig.update_yaxes(title="residue number", scaleanchor="x", autorange="reversed")
    return fig
