"""Evaluating a policy (object or checkpoint) on a split with batched acting."""

from __future__ import annotations

import math
import time
from pathlib import Path

from cluster.progress import Progress
from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.rollout import COMPONENTS, EpisodeResult, summarize
from policies.policy import Policy
from rollout_workers.schema import Trajectory
from rollout_workers.worker import RolloutBatch, RolloutWorker, WorkerConfig


def evaluate_policy(policy: Policy, catalog: Catalog, goal_ids: list[int], num_envs: int = 16,
                    greedy: bool = True, max_steps: int = 15, seed: int = 0, progress: str | None = None) -> dict:
    """Success, score and reward components of `policy` on `goal_ids` (one episode each).

    `progress`, when given, names a progress bar (plain lines when stdout is not a
    terminal) that advances per finished episode; what is played is the same without it.
    """
    t0 = time.perf_counter()
    batch = play_goals(policy, catalog, goal_ids, num_envs, greedy, max_steps, seed, progress=progress)
    out = summarize_trajectories(batch.trajectories)
    out.update(seconds=time.perf_counter() - t0, env_steps=batch.env_steps, greedy=greedy,
               policy_version=policy.version)
    return out


def play_goals(policy: Policy, catalog: Catalog, goal_ids: list[int], num_envs: int = 16,
               greedy: bool = True, max_steps: int = 15, seed: int = 0, progress: str | None = None) -> RolloutBatch:
    """One episode of each goal in `goal_ids`, batched, no pairs: what an evaluation plays.
    `progress` names a bar over the episodes (see `evaluate_policy`); None: quiet."""
    cfg = WorkerConfig(num_envs=num_envs, max_steps=max_steps, greedy=greedy, pair_mode="none")
    worker = RolloutWorker(-1, catalog, policy, cfg, seed=seed, goal_ids=goal_ids)
    if progress is None:
        return worker.sample(len(goal_ids))
    with Progress(len(goal_ids), progress, unit="episode") as bar:
        tally = {"success": 0, "score": 0.0}

        def finished(traj: Trajectory) -> None:
            tally["success"] += int(traj.score >= 1.0 - 1e-9)  # success as `summarize` counts it
            tally["score"] += traj.score
            done = bar.done + 1
            bar.advance(success=f"{100 * tally['success'] / done:.1f}%", score=f"{100 * tally['score'] / done:.1f}")

        return worker.sample(len(goal_ids), on_episode=finished)


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


def evaluate_checkpoint(path: str | Path, env: WebShopEnv, goal_ids: list[int], greedy: bool = True,
                        progress: str | None = None) -> dict:
    """`evaluate_policy` of the checkpoint at `path` with `env`'s catalog and step limit."""
    from policies.checkpoint import load_checkpoint

    policy = load_checkpoint(path)
    out = evaluate_policy(policy, env.catalog, list(goal_ids), greedy=greedy, max_steps=env.max_steps,
                          progress=progress)
    out["checkpoint"] = str(path)
    return out
