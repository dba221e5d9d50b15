"""Batching helpers of the policy: deduplication, length bucketing, the action cache.

Texts are tokenized without padding; sequences are sorted by length and encoded
in chunks padded only to the chunk's own longest sequence (no padding to a fixed
512), each chunk holding at most `max_chunk_tokens` padded tokens. Identical
strings in a batch (the same "click[buy now]" in 8 envs) are encoded once.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

EncodeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # ids, mask (N, T) -> (N, T, D)


def unique_index(items: Sequence[str]) -> tuple[list[str], list[int]]:
    """Distinct items in first-seen order, and each item's position among them."""
    positions: dict[str, int] = {}
    index = [positions.setdefault(s, len(positions)) for s in items]
    return list(positions), index


def index_candidates(candidates: Sequence[Sequence[str]]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Distinct action strings of a batch and where each candidate slot points.

    Returns:
        unique: the distinct strings (U of them);
        index: (B, K) long, slot -> position in `unique` (0 in padded slots);
        cand_mask: (B, K) bool, True for real candidates. K = the largest count.
    """
    unique, flat_index = unique_index([a for cands in candidates for a in cands])
    real = _real_slots([len(c) for c in candidates])  # (B, K)
    index = np.zeros(real.shape, dtype=np.int64)
    index[real] = flat_index  # row by row, as the slots are flattened
    return unique, torch.from_numpy(index), torch.from_numpy(real)


def _real_slots(lengths: Sequence[int], width: int | None = None) -> np.ndarray:
    """(N, width) bool, width the longest by default: True in the first lengths[i] slots of row i."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.arange(lengths.max() if width is None else width)[None, :] < lengths[:, None]


def _flat_positions(real: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Where the real slots of `real` (N, T) sit in its row-major flattening, on `device`."""
    return to_device(real.reshape(-1).nonzero().squeeze(1), device)


def length_chunks(lengths: Sequence[int], max_chunk_tokens: int,
                  max_waste: float | None = None) -> list[list[int]]:
    """Indices sorted by length, grouped so that each padded chunk stays in budget.

    A chunk of n sequences padded to its longest one, L, holds n * L <= budget
    tokens (a single sequence longer than the budget gets a chunk of its own), and
    with `max_waste` also n * L <= max_waste * its real tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    real = 0  # real tokens of the last chunk
    for i in order:
        # Sorted ascending, so the newest member is the chunk's longest.
        padded = (len(chunks[-1]) + 1) * lengths[i] if chunks else 0
        if chunks and padded <= max_chunk_tokens and (max_waste is None or padded <= max_waste * (real + lengths[i])):
            chunks[-1].append(i)
            real += lengths[i]
        else:
            chunks.append([i])
            real = lengths[i]
    return chunks


def head_groups(costs: Sequence[tuple[int, int, int]], max_waste: float = 1.5) -> list[list[int]]:
    """Rows of a batch grouped so that padding each group to its largest shape wastes little.

    `costs[i]` = (state tokens, candidates, longest candidate's tokens) of row i; a padded
    group costs n * max(Ts) * max(K) * max(Ta) against the sum of its rows' own products.
    Rows sorted by that product join the current group while its padded cost stays within
    `max_waste` times the real one (a search page's 30-token state and 4 candidates then
    do not pad up to a results page's 128 tokens and 20 candidates)."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i][0] * costs[i][1] * costs[i][2], i))
    groups: list[list[int]] = []
    real = 0
    for i in order:
        own = costs[i][0] * costs[i][1] * costs[i][2]
        if groups:
            members = groups[-1] + [i]
            padded = len(members) * max(costs[m][0] for m in members) * max(costs[m][1] for m in members) \
                * max(costs[m][2] for m in members)
            if padded <= max_waste * (real + own):
                groups[-1].append(i)
                real += own
                continue
        groups.append([i])
        real = own
    return groups


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to their longest: ids (N, T) long, mask (N, T) long."""
    real = _real_slots([len(s) for s in seqs])
    ids = np.full(real.shape, pad_id, dtype=np.int64)
    ids[real] = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(real.sum()))
    return torch.from_numpy(ids), torch.from_numpy(real.astype(np.int64))


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`t` on `device`; a CPU tensor bound for a GPU goes through pinned memory (async copy)."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def encode_sequences(
    encode: EncodeFn,
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    max_chunk_tokens: int,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Encode token id lists in length-sorted chunks; returns one (T_i, D) per input."""
    out: list[torch.Tensor | None] = [None] * len(seqs)
    for chunk in length_chunks([len(s) for s in seqs], max_chunk_tokens):
        ids, mask = pad_ids([seqs[i] for i in chunk], pad_id)
        hidden = encode(to_device(ids, device), to_device(mask, device))  # (n, T, D)
        for i, tokens in zip(chunk, unpad(hidden, [len(seqs[i]) for i in chunk])):
            out[i] = tokens
    return out  # type: ignore[return-value]


def encode_hidden_sequences(
    encode: EncodeFn, hiddens: Sequence[torch.Tensor], max_chunk_tokens: int, max_waste: float | None = None
) -> list[torch.Tensor]:
    """Like `encode_sequences`, for inputs that are already token states (T_i, D):
    run `encode(hidden (n, T, D), mask (n, T) long)` on length-sorted padded chunks
    (`length_chunks`)."""
    out: list[torch.Tensor | None] = [None] * len(hiddens)
    for chunk in length_chunks([h.shape[0] for h in hiddens], max_chunk_tokens, max_waste):
        hidden, real = pad_tokens([hiddens[i] for i in chunk])  # (n, T, D), (n, T)
        encoded = encode(hidden, real.long())  # (n, T, D)
        for i, tokens in zip(chunk, unpad(encoded, [hiddens[i].shape[0] for i in chunk])):
            out[i] = tokens
    return out  # type: ignore[return-value]


def unpad(hidden: torch.Tensor, lengths: Sequence[int]) -> list[torch.Tensor]:
    """Row i of a right-padded (n, T, D) without its padding: (lengths[i], D) each.

    Without gradients, views. With them, one gather of the real tokens split into rows:
    the backward of n row views would make n zero tensors of the whole (n, T, D) and sum
    them (quadratic in n), where a gather's backward is one scatter; same values, same
    gradients."""
    if not hidden.requires_grad:
        return [hidden[row, :length] for row, length in enumerate(lengths)]
    n, width = hidden.shape[0], hidden.shape[1]
    real = torch.from_numpy(_real_slots(lengths, width))  # (n, T)
    flat = hidden.reshape(n * width, *hidden.shape[2:]).index_select(0, _flat_positions(real, hidden.device))
    return list(flat.split(list(lengths)))


def pad_tokens(tokens: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i, D) token states: hidden (N, T, D) zero-padded, mask (N, T) bool."""
    real = torch.from_numpy(_real_slots([t.shape[0] for t in tokens]))  # (N, T), on the host
    device = tokens[0].device
    if device.type == "cpu":
        hidden = pad_sequence(list(tokens), batch_first=True)  # a copy per row: cheap here
    else:
        hidden = scatter_pad(tokens, real)
    return hidden, to_device(real, device)


def scatter_pad(tokens: Sequence[torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """`pad_sequence` as one concatenation and one scatter, for a GPU: there each row's copy
    would be a kernel launch, and a learner update or a 64-env act call pads hundreds of
    rows. `real` (N, T) marks each row's tokens; the same values and gradients."""
    flat = torch.cat(list(tokens))  # (sum T_i, D)
    hidden = flat.new_zeros(real.numel(), *flat.shape[1:]).index_copy(0, _flat_positions(real, flat.device), flat)
    return hidden.view(*real.shape, *flat.shape[1:])


class ActionCache:
    """LRU cache: text (an action string, or a state for the frozen lower layers)
    -> its token states (T, D) under one set of weights.

    `sync(version)` empties the cache when the action-side weights it was filled
    under (`version`) have changed, so a stale encoding is never served.
    """

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self.version: int | None = None
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def sync(self, version: int) -> None:
        """Drop every entry if they were computed under other weights."""
        if version != self.version:
            self.clear()
            self.version = version

    def clear(self) -> None:
        self._entries.clear()

    def get(self, key: str) -> torch.Tensor | None:
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: torch.Tensor) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = value.detach().clone()  # not a view that pins its whole chunk
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class TokenMemo:
    """Token ids of texts already tokenized, newest `max_entries` kept (int32 arrays).

    Ids depend only on the text and the cut, never on weights, so the memo outlives every
    update: the learner tokenizes a pair's states and candidates the first time it draws
    the pair, not at every update that draws it again, and a worker a page it has met."""

    def __init__(self, tokenize: Callable[[list[str], int], list[list[int]]], max_entries: int):
        self._tokenize, self.max_entries = tokenize, max_entries
        self._entries: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()

    def __call__(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        missing = list(dict.fromkeys(t for t in texts if (max_tokens, t) not in self._entries))
        fresh = dict(zip(missing, self._tokenize(missing, max_tokens))) if missing else {}
        out = []
        for t in texts:
            if t in fresh:
                out.append(fresh[t])
            else:
                self._entries.move_to_end((max_tokens, t))
                out.append(self._entries[(max_tokens, t)].tolist())
        for t, ids in fresh.items():
            self._entries[(max_tokens, t)] = np.asarray(ids, dtype=np.int32)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return out
