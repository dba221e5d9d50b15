"""IL runs: the typed section, the learning-rate schedule by batches, progress, the expert's pick."""

import json
import math
from dataclasses import asdict

import pyarrow.parquet as pq
import pytest
import torch

from cluster.imitation import ILSection, generate_demos, il_seconds_estimate, lr_scheduler, run_il
from envs import WebShopEnv
from envs.agents import ExpertAgent
from envs.generate import default_catalog
from policies.checkpoint import load_checkpoint
from policies.policy import PolicyConfig
from policies.search_queries import search_queries
from rollout_workers.recording import record_episode
from rollout_workers.schema import TRAJECTORY_SCHEMA


def test_il_run_trains_evaluates_and_shows_progress(tmp_path, capsys):
    catalog = default_catalog(150, 4)
    il = ILSection(num_demos=12, epochs=2, batch_size=16, lr=3e-3)
    logs = []
    metrics = run_il(il, catalog, PolicyConfig(model="tiny"), tmp_path / "il", seed=1, eval_episodes=4,
                     log=logs.append)
    demos = pq.read_table(tmp_path / "il" / "demos.parquet", schema=TRAJECTORY_SCHEMA)
    assert demos.num_rows == 12 and all(s == 1.0 for s in demos.column("score").to_pylist())
    per_epoch = math.ceil(metrics["decisions"] / 16)
    assert [e["batches"] for e in metrics["epochs"]] == [per_epoch, per_epoch]
    assert metrics["eval"]["episodes"] == 4
    written = json.loads((tmp_path / "il" / "il_metrics.json").read_text())
    assert written["prefill_seconds"] == metrics["prefill_seconds"] >= 0.0  # encoding before epoch 0, recorded
    meta = json.loads((tmp_path / "il" / "checkpoint" / "metadata.json").read_text())
    assert meta["steps"] == 2 * per_epoch and meta["train_config"] == {**asdict(il), "seed": 1}
    load_checkpoint(tmp_path / "il" / "checkpoint")
    # stdout is not a terminal here: plain progress lines, the last one at 100%
    out = capsys.readouterr().out
    assert "IL demos: 100% (12/12 demo)" in out
    assert f"IL training: 100% ({2 * per_epoch}/{2 * per_epoch} batch)" in out and "loss=" in out
    assert [line.split(":")[0] for line in logs] == ["IL", "IL epoch 0", "IL epoch 1", "IL eval on test (4 goals)"]


def test_il_learning_rate_warms_up_then_decays_by_batches():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    sched = lr_scheduler(opt, 100)  # warm-up over ceil(3% of 100) = 3 batches
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.0, 1e-3 / 3, 2e-3 / 3, 1e-3])
    # cosine from the peak at batch 3 down to 10% of it at batch 100
    assert lrs[50] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 47 / 97))))
    assert lrs[99] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 96 / 97))))
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_il_stops_at_its_time_budget(tmp_path):
    catalog = default_catalog(150, 4)
    il = ILSection(num_demos=8, epochs=3, time_budget_s=0.0)
    lines = []
    metrics = run_il(il, catalog, PolicyConfig(model="tiny"), tmp_path / "il", eval_episodes=0, log=lines.append)
    assert metrics["epochs"] == [] and metrics["decisions"] > 0
    assert (tmp_path / "il" / "checkpoint" / "model.safetensors").exists()
    planned = 3 * math.ceil(metrics["decisions"] / 16)
    assert lines[-1] == (f"IL: il.time_budget_s=0 stopped training after 0 of {planned} batches (0.0 of 3 epochs): "
                         "this IL result is weaker than the planned one")


def test_il_trains_its_planned_epochs_by_default_and_estimates_its_length():
    assert ILSection().time_budget_s is None
    # 30 batches took 60 s; 100 per epoch, 3 epochs, every epoch alike (the encodings were prefilled)
    assert il_seconds_estimate(60.0, 30, 100, 3) == pytest.approx(600)


def test_generated_demos_open_the_first_hit_that_fits():
    catalog = default_catalog(400, 3)
    env = WebShopEnv(catalog=catalog)
    goals = list(catalog.goal_ids("train"))[:60]
    by_goal = [record_episode(env, ExpertAgent(search_queries), g, seed=i) for i, g in enumerate(goals)]
    by_first = generate_demos(catalog, "expert", 60)
    assert all(t.score == 1.0 for t in by_goal + by_first)
    differ = [i for i, (a, b) in enumerate(zip(by_goal, by_first)) if a.chosen != b.chosen]
    assert differ  # some goals have an earlier hit that fits
    for i in differ:  # same query, then a different (earlier) product
        assert by_goal[i].chosen[0] == by_first[i].chosen[0]
