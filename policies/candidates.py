"""What the policy chooses from and what it reads: candidate texts and the state.

`build_candidates` turns the env's actions into texts the policy can score:
`search[...]` becomes one `search[<query>]` per query variant of the instruction
(`policies.search_queries`); a product link becomes `click[item - <title> - <price>
- <budget note>]`: the title because an asin says nothing to a reader (WebShop's IL
model shows it too), the price because the cut state shows few of the listed
products, and a budget note (`within budget`, `over budget`, `partly over budget`)
because a small encoder does not learn to compare a price with the instruction's
price clause. A product already opened in this episode is not offered again, so a
policy that went back from it cannot loop by reopening it. Other clicks stay as
they are. `Candidates.texts` is what the policy scores and trajectories store;
`Candidates.actions` is the env action for each text, same order.

`policy_state` is the state the policy reads: on a product page, the observation
led by the option note (`option_note`: whether the page offers each option the
instruction asks for), the price note (`price_note`) and "You have clicked
<option>." for each chosen option, as WebShop's `text_rich` mode shows them;
without them a page before choosing a size looks like the same page after it. The
notes read only what the policy sees (the instruction, the page and the store's
option values), with the reward's own notion of a match.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

from envs import pages
from envs.env import SEARCH_ACTION, WebShopEnv
from envs.reward import option_matches
from policies.search_queries import search_queries

ITEM_PREFIX = "item - "
OVER_BUDGET_NOTE = "price over budget."


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


def item_text(title: str, price_tag: str | None = None, budget: str | None = None) -> str:
    """The candidate text of a product link (see module doc)."""
    price = f" - {price_tag.lower()}" if price_tag else ""
    note = f" - {budget}" if budget else ""
    return f"click[{ITEM_PREFIX}{title.lower()}{price}{note}]"


BUDGET_NOTES = (None, "within budget", "over budget", "partly over budget")


def catalog_texts(catalog) -> list[str]:
    """Every candidate text a catalog's pages can offer other than searches: each product's
    link under each budget note, each option value and each navigation button. A search
    comes from the user's instruction; everything else is a function of the catalog, so
    a server can encode it ahead of its requests."""
    texts = [item_text(p.title, p.price_tag, note) for p in catalog.by_asin.values() for note in BUDGET_NOTES]
    texts += [f"click[{v.lower()}]" for values in catalog.option_values.values() for v in values]
    buttons = (pages.BACK_TO_SEARCH, pages.NEXT_PAGE, pages.PREV_PAGE, pages.BUY_NOW, *pages.SUB_PAGES)
    texts += [f"click[{b.lower()}]" for b in buttons]
    return list(dict.fromkeys(texts))


@functools.lru_cache(maxsize=8192)
def _value_pattern(value: str) -> re.Pattern:
    return re.compile(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])")


def asked_options(instruction: str, groups: Sequence[str], vocabulary: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The value the instruction asks for in each of `groups`, read from its text.

    Every store value of those groups found in the instruction as a whole phrase is
    a mention; longer values claim their words first ("pack of 6" leaves no "6" for
    a size), and where a group is mentioned more than once the last mention wins:
    instructions list the product's features first and its options last ("natural
    hair ... hair extensions with color chestnut brown").
    """
    store = tuple((g, tuple(vocabulary.get(g, ()))) for g in sorted({g.lower() for g in groups}))
    return dict(_asked_options(instruction.lower(), store))


@functools.lru_cache(maxsize=4096)
def _asked_options(text: str, store: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, str], ...]:
    values = sorted(((v, g) for g, vs in store for v in vs), key=lambda vg: -len(vg[0]))
    taken: list[tuple[int, int, str, str]] = []
    for value, group in values:
        for m in _value_pattern(value).finditer(text):
            if not any(m.start() < end and start < m.end() for start, end, _, _ in taken):
                taken.append((m.start(), m.end(), value, group))
    asked: dict[str, str] = {}
    for _, _, value, group in sorted(taken):
        asked[group] = value
    return tuple(asked.items())


def offers(page_values: Sequence[str], wanted: str) -> bool:
    """Whether one of a page's option values matches `wanted` the way the reward
    matches a bought option to an asked one (`envs.reward.option_matches`)."""
    return option_matches(page_values, [wanted]) > 0


def option_note(instruction: str, page_options: Mapping[str, Sequence[str]],
                vocabulary: Mapping[str, Sequence[str]]) -> str | None:
    """ "size 7 not offered. color purple offered." for a product page's option groups
    whose values the instruction asks for; None when it asks for none of them."""
    asked = asked_options(instruction, [g.lower() for g in page_options], vocabulary)
    if not asked:
        return None
    parts = []
    for group, values in page_options.items():
        wanted = asked.get(group.lower())
        if wanted is not None:
            parts.append(f"{group.lower()} {wanted} {'offered' if offers(values, wanted) else 'not offered'}.")
    return " ".join(parts)


def price_note(instruction: str, pricing: Sequence[float]) -> str | None:
    """ "price over budget." for a product page whose every price is above the
    instruction's price clause (`budget_note`'s "over budget"), else None: the page
    shows "Price: $84.95" and the instruction "lower than 70.00 dollars", and the
    policy does not learn to compare the two (see module doc)."""
    return OVER_BUDGET_NOTE if budget_note(list(pricing), price_limit(instruction)) == "over budget" else None


def item_note(instruction: str, page_options: Mapping[str, Sequence[str]],
              vocabulary: Mapping[str, Sequence[str]], pricing: Sequence[float] | None) -> str | None:
    """The note that leads a product page's state: the option note, then the price
    note; None when neither has anything to say."""
    parts = [option_note(instruction, page_options, vocabulary),
             price_note(instruction, pricing) if pricing else None]
    return " ".join(p for p in parts if p) or None


def page_pricing(observation: str) -> list[float] | None:
    """A product page's prices read back from its "Price: $a" or "Price: $a to $b"
    segment (for Serve's `/act`, like `page_options`); None on any other page."""
    segs = [s.strip() for s in observation.split(" [SEP] ")]
    if not segs or segs[-1].lower() != "buy now":
        return None
    for seg in segs:
        if seg.startswith("Price: $"):
            try:
                return [float(v.replace(",", "").split()[0]) for v in seg[len("Price: "):].split("$")[1:]]
            except (ValueError, IndexError):
                return None
    return None


def page_options(observation: str, available: Sequence[str], groups: Collection[str]) -> dict[str, list[str]]:
    """An item page's option groups read back from its text (for a client that sends
    only the page and its actions, as Serve's `/act` does): after "< Prev", each
    segment naming a store option group (`groups`, lower-case) opens a group, and
    each following segment that can be clicked is one of its values. Empty on any
    other page (an item page ends with "Buy Now")."""
    segs = observation.split(" [SEP] ")
    if not segs or segs[-1].strip().lower() != "buy now" or "< Prev" not in segs:
        return {}
    clickable = {a.lower() for a in available}
    options: dict[str, list[str]] = {}
    group = None
    for seg in segs[segs.index("< Prev") + 1:]:
        text = seg.strip()
        if text.lower() in groups:
            group = text
            options[group] = []
        elif group is not None and f"click[{text.lower()}]" in clickable:
            options[group].append(text)
        else:
            break
    return options


def state_text(observation: str, note: str | None, clicked: Sequence[str]) -> str:
    """The observation led by the option note and "You have clicked <option>." for
    each chosen option, when there are any (see module doc)."""
    prefix = ([note] if note else []) + [f"You have clicked {v}." for v in clicked]
    return f"{' '.join(prefix)} [SEP] {observation}" if prefix else observation


def policy_state(env: WebShopEnv, observation: str) -> str:
    """The observation with the option note and the chosen options stated first
    (see module doc)."""
    s = env.session
    if s.page not in ("item", "sub"):
        return observation
    note = None
    if s.page == "item":
        product = env.catalog.by_asin[s.asin]
        note = item_note(s.goal.instruction_text, product.options, env.catalog.option_values, product.pricing)
    return state_text(observation, note, list(s.options.values()))


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
    visited = getattr(env.session, "visited", None) or ()
    for a in available:
        if a == SEARCH_ACTION:
            continue
        arg = a[len("click["):-1]
        product = env.catalog.by_asin.get(arg.upper()) if env.session.page == "results" else None
        if product is None:
            texts.append(a)
        elif product.asin in visited:
            continue
        else:
            texts.append(item_text(product.title, product.price_tag, budget_note(product.pricing, limit)))
        actions.append(a)
    return Candidates(texts, actions)
