"""``seqdance score`` and ``seqdance benchmark``: zero-shot mutation effects."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from seqdance.alphabet import check_sequence
from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option, dtype_option, token_budget_option
from seqdance.cli.predict import ARCH_HELP, FIGURE_FORMAT_HELP, MODEL_HELP, FigureFormat, _load
from seqdance.cli.workers import INT8_HELP, WORKERS_HELP, sharded
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.schema import resolve_properties
from seqdance.utils.io import atomic_path

DTYPE_HELP = (
    "Precision: bf16/fp16 compute the trunk's matrix products on mutant-minus-wild-type "
    "differences (differential inference; over 1,022 residues: trunk under autocast); "
    "the rest in fp32."
)
PROPERTIES_HELP = (
    "Comma-separated channels or feature names (e.g. sasa_mean,psi); default: all 63. "
    "Residue-only choices skip the pair head (faster)."
)
RESIDUES_ONLY_HELP = (
    "Average each relative change over the protein's residues (residue pairs) only. "
    "Default: over all L+2 outputs, <cls>/<eos> included, as the authors' notebook."
)
WINDOW_HELP = (
    "Cut sequences longer than this many residues into overlapping windows (merged as "
    "predict; needs --residues-only). Default: one pass at any length, as the authors."
)
ESM_HELP = (
    "EsmForMaskedLM for --baseline: a folder written by save_pretrained or a hub id "
    "(local cache first)."
)


class Suite(str, Enum):
    megascale = "megascale"
    designed = "designed"
    proteingym_viral = "proteingym-viral"
    dynamics = "dynamics"


class ViralRelease(str, Enum):
    jan2024 = "2024-01"
    apr2025 = "2025-04"
    reference = "reference"


class Baseline(str, Enum):
    wt_marginal = "wt-marginal"
    masked_marginal = "masked-marginal"


def _wild_type(sequence: str | None, fasta: Path | None) -> str:
    from seqdance.inference.fasta import read_fasta

    if (sequence is None) == (fasta is None):
        raise SeqDanceError("give the wild type with exactly one of --sequence and --fasta")
    if sequence is not None:
        return check_sequence("--sequence", sequence.strip())
    records = read_fasta(fasta)
    if len(records) != 1:
        raise SeqDanceError(f"{fasta}: expected one wild-type record, found {len(records)}")
    return records[0].sequence


def check_properties(names: str | None) -> tuple[str, ...]:
    """``--properties`` text to channel names (all 63 when None), as a one-line error."""
    try:
        return resolve_properties(names)
    except ValueError as exc:
        raise SeqDanceError(str(exc)) from None


def _score_options(
    *,
    residues_only: bool = False,
    window: int | None = None,
    token_budget: int | None = None,
    dtype: DType = DType.fp32,
):
    """The one :class:`~seqdance.inference.options.ScoreOptions` of a command: bf16/fp16
    autocast over the fp32 weights, the default token budget when None."""
    import torch

    from seqdance.inference.options import DEFAULT_TOKEN_BUDGET, ScoreOptions

    torch_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype.value]
    return ScoreOptions(
        residues_only=residues_only,
        window=window,
        token_budget=DEFAULT_TOKEN_BUDGET if token_budget is None else token_budget,
        autocast=torch_dtype,
    )


def _load_masked_lm(spec: str, net):
    """ESM2's masked LM for the baselines, on the device of ``net``."""
    from seqdance.model import load_masked_lm

    return load_masked_lm(spec, device=next(net.parameters()).device)


@app.command("score")
@sharded
def score_command(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    mutations_csv: Path = typer.Option(
        ...,
        "--mutations",
        help="CSV with a 'mutant' (A12G, A12G:C15D) or 'mutated_sequence' column.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV."),
    sequence: str | None = typer.Option(None, "--sequence", help="Wild-type sequence."),
    fasta: Path | None = typer.Option(
        None, "--fasta", help="FASTA with the wild type (one record)."
    ),
    offset: int = typer.Option(1, "--offset", help="Number of the wild type's first residue."),
    properties: str | None = typer.Option(None, "--properties", help=PROPERTIES_HELP),
    baseline: list[Baseline] = typer.Option(
        [], "--baseline", help="Add an ESM2 log-likelihood-ratio column (repeatable)."
    ),
    esm_model: str = typer.Option("facebook/esm2_t12_35M_UR50D", "--esm-model", help=ESM_HELP),
    device: str = device_option(),
    dtype: DType = dtype_option(DTYPE_HELP),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
    residues_only: bool = typer.Option(False, "--residues-only", help=RESIDUES_ONLY_HELP),
    window: int | None = typer.Option(None, "--window", min=16, help=WINDOW_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
) -> None:
    """Score mutants by the predicted relative change of dynamic properties.

    Writes the input table plus one column per scored channel, per-feature summaries
    (ss, chi, phi, psi) and their raw_/norm_ combinations (mean, max, weighted_mean,
    geometric_mean). Larger = bigger predicted change = usually less fit. Every mutant
    is checked against the wild type before any model runs (see docs/scoring.md).
    """
    import pandas as pd

    from seqdance.inference import baselines, mutations, score, sharding

    wild_type = _wild_type(sequence, fasta)
    channels = check_properties(properties)
    try:
        table = pd.read_csv(mutations_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(
            f"{mutations_csv}: cannot read CSV ({' '.join(str(exc).split())})"
        ) from exc
    has_text, has_seq = "mutant" in table.columns, "mutated_sequence" in table.columns
    mutant_set = mutations.build_mutant_set(
        wild_type,
        table["mutant"].tolist() if has_text else None,
        table["mutated_sequence"].tolist() if has_seq else None,
        offset,
        first_row=2,  # line numbers of the CSV (line 1 is the header)
    )
    options = _score_options(
        residues_only=residues_only, window=window, token_budget=token_budget, dtype=dtype
    )
    # bf16/fp16: autocast over fp32 weights; with --int8 the dtype reaches the int8 check
    net = _load(model, arch, device, dtype if int8 else DType.fp32, int8)
    group = sharding.current()
    if group.sharded:  # shards beside the output; rank 0 gets the scores
        found = sharding.score_mutants_sharded(group, net, mutant_set, channels, options,
                                               out.with_name(f"{out.name}.shards"))  # fmt: skip
        if found is None:
            return
    else:
        found = score.score_mutants(net, mutant_set, channels, options)
    mlm = _load_masked_lm(esm_model, net) if baseline else None
    columns = found.columns()
    for method in dict.fromkeys(b.value for b in baseline):
        columns[f"llr_{method.replace('-', '_')}"] = baselines.esm_llr(
            mlm, mutant_set, method, token_budget=token_budget, window=window
        )
    clash = [c for c in columns if c in table.columns]
    if clash:
        raise SeqDanceError(
            f"{mutations_csv}: input already has output column(s) {', '.join(clash)}"
        )
    result = pd.concat([table, pd.DataFrame(columns, index=table.index)], axis=1)
    with atomic_path(out) as tmp:
        result.to_csv(tmp, index=False)
    typer.echo(f"{len(table)} mutants scored, written to {out}", err=True)


@app.command("benchmark")
@sharded
def benchmark_command(
    model: str | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    assay_path: Path | None = typer.Option(
        None,
        "--assays",
        help="Folder of ProteinGym-style assays (X.csv + X.fasta), the Tsuboyama 2023 "
        "Dataset2_Dataset3 table, or a mega-scale system_info.csv.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="ProteinGym's DMS_substitutions.csv: binarisation cutoffs for AUC/MCC, the "
        "leaderboard summaries (summary_by_model*.csv) and the assays of --suite "
        "proteingym-viral.",
    ),
    aggregate: Path | None = typer.Option(
        None,
        "--aggregate",
        help="Only aggregate this per-assay table (ours, or ProteinGym's DMS-level layout with "
        "a 'DMS ID' column) into OUT/summary_by_model*.csv; needs --reference.",
    ),
    bootstrap_samples: int = typer.Option(
        10_000, "--bootstrap-samples", min=2, help="Resamples of the standard error."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N assays."),
    max_variants: int | None = typer.Option(
        None, "--max-variants", min=3, help="At most this many variants per assay (evenly spaced)."
    ),
    properties: str | None = typer.Option(None, "--properties", help=PROPERTIES_HELP),
    baseline: list[Baseline] = typer.Option(
        [], "--baseline", help="Also benchmark an ESM2 log-likelihood ratio (repeatable)."
    ),
    esm_model: str = typer.Option("facebook/esm2_t12_35M_UR50D", "--esm-model", help=ESM_HELP),
    device: str = device_option(),
    dtype: DType = dtype_option(DTYPE_HELP),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
    residues_only: bool = typer.Option(False, "--residues-only", help=RESIDUES_ONLY_HELP),
    window: int | None = typer.Option(None, "--window", min=16, help=WINDOW_HELP),
    suite: Suite | None = typer.Option(
        None,
        "--suite",
        help="One of the paper's tables, from its published inputs: megascale or designed "
        "(--assays: the Tsuboyama table), proteingym-viral (--assays: ProteinGym folder, "
        "--reference: optional, its DMS_substitutions.csv; assays by --viral-release), or "
        "dynamics (--dataset: predicted vs MD properties, docs/dynamics-benchmark.md). "
        "Prints our median beside the paper's (the peers' for dynamics).",
    ),
    headline: str = typer.Option(
        "norm_geometric_mean", "--headline", help="Score column compared with the paper (--suite)."
    ),
    viral_release: ViralRelease = typer.Option(
        ViralRelease.jan2024,
        "--viral-release",
        help="ProteinGym release whose viral assays (seq_len <= 1022) make --suite "
        "proteingym-viral: 2024-01 (v1.0/1.1, 23 assays, the paper's), 2025-04 (26), or "
        "reference (taxon 'Virus' in the --reference file).",
    ),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="--suite dynamics: a built dataset (features.h5 + index.csv)."
    ),
    label: str | None = typer.Option(
        None, "--label", help="--suite dynamics: only proteins with this index label (e.g. test)."
    ),
    train_fasta: Path | None = typer.Option(
        None,
        "--train-fasta",
        help="--suite dynamics: the model's training sequences, for each protein's highest "
        "identity (MMseqs2); default: train_sequences.fasta in the model folder, if any.",
    ),
    contact_threshold: float = typer.Option(
        0.5, "--contact-threshold", help="--suite dynamics: MD contacts per frame of a contact."
    ),
    min_separation: int = typer.Option(
        6, "--min-separation", min=1, help="--suite dynamics: |i-j| of the top-L pairs."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="--suite dynamics: figures."),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
) -> None:
    """Zero-shot Spearman, AUC, MCC, NDCG and top-10 % recall (ProteinGym's definitions)
    of every score against measured fitness or stability.

    Writes OUT/scores/{assay}.csv, OUT/summary.csv (assay, property, spearman, auc, mcc,
    ndcg, top_recall, n), OUT/summary_median.csv (median over assays per property) and
    OUT/summary.png; with --reference also ProteinGym's leaderboard summaries
    OUT/summary_by_model.csv (Spearman) and OUT/summary_by_model_{metric}.csv. Metrics are
    oriented so that higher = predicts fitness (relative changes negated).
    """
    from seqdance.benchmark import assays, dynamics_report, identity, metrics, run, suites
    from seqdance.benchmark import sharded as shards

    if suite is Suite.dynamics:
        if dataset is None or model is None:
            raise SeqDanceError("--suite dynamics needs --model and --dataset (a built dataset)")
        if assay_path is not None or aggregate is not None:
            raise SeqDanceError("--suite dynamics takes --dataset, not --assays or --aggregate")
        options = dynamics_report.DynamicsOptions(
            label=label, contact_threshold=contact_threshold, min_separation=min_separation,
            bootstrap_samples=bootstrap_samples, token_budget=token_budget,
        )  # fmt: skip
        options.check()
        fasta = identity.training_fasta(model, train_fasta)
        if fasta is not None:
            identity.find_mmseqs()
        net = _load(model, arch, device, DType.fp32)
        result, table = dynamics_report.run_dynamics_benchmark(
            net, dataset, out, options, model_spec=model, train_fasta=fasta, plots=plots,
            progress=progress, figure_format=figure_format.value,
        )  # fmt: skip
        for note in result.notes:
            typer.echo(f"note: {note}")
        typer.echo(dynamics_report.terminal_table(result, table))
        typer.echo(f"{len(result.proteins)} proteins benchmarked, tables in {out}", err=True)
        return
    ref = assays.read_reference(reference) if reference is not None else None
    if aggregate is not None:
        if ref is None:
            raise SeqDanceError(
                "--aggregate needs --reference (ProteinGym's DMS_substitutions.csv)"
            )
        if model is not None or assay_path is not None:
            raise SeqDanceError("--aggregate takes no --model or --assays")
        tables = metrics.read_per_assay_table(aggregate)
        written, unmatched = metrics.write_summaries(tables, ref, out, samples=bootstrap_samples)
        if unmatched:
            typer.echo(
                f"warning: {len(unmatched)} assay(s) not in the reference file left out "
                f"(e.g. {unmatched[0]})",
                err=True,
            )
        typer.echo(f"summaries written: {', '.join(str(p) for p in written)}", err=True)
        return
    if model is None or assay_path is None:
        raise SeqDanceError("give --model and --assays (or --aggregate TABLE --reference FILE)")
    channels = check_properties(properties)
    metrics.check_headline(headline, channels, suite is not None)
    if suite is not None:
        found = suites.suite_assays(
            suite.value, assay_path, reference, limit, viral_release=viral_release.value
        )
    else:
        found = suites.read_assays(assay_path, limit)
    options = _score_options(
        residues_only=residues_only, window=window, token_budget=token_budget, dtype=dtype
    )
    # bf16/fp16: autocast over fp32 weights; with --int8 the dtype reaches the int8 check
    net = _load(model, arch, device, dtype if int8 else DType.fp32, int8)
    mlm = _load_masked_lm(esm_model, net) if baseline else None
    group = shards.sharding.current()
    bench = (lambda *a, **k: shards.run_benchmark_sharded(group, *a, **k)) if group.sharded \
        else run.run_benchmark  # fmt: skip
    result = bench(
        net,
        found,
        out,
        channels,
        baselines=list(dict.fromkeys(b.value for b in baseline)),
        mlm=mlm,
        max_variants=max_variants,
        options=options,
        progress=progress,
        reference=ref,
        bootstrap_samples=bootstrap_samples,
        figure_format=figure_format.value,
    )
    if result is None:  # not rank 0
        return
    for line in result.skipped:
        typer.echo(f"warning: skipped {line}", err=True)
    if result.unmatched:
        typer.echo(
            f"warning: {len(result.unmatched)} assay(s) not in the reference file, left out of "
            f"the summaries and without AUC/MCC unless they have DMS_score_bin "
            f"(e.g. {result.unmatched[0]})",
            err=True,
        )
    n_assays = len({r["assay"] for r in result.rows})
    typer.echo(f"{n_assays} assays scored, summary in {out / 'summary.csv'}", err=True)
    if suite is not None:
        variant = getattr(getattr(net, "config", None), "variant", None)
        rows = suites.compare_with_paper(suite.value, result.medians, variant, headline)
        typer.echo(f"suite {suite.value}: median Spearman over {n_assays} proteins "
                   f"(paper: {suites.PAPER_COUNTS[suite.value]})")  # fmt: skip
        for note in suites.suite_notes(suite.value, model, n_assays, limit, max_variants):
            typer.echo(f"note: {note}")
        typer.echo(f"{'model':<10} {'column':<24} {'ours':>7} {'paper':>7}")
        for row in rows:
            typer.echo(f"{row['model']:<10} {row['column']:<24} {row['ours']:>7.3f} "
                       f"{row['paper']:>7.2f}")  # fmt: skip
