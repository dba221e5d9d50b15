"""`Prefetcher`: the next batch selected while one trains gives the weights that selecting
one update after another gives (bit for bit, the buffer unchanged), and no selection is
still running once `update` returns."""

from __future__ import annotations

import dataclasses

import torch

from learner.prefetch import Prefetcher
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from tests.learner.conftest import episode, make_learner

STEP_DPO = dict(scope="step", anchor_states=2, kl_coef=0.1, pairs_per_update=2, max_version_lag=50)
"""Decision pairs with anchor states: the anchors are drawn with the learner's generator."""


def filled(path, trajs, pairs) -> ArrowBuffer:
    buffer = ArrowBuffer(path, seed=3)
    buffer.add_trajectories(trajectories_to_batch(trajs))
    buffer.add_pairs(pairs_to_batch(pairs))
    return buffer


def data():
    trajs = [dataclasses.replace(episode(i % 3, search=i % 2), traj_id=f"t{i}") for i in range(12)]
    pairs = [(dataclasses.replace(episode(0, search=i % 2), traj_id=f"c{i}"),
              dataclasses.replace(episode(1 + i % 2, search=i % 2), traj_id=f"r{i}"), "expert") for i in range(6)]
    return trajs, pairs


def run(tmp_path, name, algo, prefetch, updates, **changes):
    learner = make_learner(algo=algo, **changes)
    buffer = filled(tmp_path / name, *data())
    fetcher = Prefetcher(learner, buffer) if prefetch else None
    metrics = []
    for _ in range(updates):
        metrics.append(fetcher.update() if fetcher else learner.update(buffer))
        if fetcher is not None:
            assert fetcher._next is None or fetcher._next.done()  # idle between updates
    if fetcher is not None:
        fetcher.close()
    return learner, buffer, metrics


def same_weights(a, b) -> bool:
    sa, sb = a.policy.model.state_dict(), b.policy.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_dpo_with_prefetch_trains_on_the_same_batches(tmp_path):
    plain, buffer, m_plain = run(tmp_path, "plain", "dpo", False, 5, **STEP_DPO)
    ahead, _, m_ahead = run(tmp_path, "ahead", "dpo", True, 5, **STEP_DPO)
    assert plain.num_updates == ahead.num_updates == 5
    assert same_weights(plain, ahead)
    drop = {"seconds"}
    assert [{k: v for k, v in m.items() if k not in drop} for m in m_plain] == \
           [{k: v for k, v in m.items() if k not in drop} for m in m_ahead]
    assert not torch.equal(plain.generator.get_state(), ahead.generator.get_state())
    plain.select(buffer)  # the prefetcher has drawn the anchors of a sixth batch already
    assert torch.equal(plain.generator.get_state(), ahead.generator.get_state())


def test_ppo_with_prefetch_uses_each_trajectory_once_as_without(tmp_path):
    changes = dict(trajectories_per_update=4, ppo_epochs=1, max_version_lag=50)
    plain, _, m_plain = run(tmp_path, "plain", "ppo", False, 4, **changes)
    ahead, _, m_ahead = run(tmp_path, "ahead", "ppo", True, 4, **changes)
    assert [m is None for m in m_plain] == [m is None for m in m_ahead] == [False, False, False, True]
    assert same_weights(plain, ahead)
    assert plain.algorithm.consumed == ahead.algorithm.consumed and len(plain.algorithm.consumed) == 12


def test_a_batch_selected_ahead_obeys_the_staleness_bound_of_the_next_version(tmp_path):
    learner = make_learner(algo="dpo", **{**STEP_DPO, "max_version_lag": 1})
    learner.policy.version = 6  # now pairs need version >= 5; after this update, >= 6
    buffer = filled(tmp_path, [episode(0, version=5)],
                    [(episode(0, version=5), episode(1, version=5), "expert") for _ in range(2)])
    assert learner.select(buffer) is not None
    assert learner.select(buffer, ahead=1) is None
