"""Demo step 1: MD and NMA features of the bundled proteins, as ``seqdance features``
writes them, with a few summary numbers per protein and figures of the first trajectory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqdance.demo.inputs import PROTEINS
from seqdance.demo.results import FeatureSummary
from seqdance.features.md import FEATURE_COLUMNS, PAIR_KEYS, md_features, write_md_features
from seqdance.features.nma import nma_features_of_file, write_nma_features
from seqdance.inference.plots import plot_pairs, plot_profiles, symmetric_counts
from seqdance.schema import (
    CUBE_ROOT_CHANNELS,
    INTERACTIONS,
    PAIR_CHANNELS,
    RESIDUE_CHANNELS,
    output_slice,
)
from seqdance.utils.figures import figure_name
from seqdance.utils.progress import progress_bar


def extract_features(
    inputs: Path, out: Path, figures: Path, progress: bool, fmt: str = "png"
) -> tuple[list[FeatureSummary], dict[str, Path]]:
    """MD features (native interaction detection) and NMA features of every demo protein,
    and figures (``fmt``: png, svg, pdf) of the MD features of the first trajectory (the
    training targets; interactions drawn at both cells of each pair)."""
    summaries = []
    plots: dict[str, Path] = {}
    for protein in progress_bar(PROTEINS, desc="features", unit="protein", enabled=progress):
        paths = [inputs / f for f in protein.files]
        if protein.kind == "md":
            md = md_features(paths[0], paths[1])
            files = list(write_md_features(md, out / "md" / protein.name))
            if not plots:
                residue, pair = md_output_arrays(md, symmetric=True)
                numbers = md.residues["resid"].to_numpy()  # the structure's numbering
                title = f"{protein.name}: features from its MD trajectory ({md.n_frames} frames)"
                plots["md_profiles"] = plot_profiles(
                    figures / figure_name(f"{protein.name}_md_profiles", fmt), title, residue,
                    numbers,
                )  # fmt: skip
                plots["md_pairs"] = plot_pairs(
                    figures / figure_name(f"{protein.name}_md_pairs", fmt), title, pair, numbers,
                    interaction_label="mean contacts per frame, (i, j) + (j, i)",
                )  # fmt: skip
            table = md.residues
            upper = np.triu_indices(len(md.sequence), k=1)
            values = {
                "mean RMSF (nm)": float(table["rmsf"].mean()),
                "mean SASA (nm^2)": float(table["sasa_mean"].mean()),
                "helix fraction": float(table["ss_H"].mean()),
                "strand fraction": float(table["ss_E"].mean()),
                "residue pairs in contact": int(
                    (sum(md.pair[k] for k in INTERACTIONS)[upper] > 0).sum()
                ),
                "mean abs(corr)": float(np.abs(md.pair["corr"][upper]).mean()),
            }
            summaries.append(
                FeatureSummary(
                    protein.name,
                    "md",
                    protein.source,
                    protein.label,
                    len(md.sequence),
                    md.n_frames,
                    values,
                    files,
                )  # fmt: skip
            )
        else:
            nma = nma_features_of_file(paths[0])
            path = write_nma_features(nma, out / "nma" / f"{protein.name}.nma.npz")
            n = len(nma.sequence)
            upper = np.triu_indices(n, k=1)
            values = {
                f"mean GNM fluctuation, band {b + 1}": float(nma.gnm_msf[b].mean())
                for b in range(len(nma.gnm_msf))
            }
            values["mean abs(ANM corr), band 1"] = float(np.abs(nma.anm_cor[0][upper]).mean())
            summaries.append(
                FeatureSummary(
                    protein.name, "nma", protein.source, protein.label, n, None, values, [path]
                )  # fmt: skip
            )
    return summaries, plots


def md_output_arrays(md, symmetric: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MD features laid out like the model's outputs, for plotting them with the same code.

    Returns residue (L, 50) and pair (L, L, 13) arrays: RMSF divided by its maximum
    (``rmsf_nor``), interaction counts cube-rooted (the stored training targets), NMA
    channels NaN. ``symmetric``: each pair's contacts counted at both cells before the cube
    root (``M + M.T``; the stored layout counts a contact at one cell), for figures.
    """
    n = len(md.sequence)
    values = np.array(md.residues[list(FEATURE_COLUMNS)], dtype=np.float64)  # (L, 47) copy
    rmsf = FEATURE_COLUMNS.index("rmsf")
    values[:, rmsf] /= np.nanmax(values[:, rmsf])
    residue = np.full((n, len(RESIDUE_CHANNELS)), np.nan)
    residue[:, output_slice("residue", "md")] = values
    stacked = np.stack(
        [
            np.cbrt(symmetric_counts(md.pair[k]) if symmetric else md.pair[k])
            if k in CUBE_ROOT_CHANNELS
            else md.pair[k]
            for k in PAIR_KEYS
        ],
        -1,
    )  # (L, L, 10)
    pair = np.full((n, n, len(PAIR_CHANNELS)), np.nan)
    pair[..., output_slice("pair", "md")] = stacked
    return residue, pair
