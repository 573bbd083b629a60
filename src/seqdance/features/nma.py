"""Normal mode analysis (NMA) features: GNM band fluctuations and ANM band correlations.

Recipe (docs/nma.md): C-alpha elastic network with distance-dependent
springs (10 up to 4 A, 2 up to 10 A, 1 up to 15 A, none beyond), all non-zero modes, split
into three bands that each carry about a third of the total 1/lambda.

The network matrices are built here with vectorised NumPy (ProDy builds them in a Python
loop over pairs when the spring constant depends on distance, which is slower than the
eigendecomposition for large proteins); ProDy's GNM/ANM objects compute the modes.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqdance.errors import InputFileError
from seqdance.features.structure import read_calphas, structure_stem
from seqdance.schema import N_NMA_BANDS
from seqdance.utils.io import save_npz

CUTOFF = 15.0  # Angstrom; no spring beyond
# (upper bound of the distance in Angstrom, spring constant), tested in order
SPRINGS: tuple[tuple[float, float], ...] = ((4.0, 10.0), (10.0, 2.0), (15.0, 1.0))


@dataclass(frozen=True)
class NMAFeatures:
    gnm_msf: np.ndarray  # (3, N) float64: GNM fluctuation of each residue in each band
    anm_cor: np.ndarray  # (3, N, N) float64: ANM correlation in each band, diagonal 1
    sequence: str  # N one-letter codes


# ----------------------------------------------------------------------------- kernels


def spring_constants(dist2: np.ndarray) -> np.ndarray:
    """Spring constant for each squared distance (Angstrom^2), same shape as ``dist2``."""
    conditions = [dist2 <= bound**2 for bound, _ in SPRINGS]
    return np.select(conditions, [k for _, k in SPRINGS], default=0.0)


def _pair_geometry(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    diff = coords[None, :, :] - coords[:, None, :]  # (N, N, 3): r_j - r_i
    dist2 = np.einsum("ijk,ijk->ij", diff, diff)  # (N, N)
    gamma = spring_constants(dist2)  # (N, N)
    np.fill_diagonal(gamma, 0.0)
    return diff, dist2, gamma


def kirchhoff_matrix(coords: np.ndarray) -> np.ndarray:
    """GNM Kirchhoff (connectivity) matrix, shape (N, N), from C-alpha ``coords`` (N, 3)."""
    _, _, gamma = _pair_geometry(np.asarray(coords, dtype=np.float64))
    kirchhoff = -gamma
    kirchhoff[np.diag_indices_from(kirchhoff)] = gamma.sum(axis=1)
    return kirchhoff


def hessian_matrix(coords: np.ndarray) -> np.ndarray:
    """ANM Hessian, shape (3N, 3N), from C-alpha ``coords`` (N, 3).

    Off-diagonal 3x3 block (i, j) is ``-gamma_ij / d_ij^2 * (r_j - r_i)(r_j - r_i)^T``; each
    diagonal block is minus the sum of the off-diagonal blocks of its row.
    """
    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    diff, dist2, gamma = _pair_geometry(coords)
    scale = np.divide(-gamma, dist2, out=np.zeros_like(gamma), where=gamma != 0)  # (N, N)
    # built directly in (i, a, j, b) order so the final reshape to (3N, 3N) is free
    row = diff.transpose(0, 2, 1)[:, :, :, None]  # (N, 3, N, 1): (r_j - r_i)_a
    col = diff[:, None, :, :]  # (N, 1, N, 3): (r_j - r_i)_b
    hessian = (scale[:, None, :, None] * row) * col  # (N, 3, N, 3)
    idx = np.arange(n)
    hessian[idx, :, idx, :] = -hessian.sum(axis=2)  # diagonal blocks (self term is zero)
    return hessian.reshape(3 * n, 3 * n)


def band_split(eigvals: np.ndarray) -> list[np.ndarray]:
    """Split modes (ascending eigenvalues) into three bands by cumulative 1/lambda weight.

    With ``c`` the cumulative share of 1/lambda: ``i1 = argmin |c - 1/3|``,
    ``i2 = argmin |c - (1 + c[i1]) / 2|``; bands are modes ``[0..i1]``, ``[i1+1..i2]``,
    ``[i2+1..]``. Returns three index arrays (a band may be empty for tiny networks).
    """
    weights = 1.0 / np.asarray(eigvals, dtype=np.float64)
    cumulative = np.cumsum(weights / weights.sum())
    i1 = int(np.argmin(np.abs(cumulative - 1.0 / 3.0)))
    i2 = int(np.argmin(np.abs(cumulative - 0.5 * (1.0 + cumulative[i1]))))
    n = len(cumulative)
    return [np.arange(0, i1 + 1), np.arange(i1 + 1, i2 + 1), np.arange(i2 + 1, n)]


def gnm_band_fluctuations(
    eigvals: np.ndarray, eigvecs: np.ndarray, bands: list[np.ndarray]
) -> np.ndarray:
    """Per-band GNM fluctuations ``sum_k v_k[r]^2 / lambda_k``.

    ``eigvals`` (M,), ``eigvecs`` (N, M); returns (n_bands, N).
    """
    weighted = eigvecs**2 / eigvals[None, :]  # (N, M)
    return np.stack([weighted[:, band].sum(axis=1) for band in bands])


def anm_band_correlations(
    eigvals: np.ndarray, eigvecs: np.ndarray, bands: list[np.ndarray]
) -> np.ndarray:
    """Per-band ANM residue correlations from modes ``eigvecs`` (3N, M), ``eigvals`` (M,).

    The band covariance ``sum_k v_k v_k^T / lambda_k`` (3N, 3N) is reduced to (N, N) by the
    trace of each 3x3 block, computed directly as ``sum_a W_a W_a^T`` with ``W_a`` the rows
    of coordinate ``a`` (3x fewer operations than forming the 3N x 3N matrix), then
    normalised by ``sqrt(msf_i msf_j)``. Returns (n_bands, N, N).
    """
    n = eigvecs.shape[0] // 3
    scaled = eigvecs / np.sqrt(eigvals)[None, :]  # (3N, M)
    per_axis = scaled.reshape(n, 3, -1)  # (N, 3, M)
    out = np.empty((len(bands), n, n))
    for b, band in enumerate(bands):
        cov = np.zeros((n, n))
        for axis in range(3):
            w = np.ascontiguousarray(per_axis[:, axis, band])  # (N, m)
            cov += w @ w.T
        msf = np.diag(cov).copy()  # (N,)
        out[b] = cov / np.sqrt(np.outer(msf, msf))
    return out


def _modes(model_cls, matrix: np.ndarray, setter: str) -> tuple[np.ndarray, np.ndarray]:
    import prody

    prody.LOGGER.verbosity = "none"
    model = model_cls()
    getattr(model, setter)(matrix)
    model.calcModes(n_modes=None, zeros=False)  # all non-zero modes
    return np.asarray(model.getEigvals()), np.asarray(model.getEigvecs())


def compute_nma(coords: np.ndarray, sequence: str = "") -> NMAFeatures:
    """GNM and ANM band features of a C-alpha network ``coords`` (N, 3), Angstrom.

    Raises :class:`ValueError` when the network is too small to give three bands.
    """
    import prody

    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    if n < 4:
        raise ValueError(f"{n} C-alpha atoms are too few for normal mode analysis (need >= 4)")
    _check_network(coords)

    gnm_vals, gnm_vecs = _modes(prody.GNM, kirchhoff_matrix(coords), "setKirchhoff")
    gnm_bands = band_split(gnm_vals)
    anm_vals, anm_vecs = _modes(prody.ANM, hessian_matrix(coords), "setHessian")
    anm_bands = band_split(anm_vals)
    if any(len(b) == 0 for b in gnm_bands + anm_bands):
        raise ValueError(f"{n} C-alpha atoms give too few normal modes for {N_NMA_BANDS} bands")

    gnm_msf = gnm_band_fluctuations(gnm_vals, gnm_vecs, gnm_bands)  # (3, N)
    anm_cor = anm_band_correlations(anm_vals, anm_vecs, anm_bands)  # (3, N, N)
    return NMAFeatures(gnm_msf=gnm_msf, anm_cor=anm_cor, sequence=sequence)


def _check_network(coords: np.ndarray) -> None:
    """Say what is wrong with C-alpha coordinates the normal modes cannot be computed from."""
    if not np.isfinite(coords).all():
        raise ValueError("C-alpha coordinates contain NaN or infinite values")
    n = len(coords)
    if np.ptp(coords, axis=0).max() == 0:
        raise ValueError(f"all {n} C-alpha atoms are at one point (no structure to analyse)")
    _, first, counts = np.unique(coords, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        i = int(first[np.argmax(counts > 1)])
        raise ValueError(
            f"{int((counts[counts > 1]).sum())} C-alpha atoms share positions "
            f"(e.g. residue {i + 1}); overlapping atoms give no normal modes"
        )


# ----------------------------------------------------------------------------- files


def nma_features_of_file(path: str | os.PathLike, chain: str | None = None) -> NMAFeatures:
    """NMA features of the protein C-alphas in one structure file."""
    calphas = read_calphas(path, chain=chain)
    try:
        return compute_nma(calphas.coords, calphas.sequence)
    except ValueError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def write_nma_features(features: NMAFeatures, path: str | os.PathLike) -> Path:
    """Write ``gnm_msf``, ``anm_cor`` and ``sequence`` to an ``.npz`` atomically."""
    save_npz(
        path,
        gnm_msf=features.gnm_msf,
        anm_cor=features.anm_cor,
        sequence=np.array(features.sequence),
    )
    return Path(path)


def output_path_for(structure: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / f"{structure_stem(structure)}.nma.npz"


def extract_nma_file(
    structure: str | os.PathLike, out_dir: str | os.PathLike, chain: str | None = None
) -> Path:
    """Read one structure, compute its NMA features and write ``OUT/{stem}.nma.npz``."""
    features = nma_features_of_file(structure, chain=chain)
    return write_nma_features(features, output_path_for(structure, out_dir))


def load_nma_features(path: str | os.PathLike) -> NMAFeatures:
    """Read an ``.nma.npz`` written by :func:`write_nma_features`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return NMAFeatures(
                gnm_msf=data["gnm_msf"], anm_cor=data["anm_cor"], sequence=str(data["sequence"])
            )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path}: not a valid NMA feature file ({exc})") from None
