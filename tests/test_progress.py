"""Progress bars: shown on a terminal, silent in a pipe or with ``--no-progress``, and erased
before an error, so that the ``error:`` line starts at column 0 (issue 23, class 2). The
terminal is a real pseudo-terminal (``pty``); what it shows is rebuilt from the bytes the way a
terminal draws them (carriage return: back to column 0, overwriting)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import h5py
import numpy as np
import pytest

from seqdance.data.store import res_key
from seqdance.utils.progress import clear_bars, progress_bar, progress_enabled

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen_lines(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: each ``\\r`` returns to column 0 and what
    follows overwrites the line from there."""
    lines = []
    for raw in ANSI.sub("", text).split("\n"):
        shown: list[str] = []
        for piece in raw.split("\r"):
            shown[: len(piece)] = piece
        lines.append("".join(shown).rstrip())
    return lines


def run_on_terminal(args: list[str], timeout: float = 240) -> tuple[int, str]:
    """``python -m seqdance ARGS`` with stdin, stdout and stderr on a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqdance", *map(str, args)],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder nobody may write in, root included (a read-only tmpfs); skipped where none
    can be made."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot make a read-only folder here (root, and no mount allowed)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_screen_lines_draws_like_a_terminal():
    assert screen_lines("abc: 10%|#\rabc: 20%|##\r\rerror: x\n") == ["error: x|##", ""]
    assert screen_lines("bar 50%\r       \rerror: y\n")[0] == "error: y"


def test_bar_on_a_terminal_none_in_a_pipe(tiny_dir, data_path, tmp_path):
    fasta = data_path("scoring", "blat_ecolx_wt.fasta")
    code, shown = run_on_terminal(["predict", fasta, "-m", tiny_dir, "-o", tmp_path / "a"])
    assert code == 0, shown
    assert "predict: 100%" in shown or "100%|" in shown
    code, quiet = run_on_terminal(
        ["predict", fasta, "-m", tiny_dir, "-o", tmp_path / "b", "--no-progress"]
    )
    assert code == 0 and "%|" not in quiet and "1 records written" in quiet
    piped = subprocess.run(
        [sys.executable, "-m", "seqdance", "predict", fasta, "-m", tiny_dir, "-o", tmp_path / "c"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert piped.returncode == 0 and "%|" not in piped.stderr


def test_train_accepts_no_progress(small_dataset, tmp_path):
    args = ["train", "--config", ROOT / "configs/tiny.yaml", f"data.dir={small_dataset}",
            f"out_dir={tmp_path / 'run'}", "train.max_steps=2", "train.save_every=2",
            "train.phases.0.crop_size=32"]  # fmt: skip
    code, quiet = run_on_terminal([*args, "--no-progress"])
    assert code == 0, quiet
    assert "update" not in quiet.replace("updates;", "")  # the bar's unit, never drawn
    assert "2 updates; last loss" in quiet


def test_evaluate_error_inside_an_open_bar_starts_its_own_line(tiny_dir, small_dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(small_dataset, ds)
    with h5py.File(ds / "features.h5", "a") as h5:  # the last protein: the bar is drawn by then
        values = h5[res_key("2g3r_t")][()]
        values[3, 0] = np.nan
        h5[res_key("2g3r_t")][...] = values
    out = tmp_path / "metrics.json"
    code, shown = run_on_terminal(["evaluate", "-m", tiny_dir, "-d", ds, "-o", out,
                                   "--label", "all"])  # fmt: skip
    assert code == 1
    assert "evaluate:" in shown  # a bar was drawn before the error
    errors = [line for line in screen_lines(shown) if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"error: {ds}: protein 2g3r_t has non-finite")
    assert "%|" not in errors[0]  # the bar was erased, not overwritten in part
    assert not out.exists()


def test_predict_into_a_read_only_folder_error_starts_its_own_line(tiny_dir, data_path, tmp_path):
    fasta = data_path("scoring", "blat_ecolx_wt.fasta")
    with read_only_folder(tmp_path / "ro") as folder:
        code, shown = run_on_terminal(["predict", fasta, "-m", tiny_dir, "-o", folder / "out"])
    assert code == 1
    errors = [line for line in screen_lines(shown) if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert "Read-only file system" in errors[0] or "ermission denied" in errors[0]


def test_clear_bars_erases_an_open_bar(capsys):
    class Terminal:  # a stream that says it is a terminal, so the bar is drawn
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True

    stream = Terminal()
    made = progress_bar(total=10, desc="work", file=stream, mininterval=0)
    made.update(3)
    assert "work:  30%" in screen_lines(stream.text)[-1]
    clear_bars()
    stream.write("error: boom\n")
    assert screen_lines(stream.text)[-2] == "error: boom"
    with progress_enabled(False):
        silent = progress_bar(total=5, desc="quiet", file=stream)
        silent.update(5)
        silent.close()
    assert "quiet" not in stream.text
