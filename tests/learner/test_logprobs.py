"""Chunked log-probs equal one evaluation per trajectory, in values and gradients."""

from __future__ import annotations

import torch

from learner.logprobs import StepBatch, decision_logps, sequence_logp
from policies.policy import Policy
from tests.learner.conftest import RESULT_ACTIONS, RESULTS, SEARCH, SEARCH_ACTIONS, TINY, episode


def test_sequence_logp_matches_a_slow_loop_values_and_gradients():
    policy = Policy(TINY)
    trajs = [episode(0), episode(2, search=1), episode(1), episode(0, search=1)]
    fast = sequence_logp(policy, trajs, chunk_size=3)  # (4,) chunks cut across trajectories
    assert fast.shape == (4,)
    fast.sum().backward()
    fast_grads = [None if p.grad is None else p.grad.clone() for p in policy.trainable_parameters()]
    assert sum(g is not None for g in fast_grads) > 1
    for p in policy.trainable_parameters():
        p.grad = None
    slow = torch.stack([policy.evaluate(t.states, t.candidates, t.chosen).logp.sum() for t in trajs])
    slow.sum().backward()
    torch.testing.assert_close(fast.detach(), slow.detach(), atol=1e-5, rtol=0)
    for fg, p in zip(fast_grads, policy.trainable_parameters()):
        if fg is None:  # e.g. the value head: no path to the log-probs
            assert p.grad is None
        else:
            torch.testing.assert_close(fg, p.grad, atol=1e-5, rtol=1e-4)


def test_decision_logps_score_two_actions_of_each_state():
    policy = Policy(TINY)
    steps = StepBatch.single_steps([SEARCH, RESULTS, RESULTS], [SEARCH_ACTIONS, RESULT_ACTIONS, RESULT_ACTIONS],
                                   [0, 0, 1])
    with torch.no_grad():
        good, bad = decision_logps(policy, steps, [1, 2, 0], chunk_size=2)
        search = policy.evaluate([SEARCH], [SEARCH_ACTIONS], [0]).logp_all[0]
        results = policy.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0]
    expected_good = torch.stack([search[0], results[0], results[1]])
    expected_bad = torch.stack([search[1], results[2], results[0]])
    torch.testing.assert_close(good, expected_good, atol=1e-5, rtol=0)
    torch.testing.assert_close(bad, expected_bad, atol=1e-5, rtol=0)
