"""The config: defaults are the shipped recipe, presets differ only by hardware, values
are checked by type as they are read, and errors are one line naming where."""

import argparse
import dataclasses

import pytest

from cluster.config import CONFIG_DIR, ConfigError, TrainConfig, load_config, parse_set
from cluster.train import build_parser, config_from_args, main

OWN_SECTIONS = ("run", "il", "catalog", "policy", "worker", "buffer")


def sections(cfg: TrainConfig) -> dict:
    return {name: dataclasses.asdict(getattr(cfg, name)) for name in OWN_SECTIONS}


def changed(cfg: TrainConfig) -> dict:
    """Every field that differs from the dataclass default, as 'section.key': value."""
    default = sections(TrainConfig())
    return {f"{s}.{k}": v for s, values in sections(cfg).items() for k, v in values.items() if default[s][k] != v}


def test_the_defaults_are_what_webshop_rl_train_ships():
    shipped = config_from_args(build_parser().parse_args([]))  # `webshop-rl train` with no flags
    assert changed(shipped) == {}
    assert shipped.worker.pair_mode == "correct"
    assert shipped.worker.correction_cuts == ("evidence", "noop", "budget", "leave")
    assert (shipped.il.num_demos, shipped.catalog.train_goals, shipped.policy.device) == (3000, 20000, "cpu")


def test_the_gpu_and_multinode_presets_change_only_what_the_hardware_needs():
    hardware = {"run.num_workers", "run.sync_interval_s", "run.episodes_per_round", "policy.preset", "policy.device",
                "policy.threads_per_worker", "worker.num_envs"}
    gpu = changed(load_config(CONFIG_DIR / "gpu.yaml"))
    assert set(gpu) == hardware and gpu["policy.device"] == "auto" and gpu["policy.preset"] == "full"
    multinode = changed(load_config(CONFIG_DIR / "multinode.yaml"))
    placement = {"run.worker_placement", "buffer.capacity_trajectories", "buffer.capacity_pairs"}
    assert set(multinode) == hardware | placement


def test_values_are_typed_as_they_are_read():
    cfg = load_config(overrides=parse_set(["run.time_budget_s=30m", "worker.correction_cuts=[evidence,noop]",
                                           "il.lr=1e-4", "run.updates=5", "run.keep_best=false", "il.demos=d.parquet"]))
    assert cfg.run.time_budget_s == 1800.0 and cfg.worker.correction_cuts == ("evidence", "noop")
    assert cfg.il.lr == 1e-4 and cfg.run.updates == 5 and cfg.run.keep_best is False and cfg.il.demos == "d.parquet"
    assert isinstance(load_config(overrides={"run": {"eval_interval_s": 60}}).run.eval_interval_s, float)
    assert load_config(overrides={"run": {"updates": None, "time_budget_s": 60}}).run.updates is None


def test_the_run_needs_a_budget_and_counts_updates_by_default():
    assert (load_config().run.updates, load_config().run.time_budget_s) == (400, None)
    with pytest.raises(ConfigError, match="^overrides: run: set time_budget_s or updates .or both.: with neither "
                                          "the run never stops$"):
        load_config(overrides={"run": {"updates": None}})


def test_a_fault_drill_kills_after_at_least_one_update():
    assert load_config().run.chaos_kill_every_updates is None
    assert load_config(overrides={"run": {"chaos_kill_every_updates": 3}}).run.chaos_kill_every_updates == 3
    with pytest.raises(ConfigError, match="^overrides: run: chaos_kill_every_updates must be at least 1 "
                                          r"\(or unset\), got 0$"):
        load_config(overrides={"run": {"chaos_kill_every_updates": 0}})


@pytest.mark.parametrize("items, message", [
    (["run.num_workers=abc"], "--set: run.num_workers: expected an integer, got 'abc'"),
    (["worker.num_envs=8x"], "--set: worker.num_envs: expected an integer, got '8x'"),
    (["run.num_workers=2.5"], "--set: run.num_workers: expected an integer, got 2.5"),
    (["run.keep_best=1"], "--set: run.keep_best: expected true or false, got 1"),
    (["run.time_budget_s=soon"], "--set: run.time_budget_s: expected a duration such as 90s, 30m, 1h, got 'soon'"),
    (["worker.correction_cuts=evidence+noop"],
     "--set: worker.correction_cuts: expected a list of names, e.g. [a, b], got 'evidence+noop'"),
    (["worker.num_env=2"], "--set: unknown key 'worker.num_env'; expected one of num_envs, max_steps,"),
    (["runn.seed=2"], "--set: unknown section 'runn'; expected one of run, il, catalog,"),
    (["run=2"], "--set: run: expected a mapping of keys, got 2"),
    (["worker.pair_mode=best"], "--set: worker: pair_mode must be one of"),
    (["run.algo=sac"], "--set: run: algo must be one of"),
    (["learner.num_learners=0"], "--set: learner.num_learners must be >= 1, got 0"),
    (["run.updates=0"], "--set: run.updates must be >= 1, got 0"),
    (["run.num_workers=-1"], "--set: run.num_workers must be >= 0, got -1"),
    (["run.eval_interval_s=-1"], "--set: run.eval_interval_s must be >= 0, got -1.0"),
    (["run.time_budget_s=-5", "run.updates=null"], "--set: run.time_budget_s must be >= 0, got -5.0"),
    (["il.epochs=0"], "--set: il.epochs must be >= 1, got 0"),
    (["il.lr=0"], "--set: il.lr must be > 0, got 0.0"),
    (["catalog.size=0"], "--set: catalog.size must be >= 1, got 0"),
    (["policy.threads_per_worker=0"], "--set: policy.threads_per_worker must be >= 1, got 0"),
    (["worker.num_envs=0"], "--set: worker.num_envs must be >= 1, got 0"),
    (["buffer.capacity_pairs=0"], "--set: buffer.capacity_pairs must be >= 1, got 0"),
    (["dpo.label_smoothing=0.5"], "--set: dpo.label_smoothing must be in [0, 0.5), got 0.5"),
    (["ppo.gamma=1.5"], "--set: ppo.gamma must be in (0, 1] and ppo.gae_lambda in [0, 1], got 1.5 and 0.95"),
    (["optim.weight_decay=-0.1"], "--set: optim.weight_decay must be >= 0, got -0.1"),
    (["learner.num_learners=2", "run.num_workers=0"],
     "--set: learner.num_learners=2 needs Ray: run.num_workers=0 runs one learner in this process"),
    (["learner.num_learners=2", "run.algo=rllib-ppo"],
     "--set: learner.num_learners=2 applies to the dpo and ppo learners; rllib-ppo runs RLlib's own"),
    (["policy.worker_gpu_share=1.5"], "--set: policy: worker_gpu_share must be between 0 and 1 (a GPU's share), "
                                      "got 1.5"),
    (["policy.worker_gpu_share=0.25", "run.num_workers=0"],
     "--set: policy.worker_gpu_share=0.25 applies to the Ray rollout workers of dpo and ppo: use "
     "run.num_workers >= 1"),
])
def test_a_bad_value_is_one_line_naming_set_section_and_key(items, message, capsys):
    assert main(["--set", *items]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"webshop-rl train: error: {message}") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_bad_yaml_file_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  num_workers: abc\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: run.num_workers: expected an integer, got 'abc'$"):
        load_config(bad)
    bad.write_text("worker:\n  pair_mode: best\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: worker: pair_mode must be one of"):
        load_config(bad)
    # a section's own check names every layer that set something in it
    bad.write_text("worker:\n  pair_mode: self\n")
    with pytest.raises(ConfigError, match=rf"^{bad} \+ --set: worker: pair_mode 'self' needs samples_per_goal >= 2"):
        load_config(bad, {"worker": {"num_envs": 2}}, source="--set")
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(bad)


def test_flags_fill_their_sections():
    cfg = config_from_args(build_parser().parse_args(
        ["--il-checkpoint", "ckpt", "--demos", "d.jsonl", "--time-budget", "2m", "--envs-per-worker", "4",
         "--num-workers", "0", "--seed", "3", "--set", "il.epochs=1"]))
    assert (cfg.il.checkpoint, cfg.il.demos, cfg.il.epochs) == ("ckpt", "d.jsonl", 1)
    assert (cfg.run.time_budget_s, cfg.worker.num_envs, cfg.run.num_workers, cfg.run.seed) == (120.0, 4, 0, 3)
    assert config_from_args(build_parser().parse_args([])).learner.num_learners == 1  # one learner ships
    assert config_from_args(build_parser().parse_args(["--num-learners", "2"])).learner.num_learners == 2
    with pytest.raises(ConfigError, match="--time-budget: cannot read a duration from 'soon'"):
        config_from_args(build_parser().parse_args(["--time-budget", "soon"]))


def test_every_flag_has_help():
    from cluster.cli import build_parser as cli_parser

    missing = []

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, p in action.choices.items():
                    walk(p, f"{name} {sub}")
            elif not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")

    walk(cli_parser(), "webshop-rl")
    walk(build_parser(), "webshop-rl train")
    assert missing == []


def test_a_time_budget_alone_stops_on_the_clock():
    cfg = config_from_args(build_parser().parse_args(["--time-budget", "30m"]))
    assert (cfg.run.time_budget_s, cfg.run.updates) == (1800.0, None)
    cfg = config_from_args(build_parser().parse_args(["--time-budget", "30m", "--updates", "50"]))
    assert (cfg.run.time_budget_s, cfg.run.updates) == (1800.0, 50)


def test_the_job_estimate_from_the_first_il_minute():
    from cluster.train import job_estimate

    cfg = load_config()  # 400 DPO updates, 3 tests of 500 goals, 100-goal evals every 180 s
    # IL 900 s; a first-epoch batch 0.5 s: DPO 400 * 3.8 * 0.5 = 760 s; evaluations: the IL test,
    # 3 final tests and 760 / 180 evals of 100 goals = (1 + 3 + 760/180/5) * 500 * 0.25 * 0.5 s
    line = job_estimate(cfg, 900.0, 0.5)
    evals = (1 + 3 + 760 / 180 / 5) * 500 * 0.25 * 0.5
    total = 900 + 760 + evals
    assert line.startswith(f"estimate at this machine's speed: IL training ~15 min, DPO ~13 min, evaluations "
                           f"~{evals / 60:.0f} min: about {total / 60:.0f} min in all (done near ")


def test_the_job_estimate_with_an_evaluation_at_every_turn():
    from cluster.train import job_estimate

    cfg = load_config(overrides={"run": {"eval_interval_s": 0}})  # periodic evaluations not estimated
    evals = (1 + 3) * 500 * 0.25 * 0.5
    assert f"evaluations ~{evals / 60:.0f} min: about {(900 + 760 + evals) / 60:.0f} min in all" \
        in job_estimate(cfg, 900.0, 0.5)


def test_a_round_starts_an_episode_on_every_env_copy():
    """A round starts at most one episode per env copy: fewer episodes than copies would leave
    copies idle (`--envs-per-worker 16` with the default 8 episodes stepped 8), so a round has
    at least worker.num_envs episodes; the shipped presets ask for that many themselves."""
    assert load_config().round_episodes == 8
    assert load_config(None, {"worker": {"num_envs": 16}}).round_episodes == 16
    assert load_config(None, {"run": {"episodes_per_round": 24}, "worker": {"num_envs": 16}}).round_episodes == 24
    for preset in ("cpu.yaml", "gpu.yaml", "multinode.yaml"):
        cfg = load_config(CONFIG_DIR / preset)
        assert cfg.run.episodes_per_round >= cfg.worker.num_envs, preset
