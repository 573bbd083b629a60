"""``seqdance analyze attention|embeddings``: the paper's analyses of a trained model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import DType, device_option, dtype_option, token_budget_option
from seqdance.cli.predict import ARCH_HELP, FIGURE_FORMAT_HELP, MODEL_HELP, FigureFormat, _load

analyze_app = typer.Typer(
    help="The paper's analyses: attention maps vs pair properties, embeddings vs a measured "
    "property.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")


class Label(str, Enum):
    test = "test"
    train = "train"
    all = "all"


@analyze_app.command("attention")
def attention_command(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    data: Path = typer.Option(
        ..., "--data", "-d", help="A `seqdance dataset build` folder (features.h5 + index.csv)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    label: Label = typer.Option(Label.test, "--label", help="Proteins of this index label."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Only the first N selected proteins."
    ),
    device: str = device_option(),
    dtype: DType = dtype_option(),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(
        2048, "Tokens per batch (attention memory grows as T^2)."
    ),
    top_residues: bool = typer.Option(
        False,
        "--top-residues",
        help="Top-L with L = residues. Default: L = tokens (residues + 2), as the authors.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
) -> None:
    """Compare every attention map (layers x heads) with the proteins' pair properties.

    For each protein (N-terminal 1,022 residues) and pairs with |i-j| > 2: top-L ratio (all
    properties; L = number of tokens, as the authors), Spearman on positive and on negative
    correlations (corr, nma_pair1-3), AUROC for interaction frequency >= 0.01 (the 9
    interactions and their sum). Writes OUT/attention_summary.csv (layer, head, property,
    metric, value = mean over proteins, n_proteins), OUT/attention_per_protein.csv and
    OUT/attention_heatmaps.png.
    """
    from seqdance.analysis import attention

    config = attention.AttentionConfig(
        label=label.value, limit=limit, token_budget=token_budget, progress=progress,
        top_residues=top_residues,
    )  # fmt: skip
    _, proteins = attention.select_proteins(data, config)  # checked before the model loads
    net = _load(model, arch, device, dtype)
    analysis = attention.analyze_attention(net, data, config)
    attention.write_attention_outputs(analysis, out, figure_format.value)
    typer.echo(f"{len(proteins)} proteins analysed; results in {out}", err=True)


@analyze_app.command("embeddings")
def embeddings_command(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    table: Path = typer.Option(
        ..., "--table", "-t", help="CSV with a sequence, a split (train/test) and a target column."
    ),
    target: str = typer.Option(..., "--target", help="Column with the measured property."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    sequence_column: str = typer.Option("sequence", "--sequence-column", help="Sequence column."),
    split_column: str = typer.Option(
        "split", "--split-column", help="Column with 'train' or 'test' per row."
    ),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Row names for predictions.csv (default: 'name' if present)."
    ),
    components: int = typer.Option(
        200, "--components", min=1, help="Principal components (at most train rows - 1)."
    ),
    device: str = device_option(),
    dtype: DType = dtype_option(),
    arch: str | None = typer.Option(None, "--arch", help=ARCH_HELP),
    token_budget: int = token_budget_option(),
    residues_only: bool = typer.Option(
        False,
        "--residues-only",
        help="Mean over the residues only. Default: over all tokens, <cls>/<eos> included "
        "(the authors' notebook).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    figure_format: FigureFormat = typer.Option(
        FigureFormat.png, "--figure-format", help=FIGURE_FORMAT_HELP
    ),
) -> None:
    """Predict a measured property from mean embeddings: PCA + linear regression.

    Embeds every row (mean of the last hidden state over all tokens, <cls>/<eos> included, as
    the authors; --residues-only: over residues), fits PCA on the train
    rows and a linear regression on their component scores, and reports Pearson r and MSE
    on the test rows. Writes OUT/metrics.json, OUT/predictions.csv (id, split, measured,
    predicted) and OUT/predictions.png. Rows with an empty target are skipped.
    """
    from seqdance.analysis import embeddings

    config = embeddings.EmbeddingConfig(
        target=target,
        sequence_column=sequence_column,
        split_column=split_column,
        id_column=id_column,
        components=components,
        token_budget=token_budget,
        progress=progress,
        residues_only=residues_only,
    )
    embeddings.read_property_table(table, config)  # every row checked before the model loads
    net = _load(model, arch, device, dtype)
    analysis = embeddings.analyze_embeddings(net, table, config)
    embeddings.write_embedding_outputs(analysis, out, figure_format.value)
    m = analysis.metrics
    typer.echo(
        f"test Pearson r = {m['pearson_r']:.4f}, MSE = {m['mse']:.4g} "
        f"({m['n_test']} test rows, {m['components']} components); results in {out}",
        err=True,
    )
