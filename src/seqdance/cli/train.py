"""``seqdance train`` and ``seqdance evaluate``."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app
from seqdance.cli.options import device_option, progress_option
from seqdance.errors import SeqDanceError


@app.command(
    "train",
    context_settings={"allow_extra_args": False},
)
def train_command(
    overrides: list[str] | None = typer.Argument(
        None,
        help="Config overrides as key.sub=value (e.g. data.dir=DS out_dir=runs/a "
        "train.max_steps=100 model.freeze_trunk=true).",
        show_default=False,
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config (configs/tiny.yaml, configs/seqdance_35M.yaml)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the latest checkpoint in out_dir (exactly)."
    ),
    device: str | None = device_option(
        "Where to train (the override train.device=...); default: the config's (auto).", None
    ),
    progress: bool = progress_option(),
) -> None:
    """Pre-train or fine-tune SeqDance/ESMDance on a `seqdance dataset build` folder.

    Writes OUT_DIR/config.yaml, OUT_DIR/log.jsonl and OUT_DIR/checkpoints/step_N/ (loadable
    by `seqdance predict --model`). Multi-process: torchrun --nproc_per_node N -m seqdance train.
    """
    from seqdance import train as training

    extra = [f"train.device={device}"] if device is not None else []
    extra += [] if progress else ["train.progress=false"]
    cfg = training.load_config(config, [*(overrides or []), *extra])
    result = training.train(cfg, resume=resume)
    if result.rank == 0 and result.last_log is not None:
        typer.echo(
            f"{result.step} updates; last loss {result.last_log['loss']:.4f}; {result.out_dir}",
            err=True,
        )
    if result.rank == 0 and result.best_step is not None:
        stop = f"stopped early at update {result.stopped_at}; " if result.stopped_at else ""
        typer.echo(f"{stop}best held-out loss at update {result.best_step}: "
                   f"{result.out_dir / 'best'}", err=True)  # fmt: skip


@app.command("evaluate")
def evaluate_command(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="Model folder, checkpoint file or hub id (as predict).",
        show_default=False,
    ),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="metrics.json to write.", show_default=False),
    label: str = typer.Option("test", "--label", help="Index label to evaluate ('all': every)."),
    crop_size: int = typer.Option(1024, "--crop-size", min=3, help="N-terminal window (tokens)."),
    batch_size: int = typer.Option(1, "--batch-size", min=1),
    device: str = device_option(),
    weights_spec: str = typer.Option(
        "authors",
        "--weights",
        help="Loss weights for the per-group loss: 'authors' (their published table), a .csv "
        "in that layout, a .json of `dataset weights`, or 'none'.",
    ),
    mask: str = typer.Option(
        "residue",
        "--mask",
        help="'residue' (the authors: a residue counts, all channels, when its first channel "
        "is not -1) or 'element' (every element that is not -1).",
    ),
    nma_bands: bool = typer.Option(
        True,
        "--nma-bands/--nma-pooled",
        help="Six NMA terms nma_res1..3, nma_pair1..3 (the authors) or two pooled ones.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Per-term and per-group RMSE of a model on the test split (N-terminal crops), as the
    authors' evaluation script (its MD group includes mdCATH)."""
    import json

    from seqdance.train import evaluate as evaluation

    if mask not in ("residue", "element"):
        raise SeqDanceError(f"--mask must be 'residue' or 'element' (got {mask!r})")
    config = evaluation.EvalConfig(
        label=None if label == "all" else label, crop_size=crop_size, batch_size=batch_size,
        mask=mask, nma_bands=nma_bands,
    )  # fmt: skip
    metrics = evaluation.evaluate_checkpoint(
        model, data, out, config, device=device, weights=weights_spec, progress=progress
    )
    typer.echo(json.dumps(metrics["features"]), err=False)
