"""`RolloutWorker`: many env copies, one batched policy call per step, trajectories out.

A plain class (Ray makes it an actor in `cluster.actors`; `--num-workers 0` runs it
in the driver). Each `sample(n)` call steps its env copies until `n` episodes have
finished, gathering every env that needs an action into one `Policy.act` call, and
returns the finished trajectories plus the preference pairs it could build:

- `expert` mode: the oracle expert's trajectory for the goal is `chosen`, the
  policy's trajectory `rejected`, when the expert scored at least `pair_margin` more
  (the seed's "generated preferred trajectories");
- `self` mode: each goal is given to `samples_per_goal` env copies; once all have
  finished, best vs worst when their score gap is at least `pair_margin` and their
  policy versions differ by at most `max_version_gap` (online pair mining);
- `correct`: the expert takes over the policy's own episode: replayed from its
  seed up to a cut, then played by the expert to the end, is `chosen`; the policy's
  episode is `rejected`. Two cuts per failed episode: the first step where the
  expert would have acted differently, and the last decision (e.g. on the page of
  a wrong product: go back instead of buying). Both halves share the prefix, so
  its log-ratios cancel and DPO's signal sits on the steps where they part
  (with "first+last" cuts, also recoveries such as `< prev` from a wrong product,
  which a direct expert rollout never shows; see `correction_cuts`);
- `mix`: expert and self.

Weights arrive through `set_weights(version, weights)` between calls; the worker
never waits for the learner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from envs.agents import BuyHereAgent, ExpertAgent
from envs.catalog import Catalog
from envs.env import WebShopEnv
from envs.search import SearchIndex
from policies.policy import Policy
from policies.search_queries import search_queries
from policies.candidates import Candidates, build_candidates, offers, policy_state, price_note
from rollout_workers.recording import corrected_episode, record_episode
from rollout_workers.schema import Trajectory

PAIR_MODES = ("none", "expert", "self", "correct", "mix")
CORRECTION_CUTS = ("first", "first+evidence", "first+last", "evidence", "evidence+noop", "evidence+noop+budget",
                   "evidence+noop+budget+leave")
LEAVE_ACTIONS = ("click[< prev]", "click[back to search]")


def first_noop_step(states: list[str]) -> int | None:
    """The first step whose action left the state text as it was (`states[t + 1] ==
    states[t]`, e.g. a click on an option already chosen), or None."""
    return next((t for t in range(len(states) - 1) if states[t + 1] == states[t]), None)


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
    pair_mode: str = "expert"
    """none | expert | self | mix (see module doc)."""
    samples_per_goal: int = 1
    """Env copies given the same goal in a row (K of `self` mode)."""
    pair_margin: float = 0.1
    """Minimum score gap between the chosen and the rejected trajectory."""
    max_version_gap: int = 2
    """Staleness bound S between the two halves of a self pair."""
    correction_cuts: str = "first+evidence"
    """Where `correct` mode hands over to the expert: "first" (its first disagreement
    with the policy); "first+evidence" (also the last decision, when the page shows
    the product is wrong: it lacks an option the instruction asks for - the expert
    then goes back, a recovery the policy can learn from what it sees); or
    "first+last" (also every last decision). Measured on the default catalog: with
    "first+last", 66 DPO updates taught the policy to go back from products so
    eagerly that greedy episodes looped to the step limit (eval success 25% -> 11%,
    37% of episodes ending in a purchase); or "evidence" (no first-disagreement cut:
    only the decision the pages themselves show to be wrong - the purchase of a
    product whose page lacks an option the instruction asks for, which the option
    note of the state names (`candidates.option_note`). The first disagreement is
    mostly a choice between two results whose fit hides in options and features the
    results page does not show, which a policy cannot learn from what it sees); or
    "evidence+noop" (also the first step whose action left the page as it was, such
    as clicking an option already chosen: a wasted step the state shows, and the
    step a greedy policy repeats until the episode runs out of steps); or
    "evidence+noop+budget" (the purchase cut also takes a product whose page the
    price note marks over budget, `candidates.price_note`); or
    "evidence+noop+budget+leave" (also, in an episode that ran out of steps without a
    purchase, the first step that left a product page showing nothing wrong - no
    missing option, not over budget; there `BuyHereAgent` buys that product with the
    asked options instead: the correction for browsing until the steps run out)."""

    def __post_init__(self) -> None:
        if self.pair_mode not in PAIR_MODES:
            raise ValueError(f"pair_mode must be one of {PAIR_MODES}, got {self.pair_mode!r}")
        if self.correction_cuts not in CORRECTION_CUTS:
            raise ValueError(f"correction_cuts must be one of {CORRECTION_CUTS}, got {self.correction_cuts!r}")
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
        self.expert_env = WebShopEnv(**kw)
        ids = list(goal_ids) if goal_ids is not None else list(catalog.goal_ids(config.split))
        self.goal_order = ids if goal_ids is not None else list(self.rng.permutation(ids))
        self.goal_cursor = 0
        self._pending_goal: list[int] = []
        self._groups: dict[int, list[Trajectory]] = {}
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
                    pairs += self._pairs_for(s.traj, s.actions)
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

    # -- pairs ----------------------------------------------------------------------
    def expert_trajectory(self, goal_id: int, version: int) -> Trajectory:
        traj = record_episode(self.expert_env, ExpertAgent(search_queries), goal_id, source="expert")
        traj.policy_version, traj.worker_id = version, self.worker_id
        return traj

    def correction_cuts(self, traj: Trajectory, actions: list[str]) -> list[int]:
        """Where the expert takes over (see `WorkerConfig.correction_cuts`), in step order."""
        parts = set(self.config.correction_cuts.split("+"))
        env = self.expert_env
        obs, info = env.reset(seed=traj.seed, options={"goal_id": traj.goal_id})
        expert = ExpertAgent(search_queries) if "first" in parts else None  # only the first cut asks it
        if expert is not None:
            expert.reset(env)
        first, last, shown_wrong = None, len(actions) - 1, False
        for t, action in enumerate(actions):
            if expert is not None and first is None and expert.act(obs, info).lower() != action.lower():
                first = t
            if t == last and env.session.page == "item":
                shown_wrong = self._lacks_wanted_option(env) or ("budget" in parts and self._over_budget(env))
            if t < last:
                obs, _, _, _, info = env.step(action)
        if "first" not in parts:  # the evidence modes
            cuts = [last] if traj.terminated and shown_wrong else []
            if "noop" in parts:
                noop = first_noop_step(traj.states)
                cuts = ([] if noop is None else [noop]) + cuts  # noop < last
            return cuts
        first = last if first is None else first
        cuts = [first]
        if traj.terminated and last > first and ("last" in parts or ("evidence" in parts and shown_wrong)):
            cuts.append(last)
        return cuts

    @staticmethod
    def _lacks_wanted_option(env: WebShopEnv) -> bool:
        """Whether the product page shows no value for one of the options the
        instruction asks for (what a careful shopper checks before buying)."""
        product = env.catalog.by_asin[env.session.asin]
        offered = [v for values in product.options.values() for v in values]
        return any(not offers(offered, w) for w in env.session.goal.goal_options)

    @staticmethod
    def _over_budget(env: WebShopEnv) -> bool:
        """Whether the product page's price note says it is over the instruction's budget."""
        return price_note(env.session.goal.instruction_text, env.catalog.by_asin[env.session.asin].pricing) is not None

    def leave_cut(self, traj: Trajectory, actions: list[str]) -> int | None:
        """With a "leave" cut mode: in an episode that ended without a purchase, the first
        step whose action left a product page that showed nothing wrong; else None."""
        if "leave" not in self.config.correction_cuts.split("+") or traj.terminated:
            return None
        env = self.expert_env
        env.reset(seed=traj.seed, options={"goal_id": traj.goal_id})
        for t, action in enumerate(actions):
            if (env.session.page == "item" and action.lower() in LEAVE_ACTIONS
                    and not self._lacks_wanted_option(env) and not self._over_budget(env)):
                return t
            env.step(action)
        return None

    def _corrections(self, traj: Trajectory, actions: list[str]) -> list[tuple[Trajectory, Trajectory, str]]:
        cuts = [(cut, ExpertAgent(search_queries)) for cut in self.correction_cuts(traj, actions)]
        leave = self.leave_cut(traj, actions)
        if leave is not None:
            cuts.append((leave, BuyHereAgent()))
        out = []
        for cut, agent in cuts:
            chosen = corrected_episode(self.expert_env, agent, traj, actions, cut)
            if chosen.score - traj.score >= self.config.pair_margin:
                out.append((chosen, traj, "correct"))
        return out

    def _pairs_for(self, traj: Trajectory, actions: list[str]) -> list[tuple[Trajectory, Trajectory, str]]:
        cfg, out = self.config, []
        if cfg.pair_mode == "correct" and traj.score < 1.0:
            out += self._corrections(traj, actions)
        if cfg.pair_mode in ("expert", "mix"):
            expert = self.expert_trajectory(traj.goal_id, traj.policy_version)
            if expert.score - traj.score >= cfg.pair_margin:
                out.append((expert, traj, "expert"))
        if cfg.pair_mode in ("self", "mix"):
            group = self._groups.setdefault(traj.goal_id, [])
            group.append(traj)
            if len(group) >= cfg.samples_per_goal:
                del self._groups[traj.goal_id]
                best = max(group, key=lambda t: t.score)
                worst = min(group, key=lambda t: t.score)
                gap_ok = abs(best.policy_version - worst.policy_version) <= cfg.max_version_gap
                if best.score - worst.score >= cfg.pair_margin and gap_ok:
                    out.append((best, worst, "self"))
        return out
