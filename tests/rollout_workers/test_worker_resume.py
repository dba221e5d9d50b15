"""A worker's state after a round is everything its next round depends on: restored into
a new worker, the next round is the same bit for bit; episode ids follow the goal slot."""

import pytest

from policies.policy import Policy, PolicyConfig
from rollout_workers.worker import RolloutWorker, WorkerConfig
from tests.rollout_workers.test_worker import gen, policy  # noqa: F401 - fixtures


def _rows(batch):
    from rollout_workers.schema import pairs_to_batch, trajectories_to_batch

    pairs = pairs_to_batch(batch.pairs).to_pylist() if batch.pairs else []
    return trajectories_to_batch(batch.trajectories).to_pylist(), pairs


@pytest.mark.parametrize("mode", ["self", "correct"])
def test_a_restored_worker_repeats_the_next_round_bit_for_bit(gen, policy, mode):
    """state() after a round, loaded into a new worker (built as a restart builds it: same
    seed, so the same goal order, but its RNGs at their start): the next
    round's trajectory and pair rows (ids, seeds, sampled actions, log-probs) are those
    the first worker makes. 3 episodes per round with 2 samples per goal leave a goal
    and a `self` group half done across the rounds."""
    import json

    cat, idx = gen
    extra = {"samples_per_goal": 2, "pair_margin": 0.0} if mode == "self" else {}
    cfg = WorkerConfig(num_envs=2, max_steps=5, pair_mode=mode, **extra)
    w = RolloutWorker(3, cat, policy, cfg, seed=5, search_index=idx, run_id="r1")
    first = w.sample(3)
    expected_ids = ["r1.w3.g0.s0", "r1.w3.g0.s1", "r1.w3.g1.s0"] if mode == "self" else [
        "r1.w3.g0.s0", "r1.w3.g1.s0", "r1.w3.g2.s0"]
    assert sorted(t.traj_id for t in first.trajectories) == expected_ids
    state = json.loads(json.dumps(w.state()))  # what the driver keeps, through JSON
    again = RolloutWorker(3, cat, policy, cfg, seed=5, search_index=idx, run_id="r1")
    again.load_state(state)
    expected, got = w.sample(3), again.sample(3)
    assert _rows(got) == _rows(expected)
    assert got.worker_state == expected.worker_state
    ids = [t.traj_id for t in first.trajectories + expected.trajectories]
    assert len(set(ids)) == 6 and all(i.startswith("r1.w3.g") for i in ids)


def test_episode_ids_follow_the_goal_slot_not_the_weights(gen, policy):
    """The same goal slot played with other weights keeps its id (a replay on Ray after a
    rollback is the same row to the buffer); the correction pairs' ids follow it."""
    cat, idx = gen
    cfg = WorkerConfig(num_envs=2, max_steps=5, pair_mode="correct")
    a = RolloutWorker(0, cat, policy, cfg, seed=1, search_index=idx, run_id="r")
    b = RolloutWorker(0, cat, Policy(PolicyConfig(model="tiny", seed=7)), cfg, seed=1, search_index=idx,
                      run_id="r")
    ids_a = sorted(t.traj_id for t in a.sample(4).trajectories)
    ids_b = sorted(t.traj_id for t in b.sample(4).trajectories)
    assert ids_a == ids_b == [f"r.w0.g{c}.s0" for c in range(4)]
    batch = a.sample(4)
    for chosen, rejected, _ in batch.pairs:
        assert chosen.traj_id.startswith(rejected.traj_id + ".fix")
