"""The quick-start demo: the whole pipeline on real data shipped inside the package.

``run_demo(out_dir)`` copies the bundled inputs into ``out_dir/inputs`` and then runs, each
step with the library's own functions:

1. features: MD features of two trajectories (interactions detected natively, no GetContacts)
   and NMA features of five structures, written as ``seqdance features`` writes them;
2. dataset: a manifest with train/test labels (no MMseqs2 needed), ``build_dataset`` and the
   loss weights;
3. training: a 2-layer, 32-wide model for 1,000 updates (about 30 s on one CPU core);
4. predictions: residue tables, pair arrays and plots for three sequences;
5. zero-shot scores of a real deep mutational scan, with Spearman against the measurements;
6. ``report.md``: what was done, the numbers and the figures, written last and atomically.

The folder must be new or empty: an interrupted demo is not resumed (the partial folder has
no ``report.md``); run it again into a new folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from seqdance.errors import SeqDanceError

DEFAULT_STEPS = 1000
QUICK_STEPS = 40
HEADLINE_SCORE = "norm_geometric_mean"  # the paper's headline SeqDance combination
TINY_NOTE = (
    "The demo model is tiny (2 layers, hidden size 32) and trained for seconds on six "
    "small proteins: its predictions and scores are NOT meaningful. Real predictions use the "
    "published "
    "weights, downloaded once: `--model ChaoHou/SeqDance` or `--model ChaoHou/ESMDance` "
    "(e.g. `seqdance predict --model ChaoHou/SeqDance ...`)."
)


# -- the bundled inputs --------------------------------------------------------------------
@dataclass(frozen=True)
class DemoProtein:
    """One bundled protein of the training set."""

    name: str
    source: str  # dataset source (selects the training data group)
    kind: str  # md or nma
    files: tuple[str, ...]  # md: (topology, trajectory); nma: (structure,); under data/
    label: str  # train or test
    note: str


PROTEINS: tuple[DemoProtein, ...] = (
    DemoProtein("3tvj_I", "ATLAS", "md", ("md/3tvj_I.pdb", "md/3tvj_I_10frames.dcd"), "train",
                "ATLAS all-atom MD, 10 frames"),
    DemoProtein("5xnd", "mdCATH", "md", ("md/5xnd_topology.pdb", "md/5xnd_6frames.dcd"), "train",
                "GetContacts test trajectory, 6 frames"),
    DemoProtein("2g3r", "proteinflow_pdb", "nma", ("structures/2g3r.pdb",), "train",
                "PDB 2G3R (authors' NMA reference)"),
    DemoProtein("1GJS", "proteinflow_pdb", "nma", ("structures/1GJS.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("1I6C", "proteinflow_pdb", "nma", ("structures/1I6C.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("2M8I", "proteinflow_pdb", "nma", ("structures/2M8I.pdb",), "train",
                "mega-scale wild type"),
    DemoProtein("2KCF", "proteinflow_pdb", "nma", ("structures/2KCF.pdb",), "test",
                "mega-scale wild type (held out)"),
)  # fmt: skip
ASSAY = "assay/F7YBW8_MESOW_Aakre_2015.csv"  # the wild type is the .fasta beside it
PREDICTED = ("3tvj_I", "2KCF")  # plus the assay's wild type


def bundled_data() -> Path:
    """The folder of the demo's bundled inputs (inside the installed package)."""
    return Path(str(resources.files("seqdance.demo") / "data"))


# -- results -------------------------------------------------------------------------------
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
    note: str = TINY_NOTE


# -- steps ---------------------------------------------------------------------------------
def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqDanceError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        done = " (it holds a finished demo)" if (out_dir / "report.md").exists() else ""
        raise SeqDanceError(
            f"{out_dir} is not empty{done}; the demo writes into a new or empty folder "
            "and does not resume: remove it or choose another --out"
        )


def copy_inputs(inputs: Path) -> None:
    """Copy the bundled data (with its README of origins) to ``inputs``."""
    shutil.copytree(bundled_data(), inputs, ignore=shutil.ignore_patterns("__pycache__"))


def extract_features(
    inputs: Path, out: Path, figures: Path, progress: bool
) -> tuple[list[FeatureSummary], dict[str, Path]]:
    """MD features (native interaction detection) and NMA features of every demo protein,
    and figures of the MD features of the first trajectory (the training targets)."""
    from tqdm.auto import tqdm

    from seqdance.features.md import md_features, write_md_features
    from seqdance.features.nma import nma_features_of_file, write_nma_features
    from seqdance.inference.plots import plot_pairs, plot_profiles
    from seqdance.schema import INTERACTIONS

    summaries = []
    plots: dict[str, Path] = {}
    for protein in tqdm(PROTEINS, desc="features", unit="protein", disable=not progress):
        paths = [inputs / f for f in protein.files]
        if protein.kind == "md":
            md = md_features(paths[0], paths[1])
            files = list(write_md_features(md, out / "md" / protein.name))
            if not plots:
                residue, pair = md_output_arrays(md)
                title = f"{protein.name}: features from its MD trajectory ({md.n_frames} frames)"
                plots["md_profiles"] = plot_profiles(
                    figures / f"{protein.name}_md_profiles.png", title, residue
                )
                plots["md_pairs"] = plot_pairs(
                    figures / f"{protein.name}_md_pairs.png", title, pair
                )
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


def md_output_arrays(md) -> tuple[np.ndarray, np.ndarray]:
    """MD features laid out like the model's outputs, for plotting them with the same code.

    Returns residue (L, 50) and pair (L, L, 13) arrays: RMSF divided by its maximum
    (``rmsf_nor``), interaction counts cube-rooted (the stored training targets), NMA
    channels NaN.
    """
    from seqdance.features.md import FEATURE_COLUMNS, PAIR_KEYS
    from seqdance.schema import CUBE_ROOT_CHANNELS, PAIR_CHANNELS, RESIDUE_CHANNELS, output_slice

    n = len(md.sequence)
    values = np.array(md.residues[list(FEATURE_COLUMNS)], dtype=np.float64)  # (L, 47) copy
    rmsf = FEATURE_COLUMNS.index("rmsf")
    values[:, rmsf] /= np.nanmax(values[:, rmsf])
    residue = np.full((n, len(RESIDUE_CHANNELS)), np.nan)
    residue[:, output_slice("residue", "md")] = values
    stacked = np.stack(
        [np.cbrt(md.pair[k]) if k in CUBE_ROOT_CHANNELS else md.pair[k] for k in PAIR_KEYS], -1
    )  # (L, L, 10)
    pair = np.full((n, n, len(PAIR_CHANNELS)), np.nan)
    pair[..., output_slice("pair", "md")] = stacked
    return residue, pair


def build_demo_dataset(inputs: Path, out: Path, progress: bool) -> tuple[int, int]:
    """Manifest with labels, ``build_dataset`` and loss weights; returns (n_train, n_test)."""
    import pandas as pd

    from seqdance.data.build import BuildConfig, build_dataset
    from seqdance.data.loss_weights import WEIGHTS_FILE, compute_loss_weights
    from seqdance.utils.io import atomic_path

    rows = []
    for p in PROTEINS:
        paths = [str(inputs / f) for f in p.files]
        rows.append(
            {
                "name": p.name,
                "source": p.source,
                "kind": p.kind,
                "topology": paths[0] if p.kind == "md" else "",
                "trajectory": paths[1] if p.kind == "md" else "",
                "structure": paths[0] if p.kind == "nma" else "",
                "label": p.label,
            }
        )
    manifest = out / "manifest.csv"
    with atomic_path(manifest) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    report = build_dataset(manifest, out, BuildConfig(workers=1, progress=progress))
    if not report.ok:
        reasons = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
        raise SeqDanceError(f"demo dataset build failed: {reasons}")
    compute_loss_weights(out, label="train").save(out / WEIGHTS_FILE)
    n_train = sum(p.label == "train" for p in PROTEINS)
    return n_train, len(PROTEINS) - n_train


def demo_train_config(dataset: Path, out: Path, steps: int, device: str, progress: bool):
    """The tiny model's training configuration (``configs/tiny.yaml``'s values, in code)."""
    from seqdance.train.config import (
        Config,
        DataConfig,
        ModelConfig,
        OptimConfig,
        Phase,
        TrainConfig,
    )

    # every bundled training protein is trained on: the demo's mdCATH protein (5xnd) joins
    # the MD group, which the authors' training loader draws from ATLAS, GPCRmd and PED only
    groups = DataConfig().groups
    for group in groups:
        if group.kind == "md" and "ATLAS" in group.sources:
            group.sources.append("mdCATH")
    return Config(
        data=DataConfig(dir=str(dataset), label="train", groups=groups),
        model=ModelConfig(arch="tiny", layers=2, hidden=32, heads=4, ffn=64, dropout=0.1),
        optim=OptimConfig(lr=3e-3, warmup_steps=max(1, steps // 20)),
        train=TrainConfig(
            max_steps=steps,
            save_every=steps,
            log_every=max(1, steps // 40),
            phases=[Phase(crop_size=64, batch_size=2, accum_steps=1)],
            device=device,
            precision="fp32",
            progress=progress,
        ),
        seed=0,
        out_dir=str(out),
    ).validate()


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_training(dataset: Path, out: Path, steps: int, device: str, progress: bool) -> TrainSummary:
    from seqdance.train.loop import LOG_FILE, train

    clock = time.perf_counter()
    result = train(demo_train_config(dataset, out, steps, device, progress))
    seconds = time.perf_counter() - clock
    log = read_log(out / LOG_FILE)
    if not log or not result.checkpoints:
        raise SeqDanceError(f"training wrote no log or checkpoint in {out}")
    return TrainSummary(
        steps=result.step,
        first_loss=float(log[0]["loss"]),
        final_loss=float(log[-1]["loss"]),
        seconds=seconds,
        checkpoint=result.checkpoints[-1],
        log=out / LOG_FILE,
    )


def evaluate_test(model, dataset: Path) -> dict[str, float]:
    """Per-feature RMSE of the trained model on the held-out proteins."""
    from seqdance.train.evaluate import EvalConfig, evaluate_model

    metrics = evaluate_model(model, dataset, EvalConfig(label="test"))
    return {k: float(v) for k, v in metrics["features"].items()}


def run_predictions(model, sequences: dict[str, str], out: Path, figures: Path, progress: bool):
    from seqdance.inference.plots import plot_pairs, plot_profiles
    from seqdance.inference.predict import predict, write_pair_npz, write_residue_tsv

    names = list(sequences)
    outputs = predict(model, [sequences[n] for n in names], progress=progress)
    results = []
    for name, output in zip(names, outputs, strict=True):
        title = f"{name}: demo model prediction (tiny model, not meaningful)"
        results.append(
            Prediction(
                name=name,
                sequence=sequences[name],
                residue_tsv=write_residue_tsv(
                    out / f"{name}.residue.tsv", sequences[name], output.residue
                ),
                pair_npz=write_pair_npz(out / f"{name}.pair.npz", output.pair),
                profile_png=plot_profiles(figures / f"{name}_profiles.png", title, output.residue),
                pair_png=plot_pairs(figures / f"{name}_pairs.png", title, output.pair),
            )
        )
    return results


def run_scoring(model, assay_csv: Path, out: Path, figures: Path) -> ScoreSummary:
    import pandas as pd

    from seqdance.benchmark.assays import read_proteingym_assay
    from seqdance.benchmark.run import evaluate, score_assay
    from seqdance.schema import resolve_properties
    from seqdance.utils.io import atomic_path

    assay = read_proteingym_assay(assay_csv)
    frame = score_assay(model, assay, resolve_properties(None))
    scores_csv = out / f"{assay.name}.csv"
    with atomic_path(scores_csv) as tmp:
        frame.to_csv(tmp, index=False)
    rows = evaluate(frame, assay.name)
    spearman_csv = out / "spearman.csv"
    with atomic_path(spearman_csv) as tmp:
        pd.DataFrame(rows, columns=["assay", "property", "spearman", "n"]).to_csv(tmp, index=False)
    from seqdance.demo.report import plot_score_scatter

    scatter = plot_score_scatter(
        figures / "score_scatter.png",
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


def _resolve_device(device: str) -> str:
    import torch

    try:
        parsed = torch.device(device) if device != "auto" else None
    except RuntimeError:
        raise SeqDanceError(f"--device {device}: not a device (auto, cpu, cuda, cuda:N)") from None
    if parsed is not None and parsed.type not in ("cpu", "cuda"):
        raise SeqDanceError(f"--device {device}: the demo runs on cpu or cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeqDanceError(f"--device {device}: no CUDA device is available")
    return device


@contextlib.contextmanager
def _one_thread_on_cpu(device: str) -> Iterator[None]:
    """One BLAS/OpenMP thread while the demo runs on the CPU.

    The tiny model's operations are far too small to share between threads: on a busy
    2-core machine two threads made 40 updates take 70 s instead of 3 s.
    """
    if device != "cpu":
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def _echo(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=None)


# -- the demo ------------------------------------------------------------------------------
def run_demo(
    out_dir: str | os.PathLike,
    *,
    steps: int | None = None,
    quick: bool = False,
    device: str = "auto",
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the whole pipeline on the bundled data into ``out_dir`` (new or empty).

    Parameters
    ----------
    out_dir : path
        Output folder; must not exist or be empty (the demo does not resume).
    steps : int, optional
        Training updates (default 1,000, or 40 with ``quick``).
    quick : bool
        Fewer updates (the test suite's setting).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    progress : bool
        Show the library's progress bars.
    echo : callable, optional
        Receives one line per step (default: printed on the console).

    Returns
    -------
    DemoReport
        The numbers and files; ``report_path`` (``out_dir/report.md``) is written last.
    """
    say = echo or _echo
    out_dir = Path(out_dir).absolute()  # the manifest's paths must not depend on the cwd
    _check_out_dir(out_dir)
    steps = steps if steps is not None else (QUICK_STEPS if quick else DEFAULT_STEPS)
    if steps < 2:
        raise SeqDanceError(f"--steps must be at least 2 (got {steps})")
    device = _resolve_device(device)
    with _one_thread_on_cpu(device):
        return _run(out_dir, steps, device, progress, say)


def _run(
    out_dir: Path, steps: int, device: str, progress: bool, say: Callable[[str], None]
) -> DemoReport:
    from seqdance.demo.report import plot_training_curve, write_report
    from seqdance.model import load_model

    out_dir.mkdir(parents=True, exist_ok=True)
    figures = out_dir / "figures"
    timings: dict[str, float] = {}
    say("NOTE: " + TINY_NOTE)

    def step(number: int, title: str):
        say(f"[{number}/6] {title}")
        return time.perf_counter()

    clock = step(1, "features: MD of 2 trajectories (native contacts), NMA of 5 structures")
    inputs = out_dir / "inputs"
    copy_inputs(inputs)
    features, feature_plots = extract_features(inputs, out_dir / "features", figures, progress)
    timings["features"] = time.perf_counter() - clock

    clock = step(2, "dataset: manifest with train/test labels, build, loss weights")
    dataset = out_dir / "dataset"
    n_train, n_test = build_demo_dataset(inputs, dataset, progress)
    timings["dataset"] = time.perf_counter() - clock

    clock = step(3, f"training: tiny model, {steps} updates on {device}")
    training = run_training(dataset, out_dir / "train", steps, device, progress)
    curve = plot_training_curve(figures / "training_curve.png", read_log(training.log))
    model = load_model(training.checkpoint, device=device)
    training.test_rmse = evaluate_test(model, dataset)
    timings["training"] = time.perf_counter() - clock
    say(f"      loss {training.first_loss:.4f} -> {training.final_loss:.4f}")

    clock = step(4, "predictions: residue profiles and pair maps of 3 sequences")
    from seqdance.inference.fasta import read_fasta

    assay_csv = inputs / ASSAY
    wild_type = read_fasta(assay_csv.with_suffix(".fasta"))[0].sequence
    sequences = {f.name: _sequence_of(f) for f in features if f.name in PREDICTED}
    sequences[assay_csv.stem.split("_")[0]] = wild_type
    predictions = run_predictions(model, sequences, out_dir / "predictions", figures, progress)
    timings["predictions"] = time.perf_counter() - clock

    clock = step(5, "zero-shot scores of a deep mutational scan, Spearman vs measurements")
    scores = run_scoring(model, assay_csv, out_dir / "scores", figures)
    timings["scores"] = time.perf_counter() - clock
    say(f"      Spearman ({scores.headline}) = {scores.spearman[scores.headline]:.3f}")

    step(6, "report")
    figure_files = {**feature_plots, "training_curve": curve, "score_scatter": scores.scatter_png}
    for p in predictions:
        figure_files[f"{p.name}_profiles"] = p.profile_png
        figure_files[f"{p.name}_pairs"] = p.pair_png
    report = DemoReport(
        out_dir=out_dir,
        report_path=out_dir / "report.md",
        device=device,
        features=features,
        dataset_dir=dataset,
        n_train=n_train,
        n_test=n_test,
        train=training,
        predictions=predictions,
        scores=scores,
        figures=figure_files,
        timings=timings,
    )
    write_report(report)
    say(f"report: {report.report_path}")
    say("NOTE: " + TINY_NOTE)
    return report


def _sequence_of(summary: FeatureSummary) -> str:
    """The sequence stored with a protein's feature file."""
    path = summary.files[-1]  # md: PREFIX.pair.npz; nma: NAME.nma.npz
    with np.load(path, allow_pickle=False) as data:
        return str(data["sequence"])
