"""The shared store of frozen-layer encodings: canonical encoding, files, invalidation."""

from __future__ import annotations

import os
import time

import pytest
import torch

import policies.encoder as enc

from policies.encoding_store import EncodingStore, bucket_length, encode_canonical
from policies.policy import Policy, PolicyConfig

from tests.policies.conftest import CANDIDATES, STATES

CPU_DESIGN = PolicyConfig(model="tiny", max_state_tokens=128, trainable_top_layers=1, freeze_action_side=True)


def _tokens(policy: Policy, texts: list[str], max_tokens: int = 48) -> list[list[int]]:
    return policy.tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]


def test_bucket_lengths():
    assert [bucket_length(n) for n in (1, 8, 9, 33, 48, 49, 128, 600)] == [8, 8, 16, 48, 48, 64, 128, 600]


@pytest.mark.parametrize("part", ["actions", "states"])
def test_canonical_encoding_does_not_depend_on_the_batch_or_threads(cpu_policy, part):
    """A text's encoding is the same bits alone, in another order, beside other lengths,
    and with 1 or 2 threads in the calling process (on a CPU: single-threaded stacks)."""
    texts = [a for cands in CANDIDATES for a in cands] + STATES
    ids = _tokens(cpu_policy, texts)
    model = cpu_policy.model
    encode = model.encode_actions if part == "actions" else \
        (lambda i, m: enc.run_layers(model.encoder, i, m, 0, model.num_frozen_layers))
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            torch.set_num_threads(1)
            alone = [encode_canonical(encode, [s], 0)[0] for s in ids]
            together_1 = encode_canonical(encode, ids, 0)
            torch.set_num_threads(2)
            together_2 = encode_canonical(encode, ids, 0)
            reversed_2 = encode_canonical(encode, ids[::-1], 0)[::-1]
    finally:
        torch.set_num_threads(threads)
    for a, b, c, d, s in zip(alone, together_1, together_2, reversed_2, ids):
        assert a.shape == (len(s), model.dim)
        assert torch.equal(a, b) and torch.equal(a, c) and torch.equal(a, d)


def test_store_round_trip_and_damaged_file(tmp_path):
    store = EncodingStore(tmp_path, max_bytes=1 << 20)
    value = torch.randn(5, 4)
    assert store.get("ns", "click[buy now]") is None
    store.put("ns", "click[buy now]", value)
    assert torch.equal(store.get("ns", "click[buy now]"), value)
    assert store.get("other-ns", "click[buy now]") is None
    (path,) = [p for p in tmp_path.rglob("*.safetensors")]
    assert not list(path.parent.glob(".tmp-*"))  # written elsewhere, then renamed
    path.write_bytes(path.read_bytes()[:20])  # torn by a crash
    assert store.get("ns", "click[buy now]") is None
    assert not path.exists()  # removed, so the next put writes it whole
    assert (store.hits, store.misses, store.writes) == (1, 3, 1)


def test_sweep_removes_the_oldest_files(tmp_path):
    one = len(torch.zeros(64, 4).numpy().tobytes())  # 1,024 bytes of data per entry, plus a header
    store = EncodingStore(tmp_path, max_bytes=10 * one)
    for i in range(12):
        store.put("ns", f"text {i}", torch.full((64, 4), float(i)))
        path = store._path("ns", f"text {i}")
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))  # text 0 the oldest
    size = store.size_bytes()
    assert size > 10 * one
    removed = store.sweep()
    assert store.size_bytes() <= 8 * one
    kept = [i for i in range(12) if store.get("ns", f"text {i}") is not None]
    assert removed == 12 - len(kept) and kept == list(range(12 - len(kept), 12))


def test_a_second_policy_reads_what_the_first_wrote_bit_for_bit(tmp_path, batch):
    states, cands = batch
    writer, reader, plain = Policy(CPU_DESIGN), Policy(CPU_DESIGN), Policy(CPU_DESIGN)
    store = EncodingStore(tmp_path, max_bytes=1 << 30)
    writer.use_encoding_store(store)
    writer.act(states, cands, greedy=True)
    num_texts = len(set(states)) + len({a for c in cands for a in c})
    assert store.writes == num_texts
    reader.use_encoding_store(EncodingStore(tmp_path, max_bytes=1 << 30))
    got = reader.evaluate(states, cands, [0, 1, 2]).logp_all
    assert reader._store.hits == num_texts and reader._store.writes == 0
    plain.set_state_cache(16)  # the same frozen/top split, computed here
    want = plain.evaluate(states, cands, [0, 1, 2]).logp_all
    assert torch.equal(got, want)


def test_new_frozen_weights_never_read_old_encodings(tmp_path, batch):
    states, cands = batch
    first = Policy(CPU_DESIGN)
    first.use_encoding_store(EncodingStore(tmp_path, max_bytes=1 << 30))
    first.act(states, cands, greedy=True)
    changed = Policy(CPU_DESIGN)
    weights = {k: v + 0.01 for k, v in changed.get_weights().items() if k.startswith("action_encoder.")}
    changed.set_weights(weights)
    store = EncodingStore(tmp_path, max_bytes=1 << 30)
    changed.use_encoding_store(store)
    changed.act(states, cands, greedy=True)
    num_actions = len({a for c in cands for a in c})
    assert store.hits == len(set(states))  # the lower state layers did not change
    assert store.writes == num_actions  # the action side did: a namespace of its own
    spaces = sorted(p.name for p in tmp_path.iterdir())
    assert len([s for s in spaces if s.startswith("actions-")]) == 2
    assert len([s for s in spaces if s.startswith("states1-")]) == 1


def test_a_full_fine_tuning_policy_writes_nothing(tmp_path, batch, full_policy):
    states, cands = batch
    store = EncodingStore(tmp_path, max_bytes=1 << 30)
    full_policy.use_encoding_store(store)
    full_policy.act(states, cands)
    assert store.writes == 0 and not list(tmp_path.rglob("*.safetensors"))


def test_max_bytes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="max_bytes must be > 0, got 0"):
        EncodingStore(tmp_path, max_bytes=0)


def test_a_folder_that_cannot_be_written_costs_speed_not_the_run(tmp_path, batch):
    states, cands = batch
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    policy, plain = Policy(CPU_DESIGN), Policy(CPU_DESIGN)
    store = EncodingStore(blocker / "encodings", max_bytes=1 << 30)  # mkdir under a file fails
    policy.use_encoding_store(store)
    plain.set_state_cache(16)
    got = policy.evaluate(states, cands, [0, 1, 2]).logp_all
    assert store.writes == 0
    assert torch.equal(got, plain.evaluate(states, cands, [0, 1, 2]).logp_all)


def test_the_way_of_computing_is_part_of_the_namespace(cpu_policy, monkeypatch):
    """Values computed another way are other bits: they never mix in one folder."""
    import policies.encoding_store as es

    assert es.canonical_scheme("cpu") == "cpu: single-threaded stacks"
    assert es.canonical_scheme("cuda") == "cuda: slabs of 64 rows, attention without cuDNN"
    before = cpu_policy._namespace("states")
    monkeypatch.setattr(es, "canonical_scheme", lambda device: "cpu: slabs of 8 rows")
    cpu_policy._namespaces.clear()
    assert cpu_policy._namespace("states") != before


def test_workers_take_the_callers_autocast(cpu_policy):
    """bf16 autocast is a per-thread mode: the workers of a 2-thread caller compute in it too."""
    ids = _tokens(cpu_policy, [a for cands in CANDIDATES for a in cands])
    threads = torch.get_num_threads()
    out = {}
    try:
        with torch.inference_mode():
            torch.set_num_threads(2)
            plain = encode_canonical(cpu_policy.model.encode_actions, ids, 0)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                for n in (1, 2):
                    torch.set_num_threads(n)
                    out[n] = encode_canonical(cpu_policy.model.encode_actions, ids, 0)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(out[1], out[2]))
    assert not any(torch.equal(a, b) for a, b in zip(out[2], plain))  # computed in bf16, not fp32


@pytest.mark.parametrize("threads", [1, 2])
def test_prefill_gives_the_bits_the_batches_would_compute(tmp_path, batch, threads):
    torch.set_num_threads(threads)
    states, cands = batch
    others = [f"{s} and {i} more words on this page" * (1 + i % 3) for i, s in enumerate(states * 7)]
    actions = [a for c in cands for a in c] + [f"click[product {i}]" for i in range(30)]
    prefilled, plain = Policy(CPU_DESIGN), Policy(CPU_DESIGN)
    store = EncodingStore(tmp_path / "a", max_bytes=1 << 30)
    prefilled.use_encoding_store(store)
    chunks = []
    assert prefilled.prefill_frozen(others + states, actions, chunk=8, on_chunk=lambda n, total: chunks.append(n))
    num_texts = len(set(others + states)) + len(set(actions))
    assert store.writes == num_texts == sum(chunks)
    got = prefilled.evaluate(states, cands, [0, 1, 2]).logp_all
    assert store.writes == num_texts  # the batch computed nothing new
    plain.use_encoding_store(EncodingStore(tmp_path / "b", max_bytes=1 << 30))
    assert torch.equal(got, plain.evaluate(states, cands, [0, 1, 2]).logp_all)


def test_prefill_without_room_to_keep_the_values_does_nothing(batch):
    states, cands = batch
    policy = Policy(PolicyConfig(**{**CPU_DESIGN.__dict__, "action_cache_size": 2}))
    assert not policy.prefill_frozen(states, [a for c in cands for a in c])
