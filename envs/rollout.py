"""Running model-free agents through episodes and summarising what they scored."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from envs.agents import Agent
from envs.env import WebShopEnv

COMPONENTS = ("r_type", "r_att", "r_option", "r_price")


@dataclass
class EpisodeResult:
    """One finished episode."""

    goal_id: int
    reward: float
    steps: int
    bought: bool
    actions: list[str]
    reward_info: dict = field(default_factory=dict)


def run_episode(env: WebShopEnv, agent: Agent, goal_id: int, seed: int | None = None) -> EpisodeResult:
    obs, info = env.reset(seed=seed, options={"goal_id": goal_id})
    agent.reset(env)
    actions, reward, done = [], 0.0, False
    while not done:
        action = agent.act(obs, info)
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return EpisodeResult(goal_id, reward, env.steps, terminated, actions, info.get("reward_info", {}))


def run_episodes(env: WebShopEnv, agent: Agent, goal_ids: Iterable[int]) -> list[EpisodeResult]:
    return [run_episode(env, agent, g, seed=g) for g in goal_ids]


def _interval(values: list[float]) -> float:
    """Half-width of a normal 95% interval of the mean."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return 1.96 * math.sqrt(var / n)


def summarize(results: list[EpisodeResult]) -> dict:
    """Success rate (reward == 1), mean score x100, mean steps, component means."""
    if not results:
        raise ValueError("no episodes to summarise")
    success = [1.0 if r.reward >= 1.0 - 1e-9 else 0.0 for r in results]
    score = [100.0 * r.reward for r in results]
    out = {
        "episodes": len(results),
        "success_rate": sum(success) / len(results),
        "success_ci95": _interval(success),
        "score": sum(score) / len(results),
        "score_ci95": _interval(score),
        "mean_steps": sum(r.steps for r in results) / len(results),
        "bought_rate": sum(r.bought for r in results) / len(results),
    }
    for c in COMPONENTS:
        vals = [float(r.reward_info[c]) for r in results if r.reward_info.get(c) is not None]
        out[f"mean_{c}"] = sum(vals) / len(vals) if vals else None
    return out
