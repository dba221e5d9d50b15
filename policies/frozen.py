"""The frozen parts' encodings of a `Policy`: caches in memory, the shared store, prefill.

`FrozenEncodings` is the half of `policies.policy.Policy` that deals with the parts that
never train (the action encoder; the embeddings and lower state layers of the CPU
preset): an LRU cache of each state's lower-layer output, the action cache's sharing with
the DPO reference, the folder of encodings shared between processes
(`policies.encoding_store`), and computing many texts ahead (`prefill_frozen`). Values
are computed canonically, so a result never depends on what a cache held. It uses the
policy's `model`, `config`, `tokenizer`, `device`, `bf16`, `_tokenize`, `_autocast` and
`_action_tokens`, and the cache fields `Policy.__init__` sets.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

import policies.encoder as enc
from policies.batching import ActionCache
from policies.encoding_store import EncodingStore, encode_canonical, namespace_key, tensors_digest, vocab_digest


class FrozenEncodings:
    """Frozen-part encodings of a policy (mixed into `Policy`; see the module doc)."""

    def set_state_cache(self, max_entries: int) -> None:
        """Cache up to `max_entries` states' frozen lower-layer outputs (0 = off).

        Only has an effect with frozen lower layers and no dropout. Memory: about
        tokens x hidden x 2 bytes per state in bf16 (~100 KB for 128 MiniLM tokens)."""
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self._state_cache = ActionCache(max_entries)

    def use_encoding_store(self, store: EncodingStore | None) -> None:
        """Read and write the frozen parts' encodings (action side, lower state layers)
        through `store`, shared with other processes and runs (see policies.encoding_store).
        States then take the frozen/top split on the acting path too (a state cache of at
        least 256 entries)."""
        self._store = store
        if store is not None and self.model.num_frozen_layers > 0 and self._state_cache.max_entries < 256:
            self.set_state_cache(256)

    def _namespace(self, part: str) -> str:
        """The store namespace of a frozen part ("actions" or "states"), from its weights."""
        if part not in self._namespaces:
            prefixes = ("action_encoder.",) if part == "actions" else self._lower_prefixes()
            tensors = {k: v for k, v in self.model.state_dict().items() if k.startswith(prefixes)}
            max_tokens = self.config.max_action_tokens if part == "actions" else self.config.max_state_tokens
            kind = part if part == "actions" else f"states{self.model.num_frozen_layers}"
            self._namespaces[part] = namespace_key(
                kind, tensors_digest(tensors), max_tokens, torch.bfloat16 if self.bf16 else torch.float32,
                self.device, vocab_digest(self.tokenizer))
        return self._namespaces[part]

    def frozen_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors that never train: the frozen action encoder, and the embeddings
        and lower layers when `trainable_top_layers` freezes them."""
        prefixes = ("action_encoder.",) if self.model.frozen_action_side else ()
        if self.model.num_frozen_layers > 0:
            prefixes += self._lower_prefixes()
        return {k: v for k, v in self.model.state_dict().items() if prefixes and k.startswith(prefixes)}

    def _lower_prefixes(self) -> tuple[str, ...]:
        """State-dict name prefixes of the embeddings and the frozen lower layers."""
        return self.model.lower_prefixes()

    def share_frozen_caches(self, source: "FrozenEncodings") -> bool:
        """Use `source`'s state cache and action cache, if the frozen parts of
        the two models are the same tensors: then each state's lower layers and each
        action string are encoded once for both (the learner's reference and trained
        policy). Returns whether the caches are now shared; False (nothing changed)
        when the configurations or the frozen weights differ or nothing is frozen.

        The sharing ends for a policy whose frozen weights are later overwritten by
        `set_weights`: it goes back to caches of its own."""
        if self.config != source.config or self.model.num_frozen_layers != source.model.num_frozen_layers:
            return False
        mine, theirs = self.frozen_tensors(), source.frozen_tensors()
        if not mine or mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k]) for k in mine):
            return False
        self._state_cache, self._state_low_version = source._state_cache, source._state_low_version
        parts = ("states",)
        if self.model.frozen_action_side:
            self._action_cache, self._action_side_version = source._action_cache, source._action_side_version
            parts += ("actions",)
        for part in parts:  # the same tensors, the same folder: no second hash of the weights
            if part in source._namespaces:
                self._namespaces.setdefault(part, source._namespaces[part])
        return True

    def _fill(self, cache: ActionCache, part: str | None, texts: list[str], encode, max_tokens: int,
              store_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Encodings of `texts` from `cache`, then the store (frozen parts only: `part` set),
        then computed canonically (`encode_canonical`), so that each value is a function of
        its text alone and results never depend on what was cached before."""
        found = {t: v for t in texts if (v := cache.get(t)) is not None}
        store = self._store if part is not None else None
        for t in texts:
            if t not in found and store is not None and (v := store.get(self._namespace(part), t)) is not None:
                found[t] = v.to(self.device)
                cache.put(t, found[t])
        missing = [t for t in texts if t not in found]
        if missing:
            ids = self._tokenize(missing, max_tokens)
            pad_id = self.tokenizer.pad_token_id or 0
            for t, v in zip(missing, encode_canonical(encode, ids, pad_id, self.device)):
                v = v.to(store_dtype) if store_dtype is not None else v
                found[t] = v.clone()  # a normal tensor, not an inference-mode view of its slab
                cache.put(t, found[t])
                if store is not None:
                    store.put(self._namespace(part), t, found[t])
        return found

    def _state_lower(self, states: list[str]) -> dict[str, torch.Tensor]:
        """The frozen lower layers' output of each state: cache, store, else computed."""
        model, low = self.model, self.model.num_frozen_layers
        self._state_cache.sync(self._state_low_version)

        def lower(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return enc.run_layers(model.encoder, ids, mask, 0, low)

        return self._fill(self._state_cache, "states", states, lower, self.config.max_state_tokens,
                          torch.bfloat16 if self.bf16 else torch.float32)

    def prefill_frozen(self, states: Sequence[str], actions: Sequence[str], chunk: int = 1024,
                       on_chunk: Callable[[int, int], None] | None = None) -> bool:
        """Compute the frozen encodings of many texts ahead of training, in large stacks.

        A batch of 16 decisions spreads its new texts over several length buckets, so
        each encoder pass is a few rows and pays for reading the weights; here a chunk's
        texts of one bucket go in one pass. Values are canonical (bit-identical to what
        the batches would compute) and land in the store, or in memory when the caches
        hold them all; with neither, nothing is done and False is returned.
        `on_chunk(n, total)` is told as each chunk of `n` of the `total` texts is done."""
        if self.config.dropout > 0:
            return False
        states, actions = list(dict.fromkeys(states)), list(dict.fromkeys(actions))
        parts = []
        if self.model.num_frozen_layers > 0 and (self._store is not None
                                                 or self._state_cache.max_entries >= len(states)):
            parts.append((states, self._state_lower))
        cache = self._action_cache
        if self.model.frozen_action_side and (self._store is not None or cache.max_entries >= len(actions)):
            parts.append((actions, lambda texts: self._action_tokens(texts, cache)))
        total = sum(len(texts) for texts, _ in parts)
        with torch.no_grad(), self._autocast():
            for texts, fill in parts:
                for i in range(0, len(texts), chunk):
                    fill(texts[i:i + chunk])
                    if on_chunk is not None:
                        on_chunk(len(texts[i:i + chunk]), total)
        return bool(parts)
