"""IL runs: DART-disturbed demonstrations, the expert's product pick, model selection on the eval split."""

import pyarrow.parquet as pq
import pytest

from cluster.eval.evaluate import evaluate_policy
from cluster.imitation import ILRunConfig, generate_demos, run_il
from envs.generate import default_catalog
from policies.checkpoint import load_checkpoint
from rollout_workers.schema import TRAJECTORY_SCHEMA


def test_il_keeps_the_epoch_best_on_the_eval_split(tmp_path):
    catalog = default_catalog(150, 4)
    cfg = ILRunConfig(out=str(tmp_path / "il"), num_demos=24, disturb=0.5, model="tiny", num_epochs=4,
                      lr=3e-3, select_episodes=6, eval_episodes=0, seed=1)
    logs = []
    metrics = run_il(cfg, catalog, log=logs.append)

    demos = pq.read_table(tmp_path / "il" / "demos.parquet", schema=TRAJECTORY_SCHEMA).to_pylist()
    masks = [d["il_mask"] for d in demos if d["il_mask"] is not None]
    assert masks and all(m.count(False) == 1 for m in masks)  # some demos disturbed, once each
    own_steps = sum(sum(m) for m in masks) + sum(len(d["chosen"]) for d in demos if d["il_mask"] is None)
    assert metrics["decisions"] <= own_steps  # disturbances are not imitated

    epochs = metrics["epochs"]
    scored = [e for e in epochs if "eval_success" in e]
    assert [e["epoch"] for e in scored] == [2, 3]  # the second half only
    best = max(scored, key=lambda e: (e["eval_success"], e["eval_score"]))
    assert metrics["selected_epoch"] == best["epoch"]
    # the checkpoint holds that epoch's weights: it scores exactly what that epoch scored
    policy = load_checkpoint(tmp_path / "il" / "checkpoint")
    again = evaluate_policy(policy, catalog, list(catalog.goal_ids("eval"))[:6])
    assert (again["success_rate"], again["score"]) == (best["eval_success"], best["eval_score"])
    assert any("keeping epoch" in line for line in logs)


def test_generated_demos_follow_the_expert_pick():
    catalog = default_catalog(400, 3)
    by_goal = generate_demos(catalog, "expert", 60)
    by_first = generate_demos(catalog, "expert", 60, expert_pick="first")
    assert all(t.score == 1.0 for t in by_goal + by_first)
    differ = [i for i, (a, b) in enumerate(zip(by_goal, by_first)) if a.chosen != b.chosen]
    assert differ  # some goals have an earlier hit that fits
    for i in differ:  # same query, then a different (earlier) product
        assert by_goal[i].chosen[0] == by_first[i].chosen[0]
    with pytest.raises(ValueError, match="expert only, not to policy 'human-like'"):
        generate_demos(catalog, "human-like", 2, expert_pick="first")
