"""The quick-start demo: the whole pipeline on real data shipped inside the package.

``run_demo(out_dir)`` copies the bundled inputs (:mod:`seqdance.demo.inputs`) into
``out_dir/inputs`` and then runs, each step with the library's own functions:

1. features (:mod:`~seqdance.demo.features`): MD features of two trajectories (interactions
   detected natively, no GetContacts) and NMA features of five structures, written as
   ``seqdance features`` writes them;
2. dataset (:mod:`~seqdance.demo.dataset`): a manifest with train/test labels (no MMseqs2
   needed), ``build_dataset`` and the loss weights;
3. training (:mod:`~seqdance.demo.training`): a 2-layer, 32-wide model for 1,000 updates
   (about 30 s on one CPU core);
4. predictions (:mod:`~seqdance.demo.predictions`): residue tables, pair arrays and plots
   for three sequences;
5. scores (:mod:`~seqdance.demo.scores`): zero-shot scores of a real deep mutational scan,
   with Spearman against the measurements;
6. ``report.html`` (:mod:`~seqdance.demo.interactive`): a saturation scan of one predicted
   protein and the interactive report on its structure; then ``report.md``
   (:mod:`~seqdance.demo.report`): what was done, the numbers and the figures, written last
   and atomically.

The folder must be new or empty: an interrupted demo is not resumed (the partial folder has
no ``report.md``); run it again into a new folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from seqdance.demo.dataset import build_demo_dataset
from seqdance.demo.features import extract_features
from seqdance.demo.figures import plot_training_curve
from seqdance.demo.inputs import ASSAY, PREDICTED, copy_inputs
from seqdance.demo.interactive import REPORTED, write_interactive_report
from seqdance.demo.predictions import run_predictions
from seqdance.demo.report import write_report
from seqdance.demo.results import TINY_NOTE, DemoReport, FeatureSummary
from seqdance.demo.scores import run_scoring
from seqdance.demo.training import evaluate_test, read_log, run_training
from seqdance.errors import SeqDanceError
from seqdance.inference.fasta import read_fasta
from seqdance.model import load_model
from seqdance.utils.figures import check_figure_format

DEFAULT_STEPS = 1000
QUICK_STEPS = 40


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqDanceError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        done = " (it holds a finished demo)" if (out_dir / "report.md").exists() else ""
        raise SeqDanceError(
            f"{out_dir} is not empty{done}; the demo writes into a new or empty folder "
            "and does not resume: remove it or choose another --out"
        )


def _resolve_device(device: str) -> str:
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
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def _echo(message: str) -> None:
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
    figure_format: str = "png",
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
    figure_format : str
        ``png`` (300 dpi), ``svg`` or ``pdf`` for the figures in ``out_dir/figures``.

    Returns
    -------
    DemoReport
        The numbers and files; ``report_path`` (``out_dir/report.md``) is written last.
    """
    say = echo or _echo
    fmt = check_figure_format(figure_format)  # checked before anything is written
    out_dir = Path(out_dir).absolute()  # the manifest's paths must not depend on the cwd
    _check_out_dir(out_dir)
    steps = steps if steps is not None else (QUICK_STEPS if quick else DEFAULT_STEPS)
    if steps < 2:
        raise SeqDanceError(f"--steps must be at least 2 (got {steps})")
    device = _resolve_device(device)
    with _one_thread_on_cpu(device):
        return _run(out_dir, steps, device, progress, say, fmt)


def _run(
    out_dir: Path, steps: int, device: str, progress: bool, say: Callable[[str], None],
    fmt: str = "png",
) -> DemoReport:  # fmt: skip
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
    features, feature_plots = extract_features(inputs, out_dir / "features", figures, progress, fmt)
    timings["features"] = time.perf_counter() - clock

    clock = step(2, "dataset: manifest with train/test labels, build, loss weights")
    dataset = out_dir / "dataset"
    n_train, n_test = build_demo_dataset(inputs, dataset, progress)
    timings["dataset"] = time.perf_counter() - clock

    clock = step(3, f"training: tiny model, {steps} updates on {device}")
    training = run_training(dataset, out_dir / "train", steps, device, progress)
    curve = plot_training_curve(figures / f"training_curve.{fmt}", read_log(training.log))
    model = load_model(training.checkpoint, device=device)
    training.test_rmse = evaluate_test(model, dataset)
    timings["training"] = time.perf_counter() - clock
    say(f"      loss {training.first_loss:.4f} -> {training.final_loss:.4f}")

    clock = step(4, "predictions: residue profiles and pair maps of 3 sequences")
    assay_csv = inputs / ASSAY
    wild_type = read_fasta(assay_csv.with_suffix(".fasta"))[0].sequence
    sequences = {f.name: _sequence_of(f) for f in features if f.name in PREDICTED}
    sequences[assay_csv.stem.split("_")[0]] = wild_type
    predictions = run_predictions(model, sequences, out_dir / "predictions", figures, progress, fmt)
    timings["predictions"] = time.perf_counter() - clock

    clock = step(5, "zero-shot scores of a deep mutational scan, Spearman vs measurements")
    scores = run_scoring(model, assay_csv, out_dir / "scores", figures, fmt)
    timings["scores"] = time.perf_counter() - clock
    say(f"      Spearman ({scores.headline}) = {scores.spearman[scores.headline]:.3f}")

    clock = step(6, f"reports: a saturation scan of {REPORTED}, report.html and report.md")
    reported = next(p for p in predictions if p.name == REPORTED)
    html = write_interactive_report(
        model, reported, inputs / "md" / f"{REPORTED}.pdb", out_dir, progress
    )
    timings["html report"] = time.perf_counter() - clock
    figure_files = {**feature_plots, "training_curve": curve, "score_scatter": scores.scatter_png}
    for p in predictions:
        figure_files[f"{p.name}_profiles"] = p.profile_png
        figure_files[f"{p.name}_pairs"] = p.pair_png
    report = DemoReport(
        out_dir=out_dir,
        report_path=out_dir / "report.md",
        html_path=html,
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
    say(f"interactive report (open in a browser): {html}")
    say("NOTE: " + TINY_NOTE)
    return report


def _sequence_of(summary: FeatureSummary) -> str:
    """The sequence stored with a protein's feature file."""
    path = summary.files[-1]  # md: PREFIX.pair.npz; nma: NAME.nma.npz
    with np.load(path, allow_pickle=False) as data:
        return str(data["sequence"])
