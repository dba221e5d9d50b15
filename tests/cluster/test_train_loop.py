"""The training loop end to end on a tiny model and a tiny catalog."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster.config import load_config, parse_duration
from cluster.run_state import load_committed
from cluster.train import run_training

TINY = {
    "policy": {"model": "tiny"},
    "catalog": {"size": 150, "seed": 4},
    "worker": {"num_envs": 4, "max_steps": 8},
    "dpo": {"pairs_per_update": 2},
    "ppo": {"trajectories_per_update": 4, "minibatch_size": 16, "ppo_epochs": 1},
    "il": {"num_demos": 30, "epochs": 1},
    "run": {"eval_episodes": 4, "final_eval_episodes": 8, "eval_interval_s": 1,
            "episodes_per_round": 4, "checkpoint_interval_s": 1, "time_budget_s": 300, "sync_interval_s": 0.5},
}


def cfg(tmp_path, **run):
    from cluster.config import merge

    return load_config(overrides=merge(TINY, {"run": {"out": str(tmp_path / "run"), **run}}))


@pytest.mark.parametrize("algo", ["dpo", "ppo"])
def test_local_loop_end_to_end(tmp_path, algo):
    summary = run_training(cfg(tmp_path, algo=algo, num_workers=0, updates=3))
    run = tmp_path / "run"
    assert summary["updates"] == 3
    assert (run / "checkpoint" / "model.safetensors").exists()
    assert (run / "il" / "checkpoint" / "model.safetensors").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    tags = {r["tag"] for r in rows}
    assert {"rollout", "learner", "test/il", "test/final", "placement"} <= tags
    assert summary["learner"] == {"device": "cpu", "gpu_ids": ""}  # no pushes through Ray in one process
    assert list((run / "tb").glob("events.out.tfevents.*"))
    trajs = pq.read_table(run / "buffer" / "trajectories")
    committed = load_committed(run)
    assert trajs.num_rows == committed.record["counters"]["episodes"]  # every acknowledged trajectory is on disk
    assert committed.record["counters"]["updates"] == 3 and committed.record["buffer"]["pending"]["trajectories"] == []
    assert summary["after"]["episodes"] == 8


def test_the_best_evaluation_is_kept_and_is_the_result(tmp_path, monkeypatch):
    import cluster.loop
    from cluster.eval.evaluate import evaluate_policy
    from envs.generate import load_catalog
    from policies.checkpoint import load_checkpoint, read_metadata

    calls = []

    def eval_with_a_peak(policy, catalog, goal_ids, **kw):  # the real evaluation, success rewritten
        out = evaluate_policy(policy, catalog, goal_ids, **kw)
        calls.append(policy.version)
        return dict(out, success_rate=0.9 if len(calls) == 2 else 0.1)

    monkeypatch.setattr(cluster.loop, "evaluate_policy", eval_with_a_peak)
    summary = run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=4, eval_interval_s=0))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["tag"] == "eval"]
    assert len(evals) == len(calls) >= 3 and evals[-1]["policy_version"] == calls[-1]  # the last weights too
    peak = evals[1]
    assert summary["selected"] == {"by": "eval", "step": peak["step"], "version": calls[1],
                                   "eval_success_rate": 0.9, "eval_score": peak["score"]}
    assert summary["checkpoint"] == str(run / "best") and calls[1] != calls[-1]
    meta = read_metadata(run / "best")
    assert meta.version == calls[1] and meta.steps == peak["step"] and meta.metrics["test"] == summary["after"]
    assert read_metadata(run / "checkpoint").version == calls[-1]  # the last weights stay in checkpoint/
    # the reported results are those of the two checkpoints on the test goals
    catalog = load_catalog(size=150, seed=4)
    test_ids = list(catalog.goal_ids("test"))[:8]
    for name, key in (("best", "after"), ("checkpoint", "last")):
        again = evaluate_policy(load_checkpoint(run / name, device="cpu"), catalog, test_ids)
        assert (again["success_rate"], again["score"]) == (summary[key]["success_rate"], summary[key]["score"])
    tags = [r["tag"] for r in rows]
    assert tags[-2:] == ["test/last", "test/final"]


def test_better_eval_prefers_success_then_score_then_the_later():
    from cluster.loop import better_eval

    best = {"success_rate": 0.4, "score": 60.0}
    assert better_eval(best, None)
    assert better_eval({"success_rate": 0.5, "score": 10.0}, best)
    assert not better_eval({"success_rate": 0.3, "score": 90.0}, best)
    assert better_eval({"success_rate": 0.4, "score": 61.0}, best)
    assert not better_eval({"success_rate": 0.4, "score": 59.0}, best)
    assert better_eval(dict(best), best)  # a tie: the later evaluation


def test_checkpoint_evaluates_from_the_cli(tmp_path, capsys):
    from cluster.cli import main as cli

    run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=1))
    ckpt = str(tmp_path / "run" / "checkpoint")
    capsys.readouterr()
    for argv in (["eval", "--checkpoint", ckpt], ["rollout", "--policy", ckpt]):
        assert cli([*argv, "--catalog-size", "150", "--catalog-seed", "4", "--episodes", "6", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["episodes"] == 6 and 0.0 <= out["success_rate"] <= 1.0 and out["checkpoint"] == ckpt


def test_resume_continues_version_and_steps(tmp_path, monkeypatch):
    first = run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=2))
    run = tmp_path / "run"
    learner_state = json.loads((load_committed(run).learner_dir / "learner.json").read_text())["state"]
    episodes = load_committed(run).record["counters"]["episodes"]
    # continue the same run to 4 updates
    from dataclasses import replace

    c = cfg(tmp_path, algo="dpo", num_workers=0, updates=4)
    import cluster.train

    tested, evaluate = [], cluster.train.evaluate_policy
    monkeypatch.setattr(cluster.train, "evaluate_policy",
                        lambda *a, **k: tested.append(k["progress"]) or evaluate(*a, **k))
    second = run_training(replace(c, run=replace(c.run, resume=str(run), updates=4)))
    assert first["updates"] == 2 and second["updates"] == 4
    assert second["before"] == first["before"]  # the IL test of the first part, not run again
    assert "test: IL checkpoint" not in tested
    after = json.loads((load_committed(run).learner_dir / "learner.json").read_text())["state"]
    assert after["num_updates"] == learner_state["num_updates"] + 2
    assert load_committed(run).record["counters"]["episodes"] > episodes


def test_a_new_run_moves_an_earlier_one_aside(tmp_path, capsys):
    run = tmp_path / "run"
    first = run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=2))
    second = run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=2))
    assert "moved it to" in capsys.readouterr().out
    earlier = tmp_path / "run.prev-1"
    # the second run trained from its own start: it did not take over the first run's
    # learner state and spent budget, nor append to its metrics log
    assert first["updates"] == second["updates"] == 2 and second["env_steps"] > 0
    for d, summary in ((earlier, first), (run, second)):
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        assert [r["tag"] for r in rows].count("test/il") == 1
        assert json.loads((d / "summary.json").read_text())["env_steps"] == summary["env_steps"]
    run_training(cfg(tmp_path, algo="dpo", num_workers=0, updates=1))
    assert (tmp_path / "run.prev-2" / "summary.json").exists()  # the next free name


def test_an_earlier_run_in_the_working_directory_is_not_moved(tmp_path, monkeypatch):
    from cluster.train import set_aside_earlier_run

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"--out \. holds an earlier run .*--resume \."):
        set_aside_earlier_run(Path("."))
    assert (tmp_path / "config.json").exists()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"overrides: unknown key 'worker.num_env'"):
        load_config(overrides={"worker": {"num_env": 2}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  algoo: dpo\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key 'run.algoo'"):
        load_config(bad)
    assert parse_duration("30m") == 1800 and parse_duration("90s") == 90 and parse_duration(5) == 5.0
    with pytest.raises(ValueError, match="cannot read a duration"):
        parse_duration("soon")


@pytest.mark.ray
def test_ray_loop_two_workers(tmp_path, ray_local):
    import torch

    from cluster.config import merge
    from policies.checkpoint import load_checkpoint, save_checkpoint
    from policies.policy import Policy, PolicyConfig

    # The IL checkpoint has another architecture than the run's policy section gives (the
    # tiny encoder cut to 1 layer): the workers build their policy from the checkpoint's.
    short = PolicyConfig(model="tiny", encoder_layers=1, max_state_tokens=128, trainable_top_layers=1,
                         freeze_action_side=True)
    il = save_checkpoint(Policy(short), tmp_path / "il")
    run_cfg = {"out": str(tmp_path / "run"), "algo": "dpo", "num_workers": 2, "updates": 3,
               "worker_placement": "placement_group"}
    summary = run_training(load_config(overrides=merge(TINY, {"run": run_cfg, "il": {"checkpoint": str(il)}})))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    workers = {r["worker_id"] for r in rows if r["tag"] == "rollout"}
    assert workers == {0, 1} and summary["updates"] >= 3
    # the learner actor holds a GPU exactly when the cluster has one, and its model sits there
    gpu = ray_local.cluster_resources().get("GPU", 0) >= 1
    assert summary["learner"]["device"] == ("cuda:0" if gpu else "cpu")
    assert summary["learner"]["publishes"] >= 1 and summary["learner"]["publish_p50_s"] > 0
    # rounds still in flight at the end are acknowledged but not counted by the driver
    trajectories = pq.read_table(run / "buffer" / "trajectories")
    assert trajectories.num_rows >= summary["episodes"]
    # the first rounds acted with exactly the IL checkpoint's policy: its log-probs
    first = [t for t in trajectories.to_pylist() if t["source"] == "policy" and t["policy_version"] == 0]
    assert first
    il_policy = load_checkpoint(il)
    with torch.no_grad():
        for t in first[:4]:
            logp = il_policy.evaluate(t["states"], t["candidates"], t["chosen"]).logp
            assert logp.numpy() == pytest.approx(t["logp"], abs=1e-4)


@pytest.mark.ray
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_learner_actor_takes_the_gpu(tmp_path, ray_local):
    assert ray_local.cluster_resources().get("GPU", 0) >= 1  # Ray found the GPU torch sees
    summary = run_training(cfg(tmp_path, algo="ppo", num_workers=2, updates=2))
    assert summary["learner"]["device"] == "cuda:0" and summary["learner"]["gpu_ids"] != ""
    assert summary["updates"] >= 2 and summary["after"]["episodes"] == 8


def test_set_overrides_read_numbers_yaml_leaves_as_strings():
    from cluster.config import parse_set

    got = parse_set(["learner.lr=5e-5", "learner.beta=0.2", "worker.pair_mode=correct", "run.seed=3"])
    assert got == {"learner": {"lr": 5e-5, "beta": 0.2}, "worker": {"pair_mode": "correct"}, "run": {"seed": 3}}
    assert isinstance(got["learner"]["lr"], float)


def test_repeated_set_flags_all_count():
    from cluster.train import build_parser, config_from_args

    args = build_parser().parse_args(["--set", "worker.pair_mode=expert", "--set", "dpo.beta=0.3",
                                      "dpo.sft_coef=1.0"])
    cfg = config_from_args(args)
    assert cfg.worker.pair_mode == "expert"  # the first flag is not dropped by the later ones
    assert cfg.dpo.beta == 0.3 and cfg.dpo.sft_coef == 1.0


def test_actors_keep_jax_on_the_cpu_unless_told(monkeypatch):
    from cluster.components import actor_runtime_env

    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    assert actor_runtime_env() == {"env_vars": {"JAX_PLATFORMS": "cpu"}}
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert actor_runtime_env() == {"env_vars": {"JAX_PLATFORMS": "cuda,cpu"}}


def test_learner_sections_are_typed_and_yield_to_the_cli(tmp_path):
    from learner.config import DPOConfig

    preset = tmp_path / "p.yaml"
    preset.write_text("dpo:\n  lr: 0.00001\n  scope: trajectory\n  anchor_states: 0\nppo:\n  lr: 0.0001\n"
                      "optim:\n  weight_decay: 0.0\n")
    cfg = load_config(preset)
    assert cfg.dpo == DPOConfig(lr=1e-5, scope="trajectory", anchor_states=0)  # the rest: the defaults
    assert (cfg.ppo.lr, cfg.optim.weight_decay) == (1e-4, 0.0)
    assert load_config(preset, {"dpo": {"beta": 0.3}}).dpo.beta == 0.3  # a CLI override wins
    preset.write_text("dpo: 3\n")
    with pytest.raises(ValueError, match=r"p.yaml: dpo: expected a mapping of keys, got 3"):
        load_config(preset)
    preset.write_text("learner:\n  lr: 0.001\n")  # the learning rate is an algorithm's, not shared
    with pytest.raises(ValueError, match=r"p.yaml: unknown key 'learner.lr'; expected one of max_steps_per_forward"):
        load_config(preset)


def test_the_cpu_preset_is_the_measured_dpo_recipe():
    from cluster.config import CONFIG_DIR
    from cluster.components import build_learner
    from learner.config import DPOConfig, OptimConfig
    from learner.dpo import DPO
    from learner.ppo import PPO
    from policies.policy import Policy, PolicyConfig

    cfg = load_config(CONFIG_DIR / "cpu.yaml")
    assert cfg == load_config()  # cpu.yaml ships the dataclass defaults
    assert cfg.dpo == DPOConfig() and cfg.optim == OptimConfig()
    dpo = cfg.dpo
    assert (dpo.scope, dpo.beta, dpo.lr, dpo.kl_coef, dpo.anchor_states) == ("step", 0.5, 3e-5, 2.0, 16)
    assert dpo.sft_coef == 2.0 and cfg.run.keep_best
    assert cfg.worker.pair_mode == "correct" and cfg.worker.correction_cuts == ("evidence", "noop", "budget", "leave")
    tiny = PolicyConfig(model="tiny")
    learner = build_learner(cfg, Policy(tiny), Policy(tiny))
    assert isinstance(learner.algorithm, DPO) and learner.lr == 3e-5
    ppo_cfg = load_config(CONFIG_DIR / "cpu.yaml", {"run": {"algo": "ppo"}})
    assert (ppo_cfg.ppo.kl_coef, ppo_cfg.ppo.lr, ppo_cfg.ppo.max_version_lag) == (0.0, 5e-5, 4)
    learner = build_learner(ppo_cfg, Policy(tiny), None)
    assert isinstance(learner.algorithm, PPO) and learner.lr == 5e-5
