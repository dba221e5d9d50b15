"""Acting and learning paths of `Policy`: probabilities, agreement, masking, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.config import PolicyConfig, bf16_native, preset_config
from policies.policy import Policy


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy"])
def test_probs_sum_to_one_and_cover_own_candidates(name, request, batch):
    states, candidates = batch
    policy = request.getfixturevalue(name)
    for out, cands in zip(policy.act(states, candidates), candidates):
        assert len(out.probs) == len(cands)
        assert sum(out.probs) == pytest.approx(1.0, abs=1e-6)
        assert 0 <= out.index < len(cands)
        assert out.logp == pytest.approx(np.log(out.probs[out.index]), abs=1e-5)
        assert 0.0 <= out.entropy <= np.log(len(cands)) + 1e-5


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy"])
def test_act_and_evaluate_agree(name, request, batch):
    states, candidates = batch
    policy = request.getfixturevalue(name)
    acted = policy.act(states, candidates, generator=torch.Generator().manual_seed(0))
    out = policy.evaluate(states, candidates, [a.index for a in acted])
    np.testing.assert_allclose(out.logp.detach().numpy(), [a.logp for a in acted], atol=1e-5)
    np.testing.assert_allclose(out.value.detach().numpy(), [a.value for a in acted], atol=1e-5)
    np.testing.assert_allclose(out.entropy.detach().numpy(), [a.entropy for a in acted], atol=1e-5)


def test_greedy_picks_argmax(full_policy, batch):
    states, candidates = batch
    for out in full_policy.act(states, candidates, greedy=True):
        assert out.index == int(np.argmax(out.probs))


def test_sampling_is_reproducible_with_a_generator(full_policy, batch):
    states, candidates = batch
    first = full_policy.act(states * 4, candidates * 4, generator=torch.Generator().manual_seed(7))
    again = full_policy.act(states * 4, candidates * 4, generator=torch.Generator().manual_seed(7))
    assert [o.index for o in first] == [o.index for o in again]


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy"])
def test_padded_candidates_are_masked(name, request, batch):
    states, candidates = batch
    """An env's distribution does not depend on the other envs' candidate counts."""
    policy = request.getfixturevalue(name)
    batched = policy.evaluate(states, candidates, [0, 0, 0])
    for i, (state, cands) in enumerate(zip(states, candidates)):
        alone = policy.evaluate([state], [cands], [0])
        k = len(cands)
        torch.testing.assert_close(batched.logp_all[i, :k], alone.logp_all[0], atol=1e-5, rtol=0)
        assert torch.exp(batched.logp_all[i, k:]).sum().item() == 0.0
    torch.testing.assert_close(batched.logp_all.exp().sum(-1), torch.ones(3))


def test_cached_and_uncached_action_encodings_give_identical_logits(full_policy, batch):
    states, candidates = batch
    uncached = full_policy.with_config(action_cache_size=0)
    cold = full_policy.act(states, candidates, greedy=True)
    cache = full_policy._action_cache
    assert len(cache) == len({a for c in candidates for a in c})
    warm = full_policy.act(states, candidates, greedy=True)
    assert cache.hits >= len(cache)
    none = uncached.act(states, candidates, greedy=True)
    assert [o.probs for o in cold] == [o.probs for o in warm] == [o.probs for o in none]


def test_cache_is_invalidated_when_weights_change(full_policy, batch):
    states, candidates = batch
    before = full_policy.act(states, candidates, greedy=True)
    weights = full_policy.get_weights()
    weights = {k: (v * 1.5 if k.startswith("encoder.encoder.layer.1.") else v) for k, v in weights.items()}
    full_policy.set_weights(weights, version=5)
    assert full_policy.version == 5
    after = full_policy.act(states, candidates, greedy=True)
    fresh = full_policy.with_config(action_cache_size=0).act(states, candidates, greedy=True)
    assert [o.probs for o in after] == [o.probs for o in fresh]
    assert [o.probs for o in after] != [o.probs for o in before]


def test_frozen_action_side_cache_survives_trainable_updates(cpu_policy, batch):
    states, candidates = batch
    cpu_policy.act(states, candidates)
    size = len(cpu_policy._action_cache)
    trainable = cpu_policy.get_weights(trainable_only=True)
    assert trainable and not any(k.startswith("action_encoder.") for k in trainable)
    assert all(not k.startswith("encoder.encoder.layer.0.") for k in trainable)
    cpu_policy.set_weights({k: v + 0.01 for k, v in trainable.items()})
    cpu_policy.act(states, candidates)
    assert len(cpu_policy._action_cache) == size and cpu_policy._action_cache.hits >= size


def test_duplicate_actions_and_states_in_one_batch(full_policy, batch):
    states, candidates = batch
    states, cands = [states[2], states[2]], [candidates[2], candidates[2][::-1]]
    out = full_policy.evaluate(states, cands, [0, 2])
    torch.testing.assert_close(out.logp[0], out.logp[1])  # the same action, listed in another slot


def test_only_trainable_parameters_get_gradients(cpu_policy, batch):
    states, candidates = batch
    cpu_policy.act(states, candidates)  # the learner then reads encodings cached in inference mode
    out = cpu_policy.evaluate(states, candidates, [1, 2, 0])
    (out.logp.sum() + out.value.sum()).backward()
    for name, p in cpu_policy.model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
        else:
            assert p.grad is None, name
    trained = [n for n, p in cpu_policy.model.named_parameters() if p.requires_grad]
    assert not [n for n in trained if n.startswith(("action_encoder.", "encoder.embeddings.", "encoder.encoder.layer.0."))]
    assert any(n.startswith("encoder.encoder.layer.1.") for n in trained)


def test_weights_round_trip_through_numpy(full_policy):
    other = Policy(PolicyConfig(model="tiny", seed=1))
    assert not np.array_equal(other.get_weights()["head.mix.weight"], full_policy.get_weights()["head.mix.weight"])
    other.set_weights(full_policy.get_weights(), version=3)
    for k, v in full_policy.get_weights().items():
        np.testing.assert_array_equal(other.get_weights()[k], v)
    with pytest.raises(KeyError, match="unknown weight"):
        other.set_weights({"nope": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        other.set_weights({"head.out.bias": np.zeros(3, dtype=np.float32)})


def test_bad_batches_are_refused(full_policy):
    with pytest.raises(ValueError, match="no candidate"):
        full_policy.act(["x"], [[]])
    with pytest.raises(ValueError, match="outside"):
        full_policy.evaluate(["x"], [["click[a]"]], [1])
    with pytest.raises(ValueError, match="2 states but 1"):
        full_policy.act(["x", "y"], [["click[a]"]])


def test_long_states_are_cut_to_max_tokens(full_policy, batch):
    states, candidates = batch
    long_state = states[1] + " [SEP] red shirt" * 400
    ids = full_policy._tokenize([long_state], full_policy.config.max_state_tokens)[0]
    assert len(ids) == full_policy.config.max_state_tokens
    assert full_policy.act([long_state], [candidates[1]])[0].probs


def test_bf16_act_and_evaluate_agree(batch):
    states, candidates = batch
    policy = Policy(PolicyConfig(model="tiny", precision="bf16", trainable_top_layers=1, freeze_action_side=True))
    fp32 = policy.with_config(precision="fp32")
    acted = policy.act(states, candidates, greedy=True)
    out = policy.evaluate(states, candidates, [a.index for a in acted])
    assert out.logp.dtype == torch.float32
    np.testing.assert_allclose(out.logp.detach().numpy(), [a.logp for a in acted], atol=1e-5)
    for a, b in zip(acted, fp32.act(states, candidates, greedy=True)):  # bf16 ~ fp32, not equal
        np.testing.assert_allclose(a.probs, b.probs, atol=0.02)
    with pytest.raises(ValueError, match="precision"):
        Policy(PolicyConfig(model="tiny", precision="fp16"))


def test_presets():
    cpu, full = preset_config("cpu"), preset_config("full", device="cpu")
    assert (cpu.max_state_tokens, cpu.trainable_top_layers, cpu.freeze_action_side) == (128, 1, True)
    assert (full.max_state_tokens, full.trainable_top_layers, full.freeze_action_side) == (256, None, False)
    assert cpu.precision == full.precision == "auto" and isinstance(bf16_native("cpu"), bool)
    with pytest.raises(ValueError, match="unknown policy preset"):
        preset_config("gpu")
    with pytest.raises(ValueError, match="trainable_top_layers"):
        Policy(PolicyConfig(model="tiny", trainable_top_layers=5))


def test_state_cache_serves_lower_layers_and_matches_uncached(cpu_policy, batch):
    states, candidates = batch
    plain = cpu_policy.evaluate(states, candidates, [1, 2, 0]).logp_all  # fp32 on the tiny model
    cpu_policy.set_state_cache(8)
    first = cpu_policy.evaluate(states, candidates, [1, 2, 0])
    again = cpu_policy.evaluate(states, candidates, [1, 2, 0])
    cache = cpu_policy._state_cache
    assert len(cache) == 3 and cache.misses == 3 and cache.hits == 3
    torch.testing.assert_close(first.logp_all, plain)
    torch.testing.assert_close(again.logp_all, first.logp_all, rtol=0, atol=0)
    # gradients still reach the trainable top layer through cached lower outputs
    again.logp.sum().backward()
    top = cpu_policy.model.encoder.encoder.layer[-1].attention.self.query.weight
    assert top.grad is not None and top.grad.abs().sum() > 0
    # acting reads the same cache and agrees with learning
    acted = cpu_policy.act(states, candidates, greedy=True)
    assert [o.logp for o in acted] == pytest.approx(first.logp_all.max(-1).values.tolist(), abs=1e-5)


def test_shared_frozen_caches_serve_both_policies_and_end_when_frozen_weights_change(cpu_policy, batch):
    states, candidates = batch
    config = cpu_policy.config
    reference = Policy(config)  # same seed: the same frozen lower layers and action side ...
    top = {k: v + 0.05 for k, v in reference.get_weights(trainable_only=True).items()}
    reference.set_weights(top)  # ... and a different trained top, as after some updates
    unshared = Policy(config, reference.model, reference.tokenizer)  # the same weights, caches of its own
    expected = unshared.evaluate(states, candidates, [0, 0, 0]).logp_all
    cpu_policy.set_state_cache(8)
    assert reference.share_frozen_caches(cpu_policy)
    assert reference._state_cache is cpu_policy._state_cache
    assert reference._action_cache is cpu_policy._action_cache
    cpu_policy.evaluate(states, candidates, [0, 0, 0])  # fills both caches: 3 states, 8 distinct actions
    actions = cpu_policy._action_cache
    assert (cpu_policy._state_cache.misses, actions.misses) == (3, 8)
    got = reference.evaluate(states, candidates, [0, 0, 0]).logp_all
    assert (cpu_policy._state_cache.hits, cpu_policy._state_cache.misses) == (3, 3)  # nothing encoded again
    assert (actions.hits, actions.misses) == (8, 8)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, cpu_policy.evaluate(states, candidates, [0, 0, 0]).logp_all)
    # new frozen weights in the policy: it gets caches of its own, the reference keeps the shared ones
    shared = cpu_policy._state_cache
    low = {k: v + 0.05 for k, v in cpu_policy.get_weights().items() if k.startswith("encoder.encoder.layer.0.")}
    cpu_policy.set_weights(low)
    assert cpu_policy._state_cache is not shared and reference._state_cache is shared
    assert len(cpu_policy._state_cache) == 0 and cpu_policy._state_cache.max_entries == 8
    torch.testing.assert_close(reference.evaluate(states, candidates, [0, 0, 0]).logp_all, expected)
    # now the frozen parts differ: sharing is refused and changes nothing
    assert not reference.share_frozen_caches(cpu_policy)
    assert reference._state_cache is shared


def test_share_frozen_caches_needs_frozen_parts_and_one_config(full_policy, cpu_policy):
    assert full_policy.frozen_tensors() == {}
    assert not Policy(full_policy.config).share_frozen_caches(full_policy)  # nothing frozen to share
    other = Policy(PolicyConfig(**{**cpu_policy.config.__dict__, "max_state_tokens": 64}))
    assert not other.share_frozen_caches(cpu_policy)  # cut states differently: other lower outputs
    frozen = cpu_policy.frozen_tensors()
    assert "action_encoder.embeddings.word_embeddings.weight" in frozen
    assert "encoder.encoder.layer.0.attention.self.query.weight" in frozen
    assert not any(k.startswith(("encoder.encoder.layer.1.", "head.", "value_head.")) for k in frozen)


def test_state_cache_is_dropped_when_frozen_layers_change(cpu_policy, batch):
    states, candidates = batch
    cpu_policy.set_state_cache(8)
    before = cpu_policy.evaluate(states, candidates, [0, 0, 0]).logp_all
    trainable = cpu_policy.get_weights(trainable_only=True)
    cpu_policy.set_weights(trainable)  # top layer only: cached lower outputs stay valid
    cpu_policy.evaluate(states, candidates, [0, 0, 0])
    assert cpu_policy._state_cache.hits == 3
    low = {k: v + 0.05 for k, v in cpu_policy.get_weights().items() if k.startswith("encoder.encoder.layer.0.")}
    cpu_policy.set_weights(low)
    after = cpu_policy.evaluate(states, candidates, [0, 0, 0]).logp_all
    fresh = Policy(cpu_policy.config, cpu_policy.model, cpu_policy.tokenizer).evaluate(states, candidates, [0, 0, 0])
    torch.testing.assert_close(after, fresh.logp_all)
    assert not torch.allclose(after, before)
    with pytest.raises(ValueError, match="max_entries must be >= 0"):
        cpu_policy.set_state_cache(-1)


def test_head_groups_keep_short_pages_apart_from_long_ones():
    from policies.batching import head_groups

    # (state tokens, candidates, longest candidate): two search pages, two results pages.
    costs = [(30, 4, 8), (128, 20, 16), (32, 4, 8), (120, 18, 16)]
    # 0 and 2 padded together: 2*32*4*8 = 2,048 <= 1.5 * (960 + 1,024); adding 3 would pad
    # to 3*120*18*16 = 103,680 > 1.5 * (1,984 + 34,560); 3 and 1: 81,920 <= 1.5 * 75,520.
    assert head_groups(costs) == [[0, 2], [3, 1]]
    assert head_groups(costs, max_waste=100.0) == [[0, 2, 3, 1]]
    assert head_groups([(5, 1, 1)]) == [[0]]


def test_unpad_gives_the_rows_values_and_gradients_with_one_gather():
    """With gradients, `unpad` gathers the real tokens once: the same values and the same
    gradient bits as row views, whose backward builds a zero tensor of the whole batch per
    row; without gradients, it returns views."""
    from policies.batching import unpad

    torch.manual_seed(0)
    weight = torch.randn(8, 8, requires_grad=True)
    inputs, lengths = torch.randn(5, 7, 8), [7, 3, 1, 6, 4]
    target = [torch.randn(length, 8) for length in lengths]
    grads, rows = [], None
    for split in (unpad, lambda h, ls: [h[r, :n] for r, n in enumerate(ls)]):
        got = split(inputs @ weight, lengths)
        assert [tuple(t.shape) for t in got] == [(n, 8) for n in lengths]
        if split is unpad:  # pieces of one gather, not views of the batch
            assert {t.grad_fn.name() for t in got} == {"SplitWithSizesBackward0"}
        rows = rows or [t.detach() for t in got]
        assert all(torch.equal(a, b) for a, b in zip(got, rows))
        sum(((t - y) ** 3).sum() for t, y in zip(got, target)).backward()
        grads.append(weight.grad)
        weight.grad = None
    assert torch.equal(grads[0], grads[1])
    with torch.no_grad():
        hidden = inputs @ weight
        views = unpad(hidden, lengths)
    assert views[3].data_ptr() == hidden[3].data_ptr()  # no copy when nothing trains


def test_on_a_gpu_the_heads_run_on_the_whole_batch(cpu_policy, batch, monkeypatch):
    """A GPU pays per launch, not for padding: its heads take every row in one group, where
    a CPU splits the same batch by shape."""
    from policies.batching import index_candidates, unique_index

    states, candidates = batch
    states, candidates = states * 3, candidates * 3
    unique_states, state_index = unique_index(states)
    unique_actions, act_index, _ = index_candidates(candidates)
    args = (cpu_policy._state_tokens(unique_states), state_index,
            cpu_policy._action_tokens(unique_actions, None), act_index, candidates)
    on_cpu = cpu_policy._head_groups(*args)
    assert len(on_cpu) > 1 and sorted(sum(on_cpu, [])) == list(range(len(states)))
    monkeypatch.setattr(cpu_policy, "device", torch.device("cuda"))
    assert cpu_policy._head_groups(*args) == [list(range(len(states)))]


@pytest.fixture
def head_group_calls(monkeypatch) -> list[list[list[int]]]:
    """Every grouping `Policy._forward` asks `head_groups` for, in order."""
    import policies.policy as policy_module

    calls = []
    original = policy_module.head_groups
    monkeypatch.setattr(policy_module, "head_groups", lambda costs: calls.append(original(costs)) or calls[-1])
    return calls


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy"])
def test_grouped_acting_equals_each_row_alone(name, request, batch, head_group_calls):
    """Acting runs the heads on shape groups; every row's scores match that row acted alone."""
    states, candidates = batch
    states, candidates = states * 3, candidates * 3
    policy = request.getfixturevalue(name)
    groups = head_group_calls
    together = policy.act(states, candidates, greedy=True)
    assert len(groups) == 1 and len(groups[0]) > 1  # the batch was split by shape
    for out, state, cands in zip(together, states, candidates):
        (alone,) = policy.act([state], [cands], greedy=True)
        np.testing.assert_allclose(out.probs, alone.probs, atol=1e-5)
        assert out.value == pytest.approx(alone.value, abs=1e-5)


def test_grouped_learning_equals_each_row_alone(cpu_policy, batch, head_group_calls):
    """Learning runs the heads on shape groups too: each row's log-probs, values and the
    gradient of their sum match that row evaluated alone (the sum of the rows' gradients)."""
    states, candidates = batch
    states, candidates = states * 3, candidates * 3
    actions = [len(c) - 1 for c in candidates]
    params = cpu_policy.trainable_parameters()
    groups = head_group_calls
    together = cpu_policy.evaluate(states, candidates, actions)
    assert len(groups) == 1 and len(groups[0]) > 1  # the batch was split by shape
    grads = torch.autograd.grad((together.logp + together.value).sum(), params, allow_unused=True)
    sums = [torch.zeros_like(p) for p in params]
    for i, (state, cands, a) in enumerate(zip(states, candidates, actions)):
        alone = cpu_policy.evaluate([state], [cands], [a])
        assert together.logp[i].item() == pytest.approx(alone.logp.item(), abs=1e-5)
        assert together.value[i].item() == pytest.approx(alone.value.item(), abs=1e-5)
        row = torch.autograd.grad((alone.logp + alone.value).sum(), params, allow_unused=True)
        for total, g in zip(sums, row):
            if g is not None:
                total += g
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    for g, total in zip(grads, sums):
        torch.testing.assert_close(torch.zeros_like(total) if g is None else g, total, atol=1e-4, rtol=1e-4)


def test_the_gpu_padding_equals_pad_sequence_in_values_and_gradients():
    """On a GPU `pad_tokens` pads by one scatter (`scatter_pad`) instead of a copy per row."""
    from torch.nn.utils.rnn import pad_sequence

    from policies.batching import scatter_pad

    torch.manual_seed(0)
    rows = [torch.randn(n, 5, requires_grad=True) for n in (3, 1, 6, 6, 2)]
    real = torch.arange(6)[None, :] < torch.tensor([3, 1, 6, 6, 2])[:, None]
    target = torch.randn(5, 6, 5)
    grads = []
    for pad in (scatter_pad(rows, real), pad_sequence(rows, batch_first=True)):
        assert pad.shape == (5, 6, 5)
        ((pad - target) ** 3).sum().backward()
        grads.append([r.grad.clone() for r in rows])
        for r in rows:
            r.grad = None
    assert torch.equal(scatter_pad(rows, real), pad_sequence(rows, batch_first=True))
    assert all(torch.equal(a, b) for a, b in zip(*grads))
