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
from typing import Any

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


def parse_products(raw: list, path: Path, attrs: dict, attr_path: Path) -> list[Product]:
    """The Products of an `items_shuffle` list, with their attributes from `attrs`."""
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


def attach_reviews(items: list[Product], path: Path) -> None:
    """Set each product's reviews and rating from a `reviews.json` file."""
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


def human_goals(items: list[Product], path: Path, rng: random.Random) -> list[Goal]:
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


def synthetic_goals(items: list[Product], attrs: dict, path: Path, rng: random.Random) -> list[Goal]:
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


def read_catalog_files(
    products: str | Path,
    attributes: str | Path,
    human_instructions: str | Path | None = None,
    reviews: str | Path | None = None,
    num_products: int | None = None,
    price_seed: int = 0,
) -> tuple[list[Product], list[Goal]]:
    """Products and goals (shuffled, numbered) from WebShop-format files. With
    `human_instructions`, goals are WebShop's human goals; without, its synthetic
    goals from `items_ins_v2`."""
    products_path, attr_path = Path(products), Path(attributes)
    raw = _read_json(products_path)
    if not isinstance(raw, list):
        raise CatalogError(products_path, "<file>", "<root>", "expected a JSON list of products")
    attrs = _read_json(attr_path)
    if not isinstance(attrs, dict):
        raise CatalogError(attr_path, "<file>", "<root>", "expected a JSON object keyed by asin")
    if num_products is not None:
        raw = raw[:num_products]
    items = parse_products(raw, products_path, attrs, attr_path)
    if not items:
        raise CatalogError(products_path, "<file>", "<root>", "no products (the list is empty)")
    if reviews is not None:
        attach_reviews(items, Path(reviews))
    rng = random.Random(price_seed)
    for p in items:
        p.price = p.pricing[0] if len(p.pricing) == 1 else rng.uniform(*p.pricing[:2])
    if human_instructions is not None:
        goals = human_goals(items, Path(human_instructions), rng)
    else:
        goals = synthetic_goals(items, attrs, attr_path, rng)
    if not goals:
        where = Path(human_instructions) if human_instructions is not None else attr_path
        raise CatalogError(where, "<file>", "instruction", f"no goals for the {len(items)} products")
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return items, [with_goal_id(g, i) for i, g in enumerate(goals)]


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
