"""Our ESM2 encoder (seqdance.model.esm2) against transformers' EsmModel / EsmForMaskedLM, the
reference, under whichever transformers version is installed (CI runs this file under 4.48.2,
4.57.6 and the newest), plus checkpoints written by other transformers versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from helpers import TINY, load_naive_model  # noqa: E402
from seqdance.errors import SeqDanceError  # noqa: E402
from seqdance.model import SeqDanceConfig, SeqDanceModel, load_masked_lm, load_model  # noqa: E402
from seqdance.model.alphabet import MASK_ID, batch_encode  # noqa: E402
from seqdance.model.esm2 import Esm2Config, Esm2Model  # noqa: E402

DATA = Path(__file__).parent / "data" / "esm2_versions"
SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE", "ACDEFGHIKLMNPQRSTVWYXBUZO"]
hf_config = load_naive_model().hf_config


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random (biases, LayerNorms, embeddings too): nothing trivially equal."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "LayerNorm" in name or "layer_norm" in name:
                param.copy_(1.0 + 0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def _pair(token_dropout: bool, seed: int = 0, dropout: float = 0.0):
    """(ours, transformers') encoders with the same random weights."""
    config = hf_config(TINY, dropout)
    config.token_dropout = token_dropout
    reference = transformers.EsmModel(config, add_pooling_layer=False)
    reference.config._attn_implementation = "eager"
    _randomise(reference, seed)
    ours = Esm2Model(Esm2Config.from_json(config.to_dict()))
    missing, unexpected = ours.load_state_dict(reference.state_dict(), strict=False)
    unused = ("inv_freq", "position_embeddings.weight")  # rebuilt / 4.48's unused absolute
    assert [k for k in missing + unexpected if not k.endswith(unused)] == []
    return ours.eval(), reference.eval()


def _batch(masks_in_padded: bool = True):
    """A padded batch with <mask> tokens (token-dropout scaling acts); without
    ``masks_in_padded`` only the longest (unpadded) sequence has them, which every
    transformers version computes alike (see :func:`_pads_consistently`)."""
    ids, mask = batch_encode(SEQS)
    ids[2, 5] = MASK_ID
    if masks_in_padded:
        ids[0, 3] = ids[0, 7] = MASK_ID
    return ids, mask


def _one_by_one(reference, ids, mask):
    """transformers' outputs for each sequence alone, unpadded: (B, T, E) hidden states and
    per layer (B, H, T, T) maps, zero where padding would be."""
    hidden = torch.zeros(*ids.shape, reference.config.hidden_size)
    shape = (ids.shape[0], reference.config.num_attention_heads, ids.shape[1], ids.shape[1])
    maps = [torch.zeros(shape) for _ in range(reference.config.num_hidden_layers)]
    for b, n in enumerate(mask.sum(1).tolist()):
        out = reference(input_ids=ids[b : b + 1, :n], output_attentions=True)
        hidden[b, :n] = out.last_hidden_state[0]
        for layer, attn in enumerate(out.attentions):
            maps[layer][b, :, :n, :n] = attn[0]
    return hidden, maps


def _pads_consistently(reference, ids, mask) -> bool:
    """Whether this transformers version's padded batch equals its own one-by-one results.
    4.48 and 5.x: yes. 4.57 (and neighbours) do not give the embeddings the attention mask,
    so token dropout counts padding in the sequence length and padding rows stay non-zero."""
    with torch.no_grad():
        padded = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        alone, _ = _one_by_one(reference, ids, mask)
    valid = mask.bool()
    return bool(torch.allclose(padded[valid], alone[valid], atol=1e-5, rtol=0))


@pytest.mark.parametrize("token_dropout", [True, False])
def test_trunk_equals_transformers_hidden_states_and_maps(token_dropout):
    """Padded batch with <mask> tokens, hidden states of real tokens and every map row of a
    real token, against transformers' padded batch where that version pads consistently and
    always against transformers one sequence at a time (no padding involved)."""
    from seqdance.model.esm2 import Readout

    ours, reference = _pair(token_dropout)
    ids, mask = _batch()
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask, output_attentions=True)
        alone, alone_maps = _one_by_one(reference, ids, mask)
        maps: list[torch.Tensor] = []
        got_maps = ours(ids, mask, mode="maps", readout=Readout(keep=maps))
        got_sdpa = ours(ids, mask, mode="sdpa")
    assert want.last_hidden_state.abs().max() > 1.0  # not a comparison between zeros
    assert len(maps) == len(want.attentions) == TINY.num_layers
    valid = mask.bool()
    references = [(alone, alone_maps)]
    if _pads_consistently(reference, ids, mask):
        references.append((want.last_hidden_state, list(want.attentions)))
    else:  # only versions with that known difference; 4.48.2 and 5.x must pad consistently
        assert (4, 50) <= tuple(int(x) for x in transformers.__version__.split(".")[:2]) < (5, 0)
    for hidden, ref_maps in references:
        for got in (got_maps, got_sdpa):
            torch.testing.assert_close(got[valid], hidden[valid], atol=1e-5, rtol=0)
        for got, ref in zip(maps, ref_maps, strict=True):
            for b, n in enumerate(mask.sum(1).tolist()):  # padded keys: exactly 0 both
                torch.testing.assert_close(got[b, :, :n], ref[b, :, :n], atol=1e-5, rtol=0)


def test_token_dropout_changes_the_output():
    """The flag is not ignored: with <mask> tokens the two settings differ."""
    ids, mask = _batch()
    with torch.no_grad():
        on = _pair(True)[0](ids, mask)
        off = _pair(False)[0](ids, mask)
    assert (on - off).abs().max() > 1e-2


def test_dropout_in_train_mode_equals_transformers_with_the_same_seed():
    """The authors' SeqDance trunk: every dropout at 0.1, train mode, the maps the pair head
    reads taken after attention dropout. Same draws in the same order as transformers."""
    ours, reference = _pair(True, seed=1, dropout=0.1)
    ours.train()
    reference.train()
    ids, mask = _batch(masks_in_padded=False)
    torch.manual_seed(7)
    want = reference(input_ids=ids, attention_mask=mask, output_attentions=True)
    from seqdance.model.esm2 import Readout

    maps: list[torch.Tensor] = []
    torch.manual_seed(7)
    got = ours(ids, mask, mode="maps", readout=Readout(keep=maps))
    valid = mask.bool()
    torch.testing.assert_close(got[valid], want.last_hidden_state[valid], atol=1e-5, rtol=0)
    for mine, ref in zip(maps, want.attentions, strict=True):
        for b, n in enumerate(mask.sum(1).tolist()):  # query rows of real tokens
            torch.testing.assert_close(mine[b, :, :n], ref[b, :, :n], atol=1e-5, rtol=0)
    assert (maps[0] == 0).float().mean() > 0.05  # dropout acted on the maps
    torch.manual_seed(8)
    assert not torch.equal(ours(ids, mask, mode="maps", readout=Readout(keep=[])), got)


def test_masked_lm_logits_equal_esm_for_masked_lm(tmp_path):
    config = hf_config(TINY)
    reference = transformers.EsmForMaskedLM(config)
    _randomise(reference, 3)
    reference.save_pretrained(tmp_path / "mlm")
    ours = load_masked_lm(tmp_path / "mlm")
    ids, mask = _batch(masks_in_padded=False)
    with torch.no_grad():
        want = reference.eval()(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask)
    assert want.abs().max() > 1.0
    valid = mask.bool()
    torch.testing.assert_close(got[valid], want[valid], atol=1e-5, rtol=0)


def test_seqdance_model_loads_transformers_trunk_and_matches_naive():
    """A SeqDance model whose trunk comes from transformers' EsmModel state dict gives the
    naive forward's outputs (the stock trunk with eager maps and the full pair tensor)."""
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY)).eval()
    _randomise(model, 4)
    ids, mask = _batch(masks_in_padded=False)
    naive = load_naive_model().naive_forward
    residue, pair, _ = naive(model, ids, mask)
    with torch.no_grad():
        out = model(ids, mask)
    for b, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(out.residue[b, :n], residue[b, :n], atol=1e-4, rtol=0)
        torch.testing.assert_close(out.pair[b, :n, :n], pair[b, :n, :n], atol=1e-4, rtol=0)


# -- checkpoints written by other transformers versions -------------------------------------
def _written_folders() -> list[Path]:
    return sorted(p for p in DATA.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", _written_folders(), ids=lambda p: p.name)
def test_checkpoint_written_by_another_version_loads(folder):
    """tests/data/esm2_versions/<kind>_<version>: written by ``save_pretrained`` (masked LM)
    or ``PyTorchModelHubMixin`` layout (SeqDance) under that transformers version, with the
    logits / outputs that version computed. Both ours and the installed transformers load
    it and reproduce them."""
    expected = torch.load(folder / "expected.pt", weights_only=True)
    ids, mask = expected["input_ids"], expected["attention_mask"]
    valid = mask.bool()
    if folder.name.startswith("mlm_"):
        with torch.no_grad():
            got = load_masked_lm(folder)(ids, mask)
            installed = transformers.EsmForMaskedLM.from_pretrained(folder).eval()
        torch.testing.assert_close(got[valid], expected["logits"][valid], atol=1e-5, rtol=0)
        for b, n in enumerate(mask.sum(1).tolist()):  # the installed version, one at a time
            with torch.no_grad():
                theirs = installed(input_ids=ids[b : b + 1, :n]).logits[0]
            torch.testing.assert_close(theirs, expected["logits"][b, :n], atol=1e-5, rtol=0)
    else:  # a SeqDance model in the published hub layout
        model = load_model(folder)
        with torch.no_grad():
            out = model(ids, mask)
        for b, n in enumerate(mask.sum(1).tolist()):
            want_r, want_p = expected["residue"][b, :n], expected["pair"][b, :n, :n]
            torch.testing.assert_close(out.residue[b, :n], want_r, atol=1e-5, rtol=0)
            torch.testing.assert_close(out.pair[b, :n, :n], want_p, atol=1e-4, rtol=0)


def test_fixture_versions_cover_the_reference_versions():
    versions = {json.loads((p / "origin.json").read_text())["transformers"] for p in
                _written_folders()}  # fmt: skip
    assert "4.48.2" in versions and len(versions) >= 2


def test_esm2_config_refuses_other_models():
    config = hf_config(TINY).to_dict()
    with pytest.raises(SeqDanceError, match="rotary"):
        Esm2Config.from_json({**config, "position_embedding_type": "absolute"})
    with pytest.raises(SeqDanceError, match="ESMFold"):
        Esm2Config.from_json({**config, "is_folding_model": True})
