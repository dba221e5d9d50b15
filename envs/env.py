"""`WebShopEnv`: one WebShop shopping session as a gymnasium environment.

Follows WebShop's text environment (`web_agent_text_env.py`): the agent starts
on the search page with an instruction, acts with `search[keywords]` or
`click[name]` strings, and the episode ends when it clicks "buy now" (reward =
WebShop's score in [0, 1]) or is truncated after `max_steps` actions.

Differences from WebShop, on purpose: a search is valid only where the search
bar is shown (WebShop also accepts one from any page); the done page shows the
score instead of WebShop's hidden debug block.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import envs.pages as pages
from envs.catalog import Catalog
from envs.products import Goal, Product
from envs.reward import RewardInfo, purchase_reward
from envs.search import SearchIndex, index_for

SEARCH_ACTION = "search[...]"
_ACTION = re.compile(r"^(\w+)\[(.+)\]$", re.DOTALL)
# Observations are text; this charset covers the generated catalog and ASCII
# product data (real WebShop titles may hold other characters; they pass through).
OBS_CHARSET = string.printable + "›•–—’“”é"


def parse_action(action: str) -> tuple[str, str | None]:
    """`"click[Buy Now]"` -> ("click", "Buy Now"); unparseable -> (action, None)."""
    m = _ACTION.match(action.strip())
    return (m.group(1), m.group(2)) if m else (action, None)


@dataclass
class Session:
    """Where the shopper is: the page, the last search, the product and options."""

    goal: Goal
    page: str = "search"  # search | results | item | sub | done
    keywords: str | None = None
    results: list[str] | None = None
    page_num: int = 1
    asin: str | None = None
    sub_page: str | None = None
    options: dict[str, str] | None = None
    visited: set[str] | None = None


class WebShopEnv(gym.Env):
    """WebShop's text environment.

    Args:
        catalog: the catalog; None loads the default generated one (1k products).
        observation_mode: "text" (WebShop's [SEP]-joined text) or "text_rich".
        max_steps: actions before the episode is truncated.
        split: goals drawn by `reset` when no goal id is given.
        show_attrs: show WebShop's "Attributes" sub-page button.
        search_index: an index to use instead of the process-wide one.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        catalog: Catalog | None = None,
        observation_mode: str = "text",
        max_steps: int = 15,
        split: str = "train",
        show_attrs: bool = False,
        search_index: SearchIndex | None = None,
        render_mode: str | None = None,
    ):
        if observation_mode not in ("text", "text_rich"):
            raise ValueError(f"observation_mode must be 'text' or 'text_rich', got {observation_mode!r}")
        if catalog is None:
            from envs.generate import default_catalog

            catalog = default_catalog()
        self.catalog = catalog
        self.index = search_index or index_for(catalog)
        self.observation_mode = observation_mode
        self.max_steps = max_steps
        self.split = split
        self.show_attrs = show_attrs
        self.render_mode = render_mode
        catalog.goal_ids(split)  # validates the split name
        self.observation_space = gym.spaces.Text(max_length=1_000_000, charset=OBS_CHARSET)
        self.action_space = gym.spaces.Text(max_length=512, charset=OBS_CHARSET)
        self.session: Session | None = None
        self.steps = 0
        self._segments: list[pages.Segment] = []
        self._clickables: dict[str, pages.Segment] = {}

    # -- gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        """Start a session. `options`: {"goal_id": i} or {"split": "train|eval|test"}."""
        super().reset(seed=seed)
        options = options or {}
        if "goal_id" in options:
            goal_id = int(options["goal_id"])
            if not 0 <= goal_id < len(self.catalog.goals):
                raise ValueError(f"goal_id {goal_id} out of range [0, {len(self.catalog.goals)})")
        else:
            ids = self.catalog.goal_ids(options.get("split", self.split))
            goal_id = ids[int(self.np_random.integers(len(ids)))]
        self.session = Session(goal=self.catalog.goals[goal_id])
        self.steps = 0
        self._show()
        return self._observation(), self._info(valid=True)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.session is None:
            raise RuntimeError("call reset() before step()")
        if self.session.page == "done":
            raise RuntimeError("episode is over (bought); call reset()")
        self.steps += 1
        name, arg = parse_action(action)
        reward, reward_info, valid = 0.0, None, True
        if name == "search" and arg and self.session.page == "search":
            self._search(arg.lower().strip())
        elif name == "click" and arg is not None and arg.lower() in self._clickables:
            reward_info = self._click(self._clickables[arg.lower()])
            reward = reward_info.total if reward_info else 0.0
        else:
            valid = False  # WebShop: an invalid action changes nothing
        self._show()
        terminated = self.session.page == "done"
        truncated = not terminated and self.steps >= self.max_steps
        info = self._info(valid=valid)
        if reward_info is not None:
            info["reward_info"] = reward_info.as_dict()
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        return pages.as_text_rich(self._segments) if self.render_mode == "ansi" else None

    # -- transitions ---------------------------------------------------------------
    def _search(self, keywords: str, page_num: int = 1) -> None:
        s = self.session
        s.keywords, s.page_num, s.page = keywords, page_num, "results"
        s.results = self.index.search(keywords)
        s.asin, s.options, s.sub_page = None, {}, None

    def _click(self, seg: pages.Segment) -> RewardInfo | None:
        s, click = self.session, seg.click
        if click == pages.BACK_TO_SEARCH:
            s.page, s.keywords, s.results, s.asin, s.options = "search", None, None, None, {}
            # `visited` stays: products opened in this episode, whatever search showed them
        elif click == pages.NEXT_PAGE and s.page == "results":
            s.page_num += 1
        elif click == pages.PREV_PAGE and s.page == "results":
            s.page_num -= 1
        elif click == pages.PREV_PAGE and s.page == "sub":
            s.page, s.sub_page = "item", None
        elif click == pages.PREV_PAGE and s.page == "item":
            self._search(s.keywords, s.page_num)
        elif click == pages.BUY_NOW:
            return self._buy()
        elif seg.kind == "product":
            s.page, s.asin, s.options = "item", seg.text, {}
            s.visited = (s.visited or set()) | {seg.text}
        elif seg.kind == "option":
            group = self._option_group(self.catalog.by_asin[s.asin], click)
            s.options = {**s.options, group: click}
        elif seg.text in pages.SUB_PAGES:
            s.page, s.sub_page = "sub", seg.text
        return None

    @staticmethod
    def _option_group(product: Product, value: str) -> str:
        group = None
        for name, values in product.options.items():
            if value in values:
                group = name  # the last group holding the value wins, as in WebShop
        return group

    def _buy(self) -> RewardInfo:
        s = self.session
        product = self.catalog.by_asin[s.asin]
        info = purchase_reward(product, s.goal, product.price, s.options)
        s.page = "done"
        self._done_reward = info.total
        return info

    # -- observation ---------------------------------------------------------------
    def _show(self) -> None:
        s, instr = self.session, self.session.goal.instruction_text
        if s.page == "search":
            segs = pages.search_page(instr)
        elif s.page == "results":
            start = (s.page_num - 1) * pages.PRODUCT_WINDOW
            shown = [self.catalog.by_asin[a] for a in s.results[max(start, 0):start + pages.PRODUCT_WINDOW]]
            segs = pages.results_page(instr, shown, s.page_num, len(s.results), s.visited or set())
        elif s.page == "item":
            segs = pages.item_page(instr, self.catalog.by_asin[s.asin], s.options, self.show_attrs)
        elif s.page == "sub":
            segs = pages.sub_page(instr, self.catalog.by_asin[s.asin], s.sub_page)
        else:
            segs = pages.done_page(self._done_reward)
        self._segments = segs
        self._clickables = pages.clickables(segs)

    def _observation(self) -> str:
        if self.observation_mode == "text":
            return pages.as_text(self._segments)
        return pages.as_text_rich(self._segments)

    def available_actions(self) -> list[str]:
        """`search[...]` where the search bar is shown, then every `click[...]`."""
        acts = [SEARCH_ACTION] if self.session.page == "search" else []
        return acts + [f"click[{c}]" for c in self._clickables]

    def _info(self, valid: bool) -> dict[str, Any]:
        s = self.session
        return {
            "available_actions": self.available_actions(),
            "page": s.page,
            "goal_id": s.goal.goal_id,
            "instruction": s.goal.instruction_text,
            "asin": s.asin,
            "options": dict(s.options or {}),
            "steps": self.steps,
            "valid": valid,
        }
