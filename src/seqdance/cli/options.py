"""Options shared by the commands, declared once so that every command spells and checks them
alike: ``--device``, ``--dtype``, ``--token-budget``, ``--progress/--no-progress`` and
``--threads`` (the last two are added to every command by :mod:`seqdance.cli.app`)."""

from __future__ import annotations

from enum import Enum

import typer

DEVICE_CHOICES = "auto|cpu|cuda|cuda:N|mps"


class DType(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def check_device(value: str | None) -> str | None:
    """``--device``: whether this machine has that device, checked while the options are read
    (before any file is read or written); a bad one is our one-line error (exit 1)."""
    if value is None or value.strip() in ("auto", "cpu"):
        return None if value is None else value.strip()
    from seqdance.train.distributed import DistEnv, pick_device  # torch: only when a GPU is named

    pick_device(value, DistEnv())  # SeqDanceError: unknown, or not on this machine
    return value.strip()


def device_option(
    help: str = "Where to run the model. auto: a GPU when there is one, else the CPU.",  # noqa: A002
    default: str | None = "auto",
) -> typer.models.OptionInfo:
    """``--device auto|cpu|cuda|cuda:N|mps``."""
    return typer.Option(
        default, "--device", metavar=DEVICE_CHOICES, callback=check_device, help=help,
        show_default=default is not None,
    )  # fmt: skip


def dtype_option(help: str = "Precision of the model.") -> typer.models.OptionInfo:  # noqa: A002
    """``--dtype fp32|bf16|fp16``."""
    return typer.Option(DType.fp32, "--dtype", help=help)


def token_budget_option(
    default: int = 4096,
    help: str = "Tokens per batch (batch size x (residues + 2)).",  # noqa: A002
) -> typer.models.OptionInfo:
    """``--token-budget N``: how many tokens one forward pass holds."""
    return typer.Option(default, "--token-budget", min=1, help=help)


PROGRESS_HELP = "Progress bars on a terminal (never in a pipe or a log file)."
THREADS_HELP = (
    "CPU threads for the whole command (torch, OpenMP/BLAS, worker processes); default: "
    "$SEQDANCE_THREADS, else $OMP_NUM_THREADS, else the cores the machine's load leaves idle."
)


def progress_option(default: bool = True) -> typer.models.OptionInfo:
    """``--progress/--no-progress``."""
    return typer.Option(default, "--progress/--no-progress", help=PROGRESS_HELP)


def threads_option() -> typer.models.OptionInfo:
    """``--threads N`` (also ``SEQDANCE_THREADS``)."""
    return typer.Option(None, "--threads", min=1, envvar="SEQDANCE_THREADS", help=THREADS_HELP)
