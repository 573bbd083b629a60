"""Figures: 300 dpi PNG / SVG / PDF by suffix, residue numbering from 1 (pair maps too),
labelled colour bars with units, long proteins split into panels, --figure-format."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from seqdance.errors import SeqDanceError
from seqdance.inference import explain, explain_plots
from seqdance.inference.mutations import build_mutant_set
from seqdance.inference.plots import (
    pair_map_figure,
    plot_pairs,
    plot_profiles,
    profile_figure,
    symmetric_counts,
)
from seqdance.inference.scan import HEATMAP_ORDER, plot_scan
from seqdance.schema import (
    FEATURE_UNITS,
    INTERACTIONS,
    N_PAIR_OUTPUTS,
    N_RESIDUE_OUTPUTS,
    feature_unit,
)
from seqdance.utils.figures import (
    check_figure_format,
    residue_panels,
    residue_ticks,
    write_figure,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def png_chunks(path: Path) -> dict[bytes, bytes]:
    """The PNG's chunks by type, parsed from the bytes (independent of PIL and matplotlib)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.setdefault(kind, body)
        pos += 12 + length
    return chunks


def png_dpi_and_size(path: Path) -> tuple[float, float, int, int]:
    chunks = png_chunks(path)
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    x, y, unit = struct.unpack(">IIB", chunks[b"pHYs"])
    assert unit == 1  # pixels per metre
    return x * 0.0254, y * 0.0254, width, height


def random_outputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    residue = rng.random((n, N_RESIDUE_OUTPUTS))
    residue[:, 3:11] /= residue[:, 3:11].sum(1, keepdims=True)  # ss fractions sum to 1
    pair = rng.random((n, n, N_PAIR_OUTPUTS))
    return residue, pair


def tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


# -- the writer ------------------------------------------------------------------------------------
def test_png_is_300_dpi_and_the_pixel_size_follows(tmp_path):
    fig = plt.figure(figsize=(4, 3))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.plot([0, 1], [0, 1])
    bbox = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, before padding
    path = write_figure(fig, tmp_path / "a.png")
    dpi_x, dpi_y, width, height = png_dpi_and_size(path)
    assert dpi_x == pytest.approx(300, abs=0.1) and dpi_y == pytest.approx(300, abs=0.1)
    pad = 2 * matplotlib.rcParams["savefig.pad_inches"]
    assert width == pytest.approx((bbox.width + pad) * 300, abs=2)
    assert height == pytest.approx((bbox.height + pad) * 300, abs=2)
    assert not plt.fignum_exists(fig.number)  # closed after writing


def test_svg_and_pdf_by_suffix_and_same_bytes_twice(tmp_path):
    def make():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.imshow(np.arange(12.0).reshape(3, 4))
        ax.set_xlabel("residue number")
        return fig

    svg = write_figure(make(), tmp_path / "a.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "residue number" in svg
    pdf1 = write_figure(make(), tmp_path / "a.pdf").read_bytes()
    pdf2 = write_figure(make(), tmp_path / "b.pdf").read_bytes()
    assert pdf1.startswith(b"%PDF") and pdf1 == pdf2  # no creation date
    svg2 = write_figure(make(), tmp_path / "b.svg").read_text()
    assert svg2 == svg


def test_unknown_figure_format_is_one_error(tmp_path):
    assert check_figure_format("SVG") == "svg"
    with pytest.raises(SeqDanceError, match="png, svg, pdf"):
        check_figure_format("jpg")
    fig = plt.figure()
    with pytest.raises(SeqDanceError):
        write_figure(fig, tmp_path / "a.jpg")
    assert not (tmp_path / "a.jpg").exists()


# -- numbering and panels --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("numbers", "target", "expected"),
    [
        (range(1, 31), 8, ["1", "5", "10", "15", "20", "25", "30"]),
        (range(1, 1001), 10, ["1", *(str(k) for k in range(100, 1001, 100))]),
        (range(251, 501), 10, ["251", *(str(k) for k in range(275, 501, 25))]),
        (range(-3, 40), 5, ["0", "10", "20", "30"]),  # -3 is too close to 0 to label
    ],
)
def test_residue_ticks(numbers, target, expected):
    idx, labels = residue_ticks(list(numbers), target)
    assert labels == expected
    assert [str(list(numbers)[i]) for i in idx] == expected


@pytest.mark.parametrize(
    ("n", "sizes"), [(30, [30]), (250, [250]), (251, [126, 125]), (300, [150, 150]),
                     (1000, [250] * 4)],
)  # fmt: skip
def test_residue_panels(n, sizes):
    panels = residue_panels(n, 250)
    assert [s.stop - s.start for s in panels] == sizes
    assert panels[0].start == 0 and panels[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(panels, panels[1:], strict=False))


# -- the prediction figures ------------------------------------------------------------------------
def test_pair_maps_numbered_from_one_with_labelled_colour_bars():
    residue, pair = random_outputs(30)
    fig = pair_map_figure("x", pair)
    maps = [ax for ax in fig.axes if ax.get_images()]
    bars = [ax for ax in fig.axes if not ax.get_images()]
    assert len(maps) == 2 and len(bars) == 2
    for ax in maps:
        assert tick_texts(ax.xaxis)[0] == "1" and tick_texts(ax.yaxis)[0] == "1"
        assert ax.get_xticks()[0] == 0  # label "1" sits on the first row and column
        assert tick_texts(ax.xaxis)[-1] == "30"
        assert ax.get_xlabel().startswith("residue number")
        image = ax.get_images()[0].get_array()
        assert image.shape == (30, 30)
    np.testing.assert_allclose(maps[0].get_images()[0].get_array(), pair[..., 9])  # corr, full
    np.testing.assert_allclose(maps[1].get_images()[0].get_array(), pair[..., :9].sum(-1))
    labels = [ax.get_ylabel() for ax in bars]
    assert "Pearson r" in labels[0] and "(contacts per frame)^(1/3)" in labels[1]
    plt.close(fig)


def test_pair_maps_use_the_structures_numbers():
    _, pair = random_outputs(40)
    fig = pair_map_figure("x", pair, numbers=np.arange(-3, 37))
    ax = fig.axes[0]
    assert tick_texts(ax.xaxis)[:2] == ["-3", "0"]
    plt.close(fig)


def test_symmetric_counts_fill_both_triangles(reference_md):
    _, symmetric, raw = reference_md  # the authors' one-triangle arrays and their sum
    for name in ("vdw", "hbbb", "hp"):
        one = raw[..., INTERACTIONS.index(name)]
        assert not np.array_equal(one, one.T)  # counted at one cell per contact
        np.testing.assert_allclose(symmetric_counts(one), symmetric[name])
        out = symmetric_counts(one)
        np.testing.assert_array_equal(out, out.T)


def test_profiles_split_into_panels_of_250():
    residue, _ = random_outputs(1000)
    fig = profile_figure("x", residue)
    tracks = [ax for ax in fig.axes if ax.axison]
    assert len(tracks) == 4 * 3
    firsts = [tick_texts(ax.xaxis)[0] for ax in tracks[2::3]]  # the labelled bottom tracks
    assert firsts == ["1", "251", "501", "751"]
    lasts = [tick_texts(ax.xaxis)[-1] for ax in tracks[2::3]]
    assert lasts == ["250", "500", "750", "1000"]
    spans = {ax.get_xlim()[1] - ax.get_xlim()[0] for ax in tracks}
    assert spans == {250.0}  # one x scale for all panels
    rmsf = tracks[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(rmsf, residue[:250, 2])  # rmsf_nor of residues 1..250
    assert "nm²" in tracks[1].get_ylabel()
    legends = [ax.get_legend() for ax in tracks if ax.get_legend() is not None]
    assert legends and all(lg.get_bbox_to_anchor().x0 >= tracks[0].bbox.x1 for lg in legends)
    plt.close(fig)
    short = profile_figure("x", random_outputs(30)[0])
    assert len([ax for ax in short.axes if ax.axison]) == 3
    assert tick_texts(short.axes[2].xaxis)[0] == "1"
    plt.close(short)


def test_prediction_figures_written_at_300_dpi(tmp_path):
    residue, pair = random_outputs(30)
    for path in (
        plot_profiles(tmp_path / "p.profiles.png", "x", residue),
        plot_pairs(tmp_path / "p.pairs.png", "x", pair),
    ):
        assert png_dpi_and_size(path)[0] == pytest.approx(300, abs=0.1)
    assert plot_pairs(tmp_path / "p.pairs.pdf", "x", pair).read_bytes().startswith(b"%PDF")


def test_units_cover_every_feature():
    from seqdance.schema import FEATURES, PAIR_CHANNELS, RESIDUE_CHANNELS

    assert set(FEATURE_UNITS) == {f.name for f in FEATURES}
    assert feature_unit("ss_H") == "fraction of frames"
    assert feature_unit("nma_pair2") == FEATURE_UNITS["nma_pair"]
    assert all(feature_unit(c) for c in RESIDUE_CHANNELS + PAIR_CHANNELS)


# -- explain and scan ------------------------------------------------------------------------------
def test_explain_pair_maps_numbered_from_the_offset(tiny_model):
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
    mutants = build_mutant_set(seq, ["K11A"], None, offset=10, first_row=None)
    ex = explain.explain_mutants(tiny_model, mutants, ("corr", "rmsf_nor"))
    assert ex.labels[0] == "<cls>"  # special rows count by default
    fig = explain_plots.pair_changes_figure(ex, 0)
    ax = next(a for a in fig.axes if a.get_images())
    assert tick_texts(ax.xaxis)[0] == "10" and ax.get_xticks()[0] == 1  # row 1: residue 10
    bar = next(a for a in fig.axes if not a.get_images() and a.get_ylabel())
    assert "mut - wt" in bar.get_ylabel() and "Pearson r" in bar.get_ylabel()
    plt.close(fig)
    fig = explain_plots.change_profiles_figure(ex, 0, seq)
    assert tick_texts(fig.axes[-1].xaxis)[0] == "10"
    assert "RMSF / max RMSF" in fig.axes[0].get_ylabel()
    plt.close(fig)


def test_scan_heat_maps_in_the_chosen_format(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list(HEATMAP_ORDER), 12))
    rows = [(i + 5, seq[i], a) for i in range(12) for a in HEATMAP_ORDER if a != seq[i]]
    table = pd.DataFrame(rows, columns=["position", "wt", "mt"])
    table["s"] = rng.random(len(table))
    (svg,) = plot_scan(table, tmp_path, ["s"], fmt="svg")
    assert svg.name == "scan_s.svg" and "<svg" in svg.read_text()
    (png,) = plot_scan(table, tmp_path, ["s"])
    assert png.name == "scan_s.png" and png_dpi_and_size(png)[0] == pytest.approx(300, abs=0.1)


# -- the CLI ---------------------------------------------------------------------------------------
def test_predict_figure_format(run_cli, tiny_dir, tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQLEERLG\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--plots", "--no-progress"]
    assert run_cli([*args, "--figure-format", "svg", "--device", "cpu"]) == 0
    assert "<svg" in (out / "a.pairs.svg").read_text()
    assert (out / "a.profiles.svg").is_file() and not list(out.glob("*.png"))
    bad = tmp_path / "bad"
    assert run_cli([*args[:5], str(bad), "--plots", "--figure-format", "jpg"]) != 0
    assert not bad.exists()


def test_block_extremes_keep_the_largest_change_with_its_sign():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 0.01, (10, 10))
    values[7, :] = -0.5  # one mutated row
    values[2, 2] = np.nan
    out = explain_plots.block_extremes(values, 4)  # tiles of 4, the last padded
    assert out.shape == (3, 3)
    for bi in range(3):
        for bj in range(3):
            tile = values[4 * bi : 4 * bi + 4, 4 * bj : 4 * bj + 4].ravel()
            tile = tile[np.isfinite(tile)]
            assert out[bi, bj] == tile[np.argmax(np.abs(tile))]
    assert (out[1] == -0.5).all()  # the row's change survives in every block it crosses
