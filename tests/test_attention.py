"""The trunk attention that feeds the pair head (seqdance.model.attention): exact gradients,
dropout as eager attention does it, and the same model gradients as eager attention + hooks."""

from __future__ import annotations

import torch

from seqdance.model import SeqDanceConfig, SeqDanceModel
from seqdance.model.attention import AttentionReadout
from seqdance.model.loss import SeqDanceTargets, masked_rmse_loss


def _inputs(dtype=torch.float64, padded=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    b, h, t, d, p = 2, 3, 6, 4, 5
    q, k, v = (torch.randn(b, h, t, d, generator=gen, dtype=dtype) for _ in range(3))
    weight = torch.randn(p, h, generator=gen, dtype=dtype)
    bias = None
    if padded:  # second sequence: last two tokens are padding
        bias = torch.zeros(b, 1, 1, t, dtype=torch.float32)
        bias[1, ..., 4:] = torch.finfo(torch.float32).min
    return q, k, v, bias, weight


def _reference(q, k, v, bias, weight, keep=None, rate=0.0):
    """Eager attention written out: softmax, dropout, context, readout (B, P, T, T)."""
    scores = q @ k.transpose(-1, -2)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    probs = torch.softmax(scores, dim=-1)
    if keep is not None:
        probs = probs * keep / (1.0 - rate)
    context = probs @ v
    readout = torch.einsum("bhij,ph->bpij", probs, weight)
    return context, readout


def test_gradients_are_exact_with_padding():
    q, k, v, bias, weight = _inputs()
    args = [x.requires_grad_() for x in (q, k, v)] + [weight.requires_grad_()]

    def fn(q, k, v, w):
        return AttentionReadout.apply(q, k, v, bias, w, 0.0)

    assert torch.autograd.gradcheck(fn, args)
    out = fn(*args)
    ref = _reference(*[a.detach() for a in args[:3]], bias, weight.detach())
    for got, want in zip(out, ref, strict=True):
        torch.testing.assert_close(got.double(), want)


def test_dropout_matches_eager_with_the_same_mask():
    rate = 0.3
    q, k, v, bias, weight = _inputs(torch.float32)
    leaves = [x.clone().requires_grad_() for x in (q, k, v, weight)]
    torch.manual_seed(5)
    context, readout = AttentionReadout.apply(*leaves[:3], bias, leaves[3], rate)
    g_c, g_r = torch.randn_like(context), torch.randn_like(readout)
    torch.autograd.backward([context, readout], [g_c, g_r])
    torch.manual_seed(5)
    keep = torch.rand(q.shape[:-1] + (q.shape[-2],)) >= rate  # the same draw
    assert 0.15 < 1 - keep.float().mean().item() < 0.45
    ref_leaves = [x.clone().requires_grad_() for x in (q, k, v, weight)]
    ref = _reference(*ref_leaves[:3], bias, ref_leaves[3], keep, rate)
    torch.testing.assert_close(context, ref[0])
    torch.testing.assert_close(readout, ref[1])
    torch.autograd.backward(list(ref), [g_c, g_r])
    for got, want in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-6)


def test_model_gradients_equal_eager_attention_with_hooks(tiny_arch):
    """The pair path (readout attention) against the maps path (eager + hooks), padded batch."""
    torch.manual_seed(0)
    model = SeqDanceModel(SeqDanceConfig(arch=tiny_arch, dropout=0.0)).train()
    model.esm2.contact_head.requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 24, (3, 12), generator=gen)
    ids[:, 0] = 0
    mask = torch.ones_like(ids)
    for row, length in ((0, 12), (1, 9), (2, 5)):
        ids[row, length - 1] = 2
        ids[row, length:] = 1
        mask[row, length:] = 0
    targets = SeqDanceTargets(torch.rand(3, 12, 50, generator=gen),
                              torch.rand(3, 12, 12, 13, generator=gen))  # fmt: skip
    results = []
    for maps in (False, True):
        model.zero_grad()
        out = model(ids, mask, return_attentions=maps)
        loss = masked_rmse_loss(out.residue, out.pair, targets)[0]
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out, grads))
    (a, grad_a), (b, grad_b) = results
    valid = mask.bool()[:, :, None] & mask.bool()[:, None, :]
    torch.testing.assert_close(a.pair[valid], b.pair[valid], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.residue, b.residue, rtol=1e-5, atol=1e-6)
    assert grad_a.keys() == grad_b.keys()
    for name, grad in grad_b.items():
        torch.testing.assert_close(grad_a[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_bf16_autocast_keeps_the_readout_in_float32():
    q, k, v, bias, weight = _inputs(torch.float32, padded=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context, readout = AttentionReadout.apply(q.bfloat16(), k.bfloat16(), v.bfloat16(),
                                                  None, weight, 0.0)  # fmt: skip
    assert context.dtype == torch.bfloat16 and readout.dtype == torch.float32
    ref = _reference(q, k, v, None, weight)
    torch.testing.assert_close(readout, ref[1], rtol=0.05, atol=0.02)
