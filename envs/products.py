"""Products and the goals that ask for them: the records a `Catalog` holds.

`Product` is one product as the pages and the reward see it; `Goal` is one shopping
instruction with what satisfies it (WebShop's attributes, options and a price upper
bound). `price_clause` is WebShop's rule for that bound, shared by the file loader
and the generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from envs.nouns import title_nouns

PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_LIMIT = 1_000_000.0


class CatalogError(ValueError):
    """A catalog file that cannot be read; names the file, record and field."""

    def __init__(self, path: str | Path, record: Any, field_name: str, problem: str):
        self.path, self.record, self.field_name = str(path), record, field_name
        super().__init__(f"{path}: record {record}: field '{field_name}': {problem}")


@dataclass(slots=True, eq=False)
class Product:
    """One product as the pages and the reward see it."""

    asin: str
    title: str
    category: str
    query: str
    product_category: str
    description: str
    bullet_points: list[str]
    options: dict[str, list[str]]  # group name -> display values
    pricing: list[float]
    price_tag: str
    attributes: list[str]
    price: float = 100.0  # the fixed price charged (inside `pricing`)
    rating: str = "N.A."
    reviews: list[dict] = field(default_factory=list)
    title_lower: str = ""
    bullets_lower: str = ""
    description_lower: str = ""
    title_nouns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.title_lower = self.title.lower()
        self.bullets_lower = " ".join(self.bullet_points).lower()
        self.description_lower = self.description.lower()
        self.title_nouns = title_nouns(self.title)

    def search_text(self) -> str:
        """What the search index sees: title, description, bullets, attributes, options."""
        opts = ", and ".join(f"{k}: {', '.join(v)}" for k, v in self.options.items())
        return " ".join(
            [self.title, self.description, " ".join(self.bullet_points),
             " ".join(self.attributes), opts]
        ).lower()


@dataclass(frozen=True, slots=True)
class Goal:
    """One shopping instruction and what satisfies it."""

    goal_id: int
    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[str, ...]
    price_upper: float
    query: str
    product_category: str
    name: str
    category: str
    title_nouns: tuple[str, ...]


def price_clause(price: float, rng: random.Random) -> tuple[float, str]:
    """WebShop's price bound for a goal: the larger of two draws from the next four
    $10 steps above `price`, and the instruction's ", and price lower than ..." ending."""
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return NO_PRICE_LIMIT, ""
    upper = max(rng.sample(steps, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def make_goal(p: Product, text: str, attrs: Sequence[str], opts: Sequence[str], upper: float) -> Goal:
    """A goal for product `p`; its `goal_id` is -1 until a `Catalog` numbers it."""
    return Goal(
        goal_id=-1, asin=p.asin, instruction_text=text, attributes=tuple(attrs),
        goal_options=tuple(opts), price_upper=upper, query=p.query,
        product_category=p.product_category, name=p.title, category=p.category,
        title_nouns=tuple(p.title_nouns),
    )


def with_goal_id(goal: Goal, goal_id: int) -> Goal:
    fields = {k: getattr(goal, k) for k in Goal.__slots__}
    fields["goal_id"] = goal_id
    return Goal(**fields)
