"""Word lists for the catalog generator (`envs.generate`), read from package data.

The lists live in `envs/data/vocab.json` (data, not code) and are loaded and checked
once, on import; a file that breaks a rule raises `VocabError` naming the file and
the entry. The shapes follow WebShop (princeton-nlp/WebShop): five top categories;
per product type a scraping `query`, an Amazon breadcrumb, title nouns, bullet
points, option groups and short lower-case "attributes".

What the generator relies on (the checks below):

- `categories` are WebShop's five; `departments` gives each the Amazon department
  its breadcrumbs start with.
- `product_types`: at least 16 per category, each with exactly the keys of
  `TYPE_KEYS`: a unique lower-case `query`; a 3-5 level `breadcrumb` (some types of a
  category share two levels, so WebShop's category-overlap reward has something to
  match); 2-4 Title Case `nouns`; 12-20 `attributes` of 1-3 words of lower-case
  letters, digits and spaces, none inside another of the same type; 0-3 option
  groups of 6-14 distinct lower-case values (about 10% of types have none); a
  dollar `price` range within 3-600; 5-8 `features` using only "{attr}" and
  "{noun}"; 2-5 lower-case `uses` that follow "for".
- `instruction_templates`: lower case, "{noun}", "{attrs}" and "{options}" once each,
  "{options}" glued to the word before it (it is "" or starts with a space).
- `option_phrases`: 2-4 phrases with one "{value}" for every option group in use.
- `brands`: 40+ invented names per category, 1-2 Title Case words, unique overall.
- `review_titles` (no placeholder), `review_bodies` ("{noun}" at most): 30+ each;
  `description_templates`: 8+, each using "{brand}", "{noun}", "{attr}", "{attr2}"
  and "{use}" once.

Lists load as tuples and mappings as dicts, in the file's order (the generator
draws from them by position, so order is part of the data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent / "data" / "vocab.json"
CATEGORY_NAMES = ("beauty", "electronics", "fashion", "food", "furniture")
TYPE_KEYS = frozenset({"category", "query", "breadcrumb", "nouns", "attributes", "options",
                       "price", "features", "uses"})
_ATTRIBUTE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 ")
_NOUN_SMALL_WORDS = frozenset({"and", "of", "with", "in", "for", "de"})


class VocabError(ValueError):
    """The vocabulary file is unreadable or breaks a rule; the message names the
    file and the entry."""


@dataclass(frozen=True)
class Vocabulary:
    """The generator's word lists, as loaded from one file."""

    categories: tuple[str, ...]
    """WebShop's five top categories, in order."""
    departments: dict[str, str]
    """Category -> the Amazon department its breadcrumbs start with."""
    product_types: tuple[dict[str, Any], ...]
    """One dict per product type, keys `TYPE_KEYS`."""
    brands: dict[str, tuple[str, ...]]
    """Category -> invented brand names."""
    instruction_templates: tuple[str, ...]
    """Shopper instructions with "{attrs}", "{noun}", "{options}"."""
    option_phrases: dict[str, tuple[str, ...]]
    """Option group -> phrases for one chosen value ("{value}")."""
    review_titles: tuple[str, ...]
    """Review titles, shared by all categories."""
    review_bodies: tuple[str, ...]
    """Review texts, may name the "{noun}"."""
    description_templates: tuple[str, ...]
    """Product descriptions with "{brand}", "{noun}", "{attr}", "{attr2}", "{use}"."""


class _Broken(Exception):
    """A rule broken inside the data; `load_vocabulary` adds the file name."""


# ---- reading: JSON values into typed, tuple-valued structures ----------------------

def _strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Broken(f"{where}: expected a list of strings, got {value!r:.80}")
    return tuple(value)


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Broken(f"{where}: expected an object, got {value!r:.80}")
    return value


def _string_lists(where: str, value: Any) -> dict[str, tuple[str, ...]]:
    return {k: _strings(f"{where}[{k!r}]", v) for k, v in _mapping(where, value).items()}


def _product_type(where: str, value: Any) -> dict[str, Any]:
    ptype = _mapping(where, value)
    if set(ptype) != TYPE_KEYS:
        raise _Broken(f"{where}: keys {sorted(ptype)}, expected {sorted(TYPE_KEYS)}")
    for key in ("category", "query"):
        if not isinstance(ptype[key], str):
            raise _Broken(f"{where} {key!r}: expected a string, got {ptype[key]!r:.80}")
    price = ptype["price"]
    if (not isinstance(price, list) or len(price) != 2
            or not all(isinstance(p, float) for p in price)):
        raise _Broken(f"{where} 'price': expected [low, high] in dollars with decimals "
                      f"(e.g. [6.0, 40.0]), got {price!r:.80}")
    out: dict[str, Any] = {}
    for key in ptype:  # the file's key order
        if key == "options":
            out[key] = _string_lists(f"{where} 'options'", ptype[key])
        elif key == "price":
            out[key] = tuple(price)
        elif key in ("category", "query"):
            out[key] = ptype[key]
        else:
            out[key] = _strings(f"{where} {key!r}", ptype[key])
    return out


def _parse(raw: Any) -> Vocabulary:
    top = _mapping("top level", raw)
    wanted = set(Vocabulary.__dataclass_fields__)
    if set(top) != wanted:
        missing, unknown = sorted(wanted - set(top)), sorted(set(top) - wanted)
        raise _Broken(f"top level: missing keys {missing}, unknown keys {unknown}")
    departments = _mapping("departments", top["departments"])
    for category, name in departments.items():
        if not isinstance(name, str):
            raise _Broken(f"departments[{category!r}]: expected a string, got {name!r:.80}")
    types = top["product_types"]
    if not isinstance(types, list):
        raise _Broken(f"product_types: expected a list, got {types!r:.80}")
    return Vocabulary(
        categories=_strings("categories", top["categories"]),
        departments=dict(departments),
        product_types=tuple(_product_type(_type_name(i, t), t) for i, t in enumerate(types)),
        brands=_string_lists("brands", top["brands"]),
        instruction_templates=_strings("instruction_templates", top["instruction_templates"]),
        option_phrases=_string_lists("option_phrases", top["option_phrases"]),
        review_titles=_strings("review_titles", top["review_titles"]),
        review_bodies=_strings("review_bodies", top["review_bodies"]),
        description_templates=_strings("description_templates", top["description_templates"]),
    )


def _type_name(index: int, ptype: Any) -> str:
    query = ptype.get("query") if isinstance(ptype, dict) else None
    return f"product_types[{index}]" + (f" ({query!r})" if query else "")


# ---- rules the generator relies on -------------------------------------------------

def _placeholders(where: str, text: str) -> list[str]:
    """Names inside "{...}" in `text`, in order, repeats kept."""
    names: list[str] = []
    start = text.find("{")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            raise _Broken(f"{where}: unclosed '{{' in {text!r}")
        names.append(text[start + 1:end])
        start = text.find("{", end)
    return names


def _check_count(where: str, items: Any, low: int, high: int) -> None:
    if not low <= len(items) <= high:
        raise _Broken(f"{where}: has {len(items)} items, expected {low}-{high}")


def _check_attributes(where: str, attributes: tuple[str, ...]) -> None:
    _check_count(f"{where} 'attributes'", attributes, 12, 20)
    for attr in attributes:
        words = attr.split(" ")
        if not set(attr) <= _ATTRIBUTE_CHARS or not 1 <= len(words) <= 3 or "" in words:
            raise _Broken(f"{where} 'attributes': bad phrase {attr!r} (lower-case words, "
                          "letters and digits only, 1-3 words)")
    for i, attr in enumerate(attributes):
        for j, other in enumerate(attributes):
            if i != j and attr in other:
                raise _Broken(f"{where} 'attributes': {attr!r} is duplicated in or a "
                              f"substring of {other!r}")


def _check_options(where: str, options: dict[str, tuple[str, ...]], phrases: dict) -> None:
    if len(options) > 3:
        raise _Broken(f"{where} 'options': {len(options)} groups, at most 3")
    for group, values in options.items():
        if group not in phrases:
            raise _Broken(f"{where} 'options': group {group!r} has no option_phrases entry")
        _check_count(f"{where} 'options' {group!r}", values, 6, 14)
        if len(set(values)) != len(values):
            raise _Broken(f"{where} 'options' {group!r}: repeated values")
        for value in values:
            if value != value.lower() or value != value.strip() or "/" in value or not value:
                raise _Broken(f"{where} 'options' {group!r}: bad value {value!r}")


def _check_type(where: str, ptype: dict[str, Any], vocab: Vocabulary) -> None:
    category = ptype["category"]
    if category not in vocab.categories:
        raise _Broken(f"{where} 'category': {category!r} not in categories")
    query = ptype["query"]
    if not query or query != query.lower() or query != query.strip():
        raise _Broken(f"{where} 'query': must be non-empty lower-case")
    crumbs = ptype["breadcrumb"]
    _check_count(f"{where} 'breadcrumb'", crumbs, 3, 5)
    if crumbs[0] != vocab.departments[category]:
        raise _Broken(f"{where} 'breadcrumb': starts {crumbs[0]!r}, expected "
                      f"{vocab.departments[category]!r}")
    _check_count(f"{where} 'nouns'", ptype["nouns"], 2, 4)
    for noun in ptype["nouns"]:
        for word in noun.split():
            if not (word[0].isupper() or word[0].isdigit() or word in _NOUN_SMALL_WORDS):
                raise _Broken(f"{where} 'nouns': {noun!r} is not Title Case")
    _check_attributes(where, ptype["attributes"])
    _check_options(where, ptype["options"], vocab.option_phrases)
    low, high = ptype["price"]
    if not 3.0 <= low < high <= 600.0:
        raise _Broken(f"{where} 'price': {list(ptype['price'])} is not 3 <= low < high <= 600")
    _check_count(f"{where} 'features'", ptype["features"], 5, 8)
    for feature in ptype["features"]:
        if not set(_placeholders(f"{where} 'features'", feature)) <= {"attr", "noun"}:
            raise _Broken(f"{where} 'features': {feature!r} uses unknown placeholders")
    _check_count(f"{where} 'uses'", ptype["uses"], 2, 5)
    for use in ptype["uses"]:
        if use != use.lower() or not use:
            raise _Broken(f"{where} 'uses': {use!r} must be non-empty lower-case")


def _check_product_types(vocab: Vocabulary) -> None:
    queries: set[str] = set()
    for i, ptype in enumerate(vocab.product_types):
        where = _type_name(i, ptype)
        _check_type(where, ptype, vocab)
        if ptype["query"] in queries:
            raise _Broken(f"{where} 'query': not unique")
        queries.add(ptype["query"])
    for category in vocab.categories:
        types = [t for t in vocab.product_types if t["category"] == category]
        if len(types) < 16:
            raise _Broken(f"product_types: category {category!r} has {len(types)} types, "
                          "need 16+")
        prefixes = [t["breadcrumb"][:2] for t in types]
        if len(set(prefixes)) == len(prefixes):
            raise _Broken(f"product_types: no two types of category {category!r} share "
                          "2 breadcrumb levels")
    num_bare = sum(1 for t in vocab.product_types if not t["options"])
    if not 0.05 <= num_bare / len(vocab.product_types) <= 0.2:
        raise _Broken(f"product_types: {num_bare} types without options, want about 10%")


def _check_brands(vocab: Vocabulary) -> None:
    if set(vocab.brands) != set(vocab.categories):
        raise _Broken(f"brands: keys {sorted(vocab.brands)}, expected the categories")
    seen: set[str] = set()
    for category, names in vocab.brands.items():
        if len(names) < 40:
            raise _Broken(f"brands[{category!r}]: {len(names)} names, need 40+")
        for name in names:
            words = [w for w in name.split() if w != "&"]
            if not 1 <= len(words) <= 2 or not all(w[0].isupper() for w in words):
                raise _Broken(f"brands[{category!r}]: {name!r} is not 1-2 Title Case words")
            if name in seen:
                raise _Broken(f"brands[{category!r}]: {name!r} appears twice")
            seen.add(name)


def _check_templates(vocab: Vocabulary) -> None:
    where = "instruction_templates"
    _check_count(where, vocab.instruction_templates, 25, 1000)
    for text in vocab.instruction_templates:
        if sorted(_placeholders(where, text)) != ["attrs", "noun", "options"] or text != text.lower():
            raise _Broken(f"{where}: {text!r} needs lower case and each of "
                          "{noun}, {attrs}, {options} exactly once")
        if text.index("{options}") > 0 and text[text.index("{options}") - 1].isspace():
            raise _Broken(f"{where}: {text!r} has a space before {{options}}")
    for group, phrases in vocab.option_phrases.items():
        where = f"option_phrases[{group!r}]"
        _check_count(where, phrases, 2, 4)
        for phrase in phrases:
            if _placeholders(where, phrase) != ["value"]:
                raise _Broken(f"{where}: {phrase!r} needs one {{value}}")
    for where, texts, allowed in (("review_titles", vocab.review_titles, set()),
                                  ("review_bodies", vocab.review_bodies, {"noun"})):
        _check_count(where, texts, 30, 1000)
        for text in texts:
            if not set(_placeholders(where, text)) <= allowed:
                raise _Broken(f"{where}: {text!r} uses unknown placeholders")
    where = "description_templates"
    _check_count(where, vocab.description_templates, 8, 1000)
    wanted = ["attr", "attr2", "brand", "noun", "use"]
    for text in vocab.description_templates:
        if sorted(_placeholders(where, text)) != wanted:
            raise _Broken(f"{where}: {text!r} needs each of {wanted} once")


def _check(vocab: Vocabulary) -> None:
    if vocab.categories != CATEGORY_NAMES:
        raise _Broken(f"categories: {list(vocab.categories)}, expected {list(CATEGORY_NAMES)}")
    if set(vocab.departments) != set(vocab.categories):
        raise _Broken(f"departments: keys {sorted(vocab.departments)}, expected the categories")
    _check_product_types(vocab)
    _check_brands(vocab)
    _check_templates(vocab)


def load_vocabulary(path: str | Path = DATA_FILE) -> Vocabulary:
    """Read and check a vocabulary file.

    Raises:
        VocabError: the file is missing, not JSON, or breaks a rule of the module
            docstring; the message starts with the file's path and names the entry.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise VocabError(f"{path}: cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise VocabError(f"{path}: not valid JSON: {e}") from None
    try:
        vocab = _parse(raw)
        _check(vocab)
    except _Broken as e:
        raise VocabError(f"{path}: {e}") from None
    return vocab


_VOCAB = load_vocabulary()
CATEGORIES = _VOCAB.categories
DEPARTMENTS = _VOCAB.departments
PRODUCT_TYPES = _VOCAB.product_types
BRANDS = _VOCAB.brands
INSTRUCTION_TEMPLATES = _VOCAB.instruction_templates
OPTION_PHRASES = _VOCAB.option_phrases
REVIEW_TITLES = _VOCAB.review_titles
REVIEW_BODIES = _VOCAB.review_bodies
DESCRIPTION_TEMPLATES = _VOCAB.description_templates
