"""`webshop-rl train --algo rllib-ppo`: RLlib's PPO on the same env, model and config.

RLlib (new API stack) trains `cluster.rllib.module.WebShopRLModule` - the project's
`ActionScorer` - on `cluster.rllib.env.FixedShapeWebShopEnv`, which offers exactly the
candidates our rollout workers offer. The run reads the same config file and writes
the same run directory as `--algo ppo`: IL first (or `il.checkpoint`), the
`test/il` evaluation, `rollout` / `learner` / `sync` / `eval` rows in metrics.jsonl
and TensorBoard, a project checkpoint in `<out>/checkpoint` (timed, and final), and
the final test-split evaluation through `cluster.eval.evaluate`.

How the config sections map onto RLlib:

    run.num_workers             -> env_runners(num_env_runners); 0 = sample in the driver
    worker.num_envs             -> num_envs_per_env_runner
    worker.max_steps, split     -> the env's max_steps and goal split
    run.time_budget_s, updates  -> the stop condition; one `algo.train()` is one update
    run.eval_interval_s, checkpoint_interval_s, eval_episodes, final_eval_episodes
    ppo.lr, gamma, gae_lambda, clip_coef, value_coef, entropy_coef, ppo_epochs,
        minibatch_size, optim.max_grad_norm -> PPO's lr, gamma, lambda_, clip_param,
        vf_loss_coeff, entropy_coeff, num_epochs, minibatch_size, grad_clip
    ppo.trajectories_per_update x worker.max_steps -> train_batch_size_per_learner
        (the most env steps one of our PPO updates can consume)

Not mapped: RLlib's Adam has no weight decay, its KL term is to the previous policy
(so `use_kl_loss` is off, and `ppo.kl_coef` to the IL reference is not
supported), workers act in fp32/bf16 as the checkpoint says, and
`--resume` is refused. RLlib's PPO is synchronous: sample, update, push weights.
RLlib reports its timers as EMAs (coefficient 0.01); this driver sets the
coefficient to 1 so each iteration reports its own sampling, update and sync time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cluster.config import TrainConfig
from cluster.data.sources import catalog_dir
from cluster.eval.evaluate import evaluate_policy
from cluster.metrics import MetricsLog
from cluster.progress import TrainingProgress
from cluster.user_errors import UsageError
from policies.checkpoint import CheckpointMetadata, save_checkpoint

ALGO = "rllib-ppo"
MODULE_ID = "default_policy"
SUCCESSES, SCORE_SUM = "webshop_successes", "webshop_score_sum"


def env_config(cfg: TrainConfig, policy_config, tokenizer_dir: str) -> dict:
    """`FixedShapeConfig` fields for this run (token cuts from the policy's config)."""
    return {
        "tokenizer": tokenizer_dir, "catalog_dir": catalog_dir(cfg.catalog.source, cfg.catalog.dir),
        "catalog_size": cfg.catalog.size, "catalog_seed": cfg.catalog.seed,
        "catalog_train_goals": cfg.catalog.train_goals, "split": cfg.worker.split, "max_steps": cfg.worker.max_steps,
        "max_state_tokens": policy_config.max_state_tokens, "max_action_tokens": policy_config.max_action_tokens,
    }


def _episode_outcome_callback():
    """An RLlibCallback class counting successes and scores of finished episodes."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class EpisodeOutcome(RLlibCallback):
        def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
            rewards = episode.get_rewards()
            score = float(rewards[-1]) if episode.is_terminated and len(rewards) else 0.0
            metrics_logger.log_value(SUCCESSES, float(score >= 1.0 - 1e-9), reduce="sum")
            metrics_logger.log_value(SCORE_SUM, score, reduce="sum")

    return EpisodeOutcome


def _per_iteration_stats():
    """RLlib's stats classes with "ema" reporting the newest value (see module doc)."""
    from ray.rllib.utils.metrics.metrics_logger import DEFAULT_STATS_CLS_LOOKUP
    from ray.rllib.utils.metrics.stats.ema import EmaStats

    class LatestStats(EmaStats):
        def __init__(self, ema_coeff: float = 1.0, *args, **kwargs):
            super().__init__(1.0, *args, **kwargs)

    return {**DEFAULT_STATS_CLS_LOOKUP, "ema": LatestStats}


def _resources(num_workers: int) -> dict:
    """CPUs per env runner and for the driver, GPUs for the learner (as `ray_loop.cpu_shares`)."""
    import ray

    free = ray.available_resources()
    cpus = max(free.get("CPU", 0.0), 0.1)
    share = 1.0 if cpus >= num_workers + 1 else cpus / (num_workers + 1)
    return {"runner_cpus": share, "main_cpus": share, "gpus": int(free.get("GPU", 0) >= 1)}


def ppo_config(cfg: TrainConfig, il_path: str, env_cfg: dict, env_name: str):
    """The `PPOConfig` of this run (new API stack, `WebShopRLModule` from `il_path`)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from cluster.rllib.module import WebShopRLModule

    lc, optim = cfg.ppo, cfg.optim
    res = _resources(cfg.run.num_workers)
    return (
        PPOConfig()
        .environment(env=env_name, env_config=env_cfg)
        .env_runners(num_env_runners=cfg.run.num_workers, num_envs_per_env_runner=cfg.worker.num_envs,
                     num_cpus_per_env_runner=res["runner_cpus"], rollout_fragment_length="auto")
        .learners(num_learners=0, num_gpus_per_learner=res["gpus"])
        .resources(num_cpus_for_main_process=res["main_cpus"])
        .training(lr=lc.lr, gamma=lc.gamma, lambda_=lc.gae_lambda, clip_param=lc.clip_coef,
                  vf_loss_coeff=lc.value_coef, entropy_coeff=lc.entropy_coef, num_epochs=lc.ppo_epochs,
                  minibatch_size=lc.minibatch_size, grad_clip=optim.max_grad_norm, grad_clip_by="global_norm",
                  train_batch_size_per_learner=lc.trajectories_per_update * cfg.worker.max_steps,
                  use_kl_loss=False)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=WebShopRLModule,
                                               model_config={"checkpoint": il_path}))
        .callbacks(_episode_outcome_callback())
        .reporting(custom_stats_cls_lookup=_per_iteration_stats())
        .debugging(seed=cfg.run.seed)
    )


def iteration_rows(result: dict) -> dict[str, dict]:
    """metrics.jsonl rows (tag -> values) of one `algo.train()` result."""
    runners, timers = result.get("env_runners", {}), result.get("timers", {})
    learned = result.get("learners", {}).get(MODULE_ID, {})
    episodes = int(runners.get("num_episodes", 0) or 0)
    rollout = {"worker_id": -1, "episodes": episodes, "env_steps": int(runners.get("num_env_steps_sampled", 0)),
               "seconds": float(timers.get("env_runner_sampling_timer", 0.0)),
               "success": int(round(runners.get(SUCCESSES, 0.0) or 0.0)) if episodes else 0,
               "score_sum": float(runners.get(SCORE_SUM, 0.0) or 0.0) if episodes else 0.0, "pairs": 0}
    learner = {k: float(learned[k]) for k in ("policy_loss", "vf_loss", "entropy", "total_loss",
                                              "vf_explained_var", "mean_kl_loss") if k in learned}
    learner.update(steps=float(learned.get("num_module_steps_trained", 0)),
                   seconds=float(timers.get("learner_update_timer", 0.0)))
    return {"rollout": rollout, "learner": learner,
            "sync": {"worker_seconds": float(timers.get("synch_weights", 0.0)), "worker_id": -1}}


class RLlibRun:
    """The RL phase on RLlib: train until the budget, with our evaluations and checkpoints."""

    def __init__(self, cfg: TrainConfig, algo, evaluator, catalog, out: Path, log: MetricsLog):
        self.cfg, self.algo, self.evaluator, self.catalog, self.out, self.log = cfg, algo, evaluator, catalog, out, log
        self.base_version = evaluator.version
        self.counters = {"env_steps": 0, "episodes": 0, "pairs": 0, "updates": 0, "successes": 0,
                         "rl_seconds": 0.0}
        self.recent_success: list[float] = []
        self.last_eval: dict | None = None

    def pull_weights(self):
        """The learner's newest weights into the evaluator policy; returns it."""
        from cluster.rllib.module import policy_weights

        state = self.algo.get_weights([MODULE_ID])[MODULE_ID]
        self.evaluator.set_weights(policy_weights(state), version=self.base_version + self.counters["updates"])
        return self.evaluator

    def save_checkpoint(self, metrics: dict | None = None) -> Path:
        policy = self.evaluator
        meta = CheckpointMetadata(version=policy.version, steps=self.counters["updates"], metrics=metrics or {},
                                  train_config=self.cfg.to_dict())
        return save_checkpoint(policy, self.out / "checkpoint", meta)

    def _record(self, result: dict) -> None:
        rows = iteration_rows(result)
        c = self.counters
        c["updates"] += 1
        r = rows["rollout"]
        c["env_steps"] += r["env_steps"]
        c["episodes"] += r["episodes"]
        c["successes"] += r["success"]
        if r["episodes"]:
            self.recent_success = (self.recent_success + [r["success"] / r["episodes"]])[-20:]
        version = self.base_version + c["updates"]
        self.log.write("rollout", {**r, "version": version - 1}, step=c["updates"])
        self.log.write("learner", {**rows["learner"], "version": float(version)}, step=c["updates"])
        self.log.write("sync", rows["sync"], step=c["updates"])

    def run(self, eval_ids: list[int]) -> dict:
        run, start = self.cfg.run, time.perf_counter()
        progress = TrainingProgress(ALGO.upper(), run.time_budget_s, run.updates, self.counters)
        timers = {"eval": start, "ckpt": start}
        while (run.time_budget_s is None or time.perf_counter() - start < run.time_budget_s) and (
                run.updates is None or self.counters["updates"] < run.updates):
            self._record(self.algo.train())
            now = time.perf_counter()
            if eval_ids and now - timers["eval"] >= run.eval_interval_s:
                timers["eval"] = now
                self.last_eval = evaluate_policy(self.pull_weights(), self.catalog, eval_ids)
                self.log.write("eval", self.last_eval, step=self.counters["updates"])
            if now - timers["ckpt"] >= run.checkpoint_interval_s:
                timers["ckpt"] = now
                self.pull_weights()
                self.save_checkpoint()
            rs = self.recent_success
            progress.show(self.counters, self.evaluator.version, 0, sum(rs) / len(rs) if rs else 0.0, self.last_eval)
        progress.close()
        self.counters["rl_seconds"] = time.perf_counter() - start
        return {**self.counters, "seconds": self.counters["rl_seconds"]}


def _init_ray(cfg: TrainConfig) -> bool:
    """Start (or join) Ray as the other drivers do; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    # "local": a fresh instance, never a stray cluster left on this machine
    address = cfg.run.address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
    return True


def check_rllib_config(cfg: TrainConfig) -> None:
    """Refuse what RLlib's run cannot do, before anything starts."""
    if cfg.run.resume:
        raise UsageError("--resume is not supported with --algo rllib-ppo (RLlib keeps its own state); "
                         "start a new run from the checkpoint with --il-checkpoint")
    if cfg.ppo.kl_coef > 0:
        raise UsageError("--algo rllib-ppo: ppo.kl_coef (KL to the IL reference) has no RLlib counterpart; "
                         "set it to 0")


def train_rllib(cfg: TrainConfig, il_path: str, evaluator, catalog, eval_ids: list[int], out: Path,
                log: MetricsLog) -> tuple[RLlibRun, dict]:
    """RLlib PPO from `il_path` until the budget (the RL phase of `cluster.train.run_training`).

    Returns the run (for its final checkpoint) and its counters; `evaluator` then holds
    the last weights.
    """
    from cluster.rllib.env import register_with_ray

    started = _init_ray(cfg)
    env_name = register_with_ray()
    algo = ppo_config(cfg, il_path, env_config(cfg, evaluator.config, il_path), env_name).build_algo()
    try:
        rl = RLlibRun(cfg, algo, evaluator, catalog, out, log)
        stats = rl.run(eval_ids)
        rl.pull_weights()
    finally:
        algo.stop()
        if started:
            import ray

            ray.shutdown()
    return rl, stats
