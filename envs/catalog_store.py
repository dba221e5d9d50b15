"""One parsed catalog per node, in files every process maps read-only.

Parsing WebShop's files (1.18M products, ~5 GB of JSON) takes minutes and, held as
Python objects, several GB per process. Instead the first process on a node that
needs a catalog parses it once into `$WEBSHOP_RL_CACHE/catalog-store/<key>/` (Arrow
files, see `envs.product_table`) and builds its BM25 index (`envs.search`); every env
copy, rollout worker, evaluator and Serve replica on the node then maps those files.

The key is the SHA-256 of the source files' bytes and the loading options, so the
same files anywhere on the node share one store and a changed file gets a new one.
Hashing 5 GB takes seconds, so a pointer file named by the files' paths, sizes and
modification times remembers the key (only for files that have not changed in the
last seconds, so a file rewritten within the clock's resolution is hashed again).

Builds are safe when many processes start at once: one builds while the others wait
on a lock file; the build writes a temporary directory and renames it into place, so
a reader never sees half a store; where the lock does not work (some network file
systems) a process that loses the rename uses the winner's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from envs.product_table import (BATCH_ROWS, PRODUCT_SCHEMA, REVIEW_SCHEMA, ProductTable, product_columns,
                                read_goals, review_columns, write_asin_index, write_goals)
from envs.products import CatalogError, Goal
from envs.node_cache import build_once, cache_root
from envs.search import ensure_index, index_path
from envs.webshop_files import catalog_goals, draw_price, iter_products, iter_reviews, load_attributes

STORE_VERSION = 2
RECENT_SECONDS = 2.0  # files changed this recently are hashed again on the next open
_HASH_CHUNK = 1 << 22


@dataclass(frozen=True)
class CatalogFiles:
    """What a catalog is loaded from (the arguments of `Catalog.from_files`)."""

    products: str
    attributes: str
    human_instructions: str | None = None
    reviews: str | None = None
    num_products: int | None = None
    price_seed: int = 0

    def paths(self) -> dict[str, str | None]:
        return {"products": self.products, "attributes": self.attributes,
                "human_instructions": self.human_instructions, "reviews": self.reviews}

    def options(self) -> dict:
        return {"num_products": self.num_products, "price_seed": self.price_seed}


@dataclass
class StoredCatalog:
    """An opened store: its mapped products, its goals and what `meta.json` records."""

    directory: Path
    products: ProductTable
    goals: list[Goal]
    meta: dict


def store_root() -> Path:
    return cache_root() / "catalog-store"


_OPENED: dict[Path, StoredCatalog] = {}


def open_store(files: CatalogFiles) -> StoredCatalog:
    """The stored catalog of `files`, built first if this node has none yet; opened
    once per process (later calls return the same mapping)."""
    directory = store_root() / store_key(files)
    if directory not in _OPENED and not (directory / "meta.json").exists():
        build_store(files, directory)
    return open_store_dir(directory)


def open_store_dir(directory: str | Path) -> StoredCatalog:
    """The stored catalog in `directory` (complete), opened once per process."""
    directory = Path(directory)
    if directory not in _OPENED:
        meta = json.loads((directory / "meta.json").read_text())
        _OPENED[directory] = StoredCatalog(directory, ProductTable(directory),
                                           read_goals(directory / "goals.arrow"), meta)
    return _OPENED[directory]


# -- the key ------------------------------------------------------------------------
def store_key(files: CatalogFiles) -> str:
    """SHA-256 of the store version, the options and the files' bytes (by role)."""
    stats = {role: _stat(p) for role, p in files.paths().items()}
    fingerprint = _sha({"version": STORE_VERSION, "files": stats, "options": files.options()})
    pointer = store_root() / "sources" / f"{fingerprint}.json"
    try:
        return json.loads(pointer.read_text())["key"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256(json.dumps({"version": STORE_VERSION, "options": files.options()}, sort_keys=True).encode())
    for role, p in files.paths().items():
        h.update(f"\n{role}:".encode())
        if p is not None:
            h.update(_file_sha256(Path(p)).encode())
    key = h.hexdigest()
    if all(s is None or s[2] < (time.time() - RECENT_SECONDS) * 1e9 for s in stats.values()):
        pointer.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomically(pointer, json.dumps({"key": key, "files": files.paths()}))
    return key


def _stat(path: str | None) -> list | None:
    if path is None:
        return None
    st = os.stat(path)  # a missing file raises FileNotFoundError naming it
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- building -------------------------------------------------------------------------
def build_store(files: CatalogFiles, directory: Path) -> bool:
    """Write the store of `files` to `directory` unless this node has it (one process
    builds, the others wait; see `envs.node_cache`). True when this call built it."""
    return build_once(directory, "meta.json", lambda tmp: write_store(files, tmp))


def write_store(files: CatalogFiles, out: Path) -> dict:
    """Parse `files` into a store in `out` (products, reviews, goals, asin index, meta)
    and make sure the search index of its products exists. Returns the meta."""
    t0 = time.perf_counter()
    attrs = load_attributes(files.attributes)
    rng = random.Random(files.price_seed)
    asins, docs, option_sets = [], [], {}
    content = hashlib.sha256()  # `Catalog.content_hash`: what the search index depends on
    with pa.OSFile(str(out / "products.arrow"), "wb") as f, pa.ipc.new_file(f, PRODUCT_SCHEMA) as w:
        batch = _BatchWriter(w)
        for p in iter_products(files.products, attrs, files.attributes, files.num_products):
            draw_price(p, rng)
            doc = p.search_text()
            content.update(p.asin.encode() + b"\0" + doc.encode() + b"\n")
            asins.append(p.asin)
            docs.append(doc)
            for group, values in p.options.items():
                option_sets.setdefault(group.lower(), set()).update(v.lower() for v in values)
            batch.add(p)
        batch.flush()
    if not asins:
        raise CatalogError(files.products, "<file>", "<root>", "no products (the list is empty)")
    _write_reviews(files.reviews, asins, out)
    write_asin_index(asins, out)
    products = ProductTable(out, cache_size=0)
    goals = catalog_goals(lambda keep: (products[i] for i, a in enumerate(asins) if keep(a)), len(asins),
                          attrs, files.attributes, files.human_instructions, rng)
    del attrs
    write_goals(goals, out / "goals.arrow")
    parsed_s = time.perf_counter() - t0
    content_hash = content.hexdigest()
    ensure_index(content_hash, lambda: docs)  # which empties `docs` once tokenised
    meta = {
        "store_version": STORE_VERSION, "num_products": len(asins), "num_goals": len(goals),
        "content_hash": content_hash,
        "option_values": {g: sorted(v) for g, v in option_sets.items()},
        "source": {"files": files.paths(), "options": files.options()},
        "parse_seconds": round(parsed_s, 3), "index_seconds": round(time.perf_counter() - t0 - parsed_s, 3),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return meta


class _BatchWriter:
    """Products to record batches of exactly BATCH_ROWS rows (the last may be shorter),
    converted to Arrow every few thousand so that few Product objects live at once."""

    STEP = 4096  # products held as objects at most

    def __init__(self, writer):
        self._writer, self._products, self._parts, self._rows = writer, [], [], 0

    def add(self, product) -> None:
        self._products.append(product)
        if len(self._products) >= min(self.STEP, BATCH_ROWS - self._rows):
            self._convert()
        if self._rows >= BATCH_ROWS:
            self.flush()

    def _convert(self) -> None:
        if self._products:
            self._parts.append(product_columns(self._products))
            self._rows += len(self._products)
            self._products = []

    def flush(self) -> None:
        self._convert()
        if self._parts:
            table = pa.Table.from_batches(self._parts).combine_chunks()  # one batch of BATCH_ROWS rows
            self._writer.write_table(table, max_chunksize=BATCH_ROWS)
            self._parts, self._rows = [], 0


def _write_reviews(path: str | None, asins: list[str], out: Path) -> None:
    """`reviews.arrow`, row-aligned with the products (WebShop reads reviews after them)."""
    ratings: list[str | None] = [None] * len(asins)
    reviews: list[str | None] = [None] * len(asins)
    if path is not None:
        row_of = {a: i for i, a in enumerate(asins)}
        for asin, revs, rating in iter_reviews(path, row_of):
            i = row_of[asin]
            reviews[i] = json.dumps(revs, ensure_ascii=False) if revs else None  # text: far smaller than dicts
            if rating is not None:
                ratings[i] = rating
    with pa.OSFile(str(out / "reviews.arrow"), "wb") as f, pa.ipc.new_file(f, REVIEW_SCHEMA) as w:
        for start in range(0, len(asins), BATCH_ROWS):
            w.write_batch(review_columns(ratings[start:start + BATCH_ROWS], reviews[start:start + BATCH_ROWS]))


def describe(stored: StoredCatalog) -> dict:
    """Sizes on disk of a store and of its index, for reports."""
    index = index_path(stored.meta["content_hash"])
    size = lambda d: sum(p.stat().st_size for p in d.iterdir() if p.is_file())  # noqa: E731
    return {"store": str(stored.directory), "store_bytes": size(stored.directory),
            "index": str(index), "index_bytes": size(index) if index.exists() else 0,
            **{k: stored.meta[k] for k in ("num_products", "num_goals", "parse_seconds", "index_seconds")}}


