"""Policies that need no model: WebShop's rule baseline, random, an oracle expert, and a
noisy "human-like" demonstrator.

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

SUB_PAGE_NAMES = ("description", "features", "reviews")  # click names of an item's sub-pages
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
        pick: which product to open. "goal": the goal product (the expert that
            corrects a policy's episodes in the RL loop). "first": the first hit, in
            the search engine's order up to the goal, whose best purchase scores 1
            (the demonstrator for IL). The reward gives 1 to any product with the
            goal's type, attributes, options and price, and often more than one on a
            results page qualifies; always opening the goal is then an arbitrary
            choice among equals that imitation can only memorise, while "the first
            that fits" is a rule that carries over.
    """

    PICKS = ("goal", "first")

    def __init__(self, query_variants: Callable[[str], list[str]] | None = None, pick: str = "goal"):
        if pick not in self.PICKS:
            raise ValueError(f"pick must be one of {self.PICKS}, got {pick!r}")
        self.pick = pick
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
            if goal.asin in (hits := index.search(q))[:PRODUCT_WINDOW]:
                return q, self._first_fit(hits)
        for q in variants + candidates:
            if goal.asin in (hits := index.search(q)):
                return q, self._first_fit(hits)
        hits = index.search(candidates[0])
        best = max(hits, key=lambda a: self._best_score(catalog.by_asin[a]), default=goal.asin)
        return candidates[0], best

    def _first_fit(self, hits: list[str]) -> str:
        """The product to open among `hits` (which hold the goal), as `pick` says."""
        if self.pick == "goal":
            return self.goal.asin
        by_asin = self.env.catalog.by_asin
        before = hits[: hits.index(self.goal.asin)]
        return next((a for a in before if self._best_score(by_asin[a]) >= 1.0), self.goal.asin)

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


class BuyHereAgent(ExpertAgent):
    """Buys the product whose page is open when it takes over, choosing the
    instruction's options where the page offers them (ExpertAgent's option plan for
    that product). A worker's correction for an episode that left a product page
    showing nothing wrong and then never bought (`WorkerConfig.correction_cuts`)."""

    def reset(self, env: WebShopEnv) -> None:
        if env.session.page != "item":
            raise ValueError(f"BuyHereAgent takes over on a product page, not on the {env.session.page!r} page")
        self.env, self.goal = env, env.session.goal
        self.query, self.target = "", env.session.asin
        self.wanted_options = self._option_plan(self.target)


class HumanLikeAgent:
    """A noisy, exploratory shopper: the stand-in for WebShop's human demonstrations
    (which cannot be downloaded here). It recognises the goal product when it sees
    it (it reads `env.session.goal`, like the expert), but shops the way people do:

    - its first query is a paraphrase: the instruction's keywords with attributes
      dropped and/or reordered, or only the product type; when the product is not on
      the first results pages it goes back and types a fuller query;
    - it sometimes opens a wrong (plausible-looking) product first and goes back,
      and sometimes reads a sub-page (Description / Features / Reviews) and returns;
    - it sometimes skips an option or clicks a wrong value of the option's group;
    - it sometimes settles for a plausible product that is not the goal.

    The probabilities are calibrated so that its success on the default catalog's
    test split is near WebShop's human average (about 50%; docs/RESULTS.md). Every
    choice comes from one RNG seeded at construction, so a seed fixes the episodes.
    """

    def __init__(self, seed: int | None = None, p_type_only: float = 0.2, p_drop_words: float = 0.35,
                 p_reorder: float = 0.3, p_wrong_first: float = 0.25, p_subpage: float = 0.3,
                 p_skip_option: float = 0.2, p_wrong_option: float = 0.15, p_settle: float = 0.2,
                 max_pages: int = 2):
        self.rng = np.random.default_rng(seed)
        self.p_type_only, self.p_drop_words, self.p_reorder = p_type_only, p_drop_words, p_reorder
        self.p_wrong_first, self.p_subpage = p_wrong_first, p_subpage
        self.p_skip_option, self.p_wrong_option, self.p_settle = p_skip_option, p_wrong_option, p_settle
        self.max_pages = max_pages
        self.expert = ExpertAgent()

    def reset(self, env: WebShopEnv) -> None:
        self.env = env
        self.goal = env.session.goal
        self.expert.reset(env)  # the product it would recognise, and the query that finds it
        self.queries = [self._paraphrase(), shopper_query(self.goal.instruction_text), self.expert.query]
        self.num_searches = 0
        self.settle = bool(self.rng.random() < self.p_settle)
        self.wrong_first = bool(self.rng.random() < self.p_wrong_first)
        self.purchase: str | None = None  # the asin it decided to buy
        self.option_plan: dict[str, str] = {}
        self.read_subpage: set[str] = set()

    # -- planning ---------------------------------------------------------------------
    def _paraphrase(self) -> str:
        words = re.sub(r"[,.]", " ", shopper_query(self.goal.instruction_text)).split()
        type_words = set(self.goal.query.split())
        if self.rng.random() < self.p_type_only:
            return self.goal.query
        if self.rng.random() < self.p_drop_words:
            kept = [w for w in words if w in type_words or self.rng.random() > 0.4]
            words = kept or words
        if self.rng.random() < self.p_reorder:
            attrs = [w for w in words if w not in type_words]
            self.rng.shuffle(attrs)
            words = list(dict.fromkeys(w for w in words if w in type_words)) + attrs
        return " ".join(words)

    def _noisy_options(self, asin: str) -> dict[str, str]:
        """The expert's option picks for `asin`, each skipped or replaced by a wrong
        value of its group now and then."""
        product = self.env.catalog.by_asin[asin]
        plan = {}
        for group, value in self.expert._option_plan(asin).items():
            r = self.rng.random()
            others = [v for v in product.options[group] if v != value]
            if r < self.p_skip_option:
                continue
            if r < self.p_skip_option + self.p_wrong_option and others:
                value = others[int(self.rng.integers(len(others)))]
            plan[group] = value
        return plan

    def _plausible(self, asins: list[str]) -> list[str]:
        """Shown products, most instruction-like title first."""
        query = shopper_query(self.goal.instruction_text)
        by_asin = self.env.catalog.by_asin
        return sorted(asins, key=lambda a: -token_set_score(by_asin[a].title.lower(), query))

    def _steps_left(self) -> int:
        return self.env.max_steps - self.env.steps

    # -- acting -------------------------------------------------------------------------
    def act(self, observation: str, info: dict) -> str:
        acts = info["available_actions"]
        page = info["page"]
        if SEARCH_ACTION in acts:
            q = self.queries[min(self.num_searches, len(self.queries) - 1)]
            self.num_searches += 1
            return f"search[{q}]"
        if page == "results":
            return self._on_results(acts)
        if page == "sub":
            return "click[< prev]"
        if page == "item":
            return self._on_item(info)
        return acts[0] if acts else "click[back to search]"

    def _decide(self, asin: str) -> str:
        self.purchase = asin
        self.option_plan = self._noisy_options(asin)
        return f"click[{asin.lower()}]"

    def _on_results(self, acts: list[str]) -> str:
        shown = [a[len("click["):-1].upper() for a in acts]
        shown = [a for a in shown if a in self.env.catalog.by_asin]
        target, left = self.expert.target, self._steps_left()
        plausible = self._plausible(shown)
        if self.purchase in shown:  # back from a product it had chosen
            return f"click[{self.purchase.lower()}]"
        wrong = [a for a in plausible if a != target]
        if self.wrong_first and wrong and left > 6:
            self.wrong_first = False
            return f"click[{wrong[0].lower()}]"
        if self.settle and plausible:  # one of the three best-looking products
            return self._decide(plausible[int(self.rng.integers(min(3, len(plausible))))])
        if target in shown:
            return self._decide(target)
        page_num = self.env.session.page_num
        if page_num < self.max_pages and f"click[{NEXT_PAGE}]" in acts and left > 5:
            return f"click[{NEXT_PAGE}]"
        if self.num_searches < len(self.queries) and left > 6:
            return "click[back to search]"
        if plausible:  # out of patience: the best-looking product here
            return self._decide(plausible[0])
        return "click[back to search]"

    def _on_item(self, info: dict) -> str:
        asin, left = info["asin"], self._steps_left()
        if asin != self.purchase:  # the wrong product it opened first: a look, then back
            if asin not in self.read_subpage and self.rng.random() < self.p_subpage and left > 7:
                self.read_subpage.add(asin)
                return f"click[{SUB_PAGE_NAMES[int(self.rng.integers(len(SUB_PAGE_NAMES)))]}]"
            return "click[< prev]"
        pending = [v for g, v in self.option_plan.items() if info["options"].get(g) != v]
        if asin not in self.read_subpage and left > len(pending) + 3:
            self.read_subpage.add(asin)
            if self.rng.random() < self.p_subpage:
                return f"click[{SUB_PAGE_NAMES[int(self.rng.integers(len(SUB_PAGE_NAMES)))]}]"
        if pending and left > 1:
            return f"click[{pending[0]}]"
        return f"click[{BUY_NOW}]"


AGENTS = {"rule": RuleAgent, "random": RandomAgent, "expert": ExpertAgent, "human-like": HumanLikeAgent}
SEEDED_AGENTS = ("random", "human-like")


def make_agent(name: str, seed: int | None = None) -> Agent:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; expected one of {sorted(AGENTS)}")
    return AGENTS[name](seed) if name in SEEDED_AGENTS else AGENTS[name]()


__all__ = ["AGENTS", "ExpertAgent", "HumanLikeAgent", "RandomAgent", "RuleAgent", "make_agent", "shopper_query",
           "strip_price_clause", "PRODUCT_WINDOW"]
