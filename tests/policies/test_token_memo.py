"""`TokenMemo`: each text tokenized once, the same ids as the tokenizer, bounded."""

from __future__ import annotations

import torch

from policies.batching import TokenMemo


class CountingTokenizer:
    """Ids = character codes cut to `max_tokens`; records every call's texts."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        self.calls.append(list(texts))
        return [[ord(c) for c in t[:max_tokens]] for t in texts]


def test_each_text_is_tokenized_once_with_the_same_ids():
    tok = CountingTokenizer()
    memo = TokenMemo(tok, max_entries=10)
    assert memo(["ab", "cd", "ab"], 5) == [[97, 98], [99, 100], [97, 98]]
    assert tok.calls == [["ab", "cd"]]  # the repeat inside one call counted once
    assert memo(["cd", "xyz", "ab"], 5) == [[99, 100], [120, 121, 122], [97, 98]]
    assert tok.calls[-1] == ["xyz"]
    assert memo(["xyz"], 2) == [[120, 121]]  # another cut is another entry
    assert tok.calls[-1] == ["xyz"] and len(tok.calls) == 3
    assert memo(["ab", "cd"], 5) and len(tok.calls) == 3  # all remembered: no call


def test_oldest_unused_entry_is_dropped_at_the_bound():
    tok = CountingTokenizer()
    memo = TokenMemo(tok, max_entries=2)
    memo(["a", "b"], 4)
    memo(["a"], 4)  # "a" used again: "b" is now the oldest
    memo(["c"], 4)
    assert len(memo._entries) == 2
    memo(["a", "c"], 4)
    assert len(tok.calls) == 2  # both still held
    memo(["b"], 4)
    assert tok.calls[-1] == ["b"]


def test_policy_ids_equal_the_tokenizer_and_repeat_without_calls(cpu_policy, batch):
    states, candidates = batch
    texts = states + [c for cands in candidates for c in cands]
    direct = cpu_policy.tokenizer(texts, truncation=True, max_length=16)["input_ids"]
    calls = []
    run = cpu_policy._run_tokenizer
    cpu_policy._tokens._tokenize = lambda t, n: calls.append(t) or run(t, n)
    assert cpu_policy._tokenize(texts, 16) == direct
    assert cpu_policy._tokenize(list(reversed(texts)), 16) == list(reversed(direct))
    assert len(calls) == 1
    before = [o.probs for o in cpu_policy.act(states, candidates, generator=torch.Generator().manual_seed(0))]
    cpu_policy._tokens._entries.clear()
    after = [o.probs for o in cpu_policy.act(states, candidates, generator=torch.Generator().manual_seed(0))]
    assert before == after
