"""The pair head's middle term for training: one (N, N, A) tensor kept for the backward pass.

``SeqDanceModel.forward(..., lean_backward=True)`` (the training step) computes the middle
term with :class:`PairMiddle`; results equal the plain forward's up to rounding, only the
way the gradient is obtained differs.

Autograd through ``seqdance.model.heads.middle_logits`` keeps, for every block of rows, the
(rows, A, E) matrices ``k_i * W1 + W2`` and the GELU input and output. :class:`PairMiddle`
keeps only the GELU input ``pre`` (N, N, A) and rebuilds the rest block by block in the
backward pass, with the gradients written out by hand:

    x_ij   = q_j * k_i                                   (E,)
    pre_ij = W1 x_ij + W2 q_j - W2 k_i + b               (A,)
    out_ij = W_pm GELU(pre_ij)                           (P,)
"""

from __future__ import annotations

import torch

from seqdance.utils.workspace import WORKSPACE, TensorPool

_PRE = TensorPool(limit=16)  # the (N, N, A) tensors kept for backward, reused from step to step


def _rows_per_block(n: int, width: int, chunk_elements: int) -> int:
    return max(1, chunk_elements // max(1, n * width))


def _scratch(name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return WORKSPACE.get(f"pair_middle.{name}", shape, like.device, like.dtype)


class PairMiddle(torch.autograd.Function):
    """``out[:, i, j] = W_pm @ GELU(W_mid @ concat(q_j * k_i, q_j - k_i) + b_mid)``.

    Inputs: q, k (N, E); w_mid (A, 2E); b_mid (A,); w_pm (P, A); chunk_elements (int);
    reuse (bool: take the kept (N, N, A) tensor from a pool and hand it back in the backward
    pass, which then runs once, as in a training step).
    Output: (P, N, N), channel, row i, column j (the pair logits' channels-first layout).
    """

    @staticmethod
    def forward(ctx, q, k, w_mid, b_mid, w_pm, chunk_elements: int, reuse: bool = False):
        n, width = q.shape
        n_mid, n_out = w_mid.shape[0], w_pm.shape[0]
        w1, w2 = w_mid[:, :width], w_mid[:, width:]  # (A, E) each
        col = q @ w2.t()  # (N, A): W2 q_j
        row = k @ w2.t() - b_mid  # (N, A): W2 k_i - b
        # (N, N, A), kept for the backward pass; with ``reuse``, memory of an earlier step's
        # (handed back by its backward pass, which may then run only once)
        pre = _PRE.take((n, n, n_mid), q) if reuse else q.new_empty(n, n, n_mid)
        out = q.new_empty(n_out, n, n)  # (P, N, N)
        rows = _rows_per_block(n, max(width, n_mid), chunk_elements)
        # one buffer per kind, reused by every block and every call (seqdance.utils.workspace)
        x_buf = _scratch("x", (rows, n, width), q)  # (C, N, E)
        g_buf = _scratch("a", (rows, n, n_mid), q)  # (C, N, A)
        for s in range(0, n, rows):
            e = min(n, s + rows)
            c = e - s
            x = torch.mul(k[s:e, None, :], q[None, :, :], out=x_buf[:c])  # (C, N, E)
            block = pre[s:e]  # (C, N, A): col_j + x_ij W1^T, then - row_i
            torch.baddbmm(col.expand(c, n, n_mid), x, w1.t().expand(c, width, n_mid), out=block)
            block -= row[s:e, None]
            act = torch.ops.aten.gelu.out(block, out=g_buf[:c])  # (C, N, A)
            out[:, s:e] = torch.mm(w_pm, act.view(-1, n_mid).t()).view(n_out, c, n)  # (P, C, N)
        ctx.save_for_backward(q, k, w_mid, w_pm, pre)
        ctx.rows = rows
        ctx.reuse, ctx.released = reuse, False
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.released:
            raise RuntimeError("PairMiddle's backward runs once (its buffer was handed back)")
        q, k, w_mid, w_pm, pre = ctx.saved_tensors
        n, width = q.shape
        n_mid, n_out = w_mid.shape[0], w_pm.shape[0]
        w1, w2 = w_mid[:, :width], w_mid[:, width:]
        grad_out = grad_out.contiguous()  # (P, N, N)
        g_q = torch.zeros_like(q)  # (N, E)
        g_k = torch.zeros_like(k)  # (N, E)
        g_w1 = torch.zeros_like(w1)  # (A, E)
        g_wpm = torch.zeros_like(w_pm)  # (P, A)
        sum_i = q.new_zeros(n, n_mid)  # (N, A): sum over rows i of g_pre[i, j]
        sum_j = q.new_empty(n, n_mid)  # (N, A): sum over columns j of g_pre[i, j]
        rows = ctx.rows
        x_buf = _scratch("x", (rows, n, width), q)  # (C, N, E): x, then g_x
        y_buf = _scratch("y", (rows, n, width), q)  # (C, N, E): products with g_x
        a_buf = _scratch("a", (rows, n, n_mid), q)  # (C, N, A): GELU(pre)
        gp_buf = _scratch("g", (rows, n, n_mid), q)  # (C, N, A): g_pre
        for s in range(0, n, rows):
            e = min(n, s + rows)
            c = e - s
            p = pre[s:e]  # (C, N, A)
            g = grad_out[:, s:e].reshape(n_out, -1)  # (P, C*N), rows N*N apart (no copy)
            act = torch.ops.aten.gelu.out(p, out=a_buf[:c])
            g_wpm.addmm_(g, act.view(-1, n_mid))
            g_pre = gp_buf[:c]  # (C, N, A)
            torch.mm(g.t(), w_pm, out=g_pre.view(-1, n_mid))
            torch.ops.aten.gelu_backward.grad_input(g_pre, p, grad_input=g_pre)
            flat = g_pre.view(-1, n_mid)  # (C*N, A)
            x = torch.mul(k[s:e, None, :], q[None, :, :], out=x_buf[:c])  # (C, N, E)
            g_w1.addmm_(flat.t(), x.view(-1, width))
            g_x = x_buf[:c]  # x is no longer needed: (C, N, E) g_x
            torch.mm(flat, w1, out=g_x.view(-1, width))
            y = torch.mul(g_x, q[None, :, :], out=y_buf[:c])
            torch.sum(y, dim=1, out=g_k[s:e])
            y = torch.mul(g_x, k[s:e, None, :], out=y_buf[:c])
            g_q += y.sum(0)
            sum_i += g_pre.sum(0)
            torch.sum(g_pre, dim=1, out=sum_j[s:e])
        g_q += sum_i @ w2
        g_k -= sum_j @ w2
        g_w2 = sum_i.t() @ q - sum_j.t() @ k  # (A, E)
        g_b = sum_j.sum(0)  # (A,)
        if ctx.reuse:
            _PRE.give(pre)  # the next forward reuses its memory (no page faults)
            ctx.released = True
        return g_q, g_k, torch.cat([g_w1, g_w2], dim=1), g_b, g_wpm, None, None


def release_buffers() -> None:
    """Free the scratch and pooled tensors that training steps keep for the next step."""
    _PRE.clear()
    WORKSPACE.clear()
