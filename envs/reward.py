"""WebShop's purchase reward, component by component.

Follows `get_reward` of WebShop (Yao et al., 2022, Sec. 3.1 and its
`web_agent_site/engine/goal.py`):

    r = (n_attr_matched + n_option_matched + 1[price <= upper])
        / (n_attrs + n_options + 1) * r_type

r_type is 1.0 when query, category or title nouns agree, 0.5 when none does,
0.1 when fewer than a tenth of the goal title's nouns appear, 0.0 when none.
Fuzzy comparisons use thefuzz's token-set ratio semantics (see
`envs.normalize.token_set_score`), with WebShop's threshold of > 85.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

from envs.normalize import normalize_color, token_set_score

if TYPE_CHECKING:
    from envs.products import Goal, Product

FUZZY_THRESHOLD = 85
CATEGORY_SEP = "›"


@dataclass(frozen=True)
class TypeMatch:
    """The type part of the reward."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


@dataclass(frozen=True)
class RewardInfo:
    """Every component of one purchase's reward (WebShop's verbose `info`, plus counts)."""

    total: float
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float
    r_att: float
    num_attr_matches: int
    w_att: float
    r_option: float | None
    num_option_matches: int
    w_option: float | None
    r_price: bool
    w_price: float

    def as_dict(self) -> dict:
        return asdict(self)


def type_reward(
    purchased_query: str,
    purchased_category: str,
    purchased_nouns: Sequence[str],
    goal_query: str,
    goal_category: str,
    goal_nouns: Sequence[str],
) -> TypeMatch:
    """WebShop's `get_type_reward` on pre-extracted title nouns."""
    query_match = purchased_query == goal_query
    bought = {c.strip() for c in purchased_category.split(CATEGORY_SEP)}
    wanted = {c.strip() for c in goal_category.split(CATEGORY_SEP)}
    category_match = len(bought & wanted) >= 2
    if not goal_nouns:
        title_score = 0.2
    else:
        title_score = len(set(purchased_nouns) & set(goal_nouns)) / len(goal_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal_attributes: Sequence[str]) -> int:
    """Goal attributes found in the product: fuzzy against its attribute list,
    else as a substring of its lower-cased title, bullet points or description."""
    num = 0
    for wanted in goal_attributes:
        if any(token_set_score(have, wanted) > FUZZY_THRESHOLD for have in product.attributes):
            num += 1
        elif (
            wanted in product.title_lower
            or wanted in product.bullets_lower
            or wanted in product.description_lower
        ):
            num += 1
    return num


def option_matches(purchased: Sequence[str], wanted: Sequence[str]) -> int:
    """Goal option values matched by a purchased option value, after WebShop's
    colour normalisation of both sides."""
    bought = [normalize_color(o) for o in purchased]
    num = 0
    for goal_option in (normalize_color(o) for o in wanted):
        if any(token_set_score(p, goal_option) > FUZZY_THRESHOLD for p in bought):
            num += 1
    return num


def purchase_reward(
    product: Product, goal: Goal, price: float, options: dict[str, str]
) -> RewardInfo:
    """Score buying `product` at `price` with the chosen `options` for `goal`."""
    tm = type_reward(
        product.query, product.product_category, product.title_nouns,
        goal.query, goal.product_category, goal.title_nouns,
    )
    n_attrs, n_opts = len(goal.attributes), len(goal.goal_options)
    denom = n_attrs + n_opts + 1
    r_price = price <= goal.price_upper
    num_att = attribute_matches(product, goal.attributes)
    num_opt = option_matches(list(options.values()), goal.goal_options)
    total = (num_att + num_opt + int(r_price)) / denom * tm.r_type
    return RewardInfo(
        total=total,
        r_type=tm.r_type,
        query_match=tm.query_match,
        category_match=tm.category_match,
        title_score=tm.title_score,
        r_att=num_att / n_attrs if n_attrs else 0.0,
        num_attr_matches=num_att,
        w_att=n_attrs / denom,
        r_option=num_opt / n_opts if n_opts else None,
        num_option_matches=num_opt,
        w_option=n_opts / denom if n_opts else None,
        r_price=r_price,
        w_price=1 / denom,
    )
