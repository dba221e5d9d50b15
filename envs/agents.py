"""Policies that need no model: WebShop's rule baseline, random, and an oracle expert.

Each agent is a small object with `reset(env)` at the start of an episode and
`act(observation, info) -> action string`. The expert knows the goal (it reads
`env.session.goal`) and may query the search index and the reward directly: it
is the generator of "preferred" trajectories, not a fair competitor.
"""

from __future__ import annotations

import re
from typing import Callable, Protocol

import numpy as np

from envs.env import SEARCH_ACTION, WebShopEnv
from envs.normalize import normalize_color, token_set_score
from envs.pages import BUY_NOW, NEXT_PAGE, PRODUCT_WINDOW
from envs.reward import purchase_reward

PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars\.?$")
FILLERS = re.compile(
    r"^(hi,? |hello,? )?(i am|i'm|im|i)? ?(would like|want|need|am looking for|looking for|am searching for|"
    r"search for|find|am in need of|wish to buy|want to buy|would like to buy|want to find|"
    r"like to buy|need to buy|am trying to find|id like|i'd like)( to (buy|get|find|purchase|see|view))? ?"
)


class Agent(Protocol):
    def reset(self, env: WebShopEnv) -> None: ...
    def act(self, observation: str, info: dict) -> str: ...


def strip_price_clause(instruction: str) -> str:
    """The instruction without WebShop's trailing ", and price lower than X dollars"."""
    return PRICE_CLAUSE.sub("", instruction).strip()


def shopper_query(instruction: str) -> str:
    """A keyword query a shopper might type: no price clause, no opening filler."""
    text = strip_price_clause(instruction.lower())
    return FILLERS.sub("", text).strip(" .,") or text


class RuleAgent:
    """WebShop's rule baseline: search the instruction, open the first hit, buy
    with the default (no) options."""

    def reset(self, env: WebShopEnv) -> None:
        self.instruction = env.session.goal.instruction_text

    def act(self, observation: str, info: dict) -> str:
        acts = info["available_actions"]
        if SEARCH_ACTION in acts:
            return f"search[{self.instruction}]"
        if f"click[{BUY_NOW}]" in acts:
            return f"click[{BUY_NOW}]"
        for a in acts:
            if info["page"] == "results" and a not in ("click[back to search]", "click[next >]", "click[< prev]"):
                return a
        return "click[back to search]"


class RandomAgent:
    """Uniform over the available actions; searches use the instruction text."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def reset(self, env: WebShopEnv) -> None:
        self.instruction = env.session.goal.instruction_text

    def act(self, observation: str, info: dict) -> str:
        acts = info["available_actions"]
        a = acts[int(self.rng.integers(len(acts)))]
        return f"search[{self.instruction}]" if a == SEARCH_ACTION else a


class ExpertAgent:
    """Oracle: searches with a query from the goal, pages to the goal product
    (or, if it is not among the hits, the hit whose best purchase scores highest),
    picks the goal's options and buys.

    Args:
        query_variants: optional function instruction -> queries a policy would be
            offered; the expert prefers the first of them that shows the goal
            product on the first results page, so its demonstrations use queries a
            policy can choose too.
    """

    def __init__(self, query_variants: Callable[[str], list[str]] | None = None):
        self.query_variants = query_variants

    def reset(self, env: WebShopEnv) -> None:
        self.env = env
        self.goal = env.session.goal
        self.query, self.target = self._plan()
        self.wanted_options = self._option_plan(self.target)

    def _plan(self) -> tuple[str, str]:
        index, goal, catalog = self.env.index, self.goal, self.env.catalog
        product = catalog.by_asin[goal.asin]
        candidates = [
            shopper_query(goal.instruction_text),
            " ".join([*goal.attributes, goal.query]),
            product.title.lower(),
        ]
        variants = list(self.query_variants(goal.instruction_text)) if self.query_variants else []
        for q in variants:
            if goal.asin in index.search(q)[:PRODUCT_WINDOW]:
                return q, goal.asin
        for q in variants + candidates:
            if goal.asin in index.search(q):
                return q, goal.asin
        hits = index.search(candidates[0])
        best = max(hits, key=lambda a: self._best_score(catalog.by_asin[a]), default=goal.asin)
        return candidates[0], best

    def _best_score(self, product) -> float:
        picks = self._option_plan(product.asin)
        return purchase_reward(product, self.goal, product.price, picks).total

    def _option_plan(self, asin: str) -> dict[str, str]:
        """For each goal option, the product's value in the group that matches it best."""
        product = self.env.catalog.by_asin.get(asin)
        picks: dict[str, str] = {}
        if product is None:
            return picks
        for wanted in self.goal.goal_options:
            best, best_score = None, -1
            for group, values in product.options.items():
                for v in values:
                    # WebShop's fuzzy match accepts "x-large" for "large"; prefer the exact value
                    score = 101 if v == wanted else token_set_score(normalize_color(v), normalize_color(wanted))
                    if score > best_score:
                        best, best_score = (group, v), score
            if best is not None and best_score > 85:
                picks[best[0]] = best[1]
        return picks

    def act(self, observation: str, info: dict) -> str:
        acts = info["available_actions"]
        page = info["page"]
        if SEARCH_ACTION in acts:
            return f"search[{self.query}]"
        if page == "results":
            target = f"click[{self.target.lower()}]"
            if target in acts:
                return target
            return f"click[{NEXT_PAGE}]" if f"click[{NEXT_PAGE}]" in acts else "click[back to search]"
        if page == "sub":
            return "click[< prev]"
        if page == "item":
            if info["asin"] != self.target:
                return "click[< prev]"
            for group, value in self.wanted_options.items():
                if info["options"].get(group) != value:
                    return f"click[{value}]"
            return f"click[{BUY_NOW}]"
        return acts[0] if acts else "click[back to search]"


AGENTS = {"rule": RuleAgent, "random": RandomAgent, "expert": ExpertAgent}


def make_agent(name: str, seed: int | None = None) -> Agent:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; expected one of {sorted(AGENTS)}")
    return RandomAgent(seed) if name == "random" else AGENTS[name]()


__all__ = ["AGENTS", "ExpertAgent", "RandomAgent", "RuleAgent", "make_agent", "shopper_query",
           "strip_price_clause", "PRODUCT_WINDOW"]
