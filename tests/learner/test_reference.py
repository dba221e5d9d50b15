"""The reference cache: one key type (traj_id, step, action), each log-prob computed
once, least recently used trajectories evicted, and its state round-trips exactly."""

from __future__ import annotations

import pytest
import torch

from learner.batches import DPOBatch
from learner.reference import Reference, ReferenceCache
from policies.policy import Policy, PolicyConfig
from tests.learner.conftest import TINY, episode, make_learner


def test_reference_logp_is_computed_once_per_trajectory():
    learner = make_learner()
    evaluated = []  # steps per reference evaluate call
    evaluate = learner.reference.policy.evaluate
    learner.reference.policy.evaluate = lambda s, c, a: evaluated.append(len(a)) or evaluate(s, c, a)
    shared = episode(1)
    preset = episode(2, ref_logp=[-0.5, -1.5])
    pairs = [(episode(0), shared), (episode(0, search=1), shared), (episode(0), preset)]
    first = learner.reference.trajectory_logp([t for pair in pairs for t in pair])
    assert sum(evaluated) == 2 * 4  # 4 distinct trajectories without ref_logp, 2 steps each
    assert first[-1] == [-0.5, -1.5]
    for _ in range(3):
        learner.train(DPOBatch(pairs))
    assert sum(evaluated) == 8  # updates reuse the cache
    with torch.no_grad():
        direct = learner.reference.policy.evaluate(shared.states, shared.candidates, shared.chosen).logp.tolist()
    assert learner.reference.trajectory_logp([shared]) == [pytest.approx(direct, abs=1e-6)]
    assert learner.reference.cache.get(shared.traj_id, 1, 1) == pytest.approx(direct[1], abs=1e-6)


def test_decisions_and_trajectories_share_one_key_type():
    reference = Reference(Policy(TINY), cache_size=10, chunk_size=64)
    traj = episode(0)
    ref = reference.decision_logp([traj], [1], [2], torch.device("cpu"))  # (1, 2): b01 and "next >" at step 1
    assert reference.cache.get(traj.traj_id, 1, 0) == float(ref[0, 0])
    assert reference.cache.get(traj.traj_id, 1, 2) == float(ref[0, 1])
    assert reference.cache.get(traj.traj_id, 0, 0) is None  # the search step was not asked for
    whole = reference.trajectory_logp([traj])[0]  # not all steps cached: the trajectory is evaluated
    assert whole[1] == pytest.approx(float(ref[0, 0]), abs=1e-6)
    assert reference.cache.get(traj.traj_id, 0, 0) == whole[0] and reference.cache.get(traj.traj_id, 1, 2) is not None


def test_cache_evicts_the_least_recently_used_trajectory_and_round_trips():
    cache = ReferenceCache(max_trajectories=2)
    cache.put("a", {(0, 1): -0.5, (1, 0): -1.25})
    cache.put("b", {(0, 0): -2.0})
    cache.touch("a")
    cache.put("c", {(3, 4): -0.75})
    cache.trim()
    assert len(cache) == 2 and cache.get("b", 0, 0) is None  # b was the least recently used
    assert cache.has("a", [(0, 1), (1, 0)]) and not cache.has("a", [(0, 1), (2, 0)])
    copy = ReferenceCache(max_trajectories=2)
    copy.load_state_dict(cache.state_dict())
    assert copy.state_dict()["ids"] == ["a", "c"]
    assert (copy.get("a", 1, 0), copy.get("c", 3, 4)) == (-1.25, -0.75)


def test_the_reference_must_be_deterministic():
    with pytest.raises(ValueError, match="build it with dropout=0"):
        Reference(Policy(PolicyConfig(model="tiny", dropout=0.1)), cache_size=1, chunk_size=1)
