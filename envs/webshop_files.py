"""Reading a catalog from files in WebShop's own formats (the real WebShop files,
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
product's price; goals are shuffled with seed 233 (their split into test, eval
and train is `envs.catalog.split_bounds`).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Iterator

from envs.json_stream import iter_json_array
from envs.normalize import option_display
from envs.products import CatalogError, Goal, Product, make_goal, price_clause, with_goal_id

GOAL_SHUFFLE_SEED = 233


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


def _optional_str(rec: dict, key: str, path: Path, index: int) -> str:
    value = rec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogError(path, index, key, f"expected str, got {type(value).__name__}")
    return value


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
        description=_optional_str(rec, "full_description", path, index),
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
    except UnicodeDecodeError as e:
        raise CatalogError(path, f"at byte {e.start}", "<encoding>", "not UTF-8 text") from None


def _str_list(value: Any, path: Path, record: Any, field_name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(path, record, field_name, "expected a list of strings")
    return value


def load_attributes(path: str | Path) -> dict:
    """The `items_ins_v2` object (asin -> attributes and synthetic instruction)."""
    attrs = _read_json(Path(path))
    if not isinstance(attrs, dict):
        raise CatalogError(path, "<file>", "<root>", "expected a JSON object keyed by asin")
    return attrs


def iter_products(path: str | Path, attrs: dict, attr_path: str | Path,
                  num_products: int | None = None) -> Iterator[Product]:
    """The Products of an `items_shuffle` file, read one record at a time, with their
    attributes from `attrs`; only the first `num_products` records when given."""
    path, attr_path = Path(path), Path(attr_path)
    seen: set[str] = set()
    records = iter_json_array(path, "expected a JSON list of products")
    for i, rec in enumerate(records):
        if num_products is not None and i >= num_products:
            break
        asin = rec.get("asin") if isinstance(rec, dict) else None
        # WebShop's rule: skip 'nan' and over-long asins, keep the first duplicate.
        if isinstance(asin, str) and (asin == "nan" or len(asin) > 10 or asin in seen):
            continue
        entry = attrs.get(asin, {}) if isinstance(asin, str) else {}
        if not isinstance(entry, dict):
            raise CatalogError(attr_path, asin, "<record>", "expected an object")
        product_attrs = entry.get("attributes", ["DUMMY_ATTR"])
        product_attrs = _str_list(product_attrs, attr_path, asin, "attributes")
        product = parse_product(rec, path, i, product_attrs)
        seen.add(product.asin)
        yield product


def draw_price(product: Product, rng: random.Random) -> None:
    """WebShop's fixed price: the single price, or one drawn uniformly inside a range.
    Products are priced in catalog order from one `rng`, before any goal is drawn."""
    p = product.pricing
    product.price = p[0] if len(p) == 1 else rng.uniform(*p[:2])


def iter_reviews(path: str | Path, asins: Container[str]) -> Iterator[tuple[str, list[dict], str | None]]:
    """(asin, reviews, average rating as text or None) for each record of a `reviews.json`
    file whose asin is in `asins`, in file order (a later record for an asin wins)."""
    path = Path(path)
    for i, rec in enumerate(iter_json_array(path, "expected a JSON list")):
        if not isinstance(rec, dict) or not isinstance(rec.get("asin"), str):
            raise CatalogError(path, i, "asin", "missing or not a string")
        if rec["asin"] not in asins:
            continue
        reviews = []
        for j, r in enumerate(rec.get("reviews") or []):
            score = r.get("score", r.get("stars")) if isinstance(r, dict) else None
            if score is None:
                raise CatalogError(path, i, f"reviews[{j}].score", "missing")
            reviews.append(
                {"title": r.get("title", ""), "score": score, "body": r.get("body", r.get("review", ""))}
            )
        rating = str(rec["average_rating"]) if rec.get("average_rating") is not None else None
        yield rec["asin"], reviews, rating


def attach_reviews(items: list[Product], path: Path) -> None:
    """Set each product's reviews and rating from a `reviews.json` file."""
    by_asin = {p.asin: p for p in items}
    for asin, reviews, rating in iter_reviews(path, by_asin):
        product = by_asin[asin]
        product.reviews = reviews
        if rating is not None:
            product.rating = rating


def load_human_instructions(path: str | Path) -> dict:
    """The `items_human_ins` object (asin -> list of instructions)."""
    raw = _read_json(Path(path))
    if not isinstance(raw, dict):
        raise CatalogError(path, "<file>", "<root>", "expected a JSON object keyed by asin")
    return raw


def human_goals(items: Iterable[Product], raw: dict, path: Path, rng: random.Random) -> list[Goal]:
    """WebShop's `get_human_goals`: one goal per human instruction with attributes."""
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


def synthetic_goals(items: Iterable[Product], attrs: dict, path: Path, rng: random.Random) -> list[Goal]:
    """WebShop's `get_synthetic_goals`: the product's instruction with every
    combination of its option values."""
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


# The products (in catalog order) whose asin passes a test: goals are drawn only for
# products with instructions, so a stored catalog need not open the others.
ProductsWhere = Callable[[Callable[[str], bool]], Iterable[Product]]


def catalog_goals(products_where: ProductsWhere, num_products: int, attrs: dict, attr_path: str | Path,
                  human_instructions: str | Path | None, rng: random.Random) -> list[Goal]:
    """The catalog's goals, shuffled and numbered: WebShop's human goals with
    `human_instructions`, else its synthetic goals from `items_ins_v2`. `rng` is the one
    that priced the products, continued."""
    if human_instructions is not None:
        path = Path(human_instructions)
        raw = load_human_instructions(path)
        goals = human_goals(products_where(lambda a: bool(raw.get(a))), raw, path, rng)
    else:
        path = Path(attr_path)
        goals = synthetic_goals(
            products_where(lambda a: bool((attrs.get(a) or {}).get("instruction"))), attrs, path, rng)
    if not goals:
        raise CatalogError(path, "<file>", "instruction", f"no goals for the {num_products} products")
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return [with_goal_id(g, i) for i, g in enumerate(goals)]


def read_catalog_files(
    products: str | Path,
    attributes: str | Path,
    human_instructions: str | Path | None = None,
    reviews: str | Path | None = None,
    num_products: int | None = None,
    price_seed: int = 0,
) -> tuple[list[Product], list[Goal]]:
    """Products and goals (shuffled, numbered) from WebShop-format files, all in memory
    (`envs.catalog_store` writes the same catalog to files every process maps). With
    `human_instructions`, goals are WebShop's human goals; without, its synthetic goals
    from `items_ins_v2`."""
    attrs = load_attributes(attributes)
    items = list(iter_products(products, attrs, attributes, num_products))
    if not items:
        raise CatalogError(products, "<file>", "<root>", "no products (the list is empty)")
    if reviews is not None:
        attach_reviews(items, Path(reviews))
    rng = random.Random(price_seed)
    for p in items:
        draw_price(p, rng)
    goals = catalog_goals(lambda keep: (p for p in items if keep(p.asin)), len(items), attrs, attributes,
                          human_instructions, rng)
    return items, goals


def find_catalog_files(directory: str | Path) -> dict[str, Path | None]:
    """The files of a catalog directory, as `read_catalog_files` arguments:
    `items_shuffle*.json` and `items_ins_v2*.json` (required), `items_human_ins*.json`
    and `reviews*.json` (when present)."""
    d = Path(directory)

    def find(pattern: str, required: bool) -> Path | None:
        hits = sorted(d.glob(pattern))
        if not hits and required:
            raise FileNotFoundError(f"{d}: no file matching {pattern!r}")
        return hits[0] if hits else None

    return {
        "products": find("items_shuffle*.json", True),
        "attributes": find("items_ins_v2*.json", True),
        "human_instructions": find("items_human_ins*.json", False),
        "reviews": find("reviews*.json", False),
    }
