"""Mean embeddings against a measured property (the paper's embedding analysis).

Each sequence is embedded as the mean over all its tokens of the model's last hidden state,
``<cls>`` and ``<eos>`` included, in one pass at any length: the authors' notebook
(``embedding_conformation_property.ipynb``: ``res_emb.mean(dim=1)``). ``residues_only`` takes
the mean over the residues instead (special tokens excluded, as ``seqdance embed`` and the
fair-esm convention; long sequences windowed as ``predict``). Principal components are fitted
on the train rows only (centred by the train mean), a linear regression with intercept is
fitted on the train rows' component scores, and Pearson r and the mean squared error are
reported on the test rows, as in the authors' notebook (200 components there).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr, spearmanr

from seqdance.alphabet import check_sequence
from seqdance.analysis.plots import prediction_scatter
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.inference.embed import embed
from seqdance.inference.predict import make_batches
from seqdance.model.alphabet import batch_encode
from seqdance.utils.figures import figure_name
from seqdance.utils.io import atomic_path
from seqdance.utils.progress import progress_bar

SPLITS = ("train", "test")


@dataclass(frozen=True)
class EmbeddingConfig:
    """Columns of the input table and the regression's size."""

    target: str
    sequence_column: str = "sequence"
    split_column: str = "split"
    id_column: str | None = None  # default: "name" when the table has it, else row numbers
    components: int = 200
    token_budget: int = 4096
    progress: bool = False
    residues_only: bool = False  # mean over residues instead of all tokens (the authors')


@dataclass
class PcaRegression:
    """PCA (fitted on train rows) followed by linear regression on the component scores.

    mean: (E,); components: (k, E) orthonormal rows; coef: (k,); intercept: float.
    """

    mean: np.ndarray
    components: np.ndarray
    coef: np.ndarray
    intercept: float

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Component scores, (N, E) -> (N, k)."""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted targets, (N, E) -> (N,)."""
        return self.transform(x) @ self.coef + self.intercept


def fit_pca_regression(x: np.ndarray, y: np.ndarray, n_components: int) -> PcaRegression:
    """Fit PCA with ``n_components`` on ``x`` (N, E), then least squares of ``y`` (N,) on it.

    ``n_components`` must not exceed ``min(N - 1, E)``: the centred matrix has rank at most
    N - 1, so further components would only be rounding noise.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, width = x.shape
    if not 1 <= n_components <= min(n - 1, width):
        raise SeqDanceError(
            f"{n_components} components need at least {n_components + 1} train rows and "
            f"{n_components} embedding dimensions (have {n} rows, {width} dimensions)"
        )
    mean = x.mean(axis=0)  # (E,)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)  # vt: (min(N, E), E)
    components = vt[:n_components]  # (k, E)
    scores = (x - mean) @ components.T  # (N, k)
    design = np.hstack([scores, np.ones((n, 1))])  # (N, k + 1)
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    return PcaRegression(mean, components, solution[:-1], float(solution[-1]))


@dataclass
class EmbeddingAnalysis:
    """Predictions for every row and the test metrics."""

    predictions: pd.DataFrame  # id, split, measured, predicted
    metrics: dict


def read_property_table(path: str | os.PathLike, config: EmbeddingConfig) -> pd.DataFrame:
    """Read and check the input table; returns columns ``id, sequence, split, measured``.

    Rows whose target is empty are left out (counted in the metrics). A missing column, a
    split value other than train/test, a non-numeric target, an invalid residue letter, or
    an empty train or test set raise :class:`SeqDanceError` naming the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such table")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001  (pandas raises many kinds)
        raise InputFileError(f"{path}: not a readable CSV ({exc})") from None
    id_column = config.id_column or ("name" if "name" in table.columns else None)
    wanted = [config.sequence_column, config.split_column, config.target]
    wanted += [id_column] if id_column else []
    missing = [c for c in dict.fromkeys(wanted) if c not in table.columns]
    if missing:
        raise InputFileError(
            f"{path}: no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(table.columns)})"
        )
    ids = (
        table[id_column].str.strip()
        if id_column
        else pd.Series([str(i) for i in range(1, len(table) + 1)], index=table.index)
    )
    split = table[config.split_column].str.strip().str.lower()
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise SeqDanceError(
            f"{path}: column {config.split_column!r} has values {', '.join(map(repr, bad))}; "
            "only 'train' and 'test' are allowed"
        )
    raw_target = table[config.target].str.strip()
    measured = pd.to_numeric(raw_target.replace("", np.nan), errors="coerce")
    not_numbers = raw_target[(raw_target != "") & measured.isna()]
    if len(not_numbers):
        row = int(not_numbers.index[0])
        raise SeqDanceError(
            f"{path}: column {config.target!r} row {row + 1} ({ids[row]}): "
            f"{not_numbers.iloc[0]!r} is not a number"
        )
    if not np.isfinite(measured.dropna()).all():
        raise SeqDanceError(f"{path}: column {config.target!r} has infinite values")
    sequences = [
        check_sequence(str(rid), seq.strip())
        for rid, seq in zip(ids, table[config.sequence_column], strict=True)
    ]
    out = pd.DataFrame({"id": ids, "sequence": sequences, "split": split, "measured": measured})
    out = out[out["measured"].notna()].reset_index(drop=True)
    out.attrs["n_skipped"] = int(len(table) - len(out))
    for name in SPLITS:
        if not (out["split"] == name).any():
            raise SeqDanceError(
                f"{path}: no {name} rows with a {config.target!r} value "
                f"(column {config.split_column!r})"
            )
    return out


def mean_embeddings(
    model,
    sequences: list[str],
    *,
    token_budget: int = 4096,
    progress=False,
    residues_only: bool = False,
):
    """Mean of the last hidden state over all T = L + 2 tokens (the authors'), or over the L
    residues with ``residues_only``; (N, E) float64."""
    if residues_only:
        out: list[np.ndarray | None] = [None] * len(sequences)
        items = embed(model, sequences, token_budget=token_budget, progress=progress)
        for index, residues in items:
            out[index] = residues.mean(axis=0, dtype=np.float64)  # (E,)
        return np.stack(out)  # type: ignore[arg-type]
    return token_mean_embeddings(model, sequences, token_budget=token_budget, progress=progress)


def token_mean_embeddings(model, sequences: list[str], *, token_budget: int = 4096,
                          progress: bool = False) -> np.ndarray:  # fmt: skip
    """Mean over every token (``<cls>``, residues, ``<eos>``) of the last hidden state, each
    sequence in one pass whatever its length; (N, E) float64."""
    checked = [check_sequence(f"#{i + 1}", s) for i, s in enumerate(sequences)]
    device = next(model.parameters()).device
    out: list[np.ndarray | None] = [None] * len(checked)
    with progress_bar(total=len(checked), desc="embed", unit="seq", enabled=progress) as bar:
        for batch in make_batches([len(s) for s in checked], token_budget):
            ids, mask = batch_encode([checked[i] for i in batch])  # (B, T), (B, T)
            with torch.no_grad():
                hidden = model(ids.to(device), mask.to(device), pair=False,
                               return_embeddings=True).embeddings  # (B, T, E)  # fmt: skip
            for row, index in enumerate(batch):
                n = len(checked[index]) + 2  # <cls> + residues + <eos>; padding excluded
                out[index] = hidden[row, :n].double().mean(0).cpu().numpy()  # (E,)
            bar.update(len(batch))
    return np.stack(out)  # type: ignore[arg-type]


def regression_metrics(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Pearson r, Spearman rho and mean squared error (NaN correlations for < 2 rows)."""
    measured = np.asarray(measured, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    mse = float(np.mean((measured - predicted) ** 2))
    if len(measured) < 2 or np.ptp(measured) == 0 or np.ptp(predicted) == 0:
        return {"pearson_r": float("nan"), "spearman_rho": float("nan"), "mse": mse}
    return {
        "pearson_r": float(pearsonr(measured, predicted)[0]),
        "spearman_rho": float(spearmanr(measured, predicted)[0]),
        "mse": mse,
    }


def analyze_embeddings(
    model, table_path: str | os.PathLike, config: EmbeddingConfig
) -> EmbeddingAnalysis:
    """Embed every row, fit PCA + linear regression on train rows, score the test rows."""
    if config.components < 1:
        raise SeqDanceError(f"--components must be at least 1, not {config.components}")
    table = read_property_table(table_path, config)
    train = (table["split"] == "train").to_numpy()
    n_train = int(train.sum())
    if n_train < 2:
        raise SeqDanceError(f"{table_path}: at least 2 train rows are needed, found {n_train}")
    x = mean_embeddings(
        model, list(table["sequence"]), token_budget=config.token_budget,
        progress=config.progress, residues_only=config.residues_only,
    )  # (N, E)  # fmt: skip
    k = min(config.components, n_train - 1, x.shape[1])
    fit = fit_pca_regression(x[train], table["measured"].to_numpy()[train], k)
    predicted = fit.predict(x)  # (N,)
    predictions = table[["id", "split", "measured"]].assign(predicted=predicted)
    test = ~train
    metrics = {
        "target": config.target,
        **regression_metrics(predictions["measured"][test], predicted[test]),
        "train_pearson_r": regression_metrics(predictions["measured"][train], predicted[train])[
            "pearson_r"
        ],
        "n_train": n_train,
        "n_test": int(test.sum()),
        "n_skipped_missing_target": int(table.attrs.get("n_skipped", 0)),
        "components_requested": config.components,
        "components": k,
        "embedding_dim": int(x.shape[1]),
        "explained_variance_ratio": _explained(x[train], fit),
        "config": asdict(config),
    }
    return EmbeddingAnalysis(predictions, metrics)


def _explained(x_train: np.ndarray, fit: PcaRegression) -> float:
    centred = x_train - fit.mean
    total = float((centred**2).sum())
    kept = float((fit.transform(x_train) ** 2).sum())
    return kept / total if total > 0 else float("nan")


def write_embedding_outputs(
    analysis: EmbeddingAnalysis, out_dir: str | os.PathLike, fmt: str = "png"
) -> list[Path]:
    """``metrics.json``, ``predictions.csv`` and ``predictions.{fmt}`` (png, svg or pdf) in
    ``out_dir``."""
    out_dir = Path(out_dir)
    metrics_path = out_dir / "metrics.json"
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(_jsonable(analysis.metrics), indent=2) + "\n")
    table_path = out_dir / "predictions.csv"
    with atomic_path(table_path) as tmp:
        analysis.predictions.to_csv(tmp, index=False, float_format="%.6g")
    m = analysis.metrics
    plot_path = prediction_scatter(
        analysis.predictions["measured"].to_numpy(),
        analysis.predictions["predicted"].to_numpy(),
        analysis.predictions["split"].to_numpy(),
        m["target"],
        f"test: Pearson r = {m['pearson_r']:.3f}, MSE = {m['mse']:.3g} "
        f"({m['components']} PCs, n = {m['n_test']})",
        out_dir / figure_name("predictions", fmt),
    )
    return [metrics_path, table_path, plot_path]


def _jsonable(value):
    """NaN -> None so that metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
