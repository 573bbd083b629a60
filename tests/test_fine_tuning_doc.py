"""docs/fine-tuning.md runs as written: its ```bash blocks, in order, in a folder holding the
demo's bundled data (``inputs/``) and ``configs/``; then the numbers it promises are checked:
the fine-tuned model's held-out loss is below the starting model's, ``after.json`` repeats
the best held-out evaluation of the run, and the held-out loss is recomputed from the
evaluated RMSEs and the authors' weight table."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from seqdance.alphabet import tokenize
from seqdance.data.loss_weights import AUTHORS_WEIGHTS, load_weights
from seqdance.demo.inputs import bundled_data
from seqdance.model import load_model
from seqdance.schema import RESIDUE_CHANNELS
from seqdance.train.checkpoint import TRAIN_FASTA

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "fine-tuning.md"
MD = "ATLAS_GPCRmd_PED_mdCATH"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def page_run(tmp_path_factory) -> Path:
    if shutil.which("mmseqs") is None:
        pytest.skip("MMseqs2 (mmseqs) is not installed")
    work = tmp_path_factory.mktemp("fine_tuning_doc")
    shutil.copytree(bundled_data(), work / "inputs")
    shutil.copytree(ROOT / "configs", work / "configs")
    prelude = f'set -euo pipefail\nseqdance() {{ "{sys.executable}" -m seqdance "$@"; }}\n'
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    for block in bash_blocks(PAGE.read_text()):
        done = subprocess.run(["bash", "-c", prelude + block], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{block}\n{done.stderr[-3000:]}"
    return work


def test_the_page_has_the_steps():
    blocks = "\n".join(bash_blocks(PAGE.read_text()))
    for step in ("dataset build", "dataset split", "model.init_from=", "early_stopping",
                 "seqdance evaluate", "model.freeze_trunk=true", "--suite dynamics"):  # fmt: skip
        assert step in blocks


def test_fine_tuning_lowers_the_held_out_loss(page_run):
    index = pd.read_csv(page_run / "ds" / "index.csv")
    assert sorted(index["label"]) == ["test", "train"]  # split by MMseqs2 clusters
    before = json.loads((page_run / "before.json").read_text())
    after = json.loads((page_run / "after.json").read_text())
    assert before["n_proteins"] == after["n_proteins"] == {MD: 1}
    assert after["groups"][MD]["loss"] < 0.5 * before["groups"][MD]["loss"]
    # after.json is the best held-out evaluation of the run, recomputed from ft/best
    best = json.loads((page_run / "ft" / "best" / "best.json").read_text())
    lines = [json.loads(x) for x in (page_run / "ft" / "eval.jsonl").read_text().splitlines()]
    assert best["loss"] == min(x["loss"] for x in lines)
    assert after["groups"][MD]["loss"] == pytest.approx(best["loss"], rel=1e-6)
    # the weighted loss = sum of the per-term RMSEs times the authors' weights
    weights = load_weights(AUTHORS_WEIGHTS)[MD]
    rmse = after["groups"][MD]["rmse"]
    assert after["groups"][MD]["loss"] == pytest.approx(
        sum(weights.get(k, 0.0) * v for k, v in rmse.items()), rel=1e-9
    )
    heads = json.loads((page_run / "ft_heads" / "best" / "config.json").read_text())
    assert heads["variant"] == "esmdance"  # model.freeze_trunk=true: only the heads trained


def rmsf_pearson(model_dir: Path, data_dir: Path, name: str) -> float:
    """Pearson (scipy) of the predicted and MD normalised RMSF of one protein, recomputed:
    the model's forward on the tokens, the target's raw RMSF (stored channel 2) / its max."""
    index = pd.read_csv(data_dir / "index.csv")
    seq = index.loc[index["name"] == name, "modify_seq"].iloc[0]
    model = load_model(model_dir).eval()
    ids = torch.from_numpy(tokenize(seq, name))[None]
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids, dtype=torch.bool))
    pred = out.residue[0, 1:-1, RESIDUE_CHANNELS.index("rmsf_nor")].double().numpy()
    with h5py.File(data_dir / "features.h5") as h5:
        rmsf = h5[f"{name}_res_feature"][1:-1, 2].astype(np.float64)  # (L,)
    return float(stats.pearsonr(pred, rmsf / rmsf.max())[0])


def fasta_pairs(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    return [(h[1:], s) for h, s in zip(lines[0::2], lines[1::2], strict=True)]


def test_dynamics_benchmark_before_and_after(page_run):
    index = pd.read_csv(page_run / "ds" / "index.csv")
    held_out = index.loc[index["label"] == "test", "name"].tolist()
    trained = index[index["label"] == "train"]
    assert len(held_out) == 1
    values = {}
    for out, model in (("dyn_before", "base/checkpoints/step_40"), ("dyn_after", "ft/best")):
        rows = pd.read_csv(page_run / out / "per_protein.csv")
        assert sorted(set(rows["protein"])) == held_out  # --label test: the held-out protein
        got = rows[(rows["property"] == "rmsf_nor") & (rows["metric"] == "pearson")]
        values[out] = got["value"].iloc[0]
        expect = rmsf_pearson(page_run / model, page_run / "ds", held_out[0])
        assert values[out] == pytest.approx(expect, abs=1e-5)
        # the model's train_sequences.fasta was searched without --train-fasta
        identity = pd.read_csv(page_run / out / "identity.csv")
        assert identity["name"].tolist() == held_out and not identity["in_training"].any()
    assert values["dyn_before"] != values["dyn_after"]
    # the fine-tuned model's training FASTA: the base model's proteins, then the new ones
    pre = pd.read_csv(page_run / "pre" / "index.csv")
    base = list(zip(pre["name"], pre["modify_seq"], strict=True))
    assert fasta_pairs(page_run / "base" / "checkpoints" / "step_40" / TRAIN_FASTA) == base
    new = list(zip(trained["name"], trained["modify_seq"], strict=True))
    assert fasta_pairs(page_run / "ft" / "best" / TRAIN_FASTA) == base + new
