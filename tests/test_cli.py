"""The command line: every verb has --help; `python -m seqdance` works."""

import subprocess
import sys

import pytest
import typer

from seqdance.cli import app, main


def _all_command_paths(group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,)
        if hasattr(command, "commands"):
            yield from _all_command_paths(command, prefix + (name,))


COMMANDS = sorted(_all_command_paths(typer.main.get_command(app)))


def test_known_verbs_exist():
    assert ("features", "nma") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_verb_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Usage:" in out and len(out.splitlines()) > 3


def test_python_dash_m():
    done = subprocess.run(
        [sys.executable, "-m", "seqdance", "features", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "nma" in done.stdout


def test_usage_error_is_one_line_and_nonzero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["features", "nma", "--out"])
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
