"""The action-scoring network: an encoder, a bi-attention head, a value head.

The design follows WebShop's choice model (Yao et al., 2022, `baseline_models/models/
bert.py`): the state text and each candidate action are encoded separately by the
same encoder, then a bi-attention layer (BiDAF-style, Seo et al., 2017) lets every
action token attend over the state tokens and scores the pair. Encoding the state
once per env and each distinct action string once (or not at all, from a cache)
is what makes this much cheaper than cross-encoding every (state, action) pair.

Differences from WebShop's model, on purpose:
- candidates are laid out per env as (B, K, Ta) with masks, so the state is never
  repeated K times and padded actions / padded candidates are masked everywhere;
  the head's ReLU layer, most of its FLOPs, runs on the real action tokens only;
- optionally the action side is a frozen copy of the encoder, so action encodings
  never change during training and can be cached across weight updates;
- the lower encoder layers can be frozen and run without autograd.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from policies.architectures import lower_modules, num_layers, run_layers


class BiAttentionHead(nn.Module):
    """Scores each candidate action against the state with bi-attention.

    For an action token c and a state token m the similarity is the trilinear
    form w_c.c + w_m.m + (c * s).m (Seo et al., 2017). Each action token gets
    o1 = its attention read-out of the state; the pair gets o2 = the action's own
    tokens weighted by how strongly each one matches the state. The features
    [c, o1, c*o1, o2*o1] go through a ReLU layer, are mean-pooled over the real
    action tokens and mapped to one logit.
    """

    pack_tokens = True
    """Run the ReLU layer on the real action tokens only; False runs it on every padded
    slot too (the same logits, kept to measure what packing saves)."""

    def __init__(self, dim: int):
        super().__init__()
        self.ctx_weight = nn.Linear(dim, 1, bias=False)
        self.mem_weight = nn.Linear(dim, 1, bias=False)
        self.dot_scale = nn.Parameter(torch.full((dim,), dim**-0.5))
        self.mix = nn.Linear(4 * dim, dim)
        self.out = nn.Linear(dim, 1)

    def forward(
        self,
        act_h: torch.Tensor,
        act_mask: torch.Tensor,
        state_h: torch.Tensor,
        state_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Args:
            act_h: action token states (B, K, Ta, D); act_mask (B, K, Ta) bool.
            state_h: state token states (B, Ts, D); state_mask (B, Ts) bool.
        Returns:
            logits (B, K); rows of fully masked candidates hold meaningless values.
        """
        B, K, Ta, D = act_h.shape
        ctx = act_h.reshape(B, K * Ta, D)  # (B, K*Ta, D)
        scores = (
            self.ctx_weight(ctx)  # (B, K*Ta, 1)
            + self.mem_weight(state_h).transpose(1, 2)  # (B, 1, Ts)
            + torch.bmm(ctx * self.dot_scale, state_h.transpose(1, 2))  # (B, K*Ta, Ts)
        )
        neg = torch.finfo(scores.dtype).min  # of the compute dtype (bf16 under autocast)
        scores = scores.masked_fill(~state_mask[:, None, :], neg)
        read = torch.bmm(F.softmax(scores, dim=-1), state_h).reshape(B, K, Ta, D)  # o1
        token_score = scores.max(dim=-1).values.reshape(B, K, Ta).masked_fill(~act_mask, neg)
        token_weight = F.softmax(token_score, dim=-1).unsqueeze(-1)  # (B, K, Ta, 1)
        summary = (token_weight * act_h).sum(dim=2, keepdim=True)  # o2 (B, K, 1, D)
        # The ReLU layer - most of the head's FLOPs - runs on the real action tokens
        # only (`pack_tokens`): in a learner batch of states with 2-20 candidates,
        # most of the (B, K, Ta) slots are padded candidates or padded tokens.
        o2 = summary.expand(B, K, Ta, D)
        real = act_mask.reshape(-1).nonzero().squeeze(1) if self.pack_tokens else None  # (N,) of B*K*Ta
        c, o1, o2 = (x.reshape(-1, D) if real is None else x.reshape(-1, D)[real] for x in (act_h, read, o2))
        # mix([c, o1, c*o1, o2*o1]) as four D x D products: same FLOPs, but no
        # (N, 4D) concat (large tensors are mmapped and page-faulted anew each time).
        w_c, w_r, w_cr, w_sr = self.mix.weight.split(D, dim=1)
        hidden = F.relu(
            F.linear(c, w_c, self.mix.bias) + F.linear(o1, w_r) + F.linear(c * o1, w_cr) + F.linear(o2 * o1, w_sr)
        )  # (N, D), or (B*K*Ta, D) unpacked
        if real is None:
            hidden = hidden * act_mask.reshape(-1, 1).to(hidden.dtype)
        else:  # back into the padded layout: a deterministic scatter, unlike index_add_ on a GPU
            hidden = hidden.new_zeros(B * K * Ta, D).index_put_((real,), hidden)
        count = act_mask.sum(dim=2, keepdim=True).clamp_min(1).to(hidden.dtype)  # (B, K, 1)
        pooled = hidden.reshape(B, K, Ta, D).sum(dim=2) / count  # (B, K, D) mean over real tokens
        return self.out(pooled).squeeze(-1)  # (B, K)


class ActionScorer(nn.Module):
    """Encoder(s) + bi-attention head + value head.

    Args:
        encoder: a Hugging Face encoder of a family `policies.architectures` runs
            (BERT, RoBERTa, ELECTRA, DeBERTa); others raise UnsupportedEncoderError.
        trainable_top_layers: how many top transformer layers train; None = all
            layers and the embeddings. Frozen lower layers run without autograd.
        freeze_action_side: encode actions with a frozen copy of `encoder` (its
            weights as given here, e.g. the pretrained or IL weights), so action
            encodings stay valid across training and can be cached.
    """

    def __init__(self, encoder: nn.Module, trainable_top_layers: int | None, freeze_action_side: bool):
        super().__init__()
        total = num_layers(encoder)
        if trainable_top_layers is not None and not 0 <= trainable_top_layers <= total:
            raise ValueError(f"trainable_top_layers must be in [0, {total}] or None, got {trainable_top_layers}")
        self.num_layers = total
        self.num_frozen_layers = 0 if trainable_top_layers is None else total - trainable_top_layers
        dim = encoder.config.hidden_size
        self.encoder = encoder
        self.action_encoder = copy.deepcopy(encoder) if freeze_action_side else None
        self.head = BiAttentionHead(dim)
        self.value_head = nn.Sequential(nn.Linear(dim, 128), nn.LeakyReLU(), nn.Linear(128, 1))
        self._freeze()

    def _freeze(self) -> None:
        if self.action_encoder is not None:
            self.action_encoder.requires_grad_(False)
        for module in lower_modules(self.encoder, self.num_frozen_layers).values():
            module.requires_grad_(False)
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:  # unused: the value head reads the [CLS] token state
            pooler.requires_grad_(False)

    def lower_prefixes(self) -> tuple[str, ...]:
        """State-dict name prefixes of what is frozen with the lower layers: the
        embeddings, the lower layers and what feeds every layer (DeBERTa's relative
        position embeddings). Empty when every layer trains."""
        return tuple(f"encoder.{name}." for name in lower_modules(self.encoder, self.num_frozen_layers))

    @property
    def dim(self) -> int:
        return self.encoder.config.hidden_size

    @property
    def frozen_action_side(self) -> bool:
        return self.action_encoder is not None

    def encode_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """State token states (N, T, D) from ids/mask (N, T); lower layers without autograd."""
        n = self.num_frozen_layers
        if n == 0 or not torch.is_grad_enabled():
            return run_layers(self.encoder, ids, mask, 0, self.num_layers)
        with torch.inference_mode():
            low = run_layers(self.encoder, ids, mask, 0, n)  # (N, T, D)
        # Inference tensors cannot be saved for backward; a clone made outside is a normal one.
        return run_layers(self.encoder, low.clone(), mask, n, self.num_layers)

    def encode_actions(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Action token states (N, T, D) from ids/mask (N, T)."""
        if self.action_encoder is None:
            return self.encode_states(ids, mask)
        with torch.no_grad():
            return run_layers(self.action_encoder, ids, mask, 0, self.num_layers)

    def score(
        self,
        act_h: torch.Tensor,
        act_mask: torch.Tensor,
        cand_mask: torch.Tensor,
        state_h: torch.Tensor,
        state_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked logits (B, K) and values (B,).

        Args:
            act_h (B, K, Ta, D), act_mask (B, K, Ta) bool, cand_mask (B, K) bool,
            state_h (B, Ts, D), state_mask (B, Ts) bool.
        """
        logits = self.head(act_h, act_mask, state_h, state_mask)  # (B, K)
        logits = logits.masked_fill(~cand_mask, torch.finfo(logits.dtype).min)
        values = self.value_head(state_h[:, 0]).squeeze(-1)  # (B,) from [CLS]
        return logits, values
