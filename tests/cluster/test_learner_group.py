"""The learner group on Ray: 2 learners and 2 rollout workers on a simulated 3-node
cluster train end to end (`webshop-rl train --num-learners 2`), and a learner rank that
dies mid-run rolls the run back as a dead learner does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster.config import load_config, merge
from cluster.run_state import load_committed
from tests.cluster.test_train_loop import TINY

ROOT = Path(__file__).resolve().parents[2]
SMALL = merge(TINY, {"catalog": {"train_goals": 0}, "il": {"num_demos": 20},
                     "run": {"eval_interval_s": 1000, "final_eval_episodes": 4, "episodes_per_round": 3,
                             "checkpoint_interval_s": 2}})


def rows(run: Path, tag: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["tag"] == tag]


@pytest.mark.ray
def test_two_learners_and_two_workers_train_on_a_three_node_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    # The head holds only the driver, the buffer and the weight store (they ask for no CPU);
    # the learners' placement group (PACK) takes one 2-CPU node whole, the workers the other.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=2) for _ in range(2)]
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(SMALL))
    try:
        cluster.wait_for_nodes()
        done = subprocess.run(
            [sys.executable, "-m", "cluster.cli", "train", "--config", str(config), "--address", cluster.address,
             "--num-learners", "2", "--num-workers", "2", "--updates", "3", "--out", str(run)],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
        head = cluster.head_node.node_id
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    learner = summary["learner"]
    assert summary["updates"] >= 3 and learner["num_learners"] == 2 and learner["publishes"] >= 1
    learner_nodes = {r["node_id"] for r in learner["ranks"]}
    worker_nodes = {r["node_id"] for r in rows(run, "rollout")}
    assert {r["device"] for r in learner["ranks"]} == {"cpu"}
    assert len(learner_nodes) == len(worker_nodes) == 1 and learner_nodes | worker_nodes == {n.node_id for n in nodes}
    assert head not in learner_nodes | worker_nodes
    assert {r["worker_id"] for r in rows(run, "rollout")} == {0, 1}
    updates = rows(run, "learner")
    assert len(updates) == summary["updates"]
    assert [u["version"] - updates[0]["version"] for u in updates] == list(range(len(updates)))  # one per update
    assert all(u["pairs"] <= 2 for u in updates)  # the global batch: pairs_per_update, not per rank
    assert load_committed(run).record["counters"]["updates"] == summary["updates"]


@pytest.mark.ray
def test_a_dead_learner_rank_rolls_the_run_back(tmp_path, ray_local, monkeypatch):
    import ray

    from cluster.ray_loop import RayLoop
    from cluster.train import run_training

    killed: list[int] = []
    record_round = RayLoop._record_round

    def kill_rank_1_once(self, r):  # at the first round, while the learners' first call runs
        record_round(self, r)
        if not killed and self.learner_calls:
            killed.append(self.counters["updates"])
            ray.kill(self.learner.ranks[1], no_restart=True)

    monkeypatch.setattr(RayLoop, "_record_round", kill_rank_1_once)
    cfg = load_config(overrides=merge(SMALL, {"learner": {"num_learners": 2},
                                              "run": {"out": str(tmp_path / "run"), "algo": "ppo",
                                                      "num_workers": 1, "updates": 4}}))
    summary = run_training(cfg)
    run = tmp_path / "run"
    faults = rows(run, "fault")
    assert killed == [0] and [f["component"] for f in faults] == ["learner"] and summary["updates"] == 4
    assert summary["learner"]["num_learners"] == 2 and len(rows(run, "placement")) == 1
    published = [json.loads(line) for line in (run / "publishes.jsonl").read_text().splitlines()]
    versions = [p["version"] for p in published]
    assert versions == sorted(versions)  # the published versions never go back, across the rollback
    for v in set(versions):  # and a version names the weights of one number of updates
        assert len({p["updates"] for p in published if p["version"] == v}) == 1, v


def test_learners_take_a_gpu_each_or_share_the_cpus(monkeypatch):
    import ray

    from cluster.ray_loop import cpu_shares
    from cluster.user_errors import UsageError

    def free(**resources):
        monkeypatch.setattr(ray, "available_resources", lambda: resources)

    free(CPU=16.0, GPU=2.0)
    assert cpu_shares(4, 2) == (1.0, 1.0, 1)
    free(CPU=3.0)
    assert cpu_shares(2, 2) == (0.75, 0.75, 0)  # a small machine: 4 actors share 3 CPUs
    assert cpu_shares(2) == (1.0, 1.0, 0)  # one learner: as before
    free(CPU=16.0, GPU=1.0)
    assert cpu_shares(4) == (1.0, 1.0, 1)
    with pytest.raises(UsageError, match="num_learners=2 takes one GPU each, and this cluster has 1 free"):
        cpu_shares(4, 2)
