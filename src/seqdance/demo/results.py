"""What each demo step returns, and the whole demo's :class:`DemoReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HEADLINE_SCORE = "norm_geometric_mean"  # the paper's headline SeqDance combination
TINY_NOTE = (
    "The demo model is tiny (2 layers, hidden size 32) and trained for seconds on six "
    "small proteins: its predictions and scores are NOT meaningful. Real predictions use the "
    "published "
    "weights, downloaded once: `--model ChaoHou/SeqDance` or `--model ChaoHou/ESMDance` "
    "(e.g. `seqdance predict --model ChaoHou/SeqDance ...`)."
)


@dataclass
class FeatureSummary:
    """A few numbers describing one protein's extracted features."""

    name: str
    kind: str
    source: str
    label: str
    n_residues: int
    n_frames: int | None  # MD only
    values: dict[str, float]  # summary name -> value
    files: list[Path]


@dataclass
class TrainSummary:
    steps: int
    first_loss: float  # mean loss over the first logged updates
    final_loss: float  # mean loss over the last logged updates
    seconds: float
    checkpoint: Path
    log: Path
    test_rmse: dict[str, float] = field(default_factory=dict)  # feature -> RMSE on test proteins


@dataclass
class Prediction:
    name: str
    sequence: str
    residue_tsv: Path
    pair_npz: Path
    profile_png: Path
    pair_png: Path


@dataclass
class ScoreSummary:
    assay: str
    n_variants: int
    scores_csv: Path
    spearman_csv: Path
    headline: str
    spearman: dict[str, float]  # score column -> oriented Spearman
    scatter_png: Path


@dataclass
class DemoReport:
    """Everything the demo did; ``report_path`` is the human-readable report."""

    out_dir: Path
    report_path: Path
    device: str
    features: list[FeatureSummary]
    dataset_dir: Path
    n_train: int
    n_test: int
    train: TrainSummary
    predictions: list[Prediction]
    scores: ScoreSummary
    figures: dict[str, Path]  # caption key -> PNG
    timings: dict[str, float]  # step -> seconds
    html_path: Path | None = None  # the interactive report (report.html)
    note: str = TINY_NOTE
