"""Decoupled PPO: behaviour weights and advantages against hand numbers, updates that
move the policy the right way, and minibatches that do not depend on the chunking."""

from __future__ import annotations

import math

import pytest
import torch

from learner.batches import PPOBatch
from learner.ppo import behaviour_weights, trajectory_advantages
from policies.policy import Policy
from tests.learner.conftest import click_probs, episode, make_learner, with_behaviour


def test_behaviour_weights_are_truncated_at_is_clip():
    logp_prox = torch.tensor([-1.0, -2.0, -0.5, -3.0])
    logp_behaviour = torch.tensor([-1.0, -1.0, -2.0, -10.0])
    weights = behaviour_weights(logp_prox, logp_behaviour, is_clip=2.0)
    torch.testing.assert_close(weights, torch.tensor([1.0, math.exp(-1.0), 2.0, 2.0]))
    assert behaviour_weights(logp_prox, logp_behaviour, is_clip=float("inf"))[3] == pytest.approx(math.exp(7.0))


def test_trajectory_advantages_bootstrap_truncated_with_last_value():
    gamma, lam = 0.9, 0.8
    ended = episode(1, rewards=[0.0, 0.0], values=[0.5, 2.0], terminated=True)
    cut = episode(1, rewards=[0.0, 0.0], values=[0.5, 2.0], terminated=False, truncated=True)
    adv, ret = trajectory_advantages([ended, cut], gamma, lam)
    # terminated: delta_1 = 0 - 2 = -2; delta_0 = 0 + 0.9 * 2 - 0.5 = 1.3; A_0 = 1.3 + 0.72 * -2
    # truncated: V(s_2) ~ V(s_1) = 2, so delta_1 = 0.9 * 2 - 2 = -0.2; A_0 = 1.3 + 0.72 * -0.2
    torch.testing.assert_close(adv, torch.tensor([1.3 - 1.44, -2.0, 1.3 - 0.144, -0.2]))
    torch.testing.assert_close(ret, adv + torch.tensor([0.5, 2.0, 0.5, 2.0]))
    fallback, _ = trajectory_advantages([episode(0, values=None)], gamma, lam, torch.tensor([0.5, 2.0]))
    assert fallback[1].item() == pytest.approx(1.0 - 2.0)


def test_ppo_with_a_kl_term_needs_a_reference():
    from learner.config import PPOConfig
    from learner.learner import Learner
    from tests.learner.conftest import TINY

    Learner(Policy(TINY), None, PPOConfig())  # kl_coef 0: no reference needed
    with pytest.raises(ValueError, match="PPOConfig with kl_coef=0.1 needs a reference policy"):
        Learner(Policy(TINY), None, PPOConfig(kl_coef=0.1))


def test_ppo_moves_probability_toward_the_advantaged_action():
    learner = make_learner(algo="ppo", kl_coef=0.0, ppo_epochs=2, minibatch_size=8, entropy_coef=0.0)
    trajs = with_behaviour(learner.policy, [episode(0) for _ in range(4)] + [episode(1) for _ in range(4)])
    before = click_probs(learner.policy)
    for _ in range(3):
        metrics = learner.train(PPOBatch(trajs))
    after = click_probs(learner.policy)
    assert after[0] > before[0] + 0.02 and after[1] < before[1]
    assert metrics["optimizer_steps"] == 4.0 and learner.version == 3


def test_ppo_behaviour_weights_reach_the_loss():
    learner = make_learner(algo="ppo", is_clip=1.5, ppo_epochs=1)
    trajs = with_behaviour(learner.policy, [episode(0), episode(1)])
    for t in trajs:
        t.logp = [x - 5.0 for x in t.logp]  # behaviour far less likely than the current policy
    metrics = learner.train(PPOBatch(trajs))
    assert metrics["is_clip_fraction"] == 1.0 and metrics["is_weight_mean"] == pytest.approx(1.5)


def test_ppo_minibatch_is_the_same_however_it_is_chunked():
    """Per-chunk backward weighted by the chunk's share equals one backward of the minibatch."""
    grads, metrics = [], []
    for chunk in (2, 64):
        learner = make_learner(algo="ppo", ppo_epochs=1, minibatch_size=6, max_steps_per_forward=chunk, kl_coef=0.1)
        step = learner._optimizer_step
        learner._optimizer_step = lambda: grads.append(
            [p.grad.clone() for p in learner.policy.trainable_parameters() if p.grad is not None]) or step()
        trajs = with_behaviour(learner.policy, [episode(0), episode(1), episode(2, search=1)])
        metrics.append(learner.train(PPOBatch(trajs)))
    assert len(grads) == 2 and len(grads[0]) == len(grads[1]) > 1
    for fine, whole in zip(*grads):
        torch.testing.assert_close(fine, whole, atol=1e-6, rtol=1e-4)
    for key in ("loss", "policy_loss", "value_loss", "entropy", "kl_ref"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-5, abs=1e-7), key
