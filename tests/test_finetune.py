"""Fine-tuning and the last training differences: the authors' sampler (against torch's
DistributedSampler + DataLoader + itertools.cycle), the loss-precision option, early stopping
on a held-out label (against re-evaluated checkpoints), partial freezing, the split's
validation fraction."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, DistributedSampler

from seqdance.data.loss_weights import AUTHORS_WEIGHTS, load_weights
from seqdance.data.split import assign_split
from seqdance.data.store import merge_into, write_index
from seqdance.errors import SeqDanceError
from seqdance.model import load_model
from seqdance.train.batches import SamplerPlan, authors_request
from seqdance.train.checkpoint import TRAIN_FASTA, training_fasta_text
from seqdance.train.config import load_config
from seqdance.train.early_stop import EVAL_FILE, held_out_loss
from seqdance.train.evaluate import EvalConfig, evaluate_model
from seqdance.train.loop import train
from seqdance.train.modeling import build_model
from seqdance.train.sampler import never_seen_fraction, rank_batches

CONFIGS = Path(__file__).parents[1] / "configs"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def copies(reference_records, tmp_path_factory) -> Path:
    """The authors' 3tvj_I (MD) and 2g3r (NMA) reference arrays under several names: 5 + 5
    training proteins and 1 + 1 labelled ``valid``."""
    md, nma = reference_records[0], reference_records[2]
    records = []
    for base, tag in ((md, "md"), (nma, "nma")):
        for k in range(6):
            label = "valid" if k == 5 else "train"
            records.append(replace(base, name=f"{tag}{k}", label=label))
    root = tmp_path_factory.mktemp("copies")
    merge_into(root / "features.h5", records)
    write_index(root / "index.csv", pd.DataFrame([r.index_row() for r in records]))
    return root


def tiny(data: Path, out: Path, *extra: str):
    base = [f"data.dir={data}", f"out_dir={out}", "train.progress=false", "train.log_every=1",
            "train.phases.0.crop_size=32", "train.phases.0.batch_size=2"]  # fmt: skip
    return load_config(CONFIGS / "tiny.yaml", [*base, *extra])


# -- the authors' sampler --------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch", "world"), [(10, 3, 1), (11, 2, 3), (7, 2, 2), (9, 4, 2)])
def test_authors_batches_are_torch_distributed_sampler_batches(n, batch, world):
    """Our index sequence = DataLoader(DistributedSampler(seed 0, no set_epoch), drop_last)
    cycled, rebuilt (restarted) every reload_every updates, for every rank."""
    accum, reload_every, updates = 2, 7, 17
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank)  # seed 0
        loader = DataLoader(range(n), batch_size=batch, sampler=sampler, drop_last=True)
        want = []
        for block_start in range(0, updates, reload_every):  # a fresh loader per block
            batches = itertools.cycle(loader)
            count = min(reload_every, updates - block_start) * accum
            want += [tuple(b.tolist()) for b in itertools.islice(batches, count)]
        plan = SamplerPlan("authors", reload_every, 0, world)
        got = [authors_request(0, u, m, 0, "g", n, batch, rank, accum, plan).indices
               for u in range(updates) for m in range(accum)]  # fmt: skip
        assert got == want


def test_authors_crops_repeat_within_a_block_only():
    plan = SamplerPlan("authors", 4, 0, 1)
    a = [authors_request(0, u, 0, 0, "g", 4, 2, 0, 1, plan) for u in range(8)]
    # 2 batches per epoch: updates 0 and 2 replay batch 0 (cycle), update 4 is a new block
    assert a[0].indices == a[2].indices == a[4].indices
    assert a[0].crop_seeds == a[2].crop_seeds != a[4].crop_seeds


def test_never_seen_fraction_counts_the_proteins_left_out():
    # one rank, 10 proteins, batches of 3: the 10th protein of the permutation is dropped
    assert never_seen_fraction(10, 3, 1, 1, 200) == pytest.approx(0.1)
    # 100 proteins, 4 ranks x batch 2 x 2 micro-steps x 5 updates = 80 drawn per block
    drawn = {i for r in range(4) for b in rank_batches(100, 2, 4, r)[:10] for i in b}
    assert never_seen_fraction(100, 2, 4, 2, 5) == pytest.approx(1 - len(drawn) / 100)
    assert len(drawn) == 80
    # the authors' scale: ~212 updates per epoch, rebuilt every 200 (16 x 2 x 4 ranks)
    n = 212 * 2 * 16 * 4
    assert never_seen_fraction(n, 16, 4, 2, 200) == pytest.approx(12 / 212, abs=1e-3)


def test_authors_sampler_trains_and_resumes_exactly(copies, tmp_path):
    extra = ["train.sampler=authors", "train.reload_every=3", "optim.total_steps=5",
             "train.save_every=2"]  # fmt: skip
    train(tiny(copies, tmp_path / "a", "train.max_steps=5", *extra))
    train(tiny(copies, tmp_path / "b", "train.max_steps=2", *extra))
    train(tiny(copies, tmp_path / "b", "train.max_steps=5", *extra), resume=True)
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step_5" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step_5" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = tmp_path / "c"
    train(tiny(copies, c, "train.max_steps=5", "optim.total_steps=5"))  # replacement
    other = load_file(str(c / "checkpoints" / "step_5" / "model.safetensors"))
    assert any(not torch.equal(a[k], other[k]) for k in a)


def test_authors_sampler_refuses_a_group_smaller_than_a_batch(copies, tmp_path):
    out = tmp_path / "small"
    config = tiny(copies, out, "train.sampler=authors", "train.phases.0.batch_size=6")
    with pytest.raises(SeqDanceError, match="has 5 proteins, fewer than one batch of 6"):
        train(config)
    assert not (out / "checkpoints").exists()


# -- loss precision --------------------------------------------------------------------------


def test_loss_precision_autocast_changes_only_the_loss_numerics(copies, tmp_path):
    """Under bf16 autocast (CPU) the loss computed inside autocast is close to, not equal
    to, the fp32 loss; without autocast (fp32) the option changes nothing."""
    logs = {}
    for precision in ("fp32", "bf16"):
        for where in ("fp32", "autocast"):
            out = tmp_path / f"{precision}_{where}"
            train(tiny(copies, out, "train.max_steps=1", f"train.precision={precision}",
                       f"train.loss_precision={where}"))  # fmt: skip
            logs[precision, where] = json.loads((out / "log.jsonl").read_text())["loss"]
    assert logs["fp32", "fp32"] == logs["fp32", "autocast"]
    assert logs["bf16", "autocast"] == pytest.approx(logs["bf16", "fp32"], rel=2e-2)
    assert logs["bf16", "autocast"] != logs["bf16", "fp32"]


# -- early stopping --------------------------------------------------------------------------


def test_early_stopping_keeps_the_best_model_and_stops(copies, tmp_path):
    out = tmp_path / "es"  # a large learning rate: the held-out loss soon stops falling
    config = tiny(copies, out, "train.max_steps=30", "train.save_every=2",
                  "train.early_stopping.every=2", "train.early_stopping.patience=2",
                  "optim.lr=0.3", "optim.warmup_steps=1")  # fmt: skip
    result = train(config)
    lines = [json.loads(x) for x in (out / EVAL_FILE).read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(2, 2 * len(lines) + 1, 2))
    # each held-out loss is the loss of that update's checkpoint, evaluated afresh
    weights = None
    for line in lines:
        model = load_model(out / "checkpoints" / f"step_{line['step']}")
        weights = weights or load_weights(AUTHORS_WEIGHTS)
        metrics = evaluate_model(model, copies, EvalConfig(label="valid"), weights)
        assert line["loss"] == pytest.approx(held_out_loss(metrics), rel=1e-6)
        assert metrics["n_proteins"] == {"ATLAS_GPCRmd_PED_mdCATH": 1, "Proteinflow": 1}
    # the stop rule, recomputed: first evaluation with 2 evaluations since the best
    best, since, stop = np.inf, 0, None
    for line in lines:
        if line["loss"] < best:
            best, best_step, since = line["loss"], line["step"], 0
        else:
            since += 1
        if since >= 2:
            stop = line["step"]
            break
    assert result.stopped_at == stop and result.best_step == best_step
    assert stop is not None and stop < 30 and lines[-1]["step"] == stop
    best_weights = load_file(str(out / "best" / "model.safetensors"))
    at_best = load_file(str(out / "checkpoints" / f"step_{best_step}" / "model.safetensors"))
    assert all(torch.equal(best_weights[k], at_best[k]) for k in at_best)
    assert json.loads((out / "best" / "best.json").read_text())["step"] == best_step


def test_early_stopping_options_are_checked_before_writing(copies, tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(SeqDanceError, match="patience must be >= 1 and needs .every"):
        train(tiny(copies, out, "train.early_stopping.patience=2"))
    with pytest.raises(SeqDanceError, match="no proteins labelled 'held'"):
        train(tiny(copies, out, "train.early_stopping.every=2",
                   "train.early_stopping.label=held"))  # fmt: skip
    assert not (out / "checkpoints").exists()


# -- partial freezing --------------------------------------------------------------------------


def test_freeze_layers_freezes_the_bottom_of_the_trunk(copies, tmp_path):
    out = tmp_path / "partial"
    train(tiny(copies, out, "train.max_steps=2", "model.freeze_layers=1"))
    before = load_file(str(out / "checkpoints" / "step_0" / "model.safetensors"))
    after = load_file(str(out / "checkpoints" / "step_2" / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("esm2.embeddings", "esm2.encoder.layer.0."))]
    moved = [k for k in before if k.startswith("esm2.encoder.layer.1.")]
    assert frozen and moved
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in moved)
    config = load_config(CONFIGS / "tiny.yaml", ["model.freeze_layers=3"]).model
    with pytest.raises(SeqDanceError, match="freeze_layers=3, but the trunk has 2 layers"):
        build_model(config)


# -- the split's validation fraction ----------------------------------------------------------


def test_split_draws_whole_clusters_for_valid_after_test():
    clusters = {f"p{i}": f"c{i // 2}" for i in range(40)}  # 20 clusters of 2
    labels = assign_split(clusters, test_fraction=0.1, seed=3, valid_fraction=0.1)
    counts = pd.Series(labels).value_counts().to_dict()
    assert counts == {"train": 32, "test": 4, "valid": 4}
    for rep in set(clusters.values()):  # a cluster never straddles two labels
        assert len({labels[n] for n, r in clusters.items() if r == rep}) == 1
    # the test proteins do not depend on whether a validation set is drawn
    plain = assign_split(clusters, test_fraction=0.1, seed=3)
    assert {n for n, v in plain.items() if v == "test"} == {
        n for n, v in labels.items() if v == "test"
    }


def test_a_checkpoint_from_before_these_options_resumes(copies, tmp_path):
    """A trainer state whose config predates sampler, loss_precision, early_stopping and
    freeze_layers resumes (the missing keys count as their defaults) and matches a run
    straight through."""
    common = ["optim.total_steps=4", "train.save_every=2"]
    train(tiny(copies, tmp_path / "a", "train.max_steps=4", *common))
    train(tiny(copies, tmp_path / "b", "train.max_steps=2", *common))
    path = tmp_path / "b" / "checkpoints" / "step_2" / "trainer_state.pt"
    state = torch.load(path, weights_only=True)
    for key in ("sampler", "reload_every", "loss_precision", "early_stopping"):
        del state["config"]["train"][key]
    del state["config"]["model"]["freeze_layers"]
    torch.save(state, path)
    train(tiny(copies, tmp_path / "b", "train.max_steps=4", *common), resume=True)
    a = load_file(str(tmp_path / "a" / "checkpoints" / "step_4" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "step_4" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SeqDanceError, match=r"differs .* in train\.sampler"):
        train(tiny(copies, tmp_path / "b", "train.max_steps=6", "train.sampler=authors",
                   *common), resume=True)  # fmt: skip


def test_early_stopping_state_survives_a_resume(copies, tmp_path):
    common = ["optim.total_steps=6", "train.save_every=2", "train.early_stopping.every=2"]
    train(tiny(copies, tmp_path / "a", "train.max_steps=6", *common))
    train(tiny(copies, tmp_path / "b", "train.max_steps=4", *common))
    with open(tmp_path / "b" / EVAL_FILE, "a") as handle:  # a line a killed run left behind
        handle.write(json.dumps({"step": 5, "loss": 0.0}) + "\n")
    train(tiny(copies, tmp_path / "b", "train.max_steps=6", *common), resume=True)
    a, b = ((tmp_path / r / EVAL_FILE).read_text() for r in ("a", "b"))
    assert a == b and len(a.splitlines()) == 3
    best = [json.loads((tmp_path / r / "best" / "best.json").read_text()) for r in ("a", "b")]
    assert best[0] == best[1]


# -- the training sequences travel with the model ----------------------------------------------


def fasta_pairs(path: Path) -> list[tuple[str, str]]:
    """(id, sequence) of a FASTA written one line per sequence, parsed by hand."""
    lines = path.read_text().splitlines()
    assert all(x.startswith(">") for x in lines[0::2]) and len(lines) % 2 == 0
    return [(h[1:], s) for h, s in zip(lines[0::2], lines[1::2], strict=True)]


@pytest.fixture
def two_labels(small_dataset, tmp_path) -> Path:
    """The small dataset with 3tvj_I (ATLAS MD) labelled train and 2g3r (NMA) test only."""
    root = tmp_path / "two"
    root.mkdir()
    shutil.copy(small_dataset / "features.h5", root / "features.h5")
    index = pd.read_csv(small_dataset / "index.csv")
    index = index[index["name"].isin(["3tvj_I", "2g3r"])].copy()
    index["label"] = np.where(index["name"] == "3tvj_I", "train", "test")
    index.to_csv(root / "index.csv", index=False)
    return root


def test_checkpoints_hold_the_training_sequences(small_dataset, two_labels, tmp_path):
    out = tmp_path / "run"
    train(tiny(two_labels, out, "train.max_steps=2", "train.save_every=1",
               "train.early_stopping.every=1", "train.early_stopping.label=test"))  # fmt: skip
    index = pd.read_csv(two_labels / "index.csv")
    expected = [(n, s) for n, s, lab in zip(index["name"], index["modify_seq"], index["label"],
                                            strict=True) if lab == "train"]  # fmt: skip
    assert expected == [("3tvj_I", index.loc[index["name"] == "3tvj_I", "modify_seq"].iloc[0])]
    folders = [out / "checkpoints" / f"step_{k}" for k in (0, 1, 2)] + [out / "best"]
    for folder in folders:
        assert fasta_pairs(folder / TRAIN_FASTA) == expected
    assert not list(out.rglob("*.tmp*"))
    # fine-tuning from that checkpoint on every train row of the small dataset: the union,
    # the base model's records first, none repeated
    ft = tmp_path / "ft"
    train(tiny(small_dataset, ft, "train.max_steps=1", f"model.init_from={out / 'best'}"))
    full = pd.read_csv(small_dataset / "index.csv")
    rows = full[full["label"] == "train"]
    union = expected + [(n, s) for n, s in zip(rows["name"], rows["modify_seq"], strict=True)
                        if (n, s) not in expected]  # fmt: skip
    assert fasta_pairs(ft / "checkpoints" / "step_1" / TRAIN_FASTA) == union
    assert [n for n, _ in union] == ["3tvj_I", "idr1", "2g3r"]


def test_training_fasta_union_keeps_ids_unique(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / TRAIN_FASTA).write_text(">a desc\nmkv\nLL\n>b\nGG\n")
    text = training_fasta_text(["b", "a", "c"], ["GG", "WW", "PP"], base)
    assert text == ">a\nMKVLL\n>b\nGG\n>a_2\nWW\n>c\nPP\n"
    assert training_fasta_text(["x"], ["AC"], tmp_path / "nowhere") == ">x\nAC\n"
    assert training_fasta_text(["x"], ["AC"], "ChaoHou/SeqDance") == ">x\nAC\n"


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs (MMseqs2) not installed")
def test_dynamics_suite_finds_the_training_fasta_of_a_checkpoint(two_labels, tmp_path,
                                                                   run_cli, capsys):  # fmt: skip
    out = tmp_path / "run"
    train(tiny(two_labels, out, "train.max_steps=1"))
    dyn = tmp_path / "dyn"
    assert (
        run_cli(
            [
                "benchmark",
                "--suite",
                "dynamics",
                "-m",
                str(out / "checkpoints" / "step_1"),
                "--dataset",
                str(two_labels),
                "--out",
                str(dyn),
                "--no-plots",
                "--no-progress",
                "--bootstrap-samples",
                "20",
            ]
        )
        == 0
    )  # no --train-fasta
    printed = capsys.readouterr().out
    assert "leakage not checked" not in printed
    assert "1 benchmark protein(s) are in the model's training set" in printed
    identity = pd.read_csv(dyn / "identity.csv").set_index("name")
    assert identity.loc["3tvj_I", "identity"] == 100.0 and identity.loc["3tvj_I", "in_training"]
    assert identity.loc["3tvj_I", "closest"] == "3tvj_I"
    assert not identity.loc["2g3r", "in_training"] and identity.loc["2g3r", "identity"] < 30
