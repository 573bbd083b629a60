"""Issue 17's fault sweep: every bad input is one ``error:`` line, a non-zero exit, no traceback
and no half-written output. Real CLI runs (in-process through ``main``; a subprocess where a
signal is sent); the full disk is a real 1 MiB tmpfs where this machine lets us mount one,
else an injected ``OSError(ENOSPC)``."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import cli, one_error_line
from seqdance.cli import main
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.loss_weights import WEIGHTS_FILE, compute_loss_weights
from seqdance.data.store import pair_key, res_key

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
TVJ, XND, NMA = DATA / "md" / "3tvj_I", DATA / "md" / "5xnd", DATA / "nma"
GYM = DATA / "scoring" / "proteingym"
TINY_YAML = ROOT / "configs" / "tiny.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def no_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The real 4-protein dataset of test_train (2 MD, 2 NMA proteins; train and test)."""
    folder = tmp_path_factory.mktemp("fault_data")
    rows = [
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,mdCATH,md,{XND / '5xnd_topology.pdb'},{XND / '5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train",
        f"2KCF,proteinflow_sabdab,nma,,,{NMA / '2KCF.pdb'},test",
    ]
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "\n".join(["name,source,kind,topology,trajectory,structure,label", *rows]) + "\n"
    )
    out = folder / "ds"
    assert build_dataset(manifest, out, BuildConfig(workers=1, progress=False)).ok
    compute_loss_weights(out, label="train").save(out / WEIGHTS_FILE)
    return out


def copy_dataset(dataset: Path, to: Path) -> Path:
    shutil.copytree(dataset, to, ignore=shutil.ignore_patterns(".staging", ".build.lock"))
    return to


@pytest.fixture(scope="module")
def model_dir(tiny_dir) -> Path:
    """The shared tiny model folder (tests that change it copy it first)."""
    return tiny_dir


def train_args(dataset: Path, out_dir: Path, *extra: str) -> list[str]:
    return ["train", "--config", TINY_YAML, f"data.dir={dataset}", f"out_dir={out_dir}",
            "train.progress=false", "train.phases.0.crop_size=32", "train.log_every=1",
            *extra]  # fmt: skip


@contextlib.contextmanager
def small_disk(path: Path, free_bytes: int | None, size: str = "1m"):
    """A real tmpfs of ``size`` at ``path`` with about ``free_bytes`` left (None: all of it);
    skipped where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        stat = os.statvfs(path)
        filler = 0 if free_bytes is None else stat.f_bavail * stat.f_frsize - free_bytes
        if filler > 0:
            with open(path / "filler", "wb") as fh:
                fh.write(b"\0" * filler)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- (4) not one clean line: out-of-range options are our own one line ------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["contacts", "-t", "x.pdb", "-x", "x.dcd", "-o", "o.tsv", "--stride", "0"],
        ["dataset", "split", "ds", "--test-fraction", "1.5"],
        ["dataset", "split", "ds", "--min-seq-id", "-1"],
        ["dataset", "weights", "ds", "--max-proteins", "0"],
    ],
    ids=["stride0", "test-fraction", "min-seq-id", "max-proteins"],
)
def test_out_of_range_options_are_one_error_line(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli(args, capsys)
    line = one_error_line(err)
    assert code == 2 and "Usage" not in err and "Invalid value for '--" in line
    assert not any(tmp_path.iterdir())


def test_unknown_option_is_one_error_line(capsys):
    code, err = cli(["features", "nma", "--out"], capsys)
    assert code == 2 and one_error_line(err) == "error: Option '--out' requires an argument."


# -- config validator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("optim: {lr: .nan}\n", "error: config optim.lr: expected a finite number, got nan"),
        ("optim: {lr: .inf}\n", "error: config optim.lr: expected a finite number, got inf"),
        (
            "train: {max_steps: 1.0e+30}\n",
            "error: config train.max_steps: expected an integer, got 1e+30",
        ),
        (
            "train: {max_steps: 1e30}\n",
            "error: config train.max_steps: expected an integer, got '1e30'",
        ),
        ("seed: 1.5\n", "error: config seed: expected an integer, got 1.5"),
        (
            "train: {max_steps: 2.0}\n",
            "error: config train.max_steps: expected an integer, got 2.0",
        ),
        (
            "optim: {eps: 0}\n",
            "error: invalid config: optim: 0 <= betas < 1, eps > 0 and weight_decay >= 0",
        ),
        (
            "model: {layers: 0}\n",
            "error: invalid config: model.layers must be >= 1 or null (got 0)",
        ),
    ],
    ids=[
        "lr-nan",
        "lr-inf",
        "steps-1e30",
        "steps-1e30-text",
        "seed-1.5",
        "steps-2.0",
        "eps0",
        "layers0",
    ],
)
def test_config_values_are_checked(yaml_text, message, dataset, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    out_dir = tmp_path / "run"
    args = ["train", "--config", config, f"data.dir={dataset}", f"out_dir={out_dir}"]
    code, err = cli(args, capsys)
    assert code == 1 and one_error_line(err) == message
    assert not out_dir.exists()


def test_config_yaml_must_be_utf8(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"seed: 0\nout_dir: caf\xe9\n")
    code, err = cli(["train", "--config", config], capsys)
    assert code == 1
    assert one_error_line(err) == f"error: {config}: not UTF-8 text (byte 0xe9 at offset 20)"


def test_config_yaml_with_a_byte_order_mark_is_read(tmp_path):
    from seqdance.train.config import load_config

    config = tmp_path / "c.yaml"
    config.write_bytes("\ufeffseed: 3\n".encode())
    assert load_config(config).seed == 3


def test_override_float_for_integer_is_refused(dataset, tmp_path, capsys):
    code, err = cli(train_args(dataset, tmp_path / "r", "train.max_steps=1.0e+30"), capsys)
    assert code == 1
    assert one_error_line(err) == "error: config train.max_steps: expected an integer, got 1e+30"
    assert not (tmp_path / "r").exists()


# -- device picker ------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_train_cuda_without_gpu_is_one_line(dataset, tmp_path, capsys):
    code, err = cli(train_args(dataset, tmp_path / "r", "train.device=cuda"), capsys)
    assert code == 1
    assert one_error_line(err) == (
        "error: device 'cuda': no CUDA device is available on this machine"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "device, message",
    [
        ("tpu", "error: device 'tpu': unknown (use auto, cpu, cuda or cuda:N)"),
        ("gpu0", "error: device 'gpu0': unknown (use auto, cpu, cuda or cuda:N)"),
        pytest.param(
            "cuda",
            "error: device 'cuda': no CUDA device is available on this machine",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has a GPU"),
        ),
    ],
)
def test_evaluate_device_is_checked(device, message, model_dir, dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    args = ["evaluate", "-m", model_dir, "-d", dataset, "-o", out, "--device", device]
    code, err = cli(args, capsys)
    assert code == 1 and one_error_line(err) == message and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_predict_cuda_without_gpu_is_one_line(model_dir, tmp_path, capsys):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">a\nACDEFGHIK\n")
    out = tmp_path / "out"
    code, err = cli(["predict", fasta, "-m", model_dir, "-o", out, "--device", "cuda"], capsys)
    assert code == 1 and one_error_line(err) == (
        "error: device 'cuda': no CUDA device is available on this machine"
    )
    assert not out.exists()


# -- training: nothing written on a refused start, the lock, leftovers, damaged checkpoints --------


def test_unknown_label_leaves_nothing_and_the_fixed_command_runs(dataset, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, err = cli(train_args(dataset, out_dir, "data.label=nolabel"), capsys)
    assert code == 1 and one_error_line(err) == "error: the training set has no proteins"
    assert not out_dir.exists()
    code, err = cli(train_args(dataset, out_dir, "train.max_steps=1"), capsys)
    assert code == 0, err
    assert (out_dir / "checkpoints" / "step_1" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """A 2-update run with checkpoints step_0, step_1, step_2."""
    out_dir = tmp_path_factory.mktemp("fault_run") / "run"
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in train_args(dataset, out_dir, "train.max_steps=2",
                                          "train.save_every=1")])  # fmt: skip
    assert exit_info.value.code == 0
    return out_dir


def test_a_second_run_on_a_locked_out_dir_is_refused(trained, dataset, tmp_path, capsys):
    out_dir = tmp_path / "run"
    shutil.copytree(trained, out_dir)
    log_before = (out_dir / "log.jsonl").read_text()
    with open(out_dir / ".train.lock", "a") as held:  # another training process holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, err = cli([*train_args(dataset, out_dir, "train.max_steps=3"), "--resume"], capsys)
    assert code == 1 and one_error_line(err) == f"error: another training run is writing {out_dir}"
    assert (out_dir / "log.jsonl").read_text() == log_before


@pytest.mark.slow  # two real processes, ~25 s; the lock itself is tested in-process above
def test_two_resumes_at_once_one_is_refused(trained, dataset, tmp_path):
    """Two real processes: the second, started while the first trains, is refused; the log
    stays in order (no duplicated or out-of-order steps)."""
    out_dir = tmp_path / "run"
    shutil.copytree(trained, out_dir)
    args = [str(a) for a in train_args(dataset, out_dir, "train.max_steps=100000", "--resume")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "seqdance", *args]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=_as_in_a_terminal)  # fmt: skip
    log = out_dir / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and len(log.read_text().splitlines()) < 4:
        time.sleep(0.05)  # the first has taken the lock and is past update 3
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 130
    assert second.returncode == 1
    assert one_error_line(second.stderr) == f"error: another training run is writing {out_dir}"
    steps = [json.loads(ln)["step"] for ln in log.read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4


def test_leftover_checkpoint_temporaries_are_removed_on_resume(trained, dataset, tmp_path, capsys):
    out_dir = tmp_path / "run"
    shutil.copytree(trained, out_dir)
    stale = out_dir / "checkpoints" / ".step_3.tmp-999999"  # kill -9 during a checkpoint write
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    code, err = cli([*train_args(dataset, out_dir, "train.max_steps=3"), "--resume"], capsys)
    assert code == 0, err
    assert not stale.exists()
    assert sorted(p.name for p in (out_dir / "checkpoints").iterdir()) == [
        "step_0",
        "step_1",
        "step_2",
        "step_3",
    ]


def test_resume_from_truncated_weights_names_the_file(trained, dataset, tmp_path, capsys):
    out_dir = tmp_path / "run"
    shutil.copytree(trained, out_dir)
    weights = out_dir / "checkpoints" / "step_2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, err = cli([*train_args(dataset, out_dir, "train.max_steps=3"), "--resume"], capsys)
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: {weights}: damaged model weights (")
    assert not (out_dir / "checkpoints" / "step_3").exists()


# -- datasets: data that `dataset check` rejects, labels, truncated features.h5 --------------------


def test_evaluate_nan_target_is_named(model_dir, dataset, tmp_path, capsys):
    ds = copy_dataset(dataset, tmp_path / "ds")
    with h5py.File(ds / "features.h5", "a") as h5:
        values = h5[res_key("5xnd")][()]
        values[5, 0] = np.nan
        h5[res_key("5xnd")][...] = values
    out = tmp_path / "metrics.json"
    args = ["evaluate", "-m", model_dir, "-d", ds, "-o", out, "--label", "all", "--no-progress"]
    code, err = cli(args, capsys)
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: {ds}: protein 5xnd has non-finite ")
    assert not out.exists()


def test_weights_for_a_label_no_protein_has(dataset, tmp_path, capsys):
    ds = copy_dataset(dataset, tmp_path / "ds")
    index = pd.read_csv(ds / "index.csv")
    index["label"] = "train"
    index.to_csv(ds / "index.csv", index=False)
    out = tmp_path / "w.json"
    code, err = cli(["dataset", "weights", ds, "--label", "test", "-o", out, "--no-progress"],
                    capsys)  # fmt: skip
    assert code == 1 and one_error_line(err) == (
        f"error: {ds / 'index.csv'}: no protein labelled 'test' (labels: train)"
    )
    assert not out.exists()


def test_weights_refuse_data_that_check_rejects(dataset, tmp_path, capsys):
    ds = copy_dataset(dataset, tmp_path / "ds")
    with h5py.File(ds / "features.h5", "a") as h5:
        pair = h5[pair_key("3tvj_I")][()]
        pair[3, 4, -1] = 1e9  # a correlation channel: [-1, 1]
        h5[pair_key("3tvj_I")][...] = pair
    code, err = cli(["dataset", "check", ds], capsys)
    assert code == 1
    out = tmp_path / "w.json"
    code, err = cli(["dataset", "weights", ds, "-o", out, "--no-progress"], capsys)
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: {ds / 'features.h5'}: protein 3tvj_I: pair ")
    assert line.endswith("(run `seqdance dataset check`)") and not out.exists()


@pytest.fixture(scope="module")
def truncated(dataset, tmp_path_factory) -> Path:
    ds = copy_dataset(dataset, tmp_path_factory.mktemp("trunc") / "ds")
    h5 = ds / "features.h5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    return ds


@pytest.mark.parametrize("command", ["train", "evaluate", "weights", "attention"])
def test_truncated_features_h5_is_named(command, truncated, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = {
        "train": train_args(truncated, out, "data.loss_weights=" + str(truncated / WEIGHTS_FILE)),
        "evaluate": ["evaluate", "-m", model_dir, "-d", truncated, "-o", out / "m.json"],
        "weights": ["dataset", "weights", truncated, "-o", out / "w.json"],
        "attention": ["analyze", "attention", "-m", model_dir, "-d", truncated, "-o", out],
    }[command]
    code, err = cli(args, capsys)
    line = one_error_line(err)
    assert code == 1 and line.startswith(
        f"error: {truncated / 'features.h5'}: not a readable HDF5 file (truncated file"
    ), line
    assert not out.exists()


# -- model files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, problem",
    [
        ('"two"', "arch.num_layers must be an integer (got 'two')"),
        ("-1", "arch.num_layers must be >= 1 (got -1)"),
        ("0", "arch.num_layers must be >= 1 (got 0)"),
    ],
)
def test_model_config_json_is_checked(value, problem, model_dir, tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    text = json.dumps(config).replace(f'"num_layers": {config["arch"]["num_layers"]}',
                                      f'"num_layers": {value}')  # fmt: skip
    (folder / "config.json").write_text(text)
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">a\nACDEFGHIK\n")
    out = tmp_path / "out"
    code, err = cli(["predict", fasta, "-m", folder, "-o", out, "--no-progress"], capsys)
    assert code == 1 and one_error_line(err) == (
        f"error: {folder / 'config.json'}: invalid model config: {problem}"
    )
    assert not out.exists()


def test_raw_pickle_checkpoint_is_one_line_without_torch_advice(tmp_path, capsys):
    evil = tmp_path / "update_1.pt"
    evil.write_bytes(pickle.dumps({"model": {"w": [1, 2, 3]}}))  # a raw (non-zip) pickle
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">a\nACDEFGHIK\n")
    code, err = cli(["predict", fasta, "-m", evil, "-o", tmp_path / "out"], capsys)
    line = one_error_line(err)
    assert code == 1 and line.startswith(f"error: {evil}: cannot read model weights (")
    assert "weights_only=False" not in err and "UserWarning" not in err


def test_model_path_problems_are_named(tmp_path, capsys):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">a\nACDEFGHIK\n")
    (tmp_path / "runs").mkdir()
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    os.chdir(tmp_path)
    try:
        for spec, message in [
            ("runs/model", "error: --model runs/model: no such file or folder"),
            (str(loop), f"error: --model {loop}: symlink loop"),
            (
                str(dangling),
                f"error: --model {dangling}: broken symlink (its target does not exist)",
            ),
        ]:
            code, err = cli(["predict", fasta, "-m", spec, "-o", tmp_path / "out"], capsys)
            assert code == 1 and one_error_line(err) == message
            assert "Hugging Face" not in err
    finally:
        os.chdir(ROOT)


# -- inputs ----------------------------------------------------------------------------------------


def test_fasta_with_a_byte_order_mark_is_read(model_dir, tmp_path, capsys):
    fasta = tmp_path / "bom.fasta"
    fasta.write_bytes("\ufeff>a\nACDEFGHIK\n".encode())
    out = tmp_path / "out"
    code, err = cli(["predict", fasta, "-m", model_dir, "-o", out, "--no-progress"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.pair.npz", "a.residue.csv", "index.csv"]


def test_nma_on_a_folder_says_folder(tmp_path, capsys):
    code, err = cli(["features", "nma", tmp_path, "-o", tmp_path / "out", "--no-progress"],
                    capsys)  # fmt: skip
    assert code == 1
    assert one_error_line(err.replace("0 of 1 written\n", "")) == (
        f"error: {tmp_path}: is a folder, not a structure file (give PDB/mmCIF files)"
    )


def test_nma_on_collapsed_calphas_says_what_is_wrong(tmp_path, capsys):
    lines = [ln for ln in (NMA / "2KCF.pdb").read_text().splitlines()
             if ln.startswith("ATOM") and ln[12:16].strip() == "CA"][:10]  # fmt: skip
    same = [ln[:30] + f"{1.0:8.3f}{2.0:8.3f}{3.0:8.3f}" + ln[54:] for ln in lines]
    pdb = tmp_path / "flat.pdb"
    pdb.write_text("\n".join([*same, "END"]) + "\n")
    out = tmp_path / "out"
    code, err = cli(["features", "nma", pdb, "-o", out, "--no-progress"], capsys)
    assert code == 1
    assert one_error_line(err.replace("0 of 1 written\n", "")) == (
        f"error: {pdb}: all 10 C-alpha atoms are at one point (no structure to analyse)"
    )
    assert not list(out.glob("*.npz")) if out.exists() else True


def test_md_contacts_that_is_not_text(tmp_path, capsys):
    png = tmp_path / "some.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    out = tmp_path / "out" / "x"
    args = ["features", "md", "-t", TVJ / "3tvj_I.pdb", "-x", TVJ / "3tvj_I_10frames.dcd",
            "-o", out, "--contacts", png, "--no-progress"]  # fmt: skip
    code, err = cli(args, capsys)
    assert code == 1
    assert one_error_line(err) == f"error: {png}: not a GetContacts TSV (not UTF-8 text)"
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_score_empty_properties(model_dir, tmp_path, capsys):
    mutations = tmp_path / "m.csv"
    mutations.write_text("mutant\nA1G\n")
    out = tmp_path / "s.csv"
    args = ["score", "-m", model_dir, "--mutations", mutations, "-o", out, "--sequence",
            "ACDEFGHIK", "--properties", ""]  # fmt: skip
    code, err = cli(args, capsys)
    assert code == 1 and one_error_line(err) == (
        "error: no property named (give channel or feature names, comma-separated)"
    )
    assert not out.exists()


def _gym_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "gym"
    shutil.copytree(GYM, folder)
    return folder


@pytest.mark.parametrize("fault", ["non-numeric", "no-fasta", "three-records"])
def test_benchmark_assay_faults(fault, model_dir, tmp_path, capsys):
    gym = _gym_copy(tmp_path)
    name = "IF1_ECOLI_Kelsic_2016"
    if fault == "non-numeric":
        table = pd.read_csv(gym / f"{name}.csv")
        column = "DMS_score" if "DMS_score" in table.columns else "score"
        table[column] = table[column].astype(object)
        table.loc[2, column] = "n/a?"
        table.to_csv(gym / f"{name}.csv", index=False)
        expected = f"error: {gym / (name + '.csv')}: column {column}, row 4: 'n/a?' is not a number"
    elif fault == "no-fasta":
        (gym / f"{name}.fasta").unlink()
        expected = (f"error: {gym}: no wild-type FASTA for {name}.csv "
                    "(each X.csv needs X.fasta beside it)")  # fmt: skip
    else:
        fasta = gym / f"{name}.fasta"
        fasta.write_text(fasta.read_text() + ">b\nACDE\n>c\nKLMN\n")
        expected = f"error: {fasta}: 3 records; the wild type must be the only one"
    out = tmp_path / "out"
    code, err = cli(["benchmark", "-m", model_dir, "--assays", gym, "-o", out,
                     "--max-variants", "5", "--no-progress"], capsys)  # fmt: skip
    assert code == 1 and one_error_line(err) == expected
    assert not (out / "summary.csv").exists()


# -- trajectories ----------------------------------------------------------------------------------


def test_truncated_dcd_is_named(tmp_path, capsys):
    dcd = tmp_path / "half.dcd"
    data = (TVJ / "3tvj_I_10frames.dcd").read_bytes()
    dcd.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "x"
    args = ["features", "md", "-t", TVJ / "3tvj_I.pdb", "-x", dcd, "-o", out, "--no-progress"]
    code, err = cli(args, capsys)
    assert code == 0
    warned = [ln for ln in err.splitlines() if ": truncated:" in ln]
    assert len(warned) == 1 and str(dcd) in warned[0]
    assert "the header promises 10 frames, the file holds 4 complete frames" in warned[0]


@pytest.fixture(scope="module")
def half_xtc(tmp_path_factory) -> Path:
    """The 10-frame 3tvj_I trajectory as XTC, cut inside its 6th frame."""
    import mdtraj

    folder = tmp_path_factory.mktemp("xtc")
    traj = mdtraj.load(str(TVJ / "3tvj_I_10frames.dcd"), top=str(TVJ / "3tvj_I.pdb"))
    traj.save_xtc(str(folder / "full.xtc"))
    data = (folder / "full.xtc").read_bytes()
    half = folder / "half.xtc"
    half.write_bytes(data[: len(data) // 2 + 7])
    return half


@pytest.mark.parametrize("command", ["features md", "contacts"])
def test_truncated_xtc_is_named(command, half_xtc, tmp_path, capsys):
    top = TVJ / "3tvj_I.pdb"
    if command == "contacts":
        args = ["contacts", "-t", top, "-x", half_xtc, "-o", tmp_path / "c.tsv", "--no-progress"]
    else:
        args = ["features", "md", "-t", top, "-x", half_xtc, "-o", tmp_path / "x", "--no-progress"]
    code, err = cli(args, capsys)
    assert code == 0
    warned = [ln for ln in err.splitlines() if ": truncated:" in ln]
    assert warned == [
        f"warning: {half_xtc}: truncated: 7 bytes of a partial frame after frame 5; "
        "5 complete frames used"
    ]


def test_dataset_build_names_a_truncated_dcd(tmp_path, capsys):
    dcd = tmp_path / "half.dcd"
    data = (TVJ / "3tvj_I_10frames.dcd").read_bytes()
    dcd.write_bytes(data[: len(data) // 2])
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "name,source,kind,topology,trajectory,structure,label\n"
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{dcd},,train\n"
    )
    code, err = cli(["dataset", "build", manifest, "-o", tmp_path / "ds", "--no-progress"], capsys)
    assert code == 0
    warned = [ln for ln in err.splitlines() if ": truncated:" in ln]
    assert len(warned) == 1 and warned[0].startswith(f"warning: 3tvj_I: {dcd}: truncated: ")
    assert "the header promises 10 frames, the file holds 4 complete frames" in warned[0]


@pytest.fixture(scope="module")
def nan_dcd(tmp_path_factory) -> Path:
    """3tvj_I's 10 frames with one NaN coordinate in frame 7."""
    import mdtraj

    traj = mdtraj.load(str(TVJ / "3tvj_I_10frames.dcd"), top=str(TVJ / "3tvj_I.pdb"))
    traj.xyz[6, 17, 1] = np.nan
    dcd = tmp_path_factory.mktemp("nan") / "nan.dcd"
    traj.save_dcd(str(dcd))
    return dcd


@pytest.mark.parametrize("command", ["features md", "contacts"])
def test_nan_coordinate_in_one_frame_is_refused(command, nan_dcd, tmp_path, capsys):
    top = TVJ / "3tvj_I.pdb"
    out = tmp_path / "out"
    if command == "contacts":
        args = ["contacts", "-t", top, "-x", nan_dcd, "-o", out / "c.tsv", "--no-progress"]
    else:
        args = ["features", "md", "-t", top, "-x", nan_dcd, "-o", out / "x", "--no-progress"]
    code, err = cli(args, capsys)
    assert code == 1 and one_error_line(err) == (
        f"error: {nan_dcd}: frame 7 has NaN or infinite coordinates (1 such frame(s) in this chunk)"
    )
    assert not out.exists() or not any(out.iterdir())


# -- output groups: full disks and signals ---------------------------------------------------------


def test_output_group_all_or_nothing(tmp_path):
    from seqdance.utils.io import output_group

    with pytest.raises(OSError):
        with output_group() as group:
            group.path(tmp_path / "a.tsv").write_text("a")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
    with output_group() as group:
        group.path(tmp_path / "a.tsv").write_text("a")
        group.path(tmp_path / "b.npz").write_text("b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tsv", "b.npz"]


def _records(n: int, length: int) -> str:
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    return "".join(f">r{i}\n{''.join(rng.choice(letters, length))}\n" for i in range(n))


def _complete_groups(out: Path, with_plots: bool = False) -> None:
    names = sorted(p.name for p in out.iterdir() if p.name != "filler")
    assert no_temporaries(out) == []
    records = {n.split(".")[0] for n in names}
    suffixes = [".pair.npz", ".residue.csv"] + ([".pairs.png", ".profiles.png"] * with_plots)
    assert names == sorted(f"{r}{s}" for r in records for s in suffixes)


def test_predict_into_a_full_disk(model_dir, tmp_path, capsys):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(_records(6, 120))
    with small_disk(tmp_path / "disk", free_bytes=400_000) as disk:
        out = disk / "out"
        code, err = cli(["predict", fasta, "-m", model_dir, "-o", out, "--no-progress"], capsys)
        assert code == 1 and one_error_line(err).startswith("error: No space left on device")
        _complete_groups(out)  # whole records only, no temporaries


def test_benchmark_into_a_full_disk(model_dir, tmp_path, capsys):
    with small_disk(tmp_path / "disk", free_bytes=20_000) as disk:
        out = disk / "out"
        code, err = cli(["benchmark", "-m", model_dir, "--assays", GYM, "-o", out,
                         "--no-progress"], capsys)  # fmt: skip
        assert code == 1 and one_error_line(err).startswith("error: No space left on device")
        assert not (out / "summary.csv").exists()
        assert list((out / "scores").iterdir()) == [] and no_temporaries(out) == []


def test_dataset_merge_into_a_full_disk(dataset, tmp_path, capsys):
    with small_disk(tmp_path / "disk", free_bytes=20_000) as disk:
        out = disk / "merged.h5"
        code, err = cli(["dataset", "merge", dataset / "features.h5", "-o", out], capsys)
        assert code == 1 and one_error_line(err).startswith("error: No space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_dataset_build_when_the_disk_fills_during_the_merge(tmp_path):
    """The staged proteins fit (about 0.8 MB), the merged features.h5 does not: one line,
    exit 1 (it was a segmentation fault at exit), no temporary, the staging kept to resume."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "name,source,kind,topology,trajectory,structure,label\n"
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train\n"
        f"5xnd,mdCATH,md,{XND / '5xnd_topology.pdb'},{XND / '5xnd_6frames.dcd'},,test\n"
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train\n"
    )
    with small_disk(tmp_path / "disk", None, size="1200k") as disk:
        out = disk / "ds"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "seqdance", "dataset", "build", str(manifest), "-o", str(out),
             "--no-progress"], capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert one_error_line(done.stderr) == (
            f"error: No space left on device: {out / 'features.h5'}"
        )
        assert "Exception ignored" not in done.stderr
        assert sorted(p.name for p in out.iterdir()) == [".build.lock", "staging"]
        assert no_temporaries(out) == []


def _as_in_a_terminal() -> None:
    """In the child: Ctrl-C and SIGTERM with their default meaning, as in a terminal. A
    process inherits an ignored SIGINT (background jobs, some test runners' workers); then
    Python never installs its KeyboardInterrupt handler and the interrupt would be lost; and
    a child inherits the signal mask of the thread that started it (held signals stay held)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


LANDED_IN_A_CALLBACK = """
import gc, weakref
from seqdance import cli
class Box:
    pass
def landed(_):
    raise {exc}  # what the signal's handler raises, where the signal lands
box = Box()
box.cycle = box
ref = weakref.ref(box, landed)
del box
gc.disable()
real = cli.build_command
def build():
    gc.collect()  # the cycle, and its callback, go while the command runs
    return real()
cli.build_command = build
cli.main(["--version"])
"""


@pytest.mark.parametrize("exc, code, line", [("cli.Terminated", 143, "Terminated."),
                                             ("KeyboardInterrupt", 130, "Aborted.")])  # fmt: skip
def test_signal_landing_in_a_callback_ends_the_command_quietly(exc, code, line):
    # Python cannot raise in a weakref callback or destructor (h5py's, NumPy's): it printed
    # "Exception ignored" with a traceback, and the command went on as if never signalled
    done = subprocess.run([sys.executable, "-c", LANDED_IN_A_CALLBACK.format(exc=exc)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == code, done.stderr
    assert done.stderr.strip() == line and done.stdout.startswith("seqdance ")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_predict_interrupted_leaves_whole_records(sig, code, model_dir, tmp_path):
    fasta = tmp_path / "a.fasta"
    fasta.write_text(_records(400, 60))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "seqdance", "predict", str(fasta), "-m", str(model_dir),
               "-o", str(out), "--plots", "--no-progress", "--token-budget", "64"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_as_in_a_terminal)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out.is_dir() and len(list(out.iterdir())) >= 8):
        time.sleep(0.02)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    err = proc.stderr.read()
    assert "Traceback" not in err and err.strip() == ("Aborted." if code == 130 else "Terminated.")
    _complete_groups(out, with_plots=True)
