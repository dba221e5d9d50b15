"""`RolloutWorker`: many env copies, one batched policy call per step, trajectories out.

A plain class (Ray makes it an actor in `cluster.actors`; `--num-workers 0` runs it
in the driver). Each `sample(n)` call steps its env copies until `n` episodes have
finished, gathering every env that needs an action into one `Policy.act` call, and
returns the finished trajectories plus the preference pairs its `PairMiner`
(`rollout_workers.pairs`) built from them.

Weights arrive through `set_weights(version, weights)` between calls; the worker
never waits for the learner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.search import SearchIndex
from policies.policy import Policy
from policies.candidates import Candidates, build_candidates, policy_state
from rollout_workers.pairs import CUTS, PAIR_MODES, PairMiner
from rollout_workers.schema import Trajectory


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker acts and mines pairs."""

    num_envs: int = 8
    """Env copies stepped together (one batched policy call per step)."""
    max_steps: int = 15
    """Actions before an episode is truncated."""
    split: str = "train"
    """Goals are drawn from this split."""
    greedy: bool = False
    """Argmax actions instead of sampling (evaluation)."""
    pair_mode: str = "correct"
    """none | expert | self | correct | mix (see `rollout_workers.pairs`)."""
    samples_per_goal: int = 1
    """Env copies given the same goal in a row (K of `self` mode)."""
    pair_margin: float = 0.1
    """Minimum score gap between the chosen and the rejected trajectory."""
    max_version_gap: int = 2
    """Staleness bound S between the two halves of a self pair."""
    correction_cuts: tuple[str, ...] = ("evidence", "noop", "budget", "leave")
    """Where `correct` mode takes over a failed episode (`rollout_workers.pairs.CUTS`):
    evidence (a purchase whose page lacks an asked-for option), budget (a purchase
    whose page is marked over budget), noop (the first click that left the page as it
    was), leave (in an episode that never bought, the first step that left a product
    page showing nothing wrong; `BuyHereAgent` buys there instead), first (the first
    step where the expert would have acted otherwise)."""

    def __post_init__(self) -> None:
        if self.pair_mode not in PAIR_MODES:
            raise ValueError(f"pair_mode must be one of {PAIR_MODES}, got {self.pair_mode!r}")
        unknown = [c for c in self.correction_cuts if c not in CUTS]
        if isinstance(self.correction_cuts, str) or unknown:
            raise ValueError(f"correction_cuts must be a list of {sorted(CUTS)}, got {self.correction_cuts!r}")
        if self.pair_mode in ("self", "mix") and self.samples_per_goal < 2:
            raise ValueError("pair_mode 'self' needs samples_per_goal >= 2")


@dataclass
class RoundStats:
    """One `sample` call as the driver counts and logs it (a `rollout` row of metrics.jsonl)."""

    worker_id: int
    episodes: int
    """Episodes finished in the round."""
    acked: int
    """Trajectories the buffer stored (on disk before it answered)."""
    pairs: int
    """Pairs the buffer stored."""
    env_steps: int
    seconds: float
    """Wall time of the `sample` call."""
    version: int
    """Policy version the round acted with."""
    success: int
    """Episodes that scored 1.0."""
    score_sum: float
    state: dict
    """`RolloutWorker.state()` after the round: what `--resume` continues from."""
    sync_s: float | None = None
    """Seconds the last weight pull took (Ray workers only)."""
    node_id: str | None = None
    """The Ray node the worker ran on (Ray workers only)."""

    def log_row(self) -> dict:
        """The metrics.jsonl row: every field but `state`, the Ray-only ones where known."""
        row = {k: v for k, v in vars(self).items() if k != "state"}
        return {k: v for k, v in row.items() if v is not None or k not in ("sync_s", "node_id")}


@dataclass
class RolloutBatch:
    """What one `sample` call produced."""

    trajectories: list[Trajectory]
    pairs: list[tuple[Trajectory, Trajectory, str]]
    env_steps: int
    seconds: float
    policy_version: int
    worker_id: int
    worker_state: dict
    """`RolloutWorker.state()` when the call returned."""

    def stats(self, acked: int, pairs: int, **ray_fields) -> RoundStats:
        """The round's `RoundStats`, given what the buffer stored (`acked` trajectories,
        `pairs` pairs); `ray_fields` are `sync_s` and `node_id` where a Ray worker has them."""
        return RoundStats(worker_id=self.worker_id, episodes=len(self.trajectories), acked=acked, pairs=pairs,
                          env_steps=self.env_steps, seconds=self.seconds, version=self.policy_version,
                          success=sum(t.score >= 1.0 for t in self.trajectories),
                          score_sum=sum(t.score for t in self.trajectories), state=self.worker_state,
                          **ray_fields)


@dataclass
class _Slot:
    env: WebShopEnv
    traj: Trajectory | None = None
    obs: str = ""
    info: dict = field(default_factory=dict)
    cands: Candidates | None = None
    state: str = ""  # policy_state of obs: what the policy read at this step
    actions: list[str] = field(default_factory=list)  # env actions taken, for replays


class RolloutWorker:
    """Steps `config.num_envs` env copies with one policy.

    Args:
        worker_id: recorded on every trajectory.
        catalog: shared read-only catalog.
        policy: the acting policy (its weights are replaced by `set_weights`).
        config: see `WorkerConfig`.
        seed: goal order and action sampling.
        goal_ids: goals to cycle through instead of the split's (shuffled) goals.
        search_index: an index to share instead of the process-wide one.
    """

    def __init__(self, worker_id: int, catalog: Catalog, policy: Policy, config: WorkerConfig = WorkerConfig(),
                 seed: int = 0, goal_ids: list[int] | None = None, search_index: SearchIndex | None = None):
        self.worker_id, self.catalog, self.policy, self.config = worker_id, catalog, policy, config
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        kw = dict(catalog=catalog, max_steps=config.max_steps, split=config.split, search_index=search_index)
        self.slots = [_Slot(WebShopEnv(**kw)) for _ in range(config.num_envs)]
        self.pair_miner = PairMiner(config, WebShopEnv(**kw), worker_id)
        ids = list(goal_ids) if goal_ids is not None else list(catalog.goal_ids(config.split))
        self.goal_order = ids if goal_ids is not None else list(self.rng.permutation(ids))
        self.goal_cursor = 0
        self._pending_goal: list[int] = []
        self.total_steps = 0
        self.total_episodes = 0

    # -- weights --------------------------------------------------------------------
    def set_weights(self, version: int, weights: dict[str, np.ndarray]) -> None:
        """Load published weights (between episodes: `sample` is not running)."""
        self.policy.set_weights(weights, version=version)

    @property
    def version(self) -> int:
        return self.policy.version

    def state(self) -> dict:
        """What `--resume` needs to continue the goal order exactly."""
        return {"goal_cursor": self.goal_cursor, "total_steps": self.total_steps,
                "total_episodes": self.total_episodes}

    def load_state(self, state: dict) -> None:
        self.goal_cursor = int(state["goal_cursor"])
        self.total_steps = int(state.get("total_steps", 0))
        self.total_episodes = int(state.get("total_episodes", 0))

    # -- acting ---------------------------------------------------------------------
    def _next_goal(self) -> int:
        if not self._pending_goal:
            goal = int(self.goal_order[self.goal_cursor % len(self.goal_order)])
            self.goal_cursor += 1
            self._pending_goal = [goal] * self.config.samples_per_goal
        return self._pending_goal.pop()

    def _start(self, slot: _Slot) -> None:
        goal = self._next_goal()
        seed = int(self.rng.integers(2**31))
        slot.obs, slot.info = slot.env.reset(seed=seed, options={"goal_id": goal})
        slot.actions = []
        slot.traj = Trajectory(goal_id=goal, source="policy", seed=seed, policy_version=self.version,
                               worker_id=self.worker_id, instruction=slot.env.session.goal.instruction_text,
                               values=[])

    def sample(self, num_episodes: int, on_episode: Callable[[Trajectory], None] | None = None) -> RolloutBatch:
        """Step all env copies until `num_episodes` episodes have finished; `on_episode`
        (e.g. a progress bar) sees each finished trajectory as it ends."""
        t0, steps = time.perf_counter(), 0
        finished: list[Trajectory] = []
        pairs: list[tuple[Trajectory, Trajectory, str]] = []
        started = 0
        for slot in self.slots:
            slot.traj = None
        while len(finished) < num_episodes:
            for slot in self.slots:
                if slot.traj is None and started < num_episodes:
                    self._start(slot)
                    started += 1
            live = [s for s in self.slots if s.traj is not None]
            for s in live:
                s.cands = build_candidates(s.env, s.info["available_actions"])
                s.state = policy_state(s.env, s.obs)
            outs = self.policy.act([s.state for s in live], [s.cands.texts for s in live],
                                   greedy=self.config.greedy, generator=self.generator)
            for s, out in zip(live, outs):
                done = self._step(s, out)
                steps += 1
                if done:
                    finished.append(s.traj)
                    pairs += self.pair_miner.pairs_for(s.traj, s.actions)
                    if on_episode is not None:
                        on_episode(s.traj)
                    s.traj = None
        self.total_steps += steps
        self.total_episodes += len(finished)
        return RolloutBatch(finished, pairs, steps, time.perf_counter() - t0, self.version,
                            worker_id=self.worker_id, worker_state=self.state())

    def _step(self, s: _Slot, out) -> bool:
        t = s.traj
        t.states.append(s.state)
        t.candidates.append(list(s.cands.texts))
        t.chosen.append(out.index)
        t.logp.append(out.logp)
        t.values.append(out.value)
        s.actions.append(s.cands.actions[out.index])
        s.obs, reward, terminated, truncated, s.info = s.env.step(s.actions[-1])
        t.rewards.append(float(reward))
        if terminated or truncated:
            t.terminated, t.truncated = terminated, truncated
            t.score = float(reward) if terminated else 0.0
            t.reward_info = s.info.get("reward_info")
            return True
        return False
