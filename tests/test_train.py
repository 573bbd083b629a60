"""Training: config, schedule, batches, the loop on a real 4-protein dataset, resume, frozen
trunk, DDP (torchrun, 2 CPU processes), evaluation, CLI errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import load_naive_model
from seqdance.cli import main
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.dataset import DatasetConfig, ProteinDataset, collate
from seqdance.data.weights import WEIGHTS_FILE, LossWeights, compute_loss_weights
from seqdance.errors import SeqDanceError
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.model.pair_grad import PairMiddle, TrainingForward
from seqdance.model.weights import load_model
from seqdance.schema import MISSING, PAIR_FEATURES, RESIDUE_FEATURES
from seqdance.train.batches import GroupBatches, stream_seed
from seqdance.train.checkpoint import load_trainer_state
from seqdance.train.config import Config, apply_overrides, load_config
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.train.loop import train
from seqdance.train.modeling import build_model, enable_ffn_checkpointing
from seqdance.train.schedule import learning_rate

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"
DATA = Path(__file__).parent / "data"
TVJ, XND, NMA = DATA / "md" / "3tvj_I", DATA / "md" / "5xnd", DATA / "nma"
GROUP_MD, GROUP_NMA = "ATLAS_GPCRmd_PED_mdCATH", "Proteinflow"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one intra-op thread. On a busy machine a second OpenMP thread waits for a
    time slice at every small op, which made these tests up to 30x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The real 4-protein dataset: 3tvj_I and 5xnd (MD), 2g3r and 2KCF (NMA), built by D's builder.

    Train: 3tvj_I (38 residues) and 2g3r (119); test: 5xnd (110) and 2KCF (36).
    """
    folder = tmp_path_factory.mktemp("train_data")
    rows = [
        f"3tvj_I,ATLAS,md,{TVJ / '3tvj_I.pdb'},{TVJ / '3tvj_I_10frames.dcd'},,train",
        f"5xnd,mdCATH,md,{XND / '5xnd_topology.pdb'},{XND / '5xnd_6frames.dcd'},,test",
        f"2g3r,proteinflow_pdb,nma,,,{NMA / '2g3r.pdb'},train",
        f"2KCF,proteinflow_sabdab,nma,,,{NMA / '2KCF.pdb'},test",
    ]
    manifest = folder / "manifest.csv"
    header = "name,source,kind,topology,trajectory,structure,label"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    out = folder / "ds"
    report = build_dataset(manifest, out, BuildConfig(workers=1, progress=False))
    assert report.ok, report.failed
    compute_loss_weights(out, label="train").save(out / WEIGHTS_FILE)
    return out


def tiny(dataset: Path, out_dir: Path, *extra: str) -> Config:
    base = [f"data.dir={dataset}", f"out_dir={out_dir}", "train.progress=false"]
    base += ["train.phases.0.crop_size=32"]  # 3tvj_I (40 tokens) and 2g3r (121) are cropped
    return load_config(CONFIGS / "tiny.yaml", [*base, *extra])


def read_log(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]


# -- config ----------------------------------------------------------------------------------


def test_yaml_and_overrides_are_typed(tmp_path):
    cfg = load_config(
        CONFIGS / "seqdance_35M.yaml",
        ["train.max_steps=10", "model.freeze_trunk=false", "optim.lr=2e-4",
         "train.phases.1.batch_size=4", "optim.clip_value=null", "data.dir=x", "out_dir=y"],
    )  # fmt: skip
    assert cfg.train.max_steps == 10 and cfg.optim.lr == 2e-4 and cfg.optim.clip_value is None
    assert cfg.train.phases[1].batch_size == 4 and cfg.train.phases[0].crop_size == 256
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(SeqDanceError, match="unknown key 'max_step'.*max_steps"):
        apply_overrides(cfg, ["train.max_step=3"])
    with pytest.raises(SeqDanceError, match="train.max_steps: expected an integer"):
        apply_overrides(cfg, ["train.max_steps=many"])
    with pytest.raises(SeqDanceError, match="no list item '5'"):
        apply_overrides(cfg, ["train.phases.5.crop_size=3"])
    with pytest.raises(SeqDanceError, match="key.sub=value"):
        apply_overrides(cfg, ["train.max_steps"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {max_steps: 5\n")
    with pytest.raises(SeqDanceError, match="not valid YAML"):
        load_config(bad)


def test_shipped_configs_follow_the_paper():
    sd = load_config(CONFIGS / "seqdance_35M.yaml", ["data.dir=x", "out_dir=y"]).validate()
    ed = load_config(CONFIGS / "esmdance_35M.yaml", ["data.dir=x", "out_dir=y"]).validate()
    for cfg in (sd, ed):
        o = cfg.optim
        assert (o.lr, o.betas, o.eps, o.weight_decay) == (1e-4, (0.9, 0.98), 1e-8, 0.01)
        assert (o.warmup_steps, o.decay_fraction, o.final_lr_fraction) == (2000, 0.9, 0.1)
        assert o.clip_value == 0.5 and cfg.model.dropout == 0.1
        assert cfg.model.arch == "esm2_t12_35M_UR50D"
        short, long = cfg.train.phases
        assert (short.crop_size, short.batch_size, short.accum_steps) == (256, 16, 2)
        assert (long.crop_size, long.batch_size, long.accum_steps) == (1024, 2, 16)
    assert sd.train.max_steps == 200_000 and sd.train.phases[0].until_step == 160_000
    assert ed.train.max_steps == 60_000 and ed.train.phases[0].until_step == 40_000
    assert not sd.model.freeze_trunk and ed.model.freeze_trunk
    assert ed.model.trunk_weights == "facebook/esm2_t12_35M_UR50D"
    assert sd.phase_at(159_999).crop_size == 256 and sd.phase_at(160_000).crop_size == 1024


def test_schedule_values():
    lr = [learning_rate(n, 1e-4, 200_000, 2000) for n in (0, 1000, 2000, 91_000, 180_000, 190_000)]
    np.testing.assert_allclose(lr, [0.0, 5e-5, 1e-4, 5.5e-5, 1e-5, 1e-5], rtol=1e-12)


# -- data order --------------------------------------------------------------------------------


def test_batches_are_a_function_of_seed_step_and_rank(dataset):
    ds = ProteinDataset(dataset, label="train", config=DatasetConfig(crop_size=32))
    batches = GroupBatches(ds)
    assert batches.groups == [GROUP_MD, GROUP_NMA]

    def starts(seed, step, rank):
        reqs = list(batches.requests(seed, step, step + 1, 4, 1, rank))
        return [batches[r]["starts"] for r in reqs]

    assert starts(0, 7, 0) == starts(0, 7, 0)  # reproducible
    draws = [starts(0, s, r) for s in range(4) for r in range(2)]
    assert len({json.dumps(d) for d in draws}) > 1  # crops vary with step and rank
    assert stream_seed(1, 2) != stream_seed(2, 1)
    first = batches[next(batches.requests(0, 0, 1, 4, 1, 0))]
    assert first["input_ids"].shape == (4, 32) and first["pair"].shape == (4, 32, 32, 13)


def test_loss_equals_a_per_protein_loop(dataset):
    """C's vectorised loss with the group's weights vs a Python loop over proteins/features."""
    weights = LossWeights.load(dataset / WEIGHTS_FILE).weights[GROUP_MD]
    ds = ProteinDataset(dataset, label=None, groups=[GROUP_MD], config=DatasetConfig(None))
    batch = collate([ds[0], ds[1]])  # 3tvj_I and 5xnd: different lengths, padded
    torch.manual_seed(0)
    residue = torch.rand(batch["res"].shape)  # (B, T, 50)
    pair = torch.rand(batch["pair"].shape)  # (B, T, T, 13)
    loss, terms = masked_rmse_loss(
        residue, pair, SeqDanceTargets(batch["res"], batch["pair"]), weights
    )
    expected = 0.0
    for pred, target, features in ((residue, batch["res"], RESIDUE_FEATURES),
                                   (pair, batch["pair"], PAIR_FEATURES)):  # fmt: skip
        for f in features:
            per_protein = []
            for b in range(2):
                p = pred[b][..., f.slice].numpy().ravel().astype(np.float64)
                t = target[b][..., f.slice].numpy().ravel().astype(np.float64)
                keep = t != MISSING
                if keep.any():
                    per_protein.append(math.sqrt(np.mean((p[keep] - t[keep]) ** 2)))
            if per_protein:
                value = float(np.mean(per_protein))
                assert terms[f.name].item() == pytest.approx(value, rel=1e-5)
                expected += weights.get(f.name, 1.0) * value
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert "nma_res" not in terms  # MD proteins have no NMA targets


# -- training forward ------------------------------------------------------------------------


def test_pair_middle_gradient_is_exact():
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 6), (7, 6), (5, 12), (5,), (3, 5)]  # q, k, W_mid, b_mid, W_pm
    args = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]
    for chunk in (40, 10**6):  # several row blocks, one block
        assert torch.autograd.gradcheck(lambda *a, c=chunk: PairMiddle.apply(*a, c), args)


def test_training_forward_matches_the_model(dataset):
    """Same outputs and gradients as autograd through C's SeqDanceModel, padding included."""
    cfg = load_config(CONFIGS / "tiny.yaml", ["model.dropout=0.0"])
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    model.chunk_elements = 4000  # several row blocks
    ds = ProteinDataset(dataset, label=None, config=DatasetConfig(crop_size=None))
    batch = collate([ds[i] for i in range(len(ds))])  # 4 proteins, 38 to 119 residues
    targets = SeqDanceTargets(batch["res"], batch["pair"])
    results = []
    trainer = TrainingForward(model)  # run twice: the second reuses the first's pooled buffers
    for net in (model, trainer, trainer):
        model.zero_grad()
        out = net(batch["input_ids"], batch["attention_mask"])
        loss = masked_rmse_loss(out.residue, out.pair, targets)[0]
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out, loss, grads))
    (a, loss_a, grad_a) = results[0]
    mask = batch["attention_mask"].bool()
    valid = mask[:, :, None] & mask[:, None, :]  # (B, T, T)
    for b, loss_b, grad_b in results[1:]:
        torch.testing.assert_close(b.pair[valid], a.pair[valid], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b.residue, a.residue)
        assert loss_b.item() == pytest.approx(loss_a.item(), rel=1e-6)
        assert grad_a.keys() == grad_b.keys()
        for name, grad in grad_a.items():
            torch.testing.assert_close(grad_b[name], grad, rtol=1e-4, atol=1e-6, msg=name)


# -- the loop ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight(dataset, tmp_path_factory) -> Path:
    """40 updates in one go (save every 10)."""
    out = tmp_path_factory.mktemp("runs") / "straight"
    train(tiny(dataset, out, "train.max_steps=40", "train.save_every=10", "train.log_every=5"))
    return out


def test_loss_falls_logs_and_checkpoints(straight):
    log = read_log(straight)
    assert [r["step"] for r in log] == list(range(5, 45, 5))
    first, last = log[0], log[-1]
    assert {"step", "loss", "lr", "features", "groups"} <= set(last)
    assert set(last["groups"]) == {GROUP_MD, GROUP_NMA}
    assert {"sasa_mean", "corr", "nma_res", "nma_pair"} <= set(last["features"])
    assert last["loss"] < 0.7 * first["loss"]
    assert last["lr"] == pytest.approx(3e-4)  # 0.1 x peak after 90% of the updates
    steps = sorted(int(p.name.split("_")[1]) for p in (straight / "checkpoints").iterdir())
    assert steps == [0, 10, 20, 30, 40]
    state = load_trainer_state(straight / "checkpoints" / "step_40")
    assert state["step"] == 40 and state["config"]["train"]["max_steps"] == 40
    assert not list((straight / "checkpoints").glob(".*"))  # no temporary folders left


def test_training_frees_its_step_buffers(dataset, tmp_path):
    from seqdance.model import pair_grad
    from seqdance.utils.workspace import WORKSPACE

    train(tiny(dataset, tmp_path / "run", "train.max_steps=2", "train.save_every=2"))
    assert pair_grad._PRE._free == [] and WORKSPACE._buffers == {}


def test_checkpoint_loads_with_the_predict_loader(straight, dataset, tmp_path):
    folder = straight / "checkpoints" / "step_40"
    model = load_model(folder)  # the rule `seqdance predict --model` uses
    saved = load_file(str(folder / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    start = load_file(str(straight / "checkpoints" / "step_0" / "model.safetensors"))
    assert not torch.equal(start["res_pred_nn.4.weight"], saved["res_pred_nn.4.weight"])
    assert model.config.arch.num_layers == 2 and model.config.arch.hidden_size == 32

    # and the predict command runs on it, with the model's own numbers
    import pandas as pd

    sequence = ProteinDataset(dataset, label=None).sequences[0]
    fasta = tmp_path / "one.fasta"
    fasta.write_text(f">p1\n{sequence}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(fasta), "--model", str(folder), "--out", str(tmp_path / "pred"),
              "--no-progress"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    table = pd.read_csv(tmp_path / "pred" / "p1.residue.tsv", sep="\t")
    from seqdance.model.alphabet import batch_encode

    with torch.no_grad():
        expected = model(*batch_encode([sequence]), pair=False).residue[0, 1:-1, 0]  # sasa_mean
    np.testing.assert_allclose(table["sasa_mean"].to_numpy(), expected.numpy(), rtol=1e-4)


def test_resume_is_exact(straight, dataset, tmp_path):
    out = tmp_path / "resumed"
    common = ["train.save_every=10", "train.log_every=5", "optim.total_steps=40"]
    first = train(tiny(dataset, out, "train.max_steps=20", *common))
    assert first.step == 20
    second = train(tiny(dataset, out, "train.max_steps=40", *common), resume=True)
    assert second.step == 40
    a = load_file(str(straight / "checkpoints" / "step_40" / "model.safetensors"))
    b = load_file(str(out / "checkpoints" / "step_40" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    assert [r["step"] for r in read_log(out)] == [r["step"] for r in read_log(straight)]
    for x, y in zip(read_log(out), read_log(straight), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
    with pytest.raises(SeqDanceError, match="already holds checkpoints"):
        train(tiny(dataset, out, "train.max_steps=40"))
    with pytest.raises(SeqDanceError, match="config differs.*optim.lr"):
        train(tiny(dataset, out, "train.max_steps=50", "optim.lr=1e-2", *common), resume=True)


def test_frozen_trunk_stays_frozen(dataset, tmp_path):
    from transformers import EsmModel

    tiny_model = build_model(load_config(CONFIGS / "tiny.yaml").model)
    trunk_dir = tmp_path / "esm2_tiny"
    hf_config = load_naive_model().hf_config
    EsmModel(hf_config(tiny_model.config.arch), add_pooling_layer=False).save_pretrained(trunk_dir)
    saved = EsmModel.from_pretrained(trunk_dir, add_pooling_layer=False).state_dict()
    reference = {k: v for k, v in saved.items()  # 4.48's absolute position table is unused
                 if k.endswith(("weight", "bias")) and "position_embeddings" not in k}
    assert len(reference) > 30

    out = tmp_path / "frozen"
    extra = [f"model.trunk_weights={trunk_dir}", "model.freeze_trunk=true"]
    cfg = tiny(dataset, out, "train.max_steps=6", "train.save_every=6", *extra)
    model = build_model(cfg.model).train()
    assert not model.esm2.training and model.res_pred_nn.training
    assert not any(p.requires_grad for p in model.esm2.parameters())
    train(cfg)
    start = load_file(str(out / "checkpoints" / "step_0" / "model.safetensors"))
    end = load_file(str(out / "checkpoints" / "step_6" / "model.safetensors"))
    for key, value in reference.items():
        assert torch.equal(start[f"esm2.{key}"], value), key  # the pretrained trunk was loaded
        assert torch.equal(end[f"esm2.{key}"], value), key  # and never changed
    assert not torch.equal(start["pair_pred_linear.weight"], end["pair_pred_linear.weight"])
    assert (
        json.loads((out / "checkpoints" / "step_6" / "config.json").read_text())["variant"]
        == "esmdance"
    )
    assert load_model(out / "checkpoints" / "step_6").config.freeze_trunk


def test_ffn_checkpointing_gives_the_same_gradients(dataset):
    cfg = load_config(CONFIGS / "tiny.yaml", ["model.dropout=0.0"])
    ds = ProteinDataset(dataset, label="train", config=DatasetConfig(crop_size=48))
    batch = collate([ds[0], ds[1]])
    targets = SeqDanceTargets(batch["res"], batch["pair"])
    grads = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg.model).train()
        if checkpointed:
            enable_ffn_checkpointing(model)
        out = model(batch["input_ids"], batch["attention_mask"])
        masked_rmse_loss(out.residue, out.pair, targets)[0].backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_torchrun_two_processes_one_writer(dataset, tmp_path):
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [
        str(torchrun), "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
        "-m", "seqdance", "train", "--config", str(CONFIGS / "tiny.yaml"),
        f"data.dir={dataset}", f"out_dir={out}", "train.max_steps=4", "train.save_every=2",
        "train.log_every=1", "train.progress=false", "train.phases.0.crop_size=32",
        "train.phases.0.accum_steps=2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    log = read_log(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # one writer: no duplicated lines
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps == ["step_0", "step_2", "step_4"]
    assert load_trainer_state(out / "checkpoints" / "step_4")["world_size"] == 2
    load_model(out / "checkpoints" / "step_4")


# -- evaluation ----------------------------------------------------------------------------------


def test_evaluate_reports_per_feature_errors(straight, dataset, tmp_path):
    metrics_path = tmp_path / "metrics.json"
    folder = straight / "checkpoints" / "step_40"
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(folder), "--data", str(dataset),
              "--out", str(metrics_path), "--no-progress"])  # fmt: skip
    assert exit_info.value.code in (0, None)
    metrics = json.loads(metrics_path.read_text())
    assert metrics["n_proteins"] == {GROUP_MD: 1, GROUP_NMA: 1}  # 5xnd and 2KCF

    # slow reference: one protein at a time, RMSE over valid elements with NumPy
    model = load_model(folder)
    ds = ProteinDataset(dataset, label="test", config=DatasetConfig(1024, random_crop=False))
    for i, name in enumerate(ds.names):
        item = ds[i]
        with torch.no_grad():
            out = model(item["input_ids"][None])
        group = metrics["groups"][ds.groups[i]]["rmse"]
        for pred, target, features in ((out.residue[0], item["res"], RESIDUE_FEATURES),
                                       (out.pair[0], item["pair"], PAIR_FEATURES)):  # fmt: skip
            for f in features:
                t = target[..., f.slice].numpy().ravel()
                p = pred[..., f.slice].numpy().ravel()
                keep = t != MISSING
                if keep.any():
                    expected = math.sqrt(np.mean((p[keep] - t[keep]) ** 2.0))
                    assert group[f.name] == pytest.approx(expected, rel=1e-4), (name, f.name)
                    assert metrics["features"][f.name] == pytest.approx(expected, rel=1e-4)
                else:
                    assert f.name not in group
    weights = LossWeights.load(dataset / WEIGHTS_FILE).weights[GROUP_NMA]
    nma = metrics["groups"][GROUP_NMA]
    expected_loss = sum(weights[n] * v for n, v in nma["rmse"].items())
    assert nma["loss"] == pytest.approx(expected_loss, rel=1e-6)
    direct = evaluate_model(model, dataset, EvalConfig(batch_size=2))
    assert direct["features"] == pytest.approx(metrics["features"], rel=1e-4)


# -- user errors ---------------------------------------------------------------------------------


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr().err


def test_cli_errors_are_one_line(dataset, tmp_path, capsys):
    tiny_yaml = str(CONFIGS / "tiny.yaml")
    code, err = run_cli(["train", "--config", tiny_yaml, f"out_dir={tmp_path / 'a'}"], capsys)
    assert code == 1 and err.strip() == (
        "error: invalid config: data.dir is not set (a `seqdance dataset build` folder)"
    )
    code, err = run_cli(["train", "--config", tiny_yaml, "train.max_step=3"], capsys)
    assert code == 1 and "unknown key 'max_step'" in err and len(err.strip().splitlines()) == 1
    args = ["train", "--config", tiny_yaml, f"data.dir={dataset}", f"out_dir={tmp_path / 'b'}"]
    code, err = run_cli([*args, "--resume"], capsys)
    assert code == 1 and "--resume: no checkpoint" in err
    code, err = run_cli(["train", "--config", str(tmp_path / "none.yaml")], capsys)
    assert code == 1 and "config file not found" in err
    frozen = [*args, "model.freeze_trunk=true"]
    code, err = run_cli(frozen, capsys)
    assert code == 1 and "needs model.trunk_weights" in err
    code, err = run_cli([*frozen, f"model.trunk_weights={tmp_path / 'no_esm'}"], capsys)
    assert code == 1 and "cannot load an ESM2 model" in err
    out = tmp_path / "metrics.json"
    code, err = run_cli(["evaluate", "--model", str(tmp_path / "nope"), "--data", str(dataset),
                         "--out", str(out)], capsys)  # fmt: skip
    assert code == 1 and err.startswith("error: ") and not out.exists()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_paths_run(dataset, tmp_path, precision):
    """The autocast (bf16) and autocast + gradient scaler (fp16) paths, here on the CPU."""
    out = tmp_path / precision
    result = train(tiny(dataset, out, "train.max_steps=3", "train.log_every=1",
                        f"train.precision={precision}"))  # fmt: skip
    log = read_log(out)
    assert result.step == 3 and all(math.isfinite(r["loss"]) for r in log)
    state = load_trainer_state(out / "checkpoints" / "step_3")
    assert (state["scaler"] is not None) == (precision == "fp16")


def test_fine_tuning_starts_from_the_given_model(straight, dataset, tmp_path):
    source = straight / "checkpoints" / "step_40"
    out = tmp_path / "finetune"
    train(tiny(dataset, out, "train.max_steps=2", f"model.init_from={source}"))
    a = load_file(str(source / "model.safetensors"))
    b = load_file(str(out / "checkpoints" / "step_0" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_less_checkpoint_needs_the_variant_to_fine_tune(tmp_path):
    """An authors' ``update_N.pt`` (state dict only) does not say SeqDance or ESMDance:
    fine-tuning it without model.freeze_trunk is a one-line error, not a silent SeqDance."""
    base = load_config(CONFIGS / "tiny.yaml").model
    torch.manual_seed(0)
    source = build_model(base)
    path = tmp_path / "update_5.pt"
    torch.save(source.state_dict(), path)
    cfg = load_config(CONFIGS / "tiny.yaml", [f"model.init_from={path}"]).model
    with pytest.raises(SeqDanceError, match=r"no config .* set model\.freeze_trunk"):
        build_model(cfg)
    for freeze in (True, False):
        overrides = [f"model.init_from={path}", f"model.freeze_trunk={freeze}"]
        cfg = load_config(CONFIGS / "tiny.yaml", overrides).model
        model = build_model(cfg)
        assert model.config.freeze_trunk is freeze
        assert all(p.requires_grad is not freeze for n, p in model.esm2.named_parameters()
                   if not n.startswith("contact_head"))  # fmt: skip
        assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())
    # a saved model with its config keeps its own variant when the option is unset
    frozen = load_config(CONFIGS / "tiny.yaml", [f"model.init_from={path}",
                                                 "model.freeze_trunk=true"]).model  # fmt: skip
    folder = build_model(frozen).save_pretrained(tmp_path / "esmdance")
    cfg = load_config(CONFIGS / "tiny.yaml", [f"model.init_from={folder}"]).model
    assert build_model(cfg).config.freeze_trunk


def test_worker_processes_read_the_same_batches(dataset, tmp_path):
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"workers{workers}"
        train(tiny(dataset, out, "train.max_steps=3", f"data.num_workers={workers}"))
        runs[workers] = load_file(str(out / "checkpoints" / "step_3" / "model.safetensors"))
    assert all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_resume_across_a_phase_change(dataset, tmp_path):
    """256 -> 1,024 tokens in miniature: crops 24 then 48 tokens, batch 2 x 1 then 1 x 2."""
    phases = (
        "train.phases=[{crop_size: 24, batch_size: 2, accum_steps: 1, until_step: 3},"
        " {crop_size: 48, batch_size: 1, accum_steps: 2}]"
    )
    common = [phases, "train.log_every=1", "optim.total_steps=6", "train.save_every=2"]
    train(tiny(dataset, tmp_path / "a", "train.max_steps=6", *common))
    train(tiny(dataset, tmp_path / "b", "train.max_steps=2", *common))
    train(tiny(dataset, tmp_path / "b", "train.max_steps=6", *common), resume=True)
    log = read_log(tmp_path / "a")
    assert [r["crop_size"] for r in log] == [24, 24, 24, 48, 48, 48]
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step_6" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step_6" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
