"""The bi-attention head against a slow loop over states, candidates and tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from policies.model import BiAttentionHead


def slow_logit(head: BiAttentionHead, act: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """One candidate's logit from its real tokens act (Ta, D) and its state's real tokens (Ts, D),
    written out token by token from the trilinear form in `BiAttentionHead`'s doc."""
    rows, maxima = [], []
    for c in act:
        sim = torch.stack([head.ctx_weight.weight[0] @ c + head.mem_weight.weight[0] @ m
                           + (c * head.dot_scale) @ m for m in state])  # (Ts,)
        rows.append(F.softmax(sim, dim=0) @ state)  # o1 of this token
        maxima.append(sim.max())
    o1 = torch.stack(rows)  # (Ta, D)
    o2 = F.softmax(torch.stack(maxima), dim=0) @ act  # (D,)
    hidden = [F.relu(head.mix(torch.cat([c, r, c * r, o2 * r]))) for c, r in zip(act, o1)]
    return head.out(torch.stack(hidden).mean(dim=0))[0]


def test_head_matches_a_slow_loop_on_real_tokens_with_gradients():
    torch.manual_seed(0)
    B, K, Ta, Ts, D = 2, 3, 4, 5, 8
    head = BiAttentionHead(D)
    with torch.no_grad():
        head.ctx_weight.weight.normal_(), head.mem_weight.weight.normal_()
    act_h = torch.randn(B, K, Ta, D, requires_grad=True)
    state_h = torch.randn(B, Ts, D)
    act_len = torch.tensor([[4, 1, 0], [2, 3, 0]])  # candidate 2 is padding in both states
    state_len = torch.tensor([5, 3])
    act_mask = torch.arange(Ta) < act_len[..., None]  # (B, K, Ta)
    state_mask = torch.arange(Ts) < state_len[:, None]  # (B, Ts)
    # padded positions hold junk that must not reach a real candidate's logit
    state_h = torch.where(state_mask[..., None], state_h, torch.full_like(state_h, 50.0))
    logits = head(act_h, act_mask, state_h, state_mask)  # (B, K)
    real = [(b, k) for b in range(B) for k in range(K) if act_len[b, k] > 0]
    fast = torch.stack([logits[b, k] for b, k in real])
    slow = torch.stack([slow_logit(head, act_h[b, k, :act_len[b, k]], state_h[b, :state_len[b]])
                        for b, k in real])
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    weights = torch.randn(len(real))
    grads_fast = torch.autograd.grad((fast * weights).sum(), [act_h, head.mix.weight, head.dot_scale])
    grads_slow = torch.autograd.grad((slow * weights).sum(), [act_h, head.mix.weight, head.dot_scale])
    for g_fast, g_slow in zip(grads_fast, grads_slow):
        torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-5)
    assert grads_fast[0][~act_mask].abs().max() == 0  # padded action tokens get no gradient
    head.pack_tokens = False  # every padded slot through the ReLU layer: the same logits
    torch.testing.assert_close(head(act_h, act_mask, state_h, state_mask), logits, rtol=1e-5, atol=1e-6)
