"""What the policy chooses from: the env's actions turned into candidate texts.

The env lists `search[...]` (free text) and `click[...]` actions. The policy needs
a finite list of texts it can read:

- `search[...]` becomes one `search[<query>]` per query variant of the instruction
  (`policies.search_queries`);
- a product link `click[b07zjhq3yt]` becomes `click[item - <title> - <price>]`:
  WebShop's IL model (`click_item_name`) shows the title, because an asin says
  nothing to a reader; we add the price the results page shows next to it, since
  the state is cut to 128 tokens on the CPU preset and keeps only ~2 of the 10
  listed products, so without it the policy cannot respect the price clause; and
  since a 6-layer encoder trained on 1,000 demonstrations does not learn to compare
  "$84.95" with "lower than 70.00 dollars" (IL bought over budget 19% of the time
  with the bare price), the text also says how the price relates to the
  instruction's own price clause: `within budget`, `over budget`, or `partly over
  budget` for a price range that straddles the limit - read from the instruction
  the policy sees, nothing hidden; a
  product already opened in this episode reads `click[visited item - ...]`
  (the shopper's memory: without it a policy that went back from a product cannot
  tell it from the others and opens it again, forever);
- every other click is kept as it is.

`Candidates.texts` is what the policy scores and what trajectories store;
`Candidates.actions` is the env action for each text, same order.

`policy_state` is what the policy reads as the state: the observation, prefixed on
product pages by "You have clicked <option>." for each chosen option, as WebShop's
`text_rich` mode does. WebShop's `text` mode does not show chosen options, so
without this a policy cannot tell an item page before choosing a size from the
same page after it, and never learns when to buy.
"""

from __future__ import annotations

from dataclasses import dataclass

import re

from envs.env import SEARCH_ACTION, WebShopEnv
from policies.search_queries import search_queries

ITEM_PREFIX = "item - "
VISITED_PREFIX = "visited item - "


@dataclass(frozen=True)
class Candidates:
    texts: list[str]  # (K,) what the policy reads
    actions: list[str]  # (K,) what the env receives

    def index_of_action(self, action: str) -> int | None:
        """Index of an env action (case-insensitive), if offered."""
        low = action.lower()
        for i, a in enumerate(self.actions):
            if a.lower() == low:
                return i
        return None


PRICE_LIMIT = re.compile(r"price lower than \$?([\d,]+(?:\.\d+)?) dollars")


def price_limit(instruction: str) -> float | None:
    """The upper bound of the instruction's "price lower than X dollars" clause, if any."""
    m = PRICE_LIMIT.search(instruction.lower())
    return float(m.group(1).replace(",", "")) if m else None


def budget_note(pricing: list[float], limit: float | None) -> str | None:
    """How a product's price (or price range) relates to the instruction's limit."""
    if limit is None or not pricing:
        return None
    if max(pricing) <= limit:
        return "within budget"
    if min(pricing) > limit:
        return "over budget"
    return "partly over budget"


def item_text(title: str, price_tag: str | None = None, visited: bool = False, budget: str | None = None) -> str:
    """The candidate text of a product link (see module doc)."""
    price = f" - {price_tag.lower()}" if price_tag else ""
    note = f" - {budget}" if budget else ""
    return f"click[{VISITED_PREFIX if visited else ITEM_PREFIX}{title.lower()}{price}{note}]"


def policy_state(env: WebShopEnv, observation: str) -> str:
    """The observation with the chosen options stated first (see module doc)."""
    s = env.session
    if s.page not in ("item", "sub") or not s.options:
        return observation
    clicked = " ".join(f"You have clicked {v}." for v in s.options.values())
    return f"{clicked} [SEP] {observation}"


def build_candidates(env: WebShopEnv, available: list[str], extra_searches: tuple[str, ...] = ()) -> Candidates:
    """Candidate texts and env actions for the env's current page."""
    texts: list[str] = []
    actions: list[str] = []
    limit = price_limit(env.session.goal.instruction_text)
    if SEARCH_ACTION in available:
        queries = search_queries(env.session.goal.instruction_text)
        for q in [*queries, *(e for e in extra_searches if e not in queries)]:
            texts.append(f"search[{q}]")
            actions.append(f"search[{q}]")
    for a in available:
        if a == SEARCH_ACTION:
            continue
        arg = a[len("click["):-1]
        product = env.catalog.by_asin.get(arg.upper()) if env.session.page == "results" else None
        if product is None:
            texts.append(a)
        else:
            visited = product.asin in (getattr(env.session, "visited", None) or ())
            texts.append(item_text(product.title, product.price_tag, visited, budget_note(product.pricing, limit)))
        actions.append(a)
    return Candidates(texts, actions)
