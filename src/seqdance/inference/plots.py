"""PNG figures of one prediction: residue profiles and pair heat maps (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqdance.schema import FEATURE_BY_NAME, INTERACTIONS, PAIR_CHANNELS, RESIDUE_CHANNELS
from seqdance.utils.io import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_profiles(path: str | os.PathLike, record_id: str, residue: np.ndarray) -> Path:
    """RMSF (normalised), SASA (mean +/- std) and secondary-structure fractions per residue.

    ``residue``: shape=(L, 50), channels as ``seqdance.schema.RESIDUE_CHANNELS``.
    """
    plt = _pyplot()
    col = {name: i for i, name in enumerate(RESIDUE_CHANNELS)}
    pos = np.arange(1, residue.shape[0] + 1)
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    axes[0].plot(pos, residue[:, col["rmsf_nor"]], color="tab:red")
    axes[0].set_ylabel("RMSF (normalised)")
    mean, std = residue[:, col["sasa_mean"]], residue[:, col["sasa_std"]]
    axes[1].plot(pos, mean, color="tab:blue")
    axes[1].fill_between(pos, mean - std, mean + std, color="tab:blue", alpha=0.25)
    axes[1].set_ylabel("SASA (nm$^2$)")
    ss = FEATURE_BY_NAME["ss"]
    fractions = residue[:, ss.slice]  # (L, 8)
    axes[2].stackplot(pos, fractions.T, labels=[c.removeprefix("ss_") for c in ss.channels])
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("secondary structure")
    axes[2].set_xlabel("residue")
    axes[2].legend(loc="upper right", ncol=8, fontsize="small")
    fig.suptitle(record_id)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pairs(path: str | os.PathLike, record_id: str, pair: np.ndarray) -> Path:
    """Heat maps of C-alpha movement correlation and of the summed interaction channels.

    ``pair``: shape=(L, L, 13), channels as ``seqdance.schema.PAIR_CHANNELS``.
    """
    plt = _pyplot()
    col = {name: i for i, name in enumerate(PAIR_CHANNELS)}
    corr = pair[..., col["corr"]]
    interactions = pair[..., [col[name] for name in INTERACTIONS]].sum(-1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    image = axes[0].imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
    axes[0].set_title("movement correlation (corr)")
    fig.colorbar(image, ax=axes[0], fraction=0.046)
    image = axes[1].imshow(interactions, cmap="viridis", origin="lower")
    axes[1].set_title("interactions (sum of " + ", ".join(INTERACTIONS) + ")", fontsize="small")
    fig.colorbar(image, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.set_xlabel("residue j")
        ax.set_ylabel("residue i")
    fig.suptitle(record_id)
    fig.tight_layout()
    return save_figure(fig, path)
