"""Evaluating a policy (object or checkpoint) on a split with batched acting."""

from __future__ import annotations

import math
import time
from pathlib import Path

from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.rollout import COMPONENTS, EpisodeResult, summarize
from policies.policy import Policy
from rollout_workers.schema import Trajectory
from rollout_workers.worker import RolloutBatch, RolloutWorker, WorkerConfig


def evaluate_policy(policy: Policy, catalog: Catalog, goal_ids: list[int], num_envs: int = 16,
                    greedy: bool = True, max_steps: int = 15, seed: int = 0) -> dict:
    """Success, score and reward components of `policy` on `goal_ids` (one episode each)."""
    t0 = time.perf_counter()
    batch = play_goals(policy, catalog, goal_ids, num_envs, greedy, max_steps, seed)
    out = summarize_trajectories(batch.trajectories)
    out.update(seconds=time.perf_counter() - t0, env_steps=batch.env_steps, greedy=greedy,
               policy_version=policy.version)
    return out


def play_goals(policy: Policy, catalog: Catalog, goal_ids: list[int], num_envs: int = 16,
               greedy: bool = True, max_steps: int = 15, seed: int = 0) -> RolloutBatch:
    """One episode of each goal in `goal_ids`, batched, no pairs: what an evaluation plays."""
    cfg = WorkerConfig(num_envs=num_envs, max_steps=max_steps, greedy=greedy, pair_mode="none")
    return RolloutWorker(-1, catalog, policy, cfg, seed=seed, goal_ids=goal_ids).sample(len(goal_ids))


def summarize_trajectories(trajectories: list[Trajectory]) -> dict:
    """`summarize` and `mean_intervals` of finished episodes."""
    results = [EpisodeResult(t.goal_id, t.score, t.num_steps, t.terminated, [], t.reward_info or {})
               for t in trajectories]
    out = summarize(results)
    out.update(mean_intervals(results))
    return out


def mean_intervals(results: list[EpisodeResult]) -> dict:
    """Half-widths of normal 95% intervals of the mean steps and of each reward
    component (over the episodes that bought, as `summarize` averages them)."""
    def half(values: list[float]) -> float | None:
        n = len(values)
        if n < 2:
            return None
        mean = sum(values) / n
        return 1.96 * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)

    out = {"mean_steps_ci95": half([float(r.steps) for r in results])}
    for c in COMPONENTS:
        out[f"mean_{c}_ci95"] = half([float(r.reward_info[c]) for r in results if r.reward_info.get(c) is not None])
    return out


def evaluate_checkpoint(path: str | Path, env: WebShopEnv, goal_ids: list[int], greedy: bool = True) -> dict:
    from policies.checkpoint import load_checkpoint

    policy = load_checkpoint(path)
    out = evaluate_policy(policy, env.catalog, list(goal_ids), greedy=greedy, max_steps=env.max_steps)
    out["checkpoint"] = str(path)
    return out
