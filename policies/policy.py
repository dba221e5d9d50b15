"""`Policy`: scores candidate actions for a batch of envs; acting and learning paths.

- `act(states, candidates)` runs under `torch.inference_mode()` (workers, Serve):
  per env the chosen index, its log-probability, the entropy, the state value.
- `evaluate(states, candidates, actions)` returns log-probs (and entropy, value) of
  given actions with gradients (the learner).

Both run the same `_forward`, so on the same weights they agree to float
rounding. Action strings repeat a lot ("click[buy now]", "click[< prev]"), so
their encodings are cached (LRU) on the acting path, and on the learning path
too when the action side is frozen; the cache is emptied whenever the weights
that produced it change. Within a batch, duplicate strings are encoded once.

With frozen lower encoder layers (the CPU preset), `set_state_cache(n)` also
keeps an LRU cache of each state's lower-layer output, so a state seen again
(IL epochs, DPO pairs sampled again, PPO epochs) runs only the trainable top
layer(s). Entries are stored in bf16 when the policy computes in bf16 and are
used the same way on a hit or a miss, so a result never depends on the cache.
Token ids are kept too (`TokenMemo`): a text is tokenized once per process.
Those frozen-part caches, the shared folder of encodings and `prefill_frozen` are in
`policies.frozen` (`FrozenEncodings`, which `Policy` extends).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import policies.encoder as enc
from policies.batching import (
    ActionCache,
    TokenMemo,
    encode_hidden_sequences,
    encode_sequences,
    head_groups,
    index_candidates,
    pad_tokens,
    to_device,
    unique_index,
)
from policies.encoding_store import EncodingStore
from policies.config import PRESETS, PolicyConfig, bf16_native, preset_config
from policies.frozen import FrozenEncodings
from policies.model import ActionScorer

# The config lives in policies.config; it is re-exported here because users build a
# policy and its config together (`from policies.policy import Policy, PolicyConfig`).
__all__ = ["PRESETS", "ActOutput", "EvalOutput", "Policy", "PolicyConfig", "bf16_native",
           "preset_config"]

TOKEN_MEMO_ENTRIES = 20_000
"""Texts whose token ids a policy keeps (`TokenMemo`): ~1 KB each for a 128-token state
with its text, so at most ~20 MB; a run's learner draws from far fewer."""
ACTING_MAX_WASTE = 1.15
"""When acting (no gradients), the trained upper layers run on chunks of states padded
to at most 1.15 times their real tokens instead of one chunk per token budget: 16 served
pages whose frozen parts were encoded took 124 ms instead of 136 (AVX2, fp32, 1 thread;
docs/RESULTS.md). Learning keeps the budget-only chunks, whose numbers the shipped recipe
was measured with."""


@dataclass(frozen=True)
class ActOutput:
    """One env's decision."""

    index: int  # chosen candidate
    logp: float  # its log-probability under the acting model
    entropy: float  # of the distribution over this env's candidates
    value: float  # state value estimate
    probs: list[float] = field(repr=False)  # (K_env,) probabilities over the candidates


@dataclass(frozen=True)
class EvalOutput:
    """Learning-path outputs for a batch of B steps (tensors with gradients)."""

    logp: torch.Tensor  # (B,) log-probability of the given action
    entropy: torch.Tensor  # (B,)
    value: torch.Tensor  # (B,)
    logp_all: torch.Tensor  # (B, K) log-probs of every slot; padded slots ~ -3.4e38


def _check_batch(states: Sequence[str], candidates: Sequence[Sequence[str]]) -> None:
    if len(states) != len(candidates):
        raise ValueError(f"{len(states)} states but {len(candidates)} candidate lists")
    if not states:
        raise ValueError("empty batch")
    for i, cands in enumerate(candidates):
        if not cands:
            raise ValueError(f"env {i} has no candidate actions")


class Policy(FrozenEncodings):
    """A BERT-class action-scoring policy (see module doc)."""

    def __init__(self, config: PolicyConfig, model: ActionScorer | None = None, tokenizer: Any = None):
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer, or neither")
        if model is None:
            encoder, tokenizer = self._load_encoder(config)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                model = ActionScorer(encoder, config.trainable_top_layers, config.freeze_action_side)
        if config.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'auto', got {config.precision!r}")
        self.config = config
        self.device = torch.device(config.device)
        self.bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_native(self.device))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.version = 0
        self._action_side_version = 0
        self._action_cache = ActionCache(config.action_cache_size)
        self._state_cache = ActionCache(0)
        self._tokens = TokenMemo(self._run_tokenizer, TOKEN_MEMO_ENTRIES)
        self._state_low_version = 0
        self._store: EncodingStore | None = None
        self._namespaces: dict[str, str] = {}  # frozen part -> its store namespace (weights hash)

    @staticmethod
    def _load_encoder(config: PolicyConfig) -> tuple[nn.Module, Any]:
        if config.model == enc.TINY_MODEL:
            encoder, tokenizer = enc.tiny_encoder(seed=config.seed)
        else:
            encoder, tokenizer = enc.load_pretrained(config.model, dropout=config.dropout)
        if config.encoder_layers is not None:
            enc.keep_lower_layers(encoder, config.encoder_layers)
        return encoder, tokenizer

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # ----------------------------------------------------------------- acting
    @torch.inference_mode()
    def act(
        self,
        states: Sequence[str],
        candidates: Sequence[Sequence[str]],
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> list[ActOutput]:
        """Choose one candidate per env (sampled, or the argmax when `greedy`)."""
        _check_batch(states, candidates)
        with self._autocast():
            logits, cand_mask, values = self._forward(states, candidates, self._action_cache)
        logits, values = logits.float(), values.float()
        logp = F.log_softmax(logits, dim=-1)  # (B, K)
        probs = logp.exp()
        entropy = -torch.where(cand_mask, probs * logp, 0.0).sum(-1)  # (B,)
        if greedy:
            index = logits.argmax(dim=-1)
        else:
            index = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1)
        chosen = logp.gather(1, index.to(logp.device)[:, None]).squeeze(1)  # (B,)
        rows = zip(index.tolist(), chosen.tolist(), entropy.tolist(), values.tolist(), probs.tolist())
        return [
            ActOutput(i, lp, h, v, p[: len(c)]) for (i, lp, h, v, p), c in zip(rows, candidates)
        ]

    # --------------------------------------------------------------- learning
    def evaluate(
        self, states: Sequence[str], candidates: Sequence[Sequence[str]], actions: Sequence[int]
    ) -> EvalOutput:
        """Log-probs, entropies and values of the given actions, with gradients."""
        _check_batch(states, candidates)
        if len(actions) != len(states):
            raise ValueError(f"{len(actions)} actions for {len(states)} states")
        for i, (a, c) in enumerate(zip(actions, candidates)):
            if not 0 <= a < len(c):
                raise ValueError(f"step {i}: action index {a} outside its {len(c)} candidates")
        self.model.train(self.config.dropout > 0)
        cache = self._action_cache if self.model.frozen_action_side else None
        with self._autocast():
            logits, cand_mask, values = self._forward(states, candidates, cache)
        self.model.eval()
        logits, values = logits.float(), values.float()
        logp_all = F.log_softmax(logits, dim=-1)  # (B, K)
        index = torch.as_tensor(list(actions), dtype=torch.long, device=logits.device)
        logp = logp_all.gather(1, index[:, None]).squeeze(1)  # (B,)
        entropy = -torch.where(cand_mask, logp_all.exp() * logp_all, 0.0).sum(-1)  # (B,)
        return EvalOutput(logp=logp, entropy=entropy, value=values, logp_all=logp_all)

    # ---------------------------------------------------------------- forward
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _tokenize(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids of `texts` cut to `max_tokens`, each text tokenized once (`TokenMemo`)."""
        return self._tokens(texts, max_tokens)

    def _run_tokenizer(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=max_tokens, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]

    def _forward(
        self,
        states: Sequence[str],
        candidates: Sequence[Sequence[str]],
        cache: ActionCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (B, K), candidate mask (B, K) bool, values (B,).

        The encoders run once over the batch's distinct texts. On a CPU the heads run on
        groups of rows of similar shape (`_head_groups`) instead of padding every row to the
        batch's longest state and largest candidate set, in acting and in learning alike: a
        row's result then depends on its group's padding by float rounding only, and the
        grouping is a function of the batch, so a batch gives the same bits every time."""
        unique_states, state_index = unique_index(states)
        state_tokens = self._state_tokens(unique_states)
        unique_actions, act_index, cand_mask = index_candidates(candidates)
        act_tokens = self._action_tokens(unique_actions, cache)
        groups = self._head_groups(state_tokens, state_index, act_tokens, act_index, candidates)
        if groups == [list(range(len(states)))]:  # one group, in order: the batch's largest shapes
            logits, values = self._score(state_tokens, state_index, act_tokens, act_index, cand_mask)
            return logits, to_device(cand_mask, self.device), values
        parts = []
        for rows in groups:
            k = max(len(candidates[i]) for i in rows)
            sub = torch.as_tensor(rows)
            parts.append((rows, k, *self._score(state_tokens, [state_index[i] for i in rows], act_tokens,
                                               act_index[sub, :k], cand_mask[sub, :k])))
        logits = torch.full(cand_mask.shape, torch.finfo(parts[0][2].dtype).min, dtype=parts[0][2].dtype,
                            device=self.device)
        values = torch.empty(len(states), dtype=parts[0][3].dtype, device=self.device)
        for rows, k, group_logits, group_values in parts:
            index = torch.as_tensor(rows, device=self.device)
            logits[index, :k] = group_logits
            values[index] = group_values
        return logits, to_device(cand_mask, self.device), values

    def _head_groups(self, state_tokens, state_index, act_tokens, act_index, candidates) -> list[list[int]]:
        """The batch's rows in the groups the heads run on. On a CPU, groups of similar shape
        (`head_groups`: less padding, less arithmetic). On a GPU, one group: padding costs it
        little, while each group is another ~100 kernel launches forward and back, and launches
        are what a GPU update waits on (docs/RESULTS.md, "GPU check")."""
        if self.device.type != "cpu" or len(candidates) == 1:
            return [list(range(len(candidates)))]
        lengths = [t.shape[0] for t in act_tokens]
        costs = [(state_tokens[state_index[i]].shape[0], len(c),
                  max(lengths[j] for j in act_index[i, :len(c)].tolist()))
                 for i, c in enumerate(candidates)]  # (state tokens, candidates, longest candidate) per row
        return head_groups(costs)

    def _score(self, state_tokens: list[torch.Tensor], state_index: list[int],
               act_tokens: list[torch.Tensor], act_index: torch.Tensor, cand_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (R, K) and values (R,) of R rows: each row's state (`state_index` into
        `state_tokens`) and candidates (`act_index` (R, K) into `act_tokens`, `cand_mask`),
        padded to the rows' own largest shapes."""
        used_states = sorted(set(state_index))
        position = {j: p for p, j in enumerate(used_states)}
        state_h, state_mask = pad_tokens([state_tokens[j] for j in used_states])  # (S, Ts, D), (S, Ts)
        rows = torch.as_tensor([position[j] for j in state_index], device=self.device)
        state_h, state_mask = state_h[rows], state_mask[rows]  # (R, Ts, D), (R, Ts)
        used = sorted(set(act_index[cand_mask].tolist()))
        remap = torch.zeros(len(act_tokens), dtype=torch.long)
        remap[used] = torch.arange(len(used))
        act_h, act_mask = pad_tokens([act_tokens[j] for j in used])  # (U, Ta, D), (U, Ta)
        act_index, cand_mask = to_device(remap[act_index], self.device), to_device(cand_mask, self.device)
        act_h = act_h[act_index]  # (R, K, Ta, D)
        act_mask = act_mask[act_index] & cand_mask[..., None]  # (R, K, Ta)
        return self.model.score(act_h, act_mask, cand_mask, state_h, state_mask)

    def _encode(self, encode, texts: Sequence[str], max_tokens: int) -> list[torch.Tensor]:
        ids = self._tokenize(texts, max_tokens)
        pad_id = self.tokenizer.pad_token_id or 0
        return encode_sequences(encode, ids, pad_id, self.config.max_chunk_tokens, self.device)

    def _state_tokens(self, states: list[str]) -> list[torch.Tensor]:
        """Token states (T_i, D) of each distinct state; frozen lower layers from the cache."""
        model, cache = self.model, self._state_cache
        low = model.num_frozen_layers
        if low == 0 or cache.max_entries <= 0 or self.config.dropout > 0:
            return self._encode(model.encode_states, states, self.config.max_state_tokens)
        found = self._state_lower(states)

        def upper(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return enc.run_layers(model.encoder, hidden.float(), mask, low, model.num_layers)

        waste = None if torch.is_grad_enabled() else ACTING_MAX_WASTE
        return encode_hidden_sequences(upper, [found[s] for s in states], self.config.max_chunk_tokens, waste)

    def _action_tokens(self, actions: list[str], cache: ActionCache | None) -> list[torch.Tensor]:
        """Token states (T_i, D) of each distinct action, from the cache where possible."""
        model, max_tokens = self.model, self.config.max_action_tokens
        if cache is None:
            return self._encode(model.encode_actions, actions, max_tokens)
        cache.sync(self._action_side_version)
        part = "actions" if model.frozen_action_side else None
        found = self._fill(cache, part, actions, model.encode_actions, max_tokens)
        return [found[a] for a in actions]

    # ---------------------------------------------------------------- weights
    def mark_updated(self) -> None:
        """Call after an optimizer step: bumps `version`, drops stale caches/copies."""
        self.version += 1
        if not self.model.frozen_action_side:
            self._action_side_version += 1

    def get_weights(self, trainable_only: bool = False) -> dict[str, np.ndarray]:
        """Flat {name: array} copy of the state dict (e.g. for a Ray object-store push).

        `trainable_only` keeps the parameters that train (the CPU preset's top
        layer and heads: a small fraction of the model)."""
        names = {n for n, p in self.model.named_parameters() if p.requires_grad} if trainable_only else None
        return {
            k: v.detach().cpu().numpy().copy()
            for k, v in self.model.state_dict().items()
            if names is None or k in names
        }

    def set_weights(self, weights: dict[str, np.ndarray], version: int | None = None) -> None:
        """Load (a subset of) the state dict from arrays; `version` defaults to +1."""
        state = self.model.state_dict()
        unknown = sorted(set(weights) - set(state))
        if unknown:
            raise KeyError(f"unknown weight names: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
        with torch.no_grad():
            for name, array in weights.items():
                if tuple(array.shape) != tuple(state[name].shape):
                    raise ValueError(f"{name}: shape {tuple(array.shape)} != {tuple(state[name].shape)}")
                with warnings.catch_warnings():  # read-only arrays (zero-copy from Ray) are only read
                    warnings.simplefilter("ignore", UserWarning)
                    state[name].copy_(torch.from_numpy(np.asarray(array)))
        self.version = self.version + 1 if version is None else version
        # New caches, not only new versions: a cache shared by `share_frozen_caches`
        # stays valid for the other policy, whose weights did not change.
        side = "action_encoder." if self.model.frozen_action_side else "encoder."
        if any(name.startswith(side) for name in weights):
            self._action_side_version += 1
            self._action_cache = ActionCache(self.config.action_cache_size)
            self._namespaces.pop("actions", None)
        lower = self._lower_prefixes()
        if any(name.startswith(lower) for name in weights):
            self._state_low_version += 1
            self._state_cache = ActionCache(self._state_cache.max_entries)
            self._namespaces.pop("states", None)

    def with_config(self, **changes: Any) -> "Policy":
        """A policy sharing this one's weights, with run-time fields changed
        (action_cache_size, max_chunk_tokens, device, precision)."""
        allowed = {"action_cache_size", "max_chunk_tokens", "device", "precision"}
        if set(changes) - allowed:
            raise ValueError(f"only {sorted(allowed)} can change on a built policy")
        return Policy(dataclasses.replace(self.config, **changes), self.model, self.tokenizer)
