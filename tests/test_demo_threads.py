"""The demo trains on one thread whatever ``--threads`` says (its tiny model's operations are
too small to share), so its trained weights are the same bytes with 1 and 2 threads."""

from __future__ import annotations

import pytest

from seqdance.cli import main


@pytest.mark.slow
def test_quick_demo_weights_do_not_depend_on_threads(tmp_path, capsys):
    weights = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        with pytest.raises(SystemExit) as done:
            main(["demo", "--quick", "--out", str(out), "--threads", threads, "--no-progress"])
        assert done.value.code == 0, capsys.readouterr().err
        weights.append((out / "train/checkpoints/step_40/model.safetensors").read_bytes())
    assert weights[0] == weights[1]
