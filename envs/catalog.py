"""The read-only catalog every env copy shares: products, goals, splits.

A `Catalog` is opened from WebShop-format files (`Catalog.from_dir`): they are
parsed once per node into memory-mapped files (`envs.catalog_store`) that every
process on the node shares, and products are read from them as pages need them.
A catalog can also be made from products and goals in memory (tests, tools). Its
goals are split as WebShop splits them (`split_bounds`); generated catalogs may
append train goals.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from envs.catalog_store import CatalogFiles, StoredCatalog, open_store, open_store_dir
from envs.products import CatalogError, Goal, Product, with_goal_id
from envs.webshop_files import find_catalog_files

SPLITS = ("train", "eval", "test")

__all__ = ["SPLITS", "Catalog", "CatalogError", "Goal", "Product", "split_bounds"]


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


class Catalog:
    """Products, prices and goals; read-only once built, shared by env copies.

    Args:
        products: the products in catalog order.
        goals: goals in their final (shuffled) order; `goal_id` is the index.
        source: a short description of where the catalog came from.
        stored: the node's stored catalog `products` come from (`from_store`); None
            for products held in memory.
    """

    def __init__(self, products: Sequence[Product], goals: list[Goal], source: str = "",
                 stored: StoredCatalog | None = None):
        self.products = products
        self.goals = goals
        self.source = source
        self.stored = stored
        self.splits = split_bounds(len(goals))
        self.by_asin: Mapping[str, Product]
        self.asins: Sequence[str]  # the asin of each product, in catalog order
        if stored is None:
            self.by_asin = {p.asin: p for p in products}
            self.asins = [p.asin for p in products]
            self._hash: str | None = None
            self._option_values: dict[str, tuple[str, ...]] | None = None
        else:
            self.by_asin, self.asins = stored.products.by_asin, stored.products.asins
            self._hash = stored.meta["content_hash"]
            self._option_values = {g: tuple(v) for g, v in stored.meta["option_values"].items()}

    def __len__(self) -> int:
        return len(self.products)

    def __reduce_ex__(self, protocol):
        # A stored catalog travels (pickle, deepcopy: gymnasium's make copies its kwargs)
        # as where its files are and its goals; the other side maps the same files.
        if self.stored is None:
            return super().__reduce_ex__(protocol)
        return _reopen, (str(self.stored.directory), self.goals, self.source, self.splits)

    def add_train_goals(self, goals: Sequence[Goal]) -> None:
        """Append goals to the train split; the test and eval goals keep their ids.
        Their `goal_id`s are set here, continuing after the last goal."""
        train = self.splits["train"]  # always the last split (`split_bounds`)
        start = len(self.goals)
        self.goals.extend(with_goal_id(g, start + i) for i, g in enumerate(goals))
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
        """Open WebShop-format files through the node's store (parsed on first use). With
        `human_instructions`, goals are WebShop's human goals; without, its synthetic
        goals from `items_ins_v2`."""
        opt = lambda p: None if p is None else str(p)  # noqa: E731
        files = CatalogFiles(str(products), str(attributes), opt(human_instructions), opt(reviews),
                             num_products, price_seed)
        return cls.from_store(open_store(files), source=str(Path(products).parent))

    @classmethod
    def from_store(cls, stored: StoredCatalog, source: str = "") -> "Catalog":
        """A catalog over a stored one: products read from the mapped files, goals in memory
        (a copy, so that `add_train_goals` leaves other catalogs of the store alone)."""
        return cls(stored.products, list(stored.goals), source=source, stored=stored)

    @classmethod
    def from_dir(cls, directory: str | Path, **kwargs: Any) -> "Catalog":
        """Load a catalog directory holding `items_shuffle*.json`, `items_ins_v2*.json`
        and, when present, `items_human_ins.json` and `reviews.json`."""
        return cls.from_files(**find_catalog_files(directory), **kwargs)


def _reopen(directory: str, goals: list[Goal], source: str, splits: dict[str, range]) -> Catalog:
    stored = open_store_dir(directory)
    catalog = Catalog(stored.products, goals, source=source, stored=stored)
    catalog.splits = dict(splits)  # added train goals keep the splits they were added to
    return catalog
