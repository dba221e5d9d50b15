"""`RolloutBatch.stats`: the one place a round's counts are made, for both loops."""

import pytest
import torch

from envs import Catalog
from envs.generate import GeneratorConfig, write_catalog
from policies.policy import Policy, PolicyConfig
from rollout_workers.worker import RolloutWorker, RoundStats, WorkerConfig


@pytest.fixture(scope="module")
def batch_and_worker(tmp_path_factory):
    cat = Catalog.from_dir(write_catalog(GeneratorConfig(size=100, seed=3), tmp_path_factory.mktemp("c")))
    torch.manual_seed(0)
    w = RolloutWorker(5, cat, Policy(PolicyConfig(model="tiny")), WorkerConfig(num_envs=3, max_steps=4,
                                                                                pair_mode="expert"), seed=2)
    return w.sample(5), w


def test_stats_count_the_round_and_carry_the_resume_state(batch_and_worker):
    batch, worker = batch_and_worker
    s = batch.stats(acked=4, pairs=2)
    assert isinstance(s, RoundStats) and s.worker_id == 5 and s.episodes == 5
    assert (s.acked, s.pairs) == (4, 2)  # what the buffer stored, not what was mined
    assert s.env_steps == batch.env_steps == sum(t.num_steps for t in batch.trajectories)
    assert s.success == sum(t.score == 1.0 for t in batch.trajectories)
    assert s.score_sum == pytest.approx(sum(t.score for t in batch.trajectories))
    assert s.version == worker.version and s.state == worker.state()
    assert (s.state["goal_cursor"], s.state["total_steps"], s.state["total_episodes"]) == (5, s.env_steps, 5)


def test_log_row_leaves_out_the_state_and_unknown_ray_fields(batch_and_worker):
    batch, _ = batch_and_worker
    local = batch.stats(acked=5, pairs=0).log_row()
    assert list(local) == ["worker_id", "episodes", "acked", "pairs", "env_steps", "seconds", "version",
                           "success", "score_sum"]
    remote = batch.stats(acked=5, pairs=0, sync_s=0.25, node_id="n1").log_row()
    assert (remote["sync_s"], remote["node_id"]) == (0.25, "n1") and "state" not in remote
