"""The demo's Markdown report (written last, atomically), from a :class:`DemoReport`."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from seqdance.demo.inputs import PROTEINS
from seqdance.demo.results import DemoReport
from seqdance.utils.io import atomic_path

REPORT_NAME = "report.md"
N_TOP_SCORES = 8  # best-correlated score columns listed in the report


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "nan"
    return f"{value:.4g}"


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_report(report: DemoReport) -> str:
    """The Markdown text of the report (paths relative to the report's folder)."""
    root = report.report_path.parent
    note = {p.name: p.note for p in PROTEINS}
    lines = [
        "# SeqDance demo report",
        "",
        f"> **Note.** {report.note}",
        "",
        "This demo ran the whole `seqdance` pipeline on small real inputs shipped inside the "
        "package (origins in `inputs/README.md`): dynamic features from MD trajectories and "
        "structures, a training dataset, a short training run, predictions, and zero-shot "
        "mutation scores checked against a deep mutational scan.",
        "",
        f"Device: `{report.device}`. Time per step: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
        + f" (total {sum(report.timings.values()):.1f} s).",
        "",
        "## 1. Features",
        "",
        "MD features (RMSF, SASA, secondary structure, dihedral distributions, interactions "
        "detected natively, movement correlation) of two all-atom trajectories, and NMA "
        "features (GNM fluctuations and ANM correlations in three frequency bands) of five "
        "structures; files in `features/`.",
        "",
    ]
    md = [f for f in report.features if f.kind == "md"]
    nma = [f for f in report.features if f.kind == "nma"]
    for group in (md, nma):
        if not group:
            continue
        keys = list(group[0].values)
        header = ["protein", "origin", "residues", *(["frames"] if group is md else []), *keys]
        rows = []
        for f in group:
            frames = [_fmt(f.n_frames)] if group is md else []
            values = [_fmt(f.values[k]) for k in keys]
            rows.append([f"`{f.name}`", note[f.name], _fmt(f.n_residues), *frames, *values])
        lines += [*_table(header, rows), ""]

    md_figures = [k for k in ("md_profiles", "md_pairs") if k in report.figures]
    if md_figures:
        lines += [
            f"The MD features of `{md[0].name}` as the model is trained to predict them "
            "(RMSF divided by its maximum, interaction counts per frame cube-rooted):",
            "",
        ]
        for key in md_figures:
            lines += [f"![{key}]({_rel(report.figures[key], root)})", ""]

    lines += [
        "## 2. Dataset",
        "",
        f"`dataset/features.h5` + `dataset/index.csv` built from `dataset/manifest.csv` "
        f"({report.n_train} training and {report.n_test} test proteins; the labels are set in "
        "the manifest here, a real dataset is split by sequence clusters with "
        "`seqdance dataset split`), and `dataset/loss_weights.json` (per-feature loss weights "
        "from the training proteins).",
        "",
        "## 3. Training",
        "",
        f"{report.train.steps} updates of a 2-layer model (hidden size 32) in "
        f"{report.train.seconds:.1f} s. Loss (mean over the first logged updates) "
        f"**{report.train.first_loss:.4f}** -> (last logged updates) "
        f"**{report.train.final_loss:.4f}**. Log: `{_rel(report.train.log, root)}`; model: "
        f"`{_rel(report.train.checkpoint, root)}` (loadable with `--model`).",
        "",
        f"![training curve]({_rel(report.figures['training_curve'], root)})",
        "",
    ]
    if report.train.test_rmse:
        rmse = report.train.test_rmse
        lines += [
            "RMSE on the held-out protein(s) per feature: "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in rmse.items())
            + ".",
            "",
        ]

    lines += [
        "## 4. Predictions",
        "",
        "Per-residue outputs (`predictions/NAME.residue.csv`, 50 columns) and pair outputs "
        "(`predictions/NAME.pair.npz`, 13 arrays) of the demo model. **These are the tiny "
        "model's guesses, not real predictions.**",
        "",
    ]
    for p in report.predictions:
        lines += [
            f"### `{p.name}` ({len(p.sequence)} residues)",
            "",
            f"![{p.name} profiles]({_rel(p.profile_png, root)})",
            "",
            f"![{p.name} pair maps]({_rel(p.pair_png, root)})",
            "",
        ]

    s = report.scores
    headline = s.spearman[s.headline]
    ranked = sorted(
        ((k, v) for k, v in s.spearman.items() if math.isfinite(v)), key=lambda kv: -kv[1]
    )
    lines += [
        "## 5. Zero-shot mutation scores",
        "",
        f"Every variant of the deep mutational scan `{s.assay}` ({s.n_variants} variants) "
        "scored by the predicted relative change of all 63 outputs "
        f"(`{_rel(s.scores_csv, root)}`; Spearman of every column in "
        f"`{_rel(s.spearman_csv, root)}`). Spearman is oriented: positive = the score predicts "
        "fitness.",
        "",
        f"**Spearman ({s.headline}) = {headline:.4f}** (n = {s.n_variants})",
        "",
        f"![score vs measurement]({_rel(s.scatter_png, root)})",
        "",
        f"Best {min(N_TOP_SCORES, len(ranked))} score columns (with a tiny model and "
        f"{s.n_variants} variants these are noise):",
        "",
        *_table(["score", "Spearman"], [[f"`{k}`", f"{v:.4f}"] for k, v in ranked[:N_TOP_SCORES]]),
        "",
        *_html_section(report, root),
        "## Next steps",
        "",
        "- Real predictions: `seqdance predict seqs.fasta --model ChaoHou/SeqDance --out preds/ "
        "--plots` (or `ChaoHou/ESMDance`); the weights are downloaded once.",
        "- Real mutation scores: `seqdance score --model ChaoHou/SeqDance --mutations dms.csv "
        "--fasta wt.fasta --out scores.csv`.",
        "",
    ]
    return "\n".join(lines)


def _html_section(report: DemoReport, root: Path) -> list[str]:
    if report.html_path is None:
        return []
    return [
        "## 6. Interactive report",
        "",
        f"Open [{_rel(report.html_path, root)}]({_rel(report.html_path, root)}) in a browser "
        "(offline, one file): the predicted profiles and pair maps, a saturation scan's heat "
        "map and the structure in 3D, linked by residue.",
        "",
    ]


def write_report(report: DemoReport) -> Path:
    """Write ``report.report_path`` atomically (a report is either complete or absent)."""
    with atomic_path(report.report_path) as tmp:
        tmp.write_text(render_report(report))
    return report.report_path
