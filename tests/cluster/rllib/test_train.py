"""`webshop-rl train --algo rllib-ppo`: RLlib's PPO writes our metrics and checkpoints."""

import json

import pytest
import yaml

from cluster.config import PolicySection, load_config, merge
from cluster.rllib.train import env_config, iteration_rows, ppo_config
from cluster.components import section_policy_config
from policies.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from policies.policy import Policy

TINY = {
    "policy": {"model": "tiny"},
    "catalog": {"size": 150, "seed": 4},
    "worker": {"num_envs": 4, "max_steps": 8},
    "ppo": {"trajectories_per_update": 4, "minibatch_size": 16, "ppo_epochs": 1, "lr": 0.001},
    "run": {"eval_episodes": 4, "final_eval_episodes": 6, "eval_interval_s": 0, "checkpoint_interval_s": 0,
            "time_budget_s": 300},
}


@pytest.fixture
def start_checkpoint(tmp_path):
    """A CPU-preset policy on the tiny model, saved as the run's starting (IL) checkpoint."""
    return str(save_checkpoint(Policy(section_policy_config(PolicySection(model="tiny"))), tmp_path / "il"))


def test_iteration_rows_read_an_rllib_result():
    result = {
        "env_runners": {"num_env_steps_sampled": 32, "num_episodes": 5, "webshop_successes": 2.0,
                        "webshop_score_sum": 3.5},
        "learners": {"default_policy": {"policy_loss": 0.1, "vf_loss": 0.2, "entropy": 1.5,
                                        "num_module_steps_trained": 40}},
        "timers": {"env_runner_sampling_timer": 0.5, "learner_update_timer": 2.0, "synch_weights": 0.01},
    }
    rows = iteration_rows(result)
    assert rows["rollout"] == {"worker_id": -1, "episodes": 5, "env_steps": 32, "seconds": 0.5, "success": 2,
                               "score_sum": 3.5, "pairs": 0}
    assert rows["learner"] == {"policy_loss": 0.1, "vf_loss": 0.2, "entropy": 1.5, "steps": 40.0, "seconds": 2.0}
    assert rows["sync"] == {"worker_seconds": 0.01, "worker_id": -1}
    assert iteration_rows({"env_runners": {}})["rollout"]["episodes"] == 0  # an iteration that ended none


@pytest.mark.ray
def test_rllib_ppo_config_maps_our_sections(tmp_path, start_checkpoint, ray_local):
    cfg = load_config(overrides=merge(TINY, {"run": {"num_workers": 2}}))
    env_cfg = env_config(cfg, load_checkpoint(start_checkpoint).config, start_checkpoint)
    assert env_cfg["max_steps"] == 8 and env_cfg["max_state_tokens"] == 128  # the CPU preset's cut
    ppo = ppo_config(cfg, start_checkpoint, env_cfg, "some_env")
    assert (ppo.num_env_runners, ppo.num_envs_per_env_runner) == (2, 4)
    assert (ppo.lr, ppo.num_epochs, ppo.minibatch_size, ppo.train_batch_size_per_learner) == (0.001, 1, 16, 32)
    assert ppo.rl_module_spec.model_config == {"checkpoint": start_checkpoint}


@pytest.mark.ray
def test_train_rllib_ppo_writes_metrics_and_a_checkpoint_that_eval_loads(tmp_path, start_checkpoint, ray_local,
                                                                         capsys):
    from cluster.cli import main as cli
    from cluster.train import main as train

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert train(["--config", str(config), "--algo", "rllib-ppo", "--num-workers", "1", "--updates", "2",
                  "--il-checkpoint", start_checkpoint, "--out", str(out)]) == 0

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tags = [r["tag"] for r in rows]
    assert {"test/il", "rollout", "learner", "sync", "eval", "test/final"} <= set(tags)
    assert tags.count("learner") == 2 and tags.count("rollout") == 2
    rollout = [r for r in rows if r["tag"] == "rollout"]
    assert all(r["env_steps"] >= 32 for r in rollout)  # the train batch: 4 trajectories x 8 steps
    assert all(r["seconds"] > 0 for r in rows if r["tag"] in ("rollout", "learner"))
    assert list((out / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates"] == 2 and summary["after"]["episodes"] == 6
    assert summary["env_steps"] == sum(r["env_steps"] for r in rollout)

    # the project checkpoint layout: it loads, holds trained weights, and `eval` runs it
    start, trained = load_checkpoint(start_checkpoint), load_checkpoint(out / "checkpoint")
    assert trained.version == start.version + 2 and read_metadata(out / "checkpoint").steps == 2
    head = "head.out.weight"
    assert not (trained.model.state_dict()[head] == start.model.state_dict()[head]).all()
    capsys.readouterr()
    assert cli(["eval", "--checkpoint", str(out / "checkpoint"), "--catalog-size", "150", "--catalog-seed", "4",
                "--episodes", "4", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["episodes"] == 4 and evaluated["checkpoint"] == str(out / "checkpoint")
