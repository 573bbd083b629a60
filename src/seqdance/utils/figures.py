"""The one way the package writes a figure, and the layout helpers every figure shares.

* :func:`write_figure`: PNG at :data:`DEFAULT_DPI` (300), SVG or PDF, chosen by the file's
  suffix; written atomically, the same bytes for the same figure (no dates in SVG/PDF).
* :func:`residue_ticks`: tick positions and labels in the input's residue numbering
  (1-based for sequences; a structure's own numbers where the figure has them).
* :func:`residue_panels`: long proteins split into panels of :data:`PROFILE_PANEL` residues.
* :func:`labelled_colorbar`, :func:`legend_outside`: colour bars with a label (and unit),
  legends beside the data rather than over it.

matplotlib is imported lazily (only figure-writing paths need it; ``--help`` must not).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError
from seqdance.utils.io import atomic_path

FIGURE_FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMAT = "png"
DEFAULT_DPI = 300  # PNG resolution; SVG and PDF are vector
PROFILE_PANEL = 250  # residues per panel of a per-residue profile figure
_TICK_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000)


def check_figure_format(fmt: str) -> str:
    """``fmt`` in lower case if it is one of :data:`FIGURE_FORMATS`, else a SeqDanceError."""
    value = str(fmt).lower().lstrip(".")
    if value not in FIGURE_FORMATS:
        raise SeqDanceError(
            f"--figure-format {fmt}: not a figure format; use one of {', '.join(FIGURE_FORMATS)}"
        )
    return value


def figure_name(stem: str, fmt: str = DEFAULT_FORMAT) -> str:
    """``stem.fmt`` after checking ``fmt`` (``figure_name("x.pairs", "svg") == "x.pairs.svg"``)."""
    return f"{stem}.{check_figure_format(fmt)}"


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figure(fig, path: str | os.PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``fig`` atomically in the format of ``path``'s suffix and close it (also on failure).

    PNG at ``dpi`` (its pHYs chunk records it); SVG and PDF without creation dates and with a
    fixed SVG id salt, so that one figure always gives the same bytes.
    """
    import matplotlib

    plt = pyplot()
    path = Path(path)
    fmt = check_figure_format(path.suffix or "?")
    metadata = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    try:
        with matplotlib.rc_context({"svg.hashsalt": "seqdance", "svg.fonttype": "none"}):
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def tick_step(span: int, target: int) -> int:
    """The smallest round step giving at most ``target`` ticks over ``span`` residues."""
    return next((s for s in _TICK_STEPS if span / s <= target), _TICK_STEPS[-1])


def residue_ticks(
    numbers: Sequence[int] | np.ndarray, target: int = 10
) -> tuple[list[int], list[str]]:
    """Tick positions (indices into ``numbers``) and labels (the residue numbers).

    ``numbers``: shape=(L,), the residue number at each position (``1..L`` for a sequence).
    Ticks fall on multiples of a round step (about ``target`` of them); the first residue is
    always labelled, unless a multiple follows it closer than half a step.
    """
    numbers = np.asarray(numbers)
    if numbers.size == 0:
        return [], []
    step = tick_step(int(numbers.max() - numbers.min()) + 1, target)
    idx = [int(i) for i in np.flatnonzero(numbers % step == 0)]
    if not idx or idx[0] != 0 and numbers[idx[0]] - numbers[0] >= step / 2:
        idx.insert(0, 0)
    return idx, [str(int(numbers[i])) for i in idx]


def residue_panels(n: int, width: int = PROFILE_PANEL) -> list[slice]:
    """Consecutive slices covering ``range(n)``: ``ceil(n / width)`` panels of equal length
    (the last may be shorter by the rounding), so none holds more than ``width`` positions
    (300 residues: two of 150; 1,000: four of 250; up to ``width``: one)."""
    if width < 1:
        raise SeqDanceError(f"panel width {width}: use a positive number of residues")
    count = max(1, -(-n // width))
    size = max(1, -(-n // count))
    return [slice(s, min(n, s + size)) for s in range(0, max(n, 1), size)]


def colorbar_label(label: str, unit: str = "") -> str:
    """``label (unit)``, the unit on a second line when the two are long together."""
    if not unit:
        return label
    return f"{label}\n({unit})" if len(label) + len(unit) > 32 else f"{label} ({unit})"


def labelled_colorbar(fig, image, ax, label: str, unit: str = "", fontsize: float = 8, **kwargs):
    """A colour bar for ``image`` beside ``ax`` labelled by :func:`colorbar_label`."""
    bar = fig.colorbar(image, ax=ax, **kwargs)
    bar.set_label(colorbar_label(label, unit), fontsize=fontsize)
    bar.ax.tick_params(labelsize=fontsize - 1)
    return bar


def legend_outside(ax, **kwargs):
    """The legend of ``ax`` to the right of its data (upper left corner at the axes' edge)."""
    kwargs.setdefault("frameon", False)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)
