"""Products, goals and the read-only catalog every env copy in a process shares.

A catalog is loaded from files in WebShop's own formats (the real WebShop files,
or the generated catalog, which `envs.generate` writes in the same formats):

- products `items_shuffle*.json`: a JSON list of records with `asin`, `name`,
  `full_description`, `small_description` (list or str), `pricing` ("$a to $b",
  "$a" or empty), `customization_options` ({group: [{"value", "image"}]} or null),
  `category`, `query`, `product_category`;
- attributes `items_ins_v2*.json`: {asin: {"attributes": [...], "instruction": str,
  "instruction_attributes": [...]}};
- human instructions `items_human_ins.json`: {asin: [{"instruction",
  "instruction_attributes", "instruction_options"}]};
- reviews `reviews.json` (optional): [{"asin", "average_rating", "reviews":
  [{"title", "score"|"stars", "body"|"review"}]}].

WebShop's loading rules are kept: option values stripped, '/' shown as ' | ' and
lower-cased; a missing price reads as $100; a range is priced once, uniformly
inside it; goals get a price upper bound drawn from the next $10 steps above the
product's price; goals are shuffled with seed 233; test = first 500 goals,
eval = next 1,000, train = the rest.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Sequence

from envs.normalize import option_display
from envs.nouns import title_nouns

PRICE_STEPS = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_LIMIT = 1_000_000.0
GOAL_SHUFFLE_SEED = 233
SPLITS = ("train", "eval", "test")


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


def parse_pricing(raw: Any, path: Path, index: int) -> tuple[list[float], str]:
    """WebShop's price parsing: "$a to $b" -> [a, b]; empty -> [100.0]."""
    if raw is None or raw == "" or raw == []:
        return [100.0], "$100.0"
    if not isinstance(raw, str):
        raise CatalogError(path, index, "pricing", f"expected a string like '$a to $b', got {raw!r}")
    try:
        values = [float(Decimal(re.sub(r"[^\d.]", "", p))) for p in raw.split("$")[1:]]
    except InvalidOperation:
        raise CatalogError(path, index, "pricing", f"cannot read a price in {raw!r}") from None
    if not values:
        raise CatalogError(path, index, "pricing", f"no '$' price in {raw!r}")
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def _require(rec: dict, key: str, types: tuple, path: Path, index: int) -> Any:
    if key not in rec:
        raise CatalogError(path, index, key, "missing")
    if not isinstance(rec[key], types):
        names = "/".join(t.__name__ for t in types)
        raise CatalogError(path, index, key, f"expected {names}, got {type(rec[key]).__name__}")
    return rec[key]


def _parse_options(raw: Any, path: Path, index: int) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise CatalogError(path, index, "customization_options", "expected an object")
    options: dict[str, list[str]] = {}
    for name, contents in raw.items():
        if contents is None:
            continue
        if not isinstance(contents, list):
            raise CatalogError(path, index, f"customization_options.{name}", "expected a list")
        values = []
        for j, c in enumerate(contents):
            if not isinstance(c, dict) or not isinstance(c.get("value"), str):
                raise CatalogError(
                    path, index, f"customization_options.{name}[{j}].value", "missing or not a string"
                )
            values.append(option_display(c["value"]))
        options[name.lower()] = values
    return options


def parse_product(rec: Any, path: Path, index: int, attributes: list[str]) -> Product:
    """Turn one `items_shuffle` record into a Product (raises CatalogError)."""
    if not isinstance(rec, dict):
        raise CatalogError(path, index, "<record>", f"expected an object, got {type(rec).__name__}")
    asin = _require(rec, "asin", (str,), path, index)
    bullets = rec.get("small_description", [])
    if isinstance(bullets, str):
        bullets = [bullets]
    elif not isinstance(bullets, list) or not all(isinstance(b, str) for b in bullets):
        raise CatalogError(path, index, "small_description", "expected a string or a list of strings")
    pricing, tag = parse_pricing(rec.get("pricing"), path, index)
    return Product(
        asin=asin,
        title=_require(rec, "name", (str,), path, index),
        category=_require(rec, "category", (str,), path, index),
        query=_require(rec, "query", (str,), path, index).lower().strip(),
        product_category=_require(rec, "product_category", (str,), path, index),
        description=rec.get("full_description") or "",
        bullet_points=bullets,
        options=_parse_options(rec.get("customization_options"), path, index),
        pricing=pricing,
        price_tag=tag,
        attributes=attributes,
    )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CatalogError(path, f"at line {e.lineno}", "<json>", e.msg) from None


def split_bounds(num_goals: int) -> dict[str, range]:
    """WebShop's split of the shuffled goals: test = first 500, eval = next 1,000,
    train = the rest. Catalogs with fewer than 2,000 goals keep the proportions
    (1/6 test, 1/3 eval) so every split is non-empty."""
    if num_goals >= 2000:
        test, eval_end = 500, 1500
    else:
        test = max(1, num_goals // 6)
        eval_end = test + max(1, num_goals // 3)
    return {"test": range(0, test), "eval": range(test, eval_end), "train": range(eval_end, num_goals)}


def price_clause(price: float, rng: random.Random) -> tuple[float, str]:
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return NO_PRICE_LIMIT, ""
    upper = max(rng.sample(steps, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def _str_list(value: Any, path: Path, record: Any, field_name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(path, record, field_name, "expected a list of strings")
    return value


class Catalog:
    """Products, prices and goals; read-only once built, shared by env copies.

    Args:
        products: the products in catalog order.
        goals: goals in their final (shuffled) order; `goal_id` is the index.
        source: a short description of where the catalog came from.
    """

    def __init__(self, products: list[Product], goals: list[Goal], source: str = ""):
        self.products = products
        self.by_asin = {p.asin: p for p in products}
        self.goals = goals
        self.source = source
        self.splits = split_bounds(len(goals))
        self._hash: str | None = None
        self._option_values: dict[str, tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.products)

    def add_train_goals(self, goals: Sequence[Goal]) -> None:
        """Append goals to the train split; the test and eval goals keep their ids.
        Their `goal_id`s are set here, continuing after the last goal."""
        train = self.splits["train"]  # always the last split (`split_bounds`)
        start = len(self.goals)
        self.goals.extend(_with_id(g, start + i) for i, g in enumerate(goals))
        self.splits["train"] = range(train.start, len(self.goals))

    def goal_ids(self, split: str) -> range:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.splits[split]

    @property
    def option_values(self) -> dict[str, tuple[str, ...]]:
        """Every option value the store shows, by lower-cased group name ("color" ->
        ("black", "navy blue", ...)): what a shopper who has browsed the store knows."""
        if self._option_values is None:
            groups: dict[str, set[str]] = {}
            for p in self.products:
                for group, values in p.options.items():
                    groups.setdefault(group.lower(), set()).update(v.lower() for v in values)
            self._option_values = {g: tuple(sorted(v)) for g, v in groups.items()}
        return self._option_values

    @property
    def content_hash(self) -> str:
        """SHA-256 over everything the search index depends on (asins and texts)."""
        if self._hash is None:
            h = hashlib.sha256()
            for p in self.products:
                h.update(p.asin.encode())
                h.update(b"\0")
                h.update(p.search_text().encode())
                h.update(b"\n")
            self._hash = h.hexdigest()
        return self._hash

    @classmethod
    def from_files(
        cls,
        products: str | Path,
        attributes: str | Path,
        human_instructions: str | Path | None = None,
        reviews: str | Path | None = None,
        num_products: int | None = None,
        price_seed: int = 0,
    ) -> "Catalog":
        """Load WebShop-format files. With `human_instructions`, goals are WebShop's
        human goals; without, its synthetic goals from `items_ins_v2`."""
        products_path, attr_path = Path(products), Path(attributes)
        raw = _read_json(products_path)
        if not isinstance(raw, list):
            raise CatalogError(products_path, "<file>", "<root>", "expected a JSON list of products")
        attrs = _read_json(attr_path)
        if not isinstance(attrs, dict):
            raise CatalogError(attr_path, "<file>", "<root>", "expected a JSON object keyed by asin")
        if num_products is not None:
            raw = raw[:num_products]
        items = cls._parse_products(raw, products_path, attrs, attr_path)
        if reviews is not None:
            cls._attach_reviews(items, Path(reviews))
        rng = random.Random(price_seed)
        for p in items:
            p.price = p.pricing[0] if len(p.pricing) == 1 else rng.uniform(*p.pricing[:2])
        if human_instructions is not None:
            goals = _human_goals(items, Path(human_instructions), rng)
        else:
            goals = _synthetic_goals(items, attrs, attr_path, rng)
        random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
        goals = [_with_id(g, i) for i, g in enumerate(goals)]
        return cls(items, goals, source=str(products_path.parent))

    @classmethod
    def from_dir(cls, directory: str | Path, **kwargs: Any) -> "Catalog":
        """Load a catalog directory holding `items_shuffle*.json`, `items_ins_v2*.json`
        and, when present, `items_human_ins.json` and `reviews.json`."""
        d = Path(directory)

        def find(pattern: str, required: bool) -> Path | None:
            hits = sorted(d.glob(pattern))
            if not hits and required:
                raise FileNotFoundError(f"{d}: no file matching {pattern!r}")
            return hits[0] if hits else None

        return cls.from_files(
            products=find("items_shuffle*.json", True),
            attributes=find("items_ins_v2*.json", True),
            human_instructions=find("items_human_ins*.json", False),
            reviews=find("reviews*.json", False),
            **kwargs,
        )

    @staticmethod
    def _parse_products(raw: list, path: Path, attrs: dict, attr_path: Path) -> list[Product]:
        seen: set[str] = set()
        items = []
        for i, rec in enumerate(raw):
            asin = rec.get("asin") if isinstance(rec, dict) else None
            # WebShop's rule: skip 'nan' and over-long asins, keep the first duplicate.
            if isinstance(asin, str) and (asin == "nan" or len(asin) > 10 or asin in seen):
                continue
            entry = attrs.get(asin, {}) if isinstance(asin, str) else {}
            if not isinstance(entry, dict):
                raise CatalogError(attr_path, asin, "<record>", "expected an object")
            product_attrs = entry.get("attributes", ["DUMMY_ATTR"])
            product_attrs = _str_list(product_attrs, attr_path, asin, "attributes")
            items.append(parse_product(rec, path, i, product_attrs))
            seen.add(items[-1].asin)
        return items

    @staticmethod
    def _attach_reviews(items: list[Product], path: Path) -> None:
        raw = _read_json(path)
        if not isinstance(raw, list):
            raise CatalogError(path, "<file>", "<root>", "expected a JSON list")
        by_asin = {p.asin: p for p in items}
        for i, rec in enumerate(raw):
            if not isinstance(rec, dict) or not isinstance(rec.get("asin"), str):
                raise CatalogError(path, i, "asin", "missing or not a string")
            product = by_asin.get(rec["asin"])
            if product is None:
                continue
            reviews = []
            for j, r in enumerate(rec.get("reviews") or []):
                score = r.get("score", r.get("stars")) if isinstance(r, dict) else None
                if score is None:
                    raise CatalogError(path, i, f"reviews[{j}].score", "missing")
                reviews.append(
                    {"title": r.get("title", ""), "score": score, "body": r.get("body", r.get("review", ""))}
                )
            product.reviews = reviews
            if rec.get("average_rating") is not None:
                product.rating = str(rec["average_rating"])


def make_goal(p: Product, text: str, attrs: Sequence[str], opts: Sequence[str], upper: float) -> Goal:
    return Goal(
        goal_id=-1, asin=p.asin, instruction_text=text, attributes=tuple(attrs),
        goal_options=tuple(opts), price_upper=upper, query=p.query,
        product_category=p.product_category, name=p.title, category=p.category,
        title_nouns=tuple(p.title_nouns),
    )


def _with_id(goal: Goal, goal_id: int) -> Goal:
    fields = {k: getattr(goal, k) for k in Goal.__slots__}
    fields["goal_id"] = goal_id
    return Goal(**fields)


def _human_goals(items: list[Product], path: Path, rng: random.Random) -> list[Goal]:
    """WebShop's `get_human_goals`: one goal per human instruction with attributes."""
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise CatalogError(path, "<file>", "<root>", "expected a JSON object keyed by asin")
    goals = []
    for p in items:
        for j, ins in enumerate(raw.get(p.asin) or []):
            where = f"{p.asin}[{j}]"
            if not isinstance(ins, dict) or not isinstance(ins.get("instruction"), str):
                raise CatalogError(path, where, "instruction", "missing or not a string")
            attrs = _str_list(ins.get("instruction_attributes", []), path, where, "instruction_attributes")
            opts = _str_list(ins.get("instruction_options", []), path, where, "instruction_options")
            if not attrs:
                continue  # WebShop skips instructions without attributes
            upper, clause = price_clause(p.price, rng)
            goals.append(make_goal(p, ins["instruction"].strip(".") + clause, attrs, opts, upper))
    return goals


def _synthetic_goals(items: list[Product], attrs: dict, path: Path, rng: random.Random) -> list[Goal]:
    """WebShop's `get_synthetic_goals`: the product's instruction with every
    combination of its option values."""
    import itertools

    goals = []
    for p in items:
        entry = attrs.get(p.asin) or {}
        text = entry.get("instruction")
        if not text:
            continue
        goal_attrs = _str_list(entry.get("instruction_attributes", []), path, p.asin, "instruction_attributes")
        if not goal_attrs:
            raise CatalogError(path, p.asin, "instruction_attributes", "empty for a product with an instruction")
        upper, clause = price_clause(p.price, rng)
        names = sorted(p.options)
        for combo in itertools.product(*(p.options[n] for n in names)):
            opt_text = ", and ".join(f"{n}: {v}" for n, v in zip(names, combo))
            opt_text = f" with {opt_text}" if opt_text else ""
            goals.append(make_goal(p, f"{text}{opt_text}{clause}", goal_attrs, combo, upper))
    return goals
