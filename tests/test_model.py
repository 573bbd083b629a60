"""SeqDance model: the memory-efficient forward equals the naive formulation; heads, loss, init."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import TINY
from seqdance.errors import SeqDanceError
from seqdance.model import SeqDanceConfig, SeqDanceModel
from seqdance.model.alphabet import TOKENS, batch_encode, check_sequence, encode
from seqdance.model.heads import activate
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss
from seqdance.schema import (
    MISSING,
    N_PAIR_OUTPUTS,
    N_RESIDUE_OUTPUTS,
    PAIR_FEATURES,
    RESIDUE_FEATURES,
    loss_terms,
)

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE", "ACDEFGHIKLMNPQRSTVWYXBUZO"]


def tiny_model(seed: int = 0, variant: str = "seqdance") -> SeqDanceModel:
    """A 2-layer, hidden-32 model whose every parameter (biases too) is random."""
    torch.manual_seed(seed)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY, variant=variant))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or ".2." in name:
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            else:
                param.copy_(0.3 * torch.randn_like(param))
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_alphabet_matches_esm2_token_order():
    assert len(TOKENS) == 33
    assert TOKENS[:6] == ("<cls>", "<pad>", "<eos>", "<unk>", "L", "A")
    assert TOKENS.index("<mask>") == 32 and TOKENS.index("C") == 23 and TOKENS.index("X") == 24
    assert encode("LAC") == [0, 4, 5, 23, 2]
    ids, mask = batch_encode(["LA", "C"])
    assert ids.tolist() == [[0, 4, 5, 2], [0, 23, 2, 1]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_invalid_letter_names_record_and_position():
    assert check_sequence("x", "acd") == "ACD"
    with pytest.raises(SeqDanceError, match=r"record 'p1': invalid residue 'J' at position 3"):
        check_sequence("p1", "ACJD")


def test_efficient_forward_equals_naive_for_a_padded_batch(naive_forward, model):
    ids, mask = batch_encode(SEQS)
    with torch.no_grad():
        out = model(ids, mask, return_embeddings=True)
    residue, pair, hidden = naive_forward(model, ids, mask)
    assert out.residue.shape == (3, ids.shape[1], N_RESIDUE_OUTPUTS)
    assert out.pair.shape == (3, ids.shape[1], ids.shape[1], N_PAIR_OUTPUTS)
    for b, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(out.residue[b, :n], residue[b, :n], atol=1e-4, rtol=0)
        torch.testing.assert_close(out.pair[b, :n, :n], pair[b, :n, :n], atol=1e-4, rtol=0)
        torch.testing.assert_close(out.embeddings[b, :n], hidden[b, :n], atol=1e-5, rtol=0)
    assert pair[0, :22, :22].std() > 0.1  # the comparison is not between constants


def test_row_blocks_do_not_change_the_result(model):
    ids, mask = batch_encode(SEQS[:1])
    with torch.no_grad():
        whole = model(ids, mask).pair
        model.chunk_elements = 1  # one row per block
        try:
            blocks = model(ids, mask).pair
        finally:
            model.chunk_elements = SeqDanceModel(SeqDanceConfig(arch=TINY)).chunk_elements
    torch.testing.assert_close(blocks, whole, atol=1e-6, rtol=0)


def test_batched_equals_one_at_a_time(model):
    ids, mask = batch_encode(SEQS)
    with torch.no_grad():
        batched = model(ids, mask)
        for b, seq in enumerate(SEQS):
            one_ids, one_mask = batch_encode([seq])
            single = model(one_ids, one_mask)
            n = len(seq) + 2
            torch.testing.assert_close(batched.residue[b, :n], single.residue[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(batched.pair[b, :n, :n], single.pair[0], atol=1e-5, rtol=0)


def test_residue_only_path_and_attention_maps(naive_model, model):
    ids, mask = batch_encode(SEQS)
    with torch.no_grad():
        full = model(ids, mask, return_attentions=True, return_logits=True)
        light = model(ids, mask, pair=False)
        trunk = naive_model.stock_trunk(model)  # transformers' EsmModel, eager
        ref = trunk(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    assert light.pair is None
    torch.testing.assert_close(light.residue, full.residue, atol=1e-5, rtol=0)
    assert full.attentions.shape == (3, 2, 4, ids.shape[1], ids.shape[1])
    # every query row of a real token (padding rows are meaningless; transformers 4.5x does
    # not zero the padding embeddings, so its padding rows differ from 4.48's and 5.x's)
    for b, n in enumerate(mask.sum(1).tolist()):
        want = torch.stack(ref, dim=1)[b, :, :, :n]  # (layers, heads, n, T)
        torch.testing.assert_close(full.attentions[b, :, :, :n], want)
    torch.testing.assert_close(activate(full.pair_logits, PAIR_FEATURES), full.pair)


def test_activations_on_zero_logits_are_known_values():
    res = activate(torch.zeros(1, N_RESIDUE_OUTPUTS), RESIDUE_FEATURES)[0]
    pair = activate(torch.zeros(1, N_PAIR_OUTPUTS), PAIR_FEATURES)[0]
    for feature in RESIDUE_FEATURES:
        values = res[feature.slice]
        expected = {
            "softplus": math.log(2.0),
            "sigmoid": 0.5,
            "softmax": 1.0 / feature.width,
        }[feature.activation]
        torch.testing.assert_close(values, torch.full_like(values, expected))
    for feature in PAIR_FEATURES:
        expected = math.log(2.0) if feature.activation == "softplus" else 0.0
        torch.testing.assert_close(pair[feature.slice], torch.full((feature.width,), expected))
    # softplus(beta=1, threshold=2) is the identity above 2
    big = activate(torch.full((1, N_PAIR_OUTPUTS), 3.0), PAIR_FEATURES)[0]
    assert big[0].item() == 3.0


def test_loss_is_masked_per_protein_rmse():
    torch.manual_seed(1)
    pred = torch.rand(2, 5, N_RESIDUE_OUTPUTS)
    target = torch.rand(2, 5, N_RESIDUE_OUTPUTS)
    target[0, :2] = MISSING  # two residues of protein 0 missing
    target[1, :, RESIDUE_FEATURES[0].slice] = MISSING  # protein 1 lacks sasa_mean entirely
    pair_pred = torch.rand(2, 5, 5, N_PAIR_OUTPUTS)
    pair_target = torch.full_like(pair_pred, MISSING)
    pair_target[0, 1:3, 1:3] = 0.5
    loss, terms = masked_rmse_loss(
        pred, pair_pred, SeqDanceTargets(target, pair_target), mask="element", nma_bands=False
    )  # our element-wise option

    def slow(p, t, feature):  # loop reference
        values = []
        for b in range(p.shape[0]):
            m = t[b, ..., feature.slice] != MISSING
            if m.any():
                d = (p[b, ..., feature.slice] - t[b, ..., feature.slice])[m]
                values.append(torch.sqrt((d**2).mean()))
        return torch.stack(values).mean() if values else None

    expected = {}
    for f in RESIDUE_FEATURES:
        expected[f.name] = slow(pred, target, f)
    for f in PAIR_FEATURES:
        if (value := slow(pair_pred, pair_target, f)) is not None:
            expected[f.name] = value
    assert terms.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value)
    torch.testing.assert_close(loss, sum(expected.values()))
    weighted, _ = masked_rmse_loss(pred, None, SeqDanceTargets(target), {"sasa_mean": 3.0},
                                   mask="element", nma_bands=False)  # fmt: skip
    plain = sum(v for k, v in expected.items() if k in {f.name for f in RESIDUE_FEATURES})
    torch.testing.assert_close(weighted, plain + 2.0 * expected["sasa_mean"])


def test_forward_with_targets_gives_a_loss_that_trains_the_attention_columns(model):
    ids, mask = batch_encode(SEQS[:2])
    model.zero_grad()
    out = model(ids, mask, targets=SeqDanceTargets(torch.rand(2, ids.shape[1], 50)))
    residue_terms = {t.name for t in loss_terms("residue")}  # the authors' six NMA terms
    assert out.loss is not None and set(out.loss_terms) == residue_terms
    pair_target = torch.rand(2, ids.shape[1], ids.shape[1], 13)
    out = model(ids, mask, targets=SeqDanceTargets(pair=pair_target))
    out.loss.backward()
    grad = model.pair_pred_linear.weight.grad  # (13, 2A): middle and attention columns
    assert grad[:, :8].abs().sum() > 0 and grad[:, 8:].abs().sum() > 0
    model.zero_grad()


def test_seqdance_init_is_xavier_and_esmdance_trunk_is_frozen():
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=TINY))
    query = model.esm2.encoder.layer[0].attention.self.query.weight
    dense = model.esm2.encoder.layer[0].intermediate.dense.weight  # (64, 32)
    assert query.abs().max() <= math.sqrt(6 / 64) / math.sqrt(2) + 1e-6
    assert query.abs().max() > 0.8 * math.sqrt(6 / 64) / math.sqrt(2)
    assert dense.abs().max() <= math.sqrt(6 / 96) + 1e-6
    assert dense.abs().max() > math.sqrt(6 / 64) / math.sqrt(2)  # gain 1, not 1/sqrt(2)
    assert model.esm2.encoder.layer[0].attention.self.query.bias.abs().sum() == 0
    assert (model.esm2.encoder.emb_layer_norm_after.weight == 1).all()
    for name in ("res_pred_nn.0", "res_pred_nn.4", "res_transform_nn.4", "pair_middle_linear"):
        assert model.get_submodule(name).bias.abs().sum() == 0
    # dropout 0.1 in the heads and, as the authors' randomize_model sets it, in every
    # dropout of the SeqDance trunk; trunk_dropout=0 is the named alternative
    assert model.res_pred_nn[3].p == 0.1 and model.res_transform_nn[3].p == 0.1
    trunk_rates = {m.p for m in model.esm2.modules() if isinstance(m, torch.nn.Dropout)}
    layer = model.esm2.encoder.layer[0]
    assert trunk_rates == {0.1} and layer.attention.self.dropout.p == 0.1  # on the maps
    assert layer.attention.output.dropout.p == layer.output.dropout.p == 0.1
    no_trunk = SeqDanceModel(SeqDanceConfig(arch=TINY, trunk_dropout=0.0))
    assert {m.p for m in no_trunk.esm2.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}
    assert no_trunk.res_pred_nn[3].p == 0.1
    frozen = SeqDanceModel(SeqDanceConfig(arch=TINY, variant="esmdance")).train()
    assert not any(p.requires_grad for p in frozen.esm2.parameters())
    assert all(p.requires_grad for n, p in frozen.named_parameters() if not n.startswith("esm2"))
    assert not frozen.esm2.training and frozen.res_pred_nn.training
    assert {m.p for m in frozen.esm2.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}


def test_35m_architecture_matches_naive_over_several_row_blocks(naive_forward):
    from seqdance.model import get_architecture

    torch.manual_seed(3)
    model = SeqDanceModel(SeqDanceConfig(arch=get_architecture("35M"))).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not name.startswith("esm2"):
                param.add_(0.05 * torch.randn_like(param))  # non-zero head biases
    gen = torch.Generator().manual_seed(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seqs = [
        "".join(letters[i] for i in torch.randint(0, 20, (n,), generator=gen)) for n in (230, 97)
    ]
    ids, mask = batch_encode(seqs)
    model.chunk_elements = 240 * 232 * 50  # ~50 rows per block: 5 blocks for 232 tokens
    with torch.no_grad():
        out = model(ids, mask)
    residue, pair, _ = naive_forward(model, ids, mask)
    for b, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(out.residue[b, :n], residue[b, :n], atol=1e-4, rtol=0)
        torch.testing.assert_close(out.pair[b, :n, :n], pair[b, :n, :n], atol=1e-4, rtol=0)


def test_trunk_autocast_keeps_the_heads_in_float32(model):
    ids, mask = batch_encode(SEQS)
    with torch.no_grad():
        low = model(ids, mask, trunk_autocast=torch.bfloat16, return_logits=True,
                    return_embeddings=True)  # fmt: skip
        full = model(ids, mask, return_logits=True)
        # the heads ran in float32 on the (low-precision) trunk's output
        assert low.residue.dtype == torch.float32 and low.pair.dtype == torch.float32
        assert low.embeddings.dtype == torch.float32
        torch.testing.assert_close(
            low.residue_logits, model.res_pred_nn(low.embeddings), rtol=0, atol=0
        )
        # and bf16 in the trunk does change the numbers a little, not a lot
        diff = (low.residue - full.residue).abs().max().item()
        assert 0 < diff < 0.05
