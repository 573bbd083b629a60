"""One consistent command line: the shared options of every command (``--threads``,
``--no-progress``), ``--device``/``--dtype``/``--token-budget`` wherever a model runs,
boolean options shown as flags, ``--version``, and the thread setting itself."""

from __future__ import annotations

import importlib.metadata
import os

import pytest
import torch
from threadpoolctl import threadpool_info

from seqdance import __version__
from seqdance.cli import main
from seqdance.cli.app import build_command
from seqdance.utils.threads import (
    available_cores,
    default_threads,
    resolve_threads,
    running_elsewhere,
    thread_limits,
    threads_per_worker,
    work_threads,
)


def _leaves(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name), command


ROOT = build_command()
LEAVES = dict(_leaves(ROOT))
GROUPS = [()] + [(n,) for n, c in ROOT.commands.items() if hasattr(c, "commands")]
# Commands that run a model but take no --model option.
MODEL_WITHOUT_OPTION = {("train",), ("demo",)}
# Commands whose batches are set otherwise, with the reason (checked to stay true below).
NO_TOKEN_BUDGET = {
    ("train",): "the config's phases give crop and batch sizes",
    ("demo",): "the demo's fixed tiny training run",
    ("evaluate",): "--crop-size and --batch-size, as the authors' evaluation",
    ("report",): "--model only recomputes the scan's profiles, in the report's batches",
}
NO_DTYPE = {
    ("train",): "mixed precision is the config's train.precision",
    ("demo",): "the demo's fixed tiny training run",
    ("evaluate",): "evaluates in float32, as the authors' evaluation",
    ("report",): "the scan's profiles in float32, as the scan",
}


def _options(command) -> dict[str, object]:
    return {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}


def _runs_a_model(path, command) -> bool:
    return "--model" in _options(command) or path in MODEL_WITHOUT_OPTION


def _help(path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_command_has_the_shared_options(path, capsys):
    command = LEAVES[path]
    options = _options(command)
    assert "--no-progress" in options and "--progress" in options
    assert "--threads" in options
    help_text = _help(path, capsys)
    assert "<bool>" not in help_text  # boolean options are shown as flags
    assert "--no-progress" in help_text.replace("\u2026", "")
    for param in command.params:
        if getattr(param, "is_bool_flag", False):
            assert param.metavar == ""


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "seqdance")
def test_groups_show_flags_as_flags(path, capsys):
    assert "<bool>" not in _help(path, capsys)


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_model_commands_accept_device_dtype_and_token_budget(path):
    command = LEAVES[path]
    if not _runs_a_model(path, command):
        pytest.skip("runs no model")
    options = _options(command)
    device = options["--device"]
    assert device.metavar == "auto|cpu|cuda|cuda:N|mps"
    assert ("--token-budget" in options) != (path in NO_TOKEN_BUDGET)
    assert ("--dtype" in options) != (path in NO_DTYPE)


def test_the_exception_lists_name_model_commands_only():
    for path in {*NO_TOKEN_BUDGET, *NO_DTYPE}:
        assert _runs_a_model(path, LEAVES[path])


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out == f"seqdance {__version__}\n"
    assert __version__ == importlib.metadata.version("seqdance")


@pytest.mark.parametrize(
    "device, reason",
    [("gpu", "device 'gpu': unknown"), ("cuda:x", "device 'cuda:x': unknown")]
    + ([] if torch.cuda.is_available() else [("cuda:3", "no CUDA device is available")])
    + ([] if torch.backends.mps.is_available() else [("mps", "MPS is not available")]),
)
@pytest.mark.parametrize("command", ["predict", "explain", "train"])
def test_device_is_checked_before_anything_is_written(command, device, reason, tiny_dir,
                                                      data_path, tmp_path, capsys):  # fmt: skip
    out = tmp_path / "out"
    fasta = str(data_path("scoring", "blat_ecolx_wt.fasta"))
    args = {
        "predict": ["predict", fasta, "-m", str(tiny_dir), "-o", str(out)],
        "explain": ["explain", "-m", str(tiny_dir), "--fasta", fasta, "--offset", "24",
                    "--mutant", "H24C", "-o", str(out)],
        "train": ["train", f"data.dir={tmp_path}", f"out_dir={out}"],
    }[command]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--device", device])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]
    assert not out.exists()


def test_threads_is_a_positive_whole_number(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "check", str(tmp_path), "--threads", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: Invalid value for '--threads'")
    monkeypatch.setenv("SEQDANCE_THREADS", "many")
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "check", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "SEQDANCE_THREADS" in capsys.readouterr().err


def test_predict_bytes_do_not_depend_on_threads(tiny_dir, data_path, tmp_path, capsys):
    fasta = data_path("scoring", "blat_ecolx_wt.fasta")
    written = {}
    for n in ("1", "2"):
        out = tmp_path / f"t{n}"
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", str(fasta), "-m", str(tiny_dir), "-o", str(out), "--threads", n])
        assert exit_info.value.code == 0, capsys.readouterr().err
        written[n] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert written["1"] == written["2"] and written["1"]


# -- the thread setting ---------------------------------------------------------------------------
def test_resolution_order(monkeypatch):
    for name in ("SEQDANCE_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine
    assert resolve_threads() == default_threads() == available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads() == 3
    monkeypatch.setenv("SEQDANCE_THREADS", "5")
    assert resolve_threads() == 5
    assert resolve_threads(7) == 7


@pytest.mark.parametrize(
    "cores, load, expected",
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 9.7, 1), (64, 10.2, 54), (8, 0.0, 8), (1, 0.0, 1)],
)
def test_default_threads_leave_busy_cores_alone(cores, load, expected):
    assert default_threads(cores, load, running=load) == expected
    assert default_threads(cores, load, running=99.0) == expected  # the smaller one counts


@pytest.mark.parametrize(
    "cores, load, running, expected",
    # a finished command's load lingers in the one-minute average: what runs now decides
    [(2, 1.1, 0.0, 2), (2, 1.1, 1.0, 1), (16, 12.0, 3.0, 13), (2, 0.0, 5.0, 2)],
)
def test_default_threads_do_not_lag_behind_a_finished_command(cores, load, running, expected):
    assert default_threads(cores, load, running) == expected


def test_running_elsewhere_reads_the_kernels_runnable_count():
    with open("/proc/loadavg") as handle:
        total = int(handle.read().split()[3].split("/")[1])  # every task on the machine
    running = running_elsewhere()
    assert running is not None and 0 <= running < total
    assert running == int(running)  # the median of an odd number of whole counts


def test_work_threads_cap_small_steps_unless_the_user_chose(monkeypatch):
    for name in ("SEQDANCE_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with thread_limits() as n:  # the default: every core of an idle machine
        assert work_threads(2e7) == 1  # the tiny test model's training step
        assert work_threads(6e9) == 1
        assert work_threads(1e10) == min(n, 2)
        assert work_threads(1e12) == n
    with thread_limits(2):  # --threads 2: the user's count, whatever the step
        assert work_threads(2e7) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with thread_limits():
        assert work_threads(2e7) == 2


def test_thread_limits_reach_torch_blas_and_the_environment(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    before_torch = torch.get_num_threads()
    before_env = os.environ.get("OMP_NUM_THREADS")
    target = 1 if before_torch != 1 else 2
    with thread_limits(target) as n:
        assert n == target
        assert torch.get_num_threads() == target
        assert os.environ["OMP_NUM_THREADS"] == str(target)
        assert os.environ["NUMBA_NUM_THREADS"] == str(target)
        assert all(lib["num_threads"] == target for lib in threadpool_info())
        assert threads_per_worker(2) == max(1, target // 2)
        assert os.environ.get("OMP_WAIT_POLICY") == (None if target == 1 else "PASSIVE")
    assert torch.get_num_threads() == before_torch
    assert os.environ.get("OMP_NUM_THREADS") == before_env
