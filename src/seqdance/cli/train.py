"""``seqdance train`` and ``seqdance evaluate``."""

from __future__ import annotations

from pathlib import Path

import typer

from seqdance.cli.app import app


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
) -> None:
    """Pre-train or fine-tune SeqDance/ESMDance on a `seqdance dataset build` folder.

    Writes OUT_DIR/config.yaml, OUT_DIR/log.jsonl and OUT_DIR/checkpoints/step_N/ (loadable
    by `seqdance predict --model`). Multi-process: torchrun --nproc_per_node N -m seqdance train.
    """
    from seqdance.train.config import load_config
    from seqdance.train.loop import train

    cfg = load_config(config, overrides or [])
    result = train(cfg, resume=resume)
    if result.rank == 0 and result.last_log is not None:
        typer.echo(
            f"{result.step} updates; last loss {result.last_log['loss']:.4f}; {result.out_dir}",
            err=True,
        )


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
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1 ..."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Per-feature and per-group RMSE of a model on the test split (N-terminal crops)."""
    import json

    from seqdance.data.weights import WEIGHTS_FILE, LossWeights
    from seqdance.model.weights import load_model
    from seqdance.train.distributed import DistEnv, pick_device
    from seqdance.train.evaluate import EvalConfig, evaluate_model, write_metrics

    net = load_model(model, device=pick_device(device, DistEnv()))
    weights_path = data / WEIGHTS_FILE
    weights = LossWeights.load(weights_path).weights if weights_path.is_file() else None
    config = EvalConfig(label=None if label == "all" else label, crop_size=crop_size,
                        batch_size=batch_size)  # fmt: skip
    metrics = evaluate_model(net, data, config, weights, progress=progress)
    metrics = {"model": model, "data": str(data), **metrics}
    write_metrics(metrics, out)
    typer.echo(json.dumps(metrics["features"]), err=False)
