"""A generated WebShop-format catalog, deterministic from a seed.

WebShop's own product files cannot be downloaded here, so this module writes a
stand-in in exactly their formats (`items_shuffle.json`, `items_ins_v2.json`,
`items_human_ins.json`, `reviews.json`) and the same loader reads it. Products
come from the product types of `envs.vocab` across WebShop's five categories;
each type yields many near-duplicates (same type, other brands, overlapping but
different attributes, other option values and prices), so that the attributes,
options and price a shopper asks for decide the reward, not just the type.
Instructions are phrased like the real human ones (lower case, "i am looking
for ...", options and a price clause at the end).

The knobs in `GeneratorConfig` are set so that WebShop's rule baseline scores
close to its published numbers on this catalog (`bench/diagnostics/calibration.py`
measures it).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Callable

import envs.vocab as vocab
from envs.catalog import Catalog
from envs.products import Goal, make_goal, price_clause

GENERATOR_VERSION = 2
SIZES = (1_000, 10_000, 100_000)
MAX_GOALS = 12_000


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generated catalog."""

    size: int = 1_000
    """Number of products."""
    seed: int = 0
    """Everything is a function of this seed."""
    goals_per_product: float = 3.0
    """Instructions per product, capped at MAX_GOALS in all."""
    attrs_per_product: tuple[int, int] = (3, 6)
    """Range (inclusive) of how many of its type's attributes a product has."""
    title_attrs: tuple[int, int] = (1, 3)
    """Range of how many of those attributes its title spells out."""
    goal_attrs: tuple[int, int] = (1, 3)
    """Range of attributes an instruction asks for."""
    extra_attrs: tuple[int, int] = (2, 5)
    """Range of further type attributes an instruction mentions that the goal does
    not require (people describe more than the annotated attributes; the product
    may lack them), which pulls a keyword search towards near-duplicates."""
    option_weights: tuple[float, ...] = (0.05, 0.2, 0.4, 0.35)
    """Probability that an instruction asks for 0, 1, 2, 3 options."""
    values_per_group: tuple[int, int] = (2, 6)
    """Range of values a product offers per option group."""
    price_range_prob: float = 0.35
    """Probability that a product is priced as a range "$a to $b"."""


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        a = "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        if a not in taken:
            taken.add(a)
            return a


def _title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _price(rng: random.Random, low: float, high: float) -> float:
    """Log-uniform in [low, high], ending in a shop-like number of cents."""
    dollars = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    return max(1, dollars) + rng.choice((0.99, 0.95, 0.49, 0.0))


def _make_product(rng: random.Random, cfg: GeneratorConfig, ptype: dict, asin: str) -> tuple[dict, list[str]]:
    """One `items_shuffle` record and its attribute list."""
    attrs = rng.sample(ptype["attributes"], rng.randint(*cfg.attrs_per_product))
    brand = rng.choice(vocab.BRANDS[ptype["category"]])
    noun = rng.choice(ptype["nouns"])
    use = rng.choice(ptype["uses"])
    shown = attrs[: rng.randint(*cfg.title_attrs)]
    title = f"{brand} {_title_case(' '.join(shown))} {noun}"
    if rng.random() < 0.6:
        title += f" for {_title_case(use)}"
    options = {}
    for group, pool in ptype["options"].items():
        k = min(len(pool), rng.randint(*cfg.values_per_group))
        options[_title_case(group)] = [{"value": _title_case(v), "image": None} for v in rng.sample(pool, k)]
    low, high = ptype["price"]
    price = _price(rng, low, high)
    if rng.random() < cfg.price_range_prob:
        pricing = f"${price:.2f} to ${price * rng.uniform(1.1, 1.6):.2f}"
    else:
        pricing = f"${price:.2f}"
    bullet_attrs = attrs[len(shown):] + shown
    templates = rng.sample(ptype["features"], min(len(ptype["features"]), rng.randint(2, 5)))
    bullets = [t.format(attr=a, noun=noun.lower()).capitalize() for t, a in zip(templates, bullet_attrs * 2)]
    other = attrs[1] if len(attrs) > 1 else attrs[0]
    description = rng.choice(vocab.DESCRIPTION_TEMPLATES).format(
        brand=brand, noun=noun.lower(), attr=attrs[0], attr2=other, use=use
    )
    record = {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": pricing,
        "customization_options": options or None,
        "category": ptype["category"],
        "query": ptype["query"],
        "product_category": " › ".join(ptype["breadcrumb"]),
        "images": [""],
        "brand": brand,
    }
    return record, attrs


def _join_attrs(attrs: list[str]) -> str:
    if len(attrs) <= 2:
        return " and ".join(attrs)
    return ", ".join(attrs[:-1]) + " and " + attrs[-1]


def _make_instruction(rng: random.Random, cfg: GeneratorConfig, ptype: dict,
                      groups: list[tuple[str, list[str]]], attrs: list[str]) -> tuple[str, list[str], list[str]]:
    """(instruction text, the attributes it requires, the option values it asks for)
    for a product of type `ptype` with these option groups and attributes."""
    goal_attrs = rng.sample(attrs, min(len(attrs), rng.randint(*cfg.goal_attrs)))
    others = [a for a in ptype["attributes"] if a not in goal_attrs]
    mentioned = goal_attrs + rng.sample(others, min(len(others), rng.randint(*cfg.extra_attrs)))
    rng.shuffle(mentioned)
    n_opts = rng.choices(range(len(cfg.option_weights)), weights=cfg.option_weights)[0]
    chosen = rng.sample(groups, min(n_opts, len(groups)))
    values, phrases = [], []
    for group, contents in chosen:
        value = rng.choice(contents).lower()
        values.append(value)
        phrase_pool = vocab.OPTION_PHRASES.get(group.lower(), ("{value}",))
        phrases.append(rng.choice(phrase_pool).format(value=value))
    noun = rng.choice([ptype["query"], rng.choice(ptype["nouns"]).lower()])
    options_text = (", " if rng.random() < 0.5 else " ") + " and ".join(phrases) if phrases else ""
    text = rng.choice(vocab.INSTRUCTION_TEMPLATES).format(
        noun=noun, attrs=_join_attrs(mentioned), options=options_text
    )
    return " ".join(text.split()), goal_attrs, values


def _make_reviews(rng: random.Random, rec: dict, noun: str) -> dict:
    reviews = []
    for _ in range(rng.randint(0, 4)):
        score = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 6])[0]
        reviews.append({
            "title": rng.choice(vocab.REVIEW_TITLES),
            "score": score,
            "body": rng.choice(vocab.REVIEW_BODIES).format(noun=noun),
        })
    avg = round(sum(r["score"] for r in reviews) / len(reviews), 1) if reviews else None
    return {"asin": rec["asin"], "average_rating": avg, "reviews": reviews}


def generate(cfg: GeneratorConfig) -> dict[str, object]:
    """The four files' contents: products, attributes, human instructions, reviews."""
    rng = random.Random(cfg.seed)
    types = list(vocab.PRODUCT_TYPES)
    taken: set[str] = set()
    products, attributes, reviews = [], {}, []
    for _ in range(cfg.size):
        ptype = rng.choice(types)
        rec, attrs = _make_product(rng, cfg, ptype, _asin(rng, taken))
        products.append(rec)
        attributes[rec["asin"]] = {"attributes": attrs, "_type": ptype["query"]}
        reviews.append(_make_reviews(rng, rec, ptype["nouns"][0].lower()))
    n_goals = min(MAX_GOALS, int(cfg.size * cfg.goals_per_product))
    by_query = {t["query"]: t for t in types}
    human: dict[str, list[dict]] = {}
    for _ in range(n_goals):
        rec = rng.choice(products)
        entry = attributes[rec["asin"]]
        groups = [(g, [c["value"] for c in cs]) for g, cs in (rec["customization_options"] or {}).items()]
        text, goal_attrs, values = _make_instruction(rng, cfg, by_query[entry["_type"]], groups, entry["attributes"])
        human.setdefault(rec["asin"], []).append(
            {"asin": rec["asin"], "instruction": text, "instruction_attributes": goal_attrs,
             "instruction_options": values}
        )
    for asin, entry in attributes.items():
        ptype = by_query[entry.pop("_type")]
        first = human.get(asin, [None])[0]
        if first is not None:  # WebShop's synthetic-goal fields, for `goals="synthetic"` users
            entry["instruction"] = first["instruction"]
            entry["instruction_attributes"] = first["instruction_attributes"]
    return {
        "items_shuffle.json": products,
        "items_ins_v2.json": attributes,
        "items_human_ins.json": human,
        "reviews.json": reviews,
    }


def fresh_train_goals(catalog: Catalog, n: int, seed: int = 0,
                      cfg: GeneratorConfig = GeneratorConfig()) -> list[Goal]:
    """`n` new instructions for the catalog's products, phrased as the generator
    phrases its own, to train on beyond the catalog's train split.

    A product is drawn uniformly, then its instruction the way `generate` draws one
    (attributes asked for, other type attributes mentioned, 0-3 options) and a price
    clause the way the loader adds it. An instruction equal to one the catalog
    already has (in any split) is drawn again, so no test or eval instruction is
    trained on. Only products of the generator's types can be phrased; a product of
    another type (a real WebShop catalog) raises ValueError naming it.
    """
    by_query = {t["query"]: t for t in vocab.PRODUCT_TYPES}
    rng = random.Random(f"webshop-rl train goals {seed}")
    taken = {g.instruction_text for g in catalog.goals}
    goals: list[Goal] = []
    while len(goals) < n:
        product = rng.choice(catalog.products)
        ptype = by_query.get(product.query)
        if ptype is None:
            raise ValueError(
                f"product {product.asin}: query {product.query!r} is not one of the generator's "
                "product types, so no training goal can be phrased for it; extra train goals "
                "need a generated catalog (set catalog.train_goals to 0)"
            )
        text, attrs, values = _make_instruction(rng, cfg, ptype, list(product.options.items()), product.attributes)
        upper, clause = price_clause(product.price, rng)
        text += clause
        if text in taken:
            continue
        taken.add(text)
        goals.append(make_goal(product, text, attrs, values, upper))
    return goals


def _write_atomically(path: Path, write: Callable[[IO[str]], None]) -> None:
    """Write `path` through a temp file of its own (unique per writer) renamed over it,
    so concurrent writers never remove each other's temp file or expose half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # what a plain open() gives; mkstemp's 0600 would hide it from other users
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_catalog(cfg: GeneratorConfig, out: str | Path) -> Path:
    """Write the generated catalog in WebShop's file format to `out`; `catalog_meta.json`
    comes last, so its presence means the files are complete."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in generate(cfg).items():
        _write_atomically(out / name, lambda f, c=content: json.dump(c, f, ensure_ascii=False))
    meta = {"generator_version": GENERATOR_VERSION, **asdict(cfg)}
    _write_atomically(out / "catalog_meta.json", lambda f: f.write(json.dumps(meta, indent=2)))
    return out


def default_catalog_dir(size: int = 1_000, seed: int = 0) -> Path:
    """Where the generated catalog of (size, seed) is cached, written on first use.
    Processes that need it at once (rollout actors on a fresh node, Serve replicas)
    take an exclusive lock on a file beside it: one writes, the others wait and read."""
    from envs.search import cache_root

    d = cache_root() / "catalogs" / f"gen-v{GENERATOR_VERSION}-n{size}-s{seed}"
    if not (d / "catalog_meta.json").exists():
        d.parent.mkdir(parents=True, exist_ok=True)
        with open(d.with_name(d.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if not (d / "catalog_meta.json").exists():
                write_catalog(GeneratorConfig(size=size, seed=seed), d)
    return d


_DEFAULT: dict[tuple[int, int, int], Catalog] = {}


def default_catalog(size: int = 1_000, seed: int = 0, train_goals: int = 0) -> Catalog:
    """The generated catalog, loaded once per process; with `train_goals`, that many
    fresh training goals (`fresh_train_goals`, seeded by `seed`) are appended to its
    train split, leaving the test and eval goals as they are."""
    key = (size, seed, train_goals)
    if key not in _DEFAULT:
        catalog = Catalog.from_dir(default_catalog_dir(size, seed))
        if train_goals:
            catalog.add_train_goals(fresh_train_goals(catalog, train_goals, seed))
        _DEFAULT[key] = catalog
    return _DEFAULT[key]


def is_generated(directory: str | Path) -> bool:
    """Whether a catalog directory was written by `write_catalog`."""
    return (Path(directory) / "catalog_meta.json").exists()


def load_catalog(directory: str | Path | None = None, size: int = 1_000, seed: int = 0,
                 train_goals: int = 0) -> Catalog:
    """The catalog in `directory`, or the generated catalog of (size, seed), with
    `train_goals` fresh training goals added where it is a generated catalog. A real
    WebShop catalog keeps its own goals (its train split is already 10,587 human
    instructions); `train_goals` is ignored there."""
    if not directory:
        return default_catalog(size, seed, train_goals)
    catalog = Catalog.from_dir(directory)
    if train_goals and is_generated(directory):
        catalog.add_train_goals(fresh_train_goals(catalog, train_goals, seed))
    return catalog
