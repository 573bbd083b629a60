"""Demo step 5: zero-shot scores of a real deep mutational scan, with the oriented
Spearman of every score column against the measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqdance.benchmark.assays import read_proteingym_assay
from seqdance.benchmark.run import evaluate, score_assay
from seqdance.demo.figures import plot_score_scatter
from seqdance.demo.results import HEADLINE_SCORE, ScoreSummary
from seqdance.schema import resolve_properties
from seqdance.utils.io import atomic_path


def run_scoring(model, assay_csv: Path, out: Path, figures: Path, fmt: str = "png") -> ScoreSummary:
    """Score every variant of a ProteinGym assay file; scores, Spearman table and scatter."""
    assay = read_proteingym_assay(assay_csv)
    frame = score_assay(model, assay, resolve_properties(None))
    scores_csv = out / f"{assay.name}.csv"
    with atomic_path(scores_csv) as tmp:
        frame.to_csv(tmp, index=False)
    rows = evaluate(frame, assay.name)
    spearman_csv = out / "spearman.csv"
    with atomic_path(spearman_csv) as tmp:
        pd.DataFrame(rows, columns=["assay", "property", "spearman", "n"]).to_csv(tmp, index=False)
    scatter = plot_score_scatter(
        figures / f"score_scatter.{fmt}",
        frame[HEADLINE_SCORE].to_numpy(np.float64),
        frame["target"].to_numpy(np.float64),
        title=f"{assay.name}: {HEADLINE_SCORE} (demo model)",
    )
    return ScoreSummary(
        assay=assay.name,
        n_variants=len(assay),
        scores_csv=scores_csv,
        spearman_csv=spearman_csv,
        headline=HEADLINE_SCORE,
        spearman={r["property"]: float(r["spearman"]) for r in rows},
        scatter_png=scatter,
    )
