"""DPO on a tiny random BERT policy: each scope compares what it says, updates raise
the chosen-minus-rejected margin, and the anchor KL and NLL terms add what they say."""

from __future__ import annotations

import math

import pytest
import torch

from learner.batches import DPOBatch
from learner.config import DPOConfig
from learner.dpo import SCOPES, anchor_kl, decision_pair, divergence_step
from learner.logprobs import sequence_logp
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from tests.learner.conftest import (
    FROZEN,
    RESULT_ACTIONS,
    RESULTS,
    SEARCH,
    SEARCH_ACTIONS,
    click_probs,
    episode,
    make_learner,
)


def test_the_scope_registry_matches_the_config_choices():
    from learner.config import DPO_SCOPES

    assert tuple(SCOPES) == DPO_SCOPES == ("trajectory", "step")  # the seed's and the shipped one
    with pytest.raises(ValueError, match="dpo.scope"):
        DPOConfig(scope="steps")
    with pytest.raises(ValueError, match=r"dpo.scope must be one of \('trajectory', 'step'\), got 'divergence'"):
        DPOConfig(scope="divergence")  # lost (docs/RESULTS.md), deleted


def test_dpo_updates_raise_the_chosen_minus_rejected_margin():
    learner = make_learner()
    pairs = [(episode(0), episode(1)), (episode(0), episode(2)), (episode(0, search=1), episode(1, search=1))]
    chosen, rejected = [c for c, _ in pairs], [r for _, r in pairs]

    def margin() -> float:
        with torch.no_grad():
            return (sequence_logp(learner.policy, chosen, 64) - sequence_logp(learner.policy, rejected, 64)).mean().item()

    margins, metrics = [margin()], []
    for _ in range(4):
        metrics.append(learner.train(DPOBatch(pairs)))
        margins.append(margin())
    assert all(b > a for a, b in zip(margins, margins[1:])), margins
    assert margins[-1] > margins[0] + 0.05
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference at first
    assert metrics[-1]["reward_margin"] > 0 and metrics[-1]["reward_accuracy"] == 1.0
    assert [m["version"] for m in metrics] == [1.0, 2.0, 3.0, 4.0] and learner.version == 4
    assert all(isinstance(v, float) for v in metrics[-1].values())


def test_divergence_step_is_the_first_different_action_from_the_same_state():
    assert divergence_step(episode(0), episode(1)) == 1  # same search, different click
    assert divergence_step(episode(0), episode(0, search=1)) == 0
    assert divergence_step(episode(0), episode(0)) is None  # never part
    other_start = episode(1)
    other_start.states = [RESULTS, RESULTS]
    assert divergence_step(episode(0), other_start) is None  # a state differs before any action does
    assert decision_pair(episode(0), episode(2)) == (1, 2)  # step 1, "next >" among the chosen's candidates
    other_page = episode(1)
    other_page.candidates = [SEARCH_ACTIONS, RESULT_ACTIONS[:2]]
    assert decision_pair(episode(0), other_page) is None  # same state, other candidates: no single decision


def test_step_scope_scores_both_actions_from_one_state_evaluation():
    beta = 0.5
    step = make_learner(scope="step", beta=beta, sft_coef=1.0)
    step.train(DPOBatch([(episode(0), episode(1))]))  # move the policy off the reference
    pair = (episode(0), episode(2))  # same search, then b01 (chosen) vs next > (rejected)
    with torch.no_grad():
        now = step.policy.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0]
        ref = step.reference.policy.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0]
    margin = float((now[0] - ref[0]) - (now[2] - ref[2]))
    metrics = step.train(DPOBatch([pair]))
    assert metrics["preference_loss"] == pytest.approx(-math.log(1 / (1 + math.exp(-beta * margin))), rel=1e-5)
    assert metrics["sft_loss"] == pytest.approx(-float(now[0]), rel=1e-5)  # the chosen action at that state only
    assert metrics["steps"] == 1.0 and metrics["divergent_pairs"] == 1.0
    cache = step.reference.cache  # keyed by the chosen trajectory, the step and each action
    assert cache.get(pair[0].traj_id, 1, 0) == pytest.approx(float(ref[0]))
    assert cache.get(pair[0].traj_id, 1, 2) == pytest.approx(float(ref[2]))


def test_step_scope_moves_the_decision_and_leaves_out_pairs_that_never_part():
    learner = make_learner(scope="step", beta=1.0)
    before = click_probs(learner.policy)
    for _ in range(20):
        metrics = learner.train(DPOBatch([(episode(0), episode(1)), (episode(0), episode(0))]))
    after = click_probs(learner.policy)
    assert after[0] > before[0] + 0.05 and after[1] < before[1]
    assert metrics["divergent_pairs"] == 0.5 and metrics["pairs"] == 1.0
    with pytest.raises(ValueError, match="none of the 1 pairs parts"):
        learner.train(DPOBatch([(episode(0), episode(0))]))


def test_step_scope_anchor_kl_holds_other_states_to_the_reference(tmp_path):
    learner = make_learner(scope="step", beta=1.0, kl_coef=2.0, anchor_states=2, pairs_per_update=1)
    buffer = ArrowBuffer(tmp_path)
    buffer.add_trajectories(trajectories_to_batch([episode(0)]))  # anchors: its 2 states
    buffer.add_pairs(pairs_to_batch([(episode(0), episode(1), "expert")]))
    first = learner.update(buffer)
    assert first["anchor_kl"] == 0.0  # the policy still equals the reference
    second = learner.update(buffer)
    assert second["anchor_kl"] > 0
    assert second["loss"] == pytest.approx(second["preference_loss"] + 2.0 * second["anchor_kl"], rel=1e-5)
    anchors = [(SEARCH, SEARCH_ACTIONS), (RESULTS, RESULT_ACTIONS)]
    with torch.no_grad():
        p = [learner.policy.evaluate([s], [c], [0]).logp_all[0].exp() for s, c in anchors]
        q = [learner.reference.policy.evaluate([s], [c], [0]).logp_all[0].exp() for s, c in anchors]
    by_hand = sum(float((pi * (pi.log() - qi.log())).sum()) for pi, qi in zip(p, q)) / 2
    got = anchor_kl(learner.policy, learner.reference.policy, anchors, chunk_size=1).item()
    assert got == pytest.approx(by_hand, rel=1e-3)  # probs vs log-probs: ~1e-4
    with pytest.raises(ValueError, match="anchor_states needs scope='step' and kl_coef > 0"):
        DPOConfig(anchor_states=4, scope="trajectory", kl_coef=1.0)
    with pytest.raises(ValueError, match="anchors are used only"):
        make_learner().train(DPOBatch([(episode(0), episode(1))], anchors))


def test_reference_shares_the_policy_encodings_of_frozen_parts_also_after_resume(tmp_path):
    settings = dict(scope="step", kl_coef=1.0, anchor_states=2, pairs_per_update=1)
    learner = make_learner(FROZEN, **settings)
    assert learner.shares_frozen_caches and make_learner().shares_frozen_caches is False
    assert learner.reference.policy._state_cache is learner.policy._state_cache
    anchors = [(SEARCH, SEARCH_ACTIONS), (RESULTS, RESULT_ACTIONS)]
    learner.train(DPOBatch([(episode(0), episode(1))], anchors))
    cache = learner.policy._state_cache
    assert cache.misses == 2 and cache.hits > 0  # two states, each through the lower layers once
    learner.save(tmp_path / "ckpt")
    resumed = make_learner(FROZEN, **settings)
    resumed.load(tmp_path / "ckpt")  # set_weights gave the policy new caches; shared again
    assert resumed.shares_frozen_caches
    assert resumed.reference.policy._state_cache is resumed.policy._state_cache
    assert resumed.reference.policy._action_cache is resumed.policy._action_cache


def test_dpo_sft_term_adds_chosen_nll():
    learner = make_learner(sft_coef=0.5)
    metrics = learner.train(DPOBatch([(episode(0), episode(1))]))
    assert metrics["sft_loss"] > 0
    assert metrics["loss"] == pytest.approx(metrics["preference_loss"] + 0.5 * metrics["sft_loss"], rel=1e-6)
