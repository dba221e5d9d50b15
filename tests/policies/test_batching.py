"""Length chunks of the policy's encoders: the padding bound acting uses."""

from __future__ import annotations

import numpy as np

import policies.batching as batching
import policies.policy as policy_module
from policies.batching import length_chunks
from policies.config import preset_config
from policies.encoding_store import EncodingStore
from policies.policy import Policy


def test_length_chunks_bound_the_padding_when_asked():
    lengths = [10, 30, 12, 28]  # sorted: 0 (10), 2 (12), 3 (28), 1 (30)
    assert length_chunks(lengths, 4096) == [[0, 2, 3, 1]]  # 4 * 30 = 120 tokens, 80 real
    # 2 * 12 = 24 <= 1.15 * 22; 3 * 28 = 84 > 1.15 * 50, so 3 starts a chunk; 2 * 30 = 60 <= 1.15 * 58.
    assert length_chunks(lengths, 4096, max_waste=1.15) == [[0, 2], [3, 1]]
    assert length_chunks(lengths, 59, max_waste=1.15) == [[0, 2], [3], [1]]  # 60 tokens > budget 59


def test_acting_chunks_by_padding_and_gives_the_same_numbers(tmp_path, batch, monkeypatch):
    """Acting runs the trained layer on waste-bounded chunks, learning on budget-only ones
    (`ACTING_MAX_WASTE`); a state's result differs by float rounding at most."""
    states, candidates = batch
    states = [states[0], states[0] + " and a much longer tail of words " * 6, states[1]]
    policy = Policy(preset_config("cpu", precision="fp32"))
    policy.use_encoding_store(EncodingStore(tmp_path, max_bytes=1 << 30))  # lower layers cached: the waste path
    calls = []
    original = batching.length_chunks
    monkeypatch.setattr(batching, "length_chunks", lambda *a: calls.append(a) or original(*a))
    bounded = policy.act(states, candidates, greedy=True)
    assert calls[-1][2] == policy_module.ACTING_MAX_WASTE and len(original(*calls[-1])) > 1
    monkeypatch.setattr(policy_module, "ACTING_MAX_WASTE", None)
    one_chunk = policy.act(states, candidates, greedy=True)
    assert len(original(*calls[-1])) == 1
    for a, b in zip(bounded, one_chunk):
        assert a.index == b.index
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
