"""Training: config, schedule, batches, the loop on a real 4-protein dataset, resume, frozen
trunk, DDP (torchrun, 2 CPU processes), evaluation, CLI errors."""

from __future__ import annotations

import functools
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

from seqdance.cli import main
from seqdance.data.build import BuildConfig, build_dataset
from seqdance.data.dataset import DatasetConfig, ProteinDataset, collate
from seqdance.data.loss_weights import WEIGHTS_FILE, compute_loss_weights
from seqdance.errors import SeqDanceError
from seqdance.model import load_model
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.model.pair_grad import PairMiddle
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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_element_mask_loss_equals_a_per_protein_loop(dataset):
    """The ``element`` mask option with pooled NMA terms and our JSON weights vs a Python
    loop over proteins/features (every element whose target is not -1)."""
    weights = compute_loss_weights(dataset, label="train", nma_bands=False).weights[GROUP_MD]
    ds = ProteinDataset(dataset, label=None, groups=[GROUP_MD], config=DatasetConfig(None))
    batch = collate([ds[0], ds[1]])  # 3tvj_I and 5xnd: different lengths, padded
    torch.manual_seed(0)
    residue = torch.rand(batch["res"].shape)  # (B, T, 50)
    pair = torch.rand(batch["pair"].shape)  # (B, T, T, 13)
    loss, terms = masked_rmse_loss(
        residue, pair, SeqDanceTargets(batch["res"], batch["pair"]), weights,
        mask="element", nma_bands=False,
    )  # fmt: skip
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


# The authors' calculate_loss (model/utils.py), re-implemented slowly from their description:
# their output index tables, stored-layout targets read straight from the HDF5 file, a Python loop
# over proteins, validity from the first stored channel, and pandas .loc on the weight table.
AUTHORS_RES_IDX = {"sasa_mean": 0, "sasa_std": 1, "rmsf_nor": 2, "ss": range(3, 11),
                   "chi": range(11, 23), "phi": range(23, 35), "psi": range(35, 47)}  # fmt: skip
AUTHORS_PAIR_IDX = {"vdw": 0, "hbbb": 1, "hbsb": 2, "hbss": 3, "hp": 4, "sb": 5, "pc": 6,
                    "ps": 7, "ts": 8, "corr": 9}  # fmt: skip
AUTHORS_ROWS = ["rmsf_nor", "sasa_mean", "sasa_std", "ss", "chi", "phi", "psi", "vdw", "hbbb",
                "hbsb", "hbss", "hp", "sb", "pc", "ps", "ts", "corr", "nma_res1", "nma_pair1",
                "nma_res2", "nma_pair2", "nma_res3", "nma_pair3"]  # fmt: skip


def stored_targets(root: Path, names, starts, width: int):
    """The authors' padded batch: stored-layout res (B, T, C) and pair (B, T, T, C), -1 pads;
    RMSF divided by its maximum before the crop, as their ProteinDataset."""
    import h5py

    res_out, pair_out = [], []
    with h5py.File(root / "features.h5", "r") as h5:
        for name, start in zip(names, starts, strict=True):
            res = h5[f"{name}_res_feature"][()].astype(np.float64)
            pair = h5[f"{name}_pair_feature"][()].astype(np.float64)
            if res.shape[1] == 47:
                col = res[:, 2]
                col[col != -1] = col[col != -1] / col[col != -1].max()
            window = slice(start, start + width)
            res, pair = res[window], pair[window, window]
            r = np.full((width, res.shape[1]), -1.0)
            q = np.full((width, width, pair.shape[2]), -1.0)
            r[: len(res)], q[: len(res), : len(res)] = res, pair
            res_out.append(r)
            pair_out.append(q)
    return np.stack(res_out), np.stack(pair_out)


def authors_loss(group: str, residue, pair, res_feat, pair_feat, table) -> float:
    """Their weighted loss of one group's batch; ``residue`` (B, T, 50), ``pair`` (B, T, T, 13)."""
    losses = {}
    valid_res = res_feat[:, :, 0] != -1
    valid_pair = pair_feat[:, :, :, 0] != -1

    def rmse(out, target, valid):
        return math.sqrt(np.mean((out[valid] - target[valid]) ** 2))

    n = len(res_feat)
    if group in ("ATLAS_GPCRmd_PED_mdCATH", "IDRome"):
        for f, idx in AUTHORS_RES_IDX.items():
            idx = list(idx) if isinstance(idx, range) else idx
            losses[f] = np.mean([rmse(residue[p][:, idx], res_feat[p][:, idx], valid_res[p])
                                 for p in range(n)])  # fmt: skip
        for f, idx in AUTHORS_PAIR_IDX.items():
            losses[f] = np.mean([rmse(pair[p][:, :, idx], pair_feat[p][:, :, idx], valid_pair[p])
                                 for p in range(n)])  # fmt: skip
    else:
        for k in range(3):
            losses[f"nma_res{k + 1}"] = np.mean(
                [rmse(residue[p][:, 47 + k], res_feat[p][:, k], valid_res[p]) for p in range(n)]
            )
            losses[f"nma_pair{k + 1}"] = np.mean(
                [
                    rmse(pair[p][:, :, 10 + k], pair_feat[p][:, :, k], valid_pair[p])
                    for p in range(n)
                ]  # fmt: skip
            )
    return sum(losses[f] * table.loc[f, group] for f in losses), losses


def test_authors_loss_on_a_training_batch(dataset, tmp_path):
    """`seqdance train` with the tiny config and a weight CSV in the authors' layout: the loss of
    each group's micro-batch equals the authors' calculate_loss recomputed protein by protein."""
    import pandas as pd

    from seqdance.train.batches import phase_loader
    from seqdance.train.distributed import DistEnv
    from seqdance.train.loop import _Trainer

    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.uniform(0.1, 5.0, size=(len(AUTHORS_ROWS), 3)), index=AUTHORS_ROWS,
                         columns=["ATLAS_GPCRmd_PED_mdCATH", "IDRome", "Proteinflow"])  # fmt: skip
    table.to_csv(tmp_path / "weights.csv")
    assert (tmp_path / "weights.csv").read_text().startswith(",ATLAS_GPCRmd_PED_mdCATH,IDRome,")
    table = pd.read_csv(tmp_path / "weights.csv", index_col=0)  # as their utils.py reads it
    cfg = tiny(dataset, tmp_path / "run", f"loss.weights={tmp_path / 'weights.csv'}",
               "model.dropout=0.0", "data.label=null")  # fmt: skip
    assert cfg.loss.mask == "residue" and cfg.loss.nma_bands and cfg.data.clamp is None
    trainer = _Trainer(cfg, DistEnv(), torch.device("cpu"))
    weights = trainer._loss_weights()
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    batches = phase_loader(str(dataset), None, 32, None, trainer.group_table())
    # the authors' training groups: mdCATH (5xnd) is not drawn from
    names = {g: sorted(batches.dataset.names[i] for i in m) for g, m in batches.members.items()}
    assert names == {GROUP_MD: ["3tvj_I"], GROUP_NMA: ["2KCF", "2g3r"]}
    assert batches.dataset.left_out == {"mdCATH": 1}  # named in training's note
    seen = set()
    for request in batches.requests(0, 0, 2, 2, 1, 0):
        batch = batches[request]
        group = batch["groups"][0]
        seen.add(group)
        loss, terms = trainer._loss(model, batch, weights)
        with torch.no_grad():
            out = model(batch["input_ids"], batch["attention_mask"])
        width = batch["input_ids"].shape[1]
        res_feat, pair_feat = stored_targets(dataset, batch["names"], batch["starts"], width)
        residue, pair = out.residue.double().numpy(), out.pair.double().numpy()
        expected, parts = authors_loss(group, residue, pair, res_feat, pair_feat, table)
        assert set(terms) == set(parts)
        for name, value in parts.items():
            assert terms[name].item() == pytest.approx(value, rel=1e-5), name
        assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert seen == {GROUP_MD, GROUP_NMA}


def test_paper_configs_read_the_authors_weight_table():
    """The shipped table holds the values printed in the authors' loss_weight.ipynb."""
    from seqdance.train.distributed import DistEnv
    from seqdance.train.loop import _Trainer

    for name in ("seqdance_35M.yaml", "esmdance_35M.yaml"):
        cfg = load_config(CONFIGS / name, ["data.dir=x", "out_dir=y"]).validate()
        assert cfg.loss.weights == "authors" and cfg.train.precision == "fp16"
        assert cfg.data.clamp is None and cfg.loss.mask == "residue" and cfg.loss.nma_bands
        md = [g for g in cfg.data.groups if g.name == GROUP_MD][0]
        assert md.sources == ["ATLAS", "GPCRmd", "PED"]  # mdCATH left out, as their loader
        weights = _Trainer(cfg, DistEnv(), torch.device("cpu"))._loss_weights()
        assert weights[GROUP_MD]["sasa_mean"] == 0.073041
        assert weights["IDRome"]["ps"] == 17.344838
        assert weights[GROUP_NMA]["nma_res2"] == 16.533815
        assert weights[GROUP_NMA]["nma_pair3"] == 2.974789
        assert weights[GROUP_NMA]["corr"] == 0.0 and len(weights[GROUP_MD]) == 23


def test_weight_table_must_cover_the_groups(dataset, tmp_path):
    import pandas as pd

    bad = pd.DataFrame({"ATLAS_GPCRmd_PED_mdCATH": [1.0], "Proteinflow": [1.0]}, index=["vdw"])
    bad.to_csv(tmp_path / "bad.csv")
    with pytest.raises(SeqDanceError, match="no column for data group 'IDRome'"):
        train(tiny(dataset, tmp_path / "run", f"loss.weights={tmp_path / 'bad.csv'}"))


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
    # the training forward, run twice: the second reuses the first's pooled buffers
    trainer = functools.partial(model, lean_backward=True)
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
    assert {"sasa_mean", "corr", "nma_res1", "nma_pair3"} <= set(last["features"])
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
    table = pd.read_csv(tmp_path / "pred" / "p1.residue.csv")
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


def test_frozen_trunk_stays_frozen(naive_model, dataset, tmp_path):
    from transformers import EsmModel

    tiny_model = build_model(load_config(CONFIGS / "tiny.yaml").model)
    trunk_dir = tmp_path / "esm2_tiny"
    hf_config = naive_model.hf_config
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

    # slow reference: the authors' evaluation, one protein at a time (their calculate_loss with
    # their shipped weights); its MD group includes mdCATH (5xnd)
    import pandas as pd

    from seqdance.data.loss_weights import AUTHORS_WEIGHTS

    table = pd.read_csv(AUTHORS_WEIGHTS, index_col=0)
    model = load_model(folder)
    ds = ProteinDataset(dataset, label="test", config=DatasetConfig(1024, random_crop=False))
    for i, name in enumerate(ds.names):
        item = ds[i]
        with torch.no_grad():
            out = model(item["input_ids"][None])
        res_feat, pair_feat = stored_targets(dataset, [name], [0], len(item["input_ids"]))
        residue, pair = out.residue.double().numpy(), out.pair.double().numpy()
        loss, parts = authors_loss(ds.groups[i], residue, pair, res_feat, pair_feat, table)
        group = metrics["groups"][ds.groups[i]]
        assert set(group["rmse"]) == set(parts)
        for term, value in parts.items():
            assert group["rmse"][term] == pytest.approx(value, rel=1e-4), (name, term)
            assert metrics["features"][term] == pytest.approx(value, rel=1e-4)
        assert group["loss"] == pytest.approx(loss, rel=1e-4)
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
