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

import base64
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
from policies.config import check_at_least
from rollout_workers.pairs import CUTS, PAIR_MODES, PairMiner
from rollout_workers.schema import Trajectory


def trajectory_id(run_id: str, worker_id: int, goal_cursor: int, sample: int) -> str:
    """The id of a worker's episode: one per (run, worker, goal cursor, sample), whatever
    weights played it, so a replay of the same goal slot is recognised as the same row."""
    return f"{run_id}.w{worker_id}.g{goal_cursor}.s{sample}"


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
        check_at_least("worker", self, 1, "num_envs", "max_steps", "samples_per_goal")
        check_at_least("worker", self, 0, "pair_margin", "max_version_gap")
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
        run_id: the run's id; with the worker id, the goal cursor and the sample index it
            makes each episode's `traj_id` (`trajectory_id`), so an episode replayed
            after a resume or a restart carries the id it had and the buffer keeps it once.
    """

    def __init__(self, worker_id: int, catalog: Catalog, policy: Policy, config: WorkerConfig = WorkerConfig(),
                 seed: int = 0, goal_ids: list[int] | None = None, search_index: SearchIndex | None = None,
                 run_id: str = "run"):
        self.worker_id, self.catalog, self.policy, self.config = worker_id, catalog, policy, config
        self.run_id = run_id
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        kw = dict(catalog=catalog, max_steps=config.max_steps, split=config.split, search_index=search_index)
        self.slots = [_Slot(WebShopEnv(**kw)) for _ in range(config.num_envs)]
        self.pair_miner = PairMiner(config, WebShopEnv(**kw), worker_id)
        ids = list(goal_ids) if goal_ids is not None else list(catalog.goal_ids(config.split))
        self.goal_order = ids if goal_ids is not None else list(self.rng.permutation(ids))
        self.goal_cursor = 0
        self._pending_goal: list[tuple[int, int, int]] = []  # (goal, its cursor, sample index) to start
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
        """Everything the next `sample` call depends on besides the weights (JSON-able):
        the goal cursor and the goals started but not yet given out, both RNGs, and the
        unfinished `self` pair groups. `load_state` of it makes the worker repeat the
        same episodes bit for bit."""
        return {"goal_cursor": self.goal_cursor, "total_steps": self.total_steps,
                "total_episodes": self.total_episodes, "pending_goals": [list(p) for p in self._pending_goal],
                "rng": self.rng.bit_generator.state,
                "torch_rng": base64.b64encode(self.generator.get_state().numpy().tobytes()).decode("ascii"),
                "pair_groups": self.pair_miner.groups_state()}

    def load_state(self, state: dict) -> None:
        self.goal_cursor = int(state["goal_cursor"])
        self.total_steps = int(state["total_steps"])
        self.total_episodes = int(state["total_episodes"])
        self._pending_goal = [tuple(int(v) for v in p) for p in state["pending_goals"]]
        self.rng.bit_generator.state = state["rng"]
        raw = np.frombuffer(base64.b64decode(state["torch_rng"]), dtype=np.uint8).copy()
        self.generator.set_state(torch.from_numpy(raw))
        self.pair_miner.load_groups(state["pair_groups"])

    # -- acting ---------------------------------------------------------------------
    def _next_goal(self) -> tuple[int, int, int]:
        """(goal, goal cursor it was drawn at, sample index among `samples_per_goal`)."""
        if not self._pending_goal:
            goal = int(self.goal_order[self.goal_cursor % len(self.goal_order)])
            k = self.config.samples_per_goal
            self._pending_goal = [(goal, self.goal_cursor, i) for i in reversed(range(k))]
            self.goal_cursor += 1
        return self._pending_goal.pop()

    def _start(self, slot: _Slot) -> None:
        goal, cursor, sample = self._next_goal()
        seed = int(self.rng.integers(2**31))
        slot.obs, slot.info = slot.env.reset(seed=seed, options={"goal_id": goal})
        slot.actions = []
        slot.traj = Trajectory(goal_id=goal, source="policy", seed=seed, policy_version=self.version,
                               worker_id=self.worker_id, instruction=slot.env.session.goal.instruction_text,
                               values=[], traj_id=trajectory_id(self.run_id, self.worker_id, cursor, sample))

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
