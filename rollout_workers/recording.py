"""Recording model-free agents' episodes as trajectories (expert demonstrations).

`record_episode(env, agent, goal_id)` runs one episode and returns a `Trajectory`
whose candidates are exactly what a policy would have been offered on each page
(`policies.candidates`), with the agent's choice among them. An expert
search query that is not among the policy's query variants is appended as one
more candidate on that step, so the demonstration stays faithful.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from envs.agents import Agent
from envs.env import WebShopEnv
from policies.candidates import build_candidates, policy_state
from rollout_workers.schema import (TRAJECTORY_SCHEMA, Trajectory, TrajectoryFormatError, check_trajectory_table,
                                    trajectories_to_batch)


def record_episode(env: WebShopEnv, agent: Agent, goal_id: int, source: str = "expert",
                   seed: int | None = None) -> Trajectory:
    obs, info = env.reset(seed=seed, options={"goal_id": goal_id})
    agent.reset(env)
    traj = Trajectory(goal_id=goal_id, source=source, seed=seed, instruction=env.session.goal.instruction_text)
    return continue_episode(env, agent, traj, obs, info)


def corrected_episode(env: WebShopEnv, agent: Agent, traj: Trajectory, actions: list[str], cut: int) -> Trajectory:
    """`traj`'s first `cut` steps (replayed from its seed with its env `actions`),
    then `agent` from there to the end: the expert's correction of a policy episode."""
    obs, info = env.reset(seed=traj.seed, options={"goal_id": traj.goal_id})
    out = Trajectory(goal_id=traj.goal_id, source="expert", seed=traj.seed, instruction=traj.instruction,
                     policy_version=traj.policy_version, worker_id=traj.worker_id)
    for t in range(cut):
        out.states.append(traj.states[t])
        out.candidates.append(list(traj.candidates[t]))
        out.chosen.append(traj.chosen[t])
        out.logp.append(traj.logp[t])
        obs, reward, terminated, truncated, info = env.step(actions[t])
        out.rewards.append(float(reward))
        if terminated or truncated:
            raise ValueError(f"cut {cut} is past the end of the episode (it ended at step {t + 1})")
    agent.reset(env)
    out = continue_episode(env, agent, out, obs, info)
    if traj.values:  # the expert's steps have no value estimate
        out.values = list(traj.values[:cut]) + [0.0] * (len(out.chosen) - cut)
    return out


def continue_episode(env: WebShopEnv, agent: Agent, traj: Trajectory, obs: str, info: dict) -> Trajectory:
    """Let `agent` act from the env's current state until the episode ends, appending to `traj`."""
    done = False
    while not done:
        action = agent.act(obs, info)
        extra = (action[len("search["):-1],) if action.startswith("search[") else ()
        cands = build_candidates(env, info["available_actions"], extra_searches=extra)
        idx = cands.index_of_action(action)
        traj.states.append(policy_state(env, obs))
        if idx is None:  # an invalid action: keep it as an extra candidate (a no-op step)
            cands.texts.append(action)
            cands.actions.append(action)
            idx = len(cands.texts) - 1
        traj.candidates.append(list(cands.texts))
        traj.chosen.append(idx)
        traj.logp.append(0.0)
        obs, reward, terminated, truncated, info = env.step(action)
        traj.rewards.append(float(reward))
        done = terminated or truncated
        traj.terminated, traj.truncated = terminated, truncated
    traj.score = float(traj.rewards[-1]) if traj.terminated else 0.0
    traj.reward_info = info.get("reward_info")
    return traj


def write_trajectories(trajs: Iterable[Trajectory], path: str | Path) -> Path:
    """Write trajectories to one Parquet file with the project's schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = trajectories_to_batch(list(trajs))
    pq.write_table(pa.Table.from_batches([batch]), path)
    return path


def read_trajectory_table(path: str | Path) -> pa.Table:
    """A trajectory Parquet file (or a folder of them) as a TRAJECTORY_SCHEMA table,
    every row checked (`check_trajectory_table`).

    Raises:
        TrajectoryFormatError: naming the file, the row and the field at fault.
        FileNotFoundError: no such file or folder.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such trajectory file or folder")
    try:
        present = set(pq.read_schema(path).names) if path.is_file() else None
        table = pq.read_table(path, schema=TRAJECTORY_SCHEMA)
    except (pa.ArrowException, OSError) as e:
        raise TrajectoryFormatError(path, "<file>", "<schema>", f"not trajectory Parquet: {e}") from None
    check_trajectory_table(table, path, present)
    return table
