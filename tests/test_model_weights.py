"""The one loading rule for ``--model``: hub-layout folders, the authors' update_N.pt, hub ids,
our own saves; transformers-4.48 extras tolerated, anything else a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers import TINY, authors_state_dict, hub_snapshot, naive_forward
from seqdance.errors import InputFileError, SeqDanceError
from seqdance.model import Esm2Architecture, SeqDanceConfig, SeqDanceModel, load_model
from seqdance.model.alphabet import batch_encode

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE", "ACDEFGHIKLMNPQRSTVWY"]


def tiny_model(seed: int = 0, arch: Esm2Architecture = TINY) -> SeqDanceModel:
    torch.manual_seed(seed)
    model = SeqDanceModel(SeqDanceConfig(arch=arch))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))  # non-zero biases too
    return model.eval()


def assert_same_predictions(loaded: SeqDanceModel, reference: SeqDanceModel):
    ids, mask = batch_encode(SEQS)
    with torch.no_grad():
        out = loaded(ids, mask)
    residue, pair, _ = naive_forward(reference, ids, mask)
    for b, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(out.residue[b, :n], residue[b, :n], atol=1e-4, rtol=0)
        torch.testing.assert_close(out.pair[b, :n, :n], pair[b, :n, :n], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def reference():
    return tiny_model()


def test_authors_checkpoint_pt_with_448_extras(tmp_path, reference):
    path = tmp_path / "update_200000.pt"
    torch.save(authors_state_dict(reference), path)
    loaded = load_model(path)  # architecture inferred from the shapes
    assert loaded.config.arch.num_layers == 2 and loaded.config.arch.num_heads == 4
    assert not loaded.training
    assert_same_predictions(loaded, reference)


def test_ddp_prefixed_and_wrapped_checkpoints(tmp_path, reference):
    state = {f"module.{k}": v for k, v in authors_state_dict(reference).items()}
    torch.save({"model": state, "step": torch.tensor(5)}, tmp_path / "wrapped.pt")
    assert_same_predictions(load_model(tmp_path / "wrapped.pt"), reference)


def test_hub_layout_folder_and_our_own_save(tmp_path, reference):
    folder = tmp_path / "hub"
    folder.mkdir()
    save_file(authors_state_dict(reference), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(reference.config.to_dict()))
    assert_same_predictions(load_model(folder), reference)

    ours = reference.save_pretrained(tmp_path / "ours")
    assert sorted(p.name for p in ours.iterdir()) == ["config.json", "model.safetensors"]
    again = SeqDanceModel.from_pretrained(ours)
    assert again.config == reference.config
    assert_same_predictions(again, reference)


def test_authors_config_json_selects_architecture_and_variant(tmp_path):
    arch8m = SeqDanceConfig.from_dict({"esm2_select": "model_8M", "model_select": "esmdance"})
    assert arch8m.arch.name == "esm2_t6_8M_UR50D" and arch8m.freeze_trunk
    model = SeqDanceModel(arch8m)
    folder = tmp_path / "esmdance"
    folder.mkdir()
    save_file(authors_state_dict(model), str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"esm2_select": "model_8M", "model_select": "esmdance"}')
    loaded = load_model(folder)
    assert loaded.config.variant == "esmdance" and loaded.config.arch.num_heads == 20
    torch.testing.assert_close(loaded.pair_pred_linear.weight, model.pair_pred_linear.weight)
    with pytest.raises(SeqDanceError, match="unknown architecture 'model_9M'"):
        SeqDanceConfig.from_dict({"esm2_select": "model_9M", "model_select": "seqdance"})


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """The huggingface_hub cache layout: refs/main -> snapshots/<commit>/<files>."""
    snapshot = hub_snapshot(cache, repo_id)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


def test_hub_id_is_read_from_the_local_cache(tmp_path, reference):
    weights = tmp_path / "w.safetensors"
    save_file(authors_state_dict(reference), str(weights))
    config = json.dumps(reference.config.to_dict()).encode()
    cache = tmp_path / "cache"
    _fake_hub_cache(
        cache,
        "ChaoHou/SeqDance",
        {"model.safetensors": weights.read_bytes(), "config.json": config},
    )
    assert_same_predictions(load_model("ChaoHou/SeqDance", cache_dir=cache), reference)


def test_hub_id_with_pickled_weights_only(tmp_path, reference):
    weights = tmp_path / "w.bin"
    torch.save(authors_state_dict(reference), weights)
    cache = tmp_path / "cache"
    _fake_hub_cache(cache, "ChaoHou/ESMDance", {"pytorch_model.bin": weights.read_bytes()})
    loaded = load_model("ChaoHou/ESMDance", cache_dir=cache)  # no config: shapes + hub name
    assert loaded.config.variant == "esmdance" and loaded.config.arch.num_layers == 2
    assert_same_predictions(loaded, reference)


def test_hub_id_offline_or_unreachable_is_a_one_line_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        SeqDanceError, match="not in the local Hugging Face cache and offline mode is set"
    ):
        load_model("ChaoHou/ESMDance", cache_dir=tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(SeqDanceError, match="127.0.0.1 cannot be reached") as info:
        load_model("ChaoHou/ESMDance", cache_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(SeqDanceError, match=r"unknown model 'seqdance35'.*ChaoHou/SeqDance"):
        load_model("seqdance35")
    with pytest.raises(InputFileError, match="not found"):
        load_model(tmp_path / "update_1.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no model.safetensors"):
        load_model(tmp_path / "empty")


def test_corrupt_truncated_and_unsafe_files(tmp_path, reference):
    good = tmp_path / "good.pt"
    torch.save(authors_state_dict(reference), good)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="cut.pt: cannot read model weights"):
        load_model(tmp_path / "cut.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(InputFileError, match="junk.safetensors: cannot read model weights"):
        load_model(tmp_path / "junk.safetensors")
    torch.save({"weights": Path("/")}, tmp_path / "pickle.pt")  # not loadable with weights_only
    plain_only = r"pickle.pt: cannot read model weights \(it stores a Python object \(a pathlib"
    with pytest.raises(InputFileError, match=plain_only) as info:
        load_model(tmp_path / "pickle.pt")
    assert "never runs code" in str(info.value) and "weights_only=False" not in str(info.value)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(InputFileError, match="not a state dict"):
        load_model(tmp_path / "list.pt")
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "config.json").write_text("{oops")
    with pytest.raises(InputFileError, match="not valid JSON"):
        load_model(tmp_path / "bad_json")


def test_missing_unexpected_and_mismatched_keys_are_listed(tmp_path, reference):
    state = authors_state_dict(reference)
    del state["res_pred_nn.4.bias"]
    state["extra_head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(SeqDanceError) as info:
        load_model(tmp_path / "bad.pt")
    message = str(info.value)
    assert "missing keys: res_pred_nn.4.bias" in message
    assert "unexpected keys: extra_head.weight" in message
    assert "pooler" not in message and "inv_freq" not in message  # the 4.48 extras are fine

    state = authors_state_dict(reference)
    state["pair_pred_linear.weight"] = torch.zeros(13, 10)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(SeqDanceError, match=r"shape mismatch: pair_pred_linear.weight \(13, 10\)"):
        load_model(tmp_path / "shape.pt")


def test_arch_option(tmp_path, reference):
    torch.save(authors_state_dict(reference), tmp_path / "update_5.pt")
    with pytest.raises(SeqDanceError, match="--arch esm2_t12_35M_UR50D .* does not match"):
        load_model(tmp_path / "update_5.pt", arch="35M")
    with pytest.raises(SeqDanceError, match="unknown architecture"):
        load_model(tmp_path / "update_5.pt", arch="36M")
    model8m = SeqDanceModel(SeqDanceConfig.from_dict({"esm2_select": "model_8M"}))
    torch.save(authors_state_dict(model8m), tmp_path / "update_8m.pt")
    loaded = load_model(tmp_path / "update_8m.pt", arch="esm2_t6_8M_UR50D", variant="esmdance")
    assert loaded.config.arch.name == "esm2_t6_8M_UR50D" and loaded.config.freeze_trunk
