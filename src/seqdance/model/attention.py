"""Trunk attention that feeds the pair head directly, without keeping the attention maps.

The pair head reads every layer's attention probabilities through a linear map
(``W_pa``, the attention columns of ``pair_pred_linear``): layer by layer,

    readout[b, :, i, j] = sum_h W_pa[:, h] * attn[b, h, i, j]                 # (P,)

:class:`AttentionReadout` computes a layer's attention (softmax, dropout, context) and that
readout in one autograd node. It keeps only q, k, v and the dropout mask for the backward
pass and recomputes the probabilities there, so no (B, H, T, T) float tensor outlives the
layer; eager attention with a hook keeps three (probabilities before and after dropout and
the readout's input). The gradients, for scores s = q k^T + bias, p = softmax(s),
d = p * m / (1 - rate) (m the keep mask), context c = d v and readout r = W d:

    g_d = g_c v^T + W^T g_r        g_v = d^T g_c        g_W = sum g_r d^T
    g_s = p * (g_d * m / (1 - rate) - rowsum(g_d * d))
    g_q = g_s k                    g_k = g_s^T q

The trunk uses it in its ``"readout"`` attention mode
(:meth:`seqdance.model.esm2.Esm2Layer.attend`).
"""

from __future__ import annotations

import torch

from seqdance.utils.workspace import WORKSPACE


class AttentionReadout(torch.autograd.Function):
    """Attention context and pair-logit readout of one layer.

    Inputs: q, k, v (B, H, T, D) (q already scaled, rotary applied); key_bias (B, 1, 1, T)
    additive mask or None; weight (P, H); rate (dropout probability, 0 for none).
    Outputs: context (B, H, T, D) in v's dtype and readout (B, P, T, T); probabilities, softmax
    and readout are computed in float32 at least (float64 inputs stay float64).

    Dropout is applied as ``d = s * pm`` with ``pm`` the probabilities with dropped entries
    zeroed and ``s = 1 / (1 - rate)``; ``s`` is folded into the small tensors (context,
    readout, gradients of q, k, v and W), so every (B, H, T, T) pass is one operation.
    """

    @staticmethod
    def forward(ctx, q, k, v, key_bias, weight, rate: float):
        with torch.autocast(q.device.type, enabled=False):  # dtypes are set explicitly
            probs = _probabilities(q, k, key_bias, "forward")  # (B, H, T, T) p, scratch
            drop = None
            if rate > 0.0:
                uniform = _scratch("uniform", probs)
                drop = torch.rand(probs.shape, out=uniform, device=probs.device) < rate
                probs.masked_fill_(drop, 0.0)  # pm
            scale = 1.0 / (1.0 - rate)
            context = _bmm(probs.to(v.dtype), v)  # (B, H, T, D)
            readout = _readout(probs, weight)  # (B, P, T, T)
            if rate > 0.0:
                context.mul_(scale)
                readout.mul_(scale)
        ctx.save_for_backward(q, k, v, key_bias, weight, drop)
        ctx.rate = rate
        return context, readout

    @staticmethod
    def backward(ctx, g_context, g_readout):
        q, k, v, key_bias, weight, drop = ctx.saved_tensors
        scale = 1.0 / (1.0 - ctx.rate)
        batch, heads, tokens, _ = q.shape
        probs = _probabilities(q, k, key_bias, "backward")  # (B, H, T, T) p, scratch
        kept = probs  # pm
        if drop is not None:
            kept = _scratch("kept", probs).copy_(probs).masked_fill_(drop, 0.0)
        # G = g_c v^T + W^T g_r, the gradient of the loss with respect to d / s
        g = _scratch("grad", probs)  # (B, H, T, T)
        g_w = g_v = None
        if g_readout is not None:
            g_r = g_readout.to(probs.dtype).reshape(batch, -1, tokens * tokens)  # (B, P, TT)
            w_t = weight.t().to(probs.dtype).expand(batch, -1, -1)  # (B, H, P)
            torch.bmm(w_t, g_r, out=g.view(batch, heads, -1))  # (B, H, TT)
            if ctx.needs_input_grad[4]:
                # (B, P, TT) @ (B, TT, H) summed over B -> (P, H)
                g_w = torch.bmm(g_r, kept.view(batch, heads, -1).transpose(1, 2)).sum(0)
                g_w = g_w.mul_(scale).to(weight.dtype)
        else:
            g.zero_()
        if g_context is not None:
            g_c = g_context.to(v.dtype)
            g_flat = g.view(batch * heads, tokens, tokens)
            g_flat.baddbmm_(_flat(g_c).to(g.dtype), _flat(v).to(g.dtype).transpose(1, 2))
            g_v = _bmm(kept.to(v.dtype).transpose(-1, -2), g_c).mul_(scale)  # (B, H, T, D)
        # dL/ds = s * (G * pm - p * rowsum(G * pm))
        g.mul_(kept)
        rowsum = g.sum(-1, keepdim=True)  # (B, H, T, 1)
        g_s = g.addcmul_(probs, rowsum, value=-1.0).to(q.dtype)  # (B, H, T, T)
        g_q = _bmm(g_s, k).mul_(scale)  # (B, H, T, D)
        g_k = _bmm(g_s.transpose(-1, -2), q).mul_(scale)  # (B, H, T, D)
        return g_q, g_k, g_v, None, g_w, None


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, X) -> (B*H, T, X), a view when the two leading axes allow it."""
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched product over the two leading axes with ``torch.bmm``, which takes transposed
    operands as they are (``torch.matmul`` copies them into contiguous memory first)."""
    out = torch.bmm(_flat(a), _flat(b))
    return out.view(*a.shape[:-2], a.shape[-2], b.shape[-1])


def _scratch(name: str, like: torch.Tensor) -> torch.Tensor:
    return WORKSPACE.get(f"attention.{name}", like.shape, like.device, like.dtype)


def _probabilities(q, k, key_bias, name: str) -> torch.Tensor:
    """softmax(q k^T + bias) in a scratch buffer (valid until the next call with ``name``)."""
    batch, heads, tokens, _ = q.shape
    dtype = torch.promote_types(q.dtype, torch.float32)
    scores = WORKSPACE.get(f"attention.{name}", (batch, heads, tokens, tokens), q.device, dtype)
    if q.dtype == dtype:
        torch.bmm(_flat(q), _flat(k).transpose(1, 2), out=_flat(scores))
    else:  # low-precision product, float32 softmax
        scores.copy_(_bmm(q, k.transpose(-1, -2)))
    if key_bias is not None:
        scores.add_(key_bias)
    return torch.ops.aten._softmax.out(scores, -1, False, out=scores)  # in place


def _readout(probs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    batch, heads, tokens, _ = probs.shape
    w = weight.to(probs.dtype).expand(batch, -1, -1)  # (B, P, H)
    return torch.bmm(w, probs.view(batch, heads, -1)).view(batch, -1, tokens, tokens)
