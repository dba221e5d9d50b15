"""Preference pairs for DPO, mined from a worker's finished episodes.

`PairMiner.pairs_for(traj, actions)` returns `(chosen, rejected, mode)` triples by
the worker's `pair_mode`:

- `expert`: the oracle expert's own episode for the goal is `chosen`, the policy's
  `rejected`, when the expert scored at least `pair_margin` more;
- `self`: each goal goes to `samples_per_goal` env copies; once all have finished,
  best vs worst, when their scores differ by at least `pair_margin` and their
  policy versions by at most `max_version_gap`;
- `correct`: an agent takes over the policy's own failed episode at a cut: the
  episode replayed from its seed up to the cut, then played by the agent to the end,
  is `chosen`, the policy's episode `rejected`. Both share the prefix, so its
  log-ratios cancel and DPO's signal sits on the step where they part;
- `mix`: expert and self.

The cuts are a registry (`CUTS`); `WorkerConfig.correction_cuts` names the ones in
use. Each cut reads one replay of the episode (`Replay`) and names steps; the
corrections are the union of the expert's cuts in step order, then the cuts taken
over by `BuyHereAgent` in step order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from envs.agents import Agent, BuyHereAgent, ExpertAgent
from envs.env import WebShopEnv
from policies.candidates import offers, price_note
from policies.search_queries import search_queries
from rollout_workers.recording import corrected_episode, record_episode
from rollout_workers.schema import Trajectory, row_to_trajectory

Pair = tuple[Trajectory, Trajectory, str]
PAIR_MODES = ("none", "expert", "self", "correct", "mix")
LEAVE_ACTIONS = ("click[< prev]", "click[back to search]")


def first_noop_step(states: list[str]) -> int | None:
    """The first step whose action left the state text as it was (`states[t + 1] ==
    states[t]`, e.g. a click on an option already chosen), or None."""
    return next((t for t in range(len(states) - 1) if states[t + 1] == states[t]), None)


def lacks_wanted_option(env: WebShopEnv) -> bool:
    """Whether the open product page shows no value for one of the options the
    instruction asks for (what a careful shopper checks before buying)."""
    product = env.catalog.by_asin[env.session.asin]
    offered = [v for values in product.options.values() for v in values]
    return any(not offers(offered, w) for w in env.session.goal.goal_options)


def over_budget(env: WebShopEnv) -> bool:
    """Whether the open product page's price note says it is over the instruction's budget."""
    return price_note(env.session.goal.instruction_text, env.catalog.by_asin[env.session.asin].pricing) is not None


@dataclass(frozen=True)
class StepView:
    """What the page showed before one of the episode's actions."""

    action: str
    """The env action the policy took here."""
    page: str
    """The page it was taken on (search, results, item, sub)."""
    lacks_option: bool = False
    """On a product page: it shows no value for an option the instruction asks for."""
    over_budget: bool = False
    """On a product page: its price note marks it over the instruction's budget."""
    expert_action: str | None = None
    """What the expert would have done here (only asked until it first disagrees)."""


@dataclass(frozen=True)
class Replay:
    """A policy episode replayed from its seed: the trajectory and one view per step."""

    traj: Trajectory
    steps: list[StepView]

    @property
    def last(self) -> int:
        return len(self.steps) - 1


def replay(env: WebShopEnv, traj: Trajectory, actions: list[str], ask_expert: bool) -> Replay:
    """Replay `traj` with its env `actions` up to (not including) its last action.

    `ask_expert`: also ask an `ExpertAgent` (the goal-opening one) what it would do at
    each step, until the first step where it would act otherwise.
    """
    obs, info = env.reset(seed=traj.seed, options={"goal_id": traj.goal_id})
    expert = ExpertAgent(search_queries) if ask_expert else None
    if expert is not None:
        expert.reset(env)
    views, last = [], len(actions) - 1
    for t, action in enumerate(actions):
        suggested = None
        if expert is not None:
            suggested = expert.act(obs, info)
            if suggested.lower() != action.lower():
                expert = None  # the first disagreement is all the first cut needs
        page = env.session.page
        on_item = page == "item"
        views.append(StepView(action, page, on_item and lacks_wanted_option(env), on_item and over_budget(env),
                              suggested))
        if t < last:
            obs, _, _, _, info = env.step(action)
    return Replay(traj, views)


def _purchase_cut(r: Replay, shown_wrong: Callable[[StepView], bool]) -> list[int]:
    """The purchase (last step of a terminated episode) when its page showed `shown_wrong`."""
    if not r.steps or not r.traj.terminated:
        return []
    last = r.steps[r.last]
    return [r.last] if last.page == "item" and shown_wrong(last) else []


def first_cut(r: Replay) -> list[int]:
    """The first step where the expert would have acted differently (the last step when
    it never would)."""
    if not r.steps:
        return []
    return [next((t for t, s in enumerate(r.steps) if s.expert_action.lower() != s.action.lower()), r.last)]


def evidence_cut(r: Replay) -> list[int]:
    """A purchase of a product whose page lacks an option the instruction asks for
    (the state's option note names it)."""
    return _purchase_cut(r, lambda s: s.lacks_option)


def budget_cut(r: Replay) -> list[int]:
    """A purchase of a product whose page the price note marks over budget."""
    return _purchase_cut(r, lambda s: s.over_budget)


def noop_cut(r: Replay) -> list[int]:
    """The first step whose action left the page as it was (e.g. an option chosen again)."""
    noop = first_noop_step(r.traj.states)
    return [] if noop is None else [noop]


def leave_cut(r: Replay) -> list[int]:
    """In an episode that ended without a purchase, the first step that left a product
    page showing nothing wrong (no missing option, not over budget)."""
    if r.traj.terminated:
        return []
    return next(([t] for t, s in enumerate(r.steps) if s.page == "item" and s.action.lower() in LEAVE_ACTIONS
                 and not s.lacks_option and not s.over_budget), [])


@dataclass(frozen=True)
class Cut:
    """A correction cut: where to take over, and which agent plays on from there."""

    find: Callable[[Replay], list[int]]
    agent: Callable[[], Agent]


def _expert() -> Agent:
    return ExpertAgent(search_queries)


CUTS: dict[str, Cut] = {
    "first": Cut(first_cut, _expert),
    "evidence": Cut(evidence_cut, _expert),
    "budget": Cut(budget_cut, _expert),
    "noop": Cut(noop_cut, _expert),
    "leave": Cut(leave_cut, BuyHereAgent),
}
"""Every cut by name. The expert's cuts come first in the corrections, then those of
other agents (`BuyHereAgent`: buy the product whose page is open, with the asked options)."""
AGENT_ORDER = (_expert, BuyHereAgent)


def plan_cuts(cuts: list[Cut], r: Replay) -> list[tuple[int, Callable[[], Agent]]]:
    """`(step, agent factory)` for every correction of the replayed episode: the union
    of the cuts' steps per agent, in step order, agents in `AGENT_ORDER`."""
    found: dict[Callable[[], Agent], set[int]] = {}
    for cut in cuts:
        found.setdefault(cut.agent, set()).update(cut.find(r))
    return [(step, agent) for agent in AGENT_ORDER for step in sorted(found.get(agent, ()))]


class PairSettings(Protocol):
    """The fields of `rollout_workers.worker.WorkerConfig` that pair mining reads."""

    pair_mode: str
    correction_cuts: tuple[str, ...]
    pair_margin: float
    samples_per_goal: int
    max_version_gap: int


class PairMiner:
    """Pairs from one worker's finished episodes (see the module doc).

    Args:
        config: the worker's config (`pair_mode`, `correction_cuts`, margins).
        env: an env copy of the worker's own, for expert episodes and replays.
        worker_id: recorded on expert episodes.
    """

    def __init__(self, config: PairSettings, env: WebShopEnv, worker_id: int):
        self.config, self.env, self.worker_id = config, env, worker_id
        self.cuts = [CUTS[name] for name in config.correction_cuts]
        self._groups: dict[int, list[Trajectory]] = {}

    def pairs_for(self, traj: Trajectory, actions: list[str]) -> list[Pair]:
        """The pairs `traj` (a finished policy episode with its env `actions`) gives."""
        mode, out = self.config.pair_mode, []
        if mode == "correct" and traj.score < 1.0:
            out += self.corrections(traj, actions)
        if mode in ("expert", "mix"):
            out += self._expert_pair(traj)
        if mode in ("self", "mix"):
            out += self._self_pair(traj)
        return out

    def expert_trajectory(self, goal_id: int, version: int, traj_id: str | None = None) -> Trajectory:
        traj = record_episode(self.env, ExpertAgent(search_queries), goal_id, source="expert")
        traj.policy_version, traj.worker_id = version, self.worker_id
        if traj_id is not None:
            traj.traj_id = traj_id
        return traj

    def groups_state(self) -> dict[str, list[dict]]:
        """The unfinished `self` groups as JSON-able rows (part of the worker's state)."""
        return {str(goal): [t.to_row() for t in group] for goal, group in self._groups.items()}

    def load_groups(self, state: dict[str, list[dict]]) -> None:
        self._groups = {int(goal): [row_to_trajectory(r) for r in rows] for goal, rows in state.items()}

    def cut_steps(self, traj: Trajectory, actions: list[str]) -> list[tuple[int, Callable[[], Agent]]]:
        """Where the corrections take over and who plays on: `(step, agent factory)`,
        the expert's steps first in step order, then the other agents'."""
        return plan_cuts(self.cuts, replay(self.env, traj, actions, ask_expert=CUTS["first"] in self.cuts))

    def corrections(self, traj: Trajectory, actions: list[str]) -> list[Pair]:
        out = []
        for i, (cut, agent) in enumerate(self.cut_steps(traj, actions)):
            chosen = corrected_episode(self.env, agent(), traj, actions, cut)
            chosen.traj_id = f"{traj.traj_id}.fix{i}"  # the same correction of a replayed episode, the same id
            if chosen.score - traj.score >= self.config.pair_margin:
                out.append((chosen, traj, "correct"))
        return out

    def _expert_pair(self, traj: Trajectory) -> list[Pair]:
        expert = self.expert_trajectory(traj.goal_id, traj.policy_version, traj_id=f"{traj.traj_id}.expert")
        return [(expert, traj, "expert")] if expert.score - traj.score >= self.config.pair_margin else []

    def _self_pair(self, traj: Trajectory) -> list[Pair]:
        cfg = self.config
        group = self._groups.setdefault(traj.goal_id, [])
        group.append(traj)
        if len(group) < cfg.samples_per_goal:
            return []
        del self._groups[traj.goal_id]
        best = max(group, key=lambda t: t.score)
        worst = min(group, key=lambda t: t.score)
        gap_ok = abs(best.policy_version - worst.policy_version) <= cfg.max_version_gap and best is not worst
        return [(best, worst, "self")] if best.score - worst.score >= cfg.pair_margin and gap_ok else []
