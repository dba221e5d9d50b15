"""WebShop's human demonstrations in the policy's own representation, by replaying them.

WebShop's `il_trajs_finalized_images.jsonl` stores each human trajectory as the pages
the person saw on WebShop's site and the actions they took (`search[...]`, `click[...]`
with products by asin). The policy never reads those pages: rollout workers, the
learner and Serve show it `policies.candidates.policy_state` of the env's observation
and `build_candidates`' texts. So each trajectory is replayed here, action by action,
in a `WebShopEnv` on the catalog, and recorded exactly as a worker records a step: the
same state text, the same candidate list, the human's action as the chosen index
(a product click maps to its `click[item - <title> - <price> ...]` candidate).

- The goal is the catalog goal whose instruction is the trajectory's (compared without
  the price clause, which WebShop draws anew on every start; where several goals share
  the text, the one for the product the person bought). The catalog's goal is used as
  it is, price clause included, so the states are the ones a worker sees on that goal.
  Only goals of `split` (train by default, as WebShop's IL) are kept: human
  trajectories of test goals would leak into the test evaluation.
- A step the env takes but the policy is not offered is recorded with the human's
  action appended as one more candidate and left out of imitation (`il_mask` False): a
  search with the person's own query (the policy chooses among `search_queries`
  variants; a query equal to one of them is imitated), and reopening a product already
  opened in the episode (the policy is not offered it again).
- At the first action the env cannot take (a product that is not among this search's
  results on that page, since the project's BM25 ranks differently from WebShop's
  Lucene; a button the page does not show), the replay stops: the steps before it are
  kept (the trajectory is marked truncated), the rest is dropped, and the reason is
  counted. A trajectory with no step kept, no goal in the catalog or a goal of another
  split is skipped, also counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from envs.catalog import Catalog, Goal
from envs.env import SEARCH_ACTION, WebShopEnv, parse_action
from envs.search import SearchIndex
from policies.candidates import Candidates, budget_note, build_candidates, item_text, policy_state, price_limit
from policies.il import read_il_records
from rollout_workers.schema import Trajectory

PRICE_CLAUSE = ", and price lower than"
_INSTRUCTION = re.compile(r"Instruction:\s*(?:\[SEP\]\s*)?(.*?)\s*(?:\[SEP\]|\[button\]|\n|$)", re.S)
_ASIN = re.compile(r"[a-z0-9]{10}")
BUTTONS = ("back to search", "next >", "< prev", "description", "features", "reviews", "attributes", "buy now")

OWN_QUERY = "a search with the person's own query"
REOPENED = "a product reopened"


class DemoReplayError(ValueError):
    """Human demonstrations that do not replay in the given catalog at all."""


@dataclass
class ReplayReport:
    """What became of a file's human trajectories."""

    num_records: int = 0
    num_replayed: int = 0
    """Every action taken by the env, to the end of the recording."""
    num_cut: int = 0
    """Stopped at the first action the env could not take; the steps before it kept."""
    num_skipped: int = 0
    """Nothing kept."""
    reasons: Counter = field(default_factory=Counter)
    """Why trajectories were cut or skipped."""
    num_steps: int = 0
    """Steps kept."""
    num_imitated: int = 0
    """Kept steps imitation learns from."""
    not_imitated: Counter = field(default_factory=Counter)
    """Why the other kept steps are not imitated."""
    num_price_clause_differs: int = 0
    """Kept trajectories whose price clause differs from the catalog goal's (the catalog's is used)."""
    num_bought: int = 0
    score_sum: float = 0.0

    def describe(self) -> str:
        """The report in a few lines."""
        def listed(c: Counter) -> str:
            return "; ".join(f"{n} {why}" for why, n in c.most_common()) or "none"

        mean = self.score_sum / self.num_bought if self.num_bought else 0.0
        return (f"human trajectories: {self.num_records} in the file; {self.num_replayed} replayed to their end, "
                f"{self.num_cut} cut at an action the env could not take (steps before it kept), "
                f"{self.num_skipped} skipped\n"
                f"  cut or skipped: {listed(self.reasons)}\n"
                f"  steps kept: {self.num_steps}, imitated: {self.num_imitated}; not imitated: "
                f"{listed(self.not_imitated)}\n"
                f"  purchases: {self.num_bought}, mean score {mean:.3f}; price clause differs from the "
                f"catalog goal's in {self.num_price_clause_differs} (the catalog's is used)")

    def as_dict(self) -> dict:
        return {**{k: v for k, v in vars(self).items() if not isinstance(v, Counter)},
                "reasons": dict(self.reasons), "not_imitated": dict(self.not_imitated)}


def _plain(text: str) -> str:
    return " ".join(text.lower().replace('"', "").replace("'", "").split())


def instruction_key(text: str) -> str:
    """An instruction as WebShop's IL code compares them: lower case, no quotes, no price clause."""
    return _plain(text).split(PRICE_CLAUSE)[0]


def record_instruction(state: str) -> str | None:
    """The instruction shown on a trajectory's first page."""
    m = _INSTRUCTION.search(state)
    return m.group(1).strip() if m and m.group(1).strip() else None


class GoalLookup:
    """The catalog's goals by `instruction_key`."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.by_key: dict[str, list[Goal]] = {}
        for g in catalog.goals:
            self.by_key.setdefault(instruction_key(g.instruction_text), []).append(g)

    def find(self, instruction: str, actions: list[str]) -> Goal | None:
        """The goal of `instruction`: among goals with its text, the one for the last
        product the trajectory clicked, then one with the same price clause, then the first."""
        goals = self.by_key.get(instruction_key(instruction))
        if not goals:
            return None
        clicked = [a.upper() for n, a in map(parse_action, actions) if n == "click" and a and a.upper() in
                   self.catalog.by_asin]
        return min(goals, key=lambda g: (not clicked or g.asin != clicked[-1],
                                         _plain(g.instruction_text) != _plain(instruction), g.goal_id))


def split_of(catalog: Catalog, goal_id: int) -> str:
    return next(s for s, ids in catalog.splits.items() if goal_id in ids)


def map_action(env: WebShopEnv, info: dict, action: str) -> tuple[Candidates, int, str | None] | str:
    """The human's `action` on the env's current page as (candidates, chosen index, why
    it is not imitated or None), or, when the env cannot take it, the reason."""
    avail = info["available_actions"]
    name, arg = parse_action(action)
    page = env.session.page
    if name == "search":
        if SEARCH_ACTION not in avail or not arg:
            return f"a search on the {page} page, which has no search bar"
        query = arg.lower().strip()
        cands = build_candidates(env, avail)
        idx = cands.index_of_action(f"search[{query}]")
        if idx is not None:
            return cands, idx, None
        cands = build_candidates(env, avail, extra_searches=(query,))
        return cands, cands.index_of_action(f"search[{query}]"), OWN_QUERY
    if name != "click" or arg is None:
        return "an action that is neither search[...] nor click[...]"
    click = f"click[{arg.lower()}]"
    if click not in {a.lower() for a in avail}:
        if arg.lower() in BUTTONS:
            return f"click[{arg.lower()}] where the {page} page does not show it"
        if page == "results" and _ASIN.fullmatch(arg.lower()):
            return "a product not among this search's results on that page"
        return f"a click on the {page} page on something it does not show"
    cands = build_candidates(env, avail)
    idx = cands.index_of_action(click)
    if idx is not None:
        return cands, idx, None
    product = env.catalog.by_asin[arg.upper()]  # offered by the env, not by the policy: opened before
    limit = price_limit(env.session.goal.instruction_text)
    cands.texts.append(item_text(product.title, product.price_tag, budget_note(product.pricing, limit)))
    cands.actions.append(click)
    return cands, len(cands.texts) - 1, REOPENED


def replay(env: WebShopEnv, goal: Goal, actions: list[str], traj_id: str) -> tuple[Trajectory, str | None,
                                                                                     Counter]:
    """One human trajectory replayed on `goal`: (the trajectory as far as it went, why it
    stopped early or None, why some of its steps are not imitated)."""
    env.max_steps = max(len(actions), 1)  # the recording's own length: no cut-off of ours
    obs, info = env.reset(options={"goal_id": goal.goal_id})
    traj = Trajectory(goal_id=goal.goal_id, source="human", instruction=goal.instruction_text, il_mask=[],
                      traj_id=traj_id)
    not_imitated, stop, terminated = Counter(), None, False
    for action in actions:
        step = map_action(env, info, action)
        if isinstance(step, str):
            stop = step
            break
        cands, idx, why = step
        traj.states.append(policy_state(env, obs))
        traj.candidates.append(list(cands.texts))
        traj.chosen.append(idx)
        traj.logp.append(0.0)
        traj.il_mask.append(why is None)
        if why is not None:
            not_imitated[why] += 1
        obs, reward, terminated, _, info = env.step(cands.actions[idx])
        traj.rewards.append(float(reward))
        if terminated:
            break
    traj.terminated, traj.truncated = terminated, not terminated
    traj.score = traj.rewards[-1] if terminated else 0.0
    traj.reward_info = info.get("reward_info")
    return traj, stop, not_imitated


def replay_human_demos(path: str | Path, catalog: Catalog, split: str | None = "train",
                       search_index: SearchIndex | None = None) -> tuple[list[Trajectory], ReplayReport]:
    """WebShop's human IL file replayed in `catalog` (see module doc): the kept
    trajectories (source "human") and a report of what became of each.

    Args:
        split: keep trajectories whose goal is in this split; None keeps every split.

    Raises:
        DemoReplayError: no trajectory kept (the message says why, e.g. a catalog that is
            not WebShop's). ILFormatError: a malformed record.
    """
    lookup, report, out = GoalLookup(catalog), ReplayReport(), []
    env = WebShopEnv(catalog=catalog, search_index=search_index)
    for i, record in enumerate(read_il_records(path)):
        report.num_records += 1
        actions = record["actions"]
        instruction = record_instruction(record["states"][0]) if record["states"] else None
        goal = lookup.find(instruction, actions or []) if instruction else None
        if not actions:
            skip = "no 'actions' (the actions the person took)"
        elif goal is None:
            skip = "instruction not among the catalog's goals"
        elif split is not None and goal.goal_id not in catalog.goal_ids(split):
            skip = f"goal in the {split_of(catalog, goal.goal_id)} split"
        else:
            traj, stop, not_imitated = replay(env, goal, actions, f"human.{Path(path).stem}.{i}")
            skip = None if traj.num_steps else f"{stop} (first action)"
        if skip is not None:
            report.num_skipped += 1
            report.reasons[skip] += 1
            continue
        out.append(traj)
        report.num_replayed += stop is None
        report.num_cut += stop is not None
        if stop is not None:
            report.reasons[stop] += 1
        report.num_steps += traj.num_steps
        report.num_imitated += sum(traj.il_mask)
        report.not_imitated.update(not_imitated)
        report.num_price_clause_differs += _plain(goal.instruction_text) != _plain(instruction)
        report.num_bought += traj.terminated
        report.score_sum += traj.score
    if not out:
        reasons = "; ".join(f"{n} {why}" for why, n in report.reasons.most_common()) or "the file is empty"
        raise DemoReplayError(f"{path}: none of its {report.num_records} human trajectories replays in the catalog "
                              f"{catalog.source or '(generated)'} ({reasons}); they replay in WebShop's own catalog "
                              f"(`webshop-rl data fetch --small` or `--full`, then catalog.source or --catalog "
                              f"webshop-small or webshop-full)")
    return out, report
