"""A catalog's products and goals as memory-mapped Arrow files, read a row at a time.

`envs.catalog_store` writes these files once per node; every process maps them
read-only, so the operating system keeps one copy of the pages for all of them. A row
becomes a `Product` only when a page or the reward reads it (a few hundred per
episode), and recently read rows are kept in a small per-process cache.

Files of a stored catalog:
- `products.arrow`: one row per product in catalog order (PRODUCT_SCHEMA), in record
  batches of equal size (BATCH_ROWS when written here; the last may be shorter);
- `reviews.arrow`: the same rows' rating and reviews (REVIEW_SCHEMA; written after
  `reviews.json` is read, which comes after the products);
- `asins.npy`, `asin_order.npy`: each row's asin (fixed-width UTF-8) and the rows in
  asin order, for lookups by asin without a per-process dictionary;
- `goals.arrow`: the goals in id order (GOAL_SCHEMA), read whole (they are few).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa

from envs.nouns import title_nouns
from envs.products import Goal, Product

BATCH_ROWS = 1 << 16
PRODUCT_CACHE_SIZE = 4096
_STRINGS = pa.list_(pa.string())

PRODUCT_SCHEMA = pa.schema([
    ("asin", pa.string()),
    ("title", pa.string()),
    ("category", pa.string()),
    ("query", pa.string()),
    ("product_category", pa.string()),
    ("description", pa.string()),
    ("bullet_points", _STRINGS),
    ("options", pa.map_(pa.string(), _STRINGS)),  # group -> display values, in page order
    ("pricing", pa.list_(pa.float64())),
    ("price_tag", pa.string()),
    ("attributes", _STRINGS),
    ("price", pa.float64()),
])
REVIEW_SCHEMA = pa.schema([
    ("rating", pa.string()),  # null: no rating ("N.A." on the page)
    ("reviews", pa.string()),  # JSON list of {"title", "score", "body"}; score keeps its JSON type
])
GOAL_SCHEMA = pa.schema([
    ("goal_id", pa.int64()),
    ("asin", pa.string()),
    ("instruction_text", pa.string()),
    ("attributes", _STRINGS),
    ("goal_options", _STRINGS),
    ("price_upper", pa.float64()),
    ("query", pa.string()),
    ("product_category", pa.string()),
    ("name", pa.string()),
    ("category", pa.string()),
    ("title_nouns", _STRINGS),
])
_PRODUCT_FIELDS = PRODUCT_SCHEMA.names


def product_columns(products: Sequence[Product]) -> pa.RecordBatch:
    """One record batch of PRODUCT_SCHEMA."""
    cols = {name: [getattr(p, name) for p in products] for name in _PRODUCT_FIELDS if name != "options"}
    cols["options"] = [list(p.options.items()) for p in products]
    return pa.RecordBatch.from_pydict(cols, schema=PRODUCT_SCHEMA)


def review_columns(ratings: Sequence[str | None], reviews: Sequence[str | None]) -> pa.RecordBatch:
    """One record batch of REVIEW_SCHEMA; `reviews` are JSON texts (None: the product has none)."""
    return pa.RecordBatch.from_pydict({"rating": list(ratings), "reviews": list(reviews)}, schema=REVIEW_SCHEMA)


def write_goals(goals: Sequence[Goal], path: Path) -> None:
    cols = {name: [getattr(g, name) for g in goals] for name in GOAL_SCHEMA.names}
    for name in ("attributes", "goal_options", "title_nouns"):
        cols[name] = [list(v) for v in cols[name]]
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, GOAL_SCHEMA) as w:
        w.write_table(pa.Table.from_pydict(cols, schema=GOAL_SCHEMA))


def read_goals(path: Path) -> list[Goal]:
    with pa.memory_map(str(path), "r") as f:
        table = pa.ipc.open_file(f).read_all()
        cols = {name: table.column(name).to_pylist() for name in GOAL_SCHEMA.names}
    for name in ("attributes", "goal_options", "title_nouns"):
        cols[name] = [tuple(v) for v in cols[name]]
    return [Goal(*row) for row in zip(*(cols[name] for name in GOAL_SCHEMA.names))]


def write_asin_index(asins: Sequence[str], directory: Path) -> None:
    """`asins.npy` (each row's asin, fixed-width UTF-8) and `asin_order.npy` (the rows
    sorted by asin)."""
    encoded = np.array([a.encode() for a in asins], dtype=np.bytes_)
    np.save(directory / "asins.npy", encoded)
    np.save(directory / "asin_order.npy", np.argsort(encoded, kind="stable").astype(np.int64))


def _mapped(path: Path) -> np.ndarray:
    """A read-only .npy mapping as a plain ndarray view (np.memmap's own indexing is
    several times slower)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _offsets(arr: pa.Array) -> np.ndarray:
    return np.frombuffer(arr.buffers()[1], np.int32, count=len(arr) + 1, offset=4 * arr.offset)


def _reader(arr: pa.Array) -> Callable[[int], Any]:
    """Element k of `arr` as a Python value, read straight from its (mapped) buffers:
    pyarrow's scalars cost 1-15 us a field, which a page of ten products would pay ~200
    times. Arrays with nulls or slice offsets, and other types, go through `as_py`."""
    t = arr.type
    if arr.null_count or arr.offset:
        return lambda k: arr[k].as_py()
    if pa.types.is_string(t):
        off, data = _offsets(arr), arr.buffers()[2]
        chars = memoryview(data) if data is not None else memoryview(b"")
        return lambda k: str(chars[off[k]:off[k + 1]], "utf-8")
    if pa.types.is_float64(t):
        values = np.frombuffer(arr.buffers()[1], np.float64, count=len(arr))
        return lambda k: float(values[k])
    if pa.types.is_map(t):  # before lists: a map is a list of (key, item)
        off, keys, items = _offsets(arr), _reader(arr.keys), _reader(arr.items)
        return lambda k: {keys(j): items(j) for j in range(off[k], off[k + 1])}
    if pa.types.is_list(t):
        off, values = _offsets(arr), _reader(arr.values)
        return lambda k: [values(j) for j in range(off[k], off[k + 1])]
    return lambda k: arr[k].as_py()


class _Batches:
    """The record batches of one mapped IPC file, read a row at a time."""

    def __init__(self, path: Path):
        self._map = pa.memory_map(str(path), "r")
        reader = pa.ipc.open_file(self._map)
        self.columns = [reader.get_batch(i).columns for i in range(reader.num_record_batches)]
        self.readers = [[_reader(col) for col in cols] for cols in self.columns]
        sizes = [len(c[0]) for c in self.columns]
        self.num_rows = sum(sizes)
        self.batch_rows = sizes[0] if sizes else 1
        if any(n != self.batch_rows for n in sizes[:-1]):
            raise ValueError(f"{path}: record batches of unequal sizes {sizes}; not a stored catalog's file")

    def row(self, i: int) -> list:
        b, k = divmod(i, self.batch_rows)
        return [read(k) for read in self.readers[b]]



class ProductTable(Sequence[Product]):
    """The products of a stored catalog; `table[i]` is row i as a `Product`.

    Args:
        directory: a stored catalog's directory (see the module doc).
        cache_size: how many recently read products a process keeps.
    """

    def __init__(self, directory: str | Path, cache_size: int = PRODUCT_CACHE_SIZE):
        self.directory = Path(directory)
        self._products = _Batches(self.directory / "products.arrow")
        self._reviews = _Batches(self.directory / "reviews.arrow")
        self._cache: dict[int, Product] = {}
        self.cache_size = cache_size
        self.asins = AsinColumn(self.directory)
        self.by_asin = AsinIndex(self)

    def __reduce__(self):  # pickled as where it lives; the other side maps the same files
        return (type(self), (str(self.directory), self.cache_size))

    def __len__(self) -> int:
        return self._products.num_rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"product row {i} out of range [0, {len(self)})")
        product = self._read(i)
        _remember(self._cache, i, product, self.cache_size)
        return product

    def __iter__(self) -> Iterator[Product]:
        for i in range(len(self)):  # no caching: a full scan would only evict the useful rows
            yield self._read(i)

    def _read(self, i: int) -> Product:
        return StoredProduct(self, i)

    def field(self, i: int, name: str) -> Any:
        """Field `name` of row i, as `Product(...)` would hold it."""
        if name in _COLUMN:
            b, k = divmod(i, self._products.batch_rows)
            return self._products.readers[b][_COLUMN[name]](k)
        if name == "rating":
            rating = self._reviews.row(i)[0]
            return rating if rating is not None else "N.A."
        if name == "reviews":
            reviews = self._reviews.row(i)[1]
            return json.loads(reviews) if reviews else []
        raise AttributeError(name)


class StoredProduct(Product):
    """A `Product` whose fields are read from the mapped files when first used (then
    kept): a results page reads three fields of ten products, not all of them. The
    derived fields are computed from the read ones as `Product.__post_init__` does."""

    __slots__ = ("_table", "_row")

    def __init__(self, table: ProductTable, row: int):  # noqa: D107 (no dataclass __init__: nothing read yet)
        self._table, self._row = table, row

    def __getattr__(self, name: str) -> Any:  # only for fields not read yet (unset slots)
        if name in ("_table", "_row"):
            raise AttributeError(name)
        derived = _DERIVED.get(name)
        value = derived(self) if derived is not None else self._table.field(self._row, name)
        setattr(self, name, value)
        return value


_COLUMN = {name: j for j, name in enumerate(_PRODUCT_FIELDS)}
_DERIVED: dict[str, Callable[[Product], Any]] = {  # Product.__post_init__'s, field by field
    "title_lower": lambda p: p.title.lower(),
    "bullets_lower": lambda p: " ".join(p.bullet_points).lower(),
    "description_lower": lambda p: p.description.lower(),
    "title_nouns": lambda p: title_nouns(p.title),
}


def _remember(cache: dict, key, value, size: int) -> None:
    """Keep `value` in a bounded cache, emptied when full: a dict's get and set are
    atomic, so threads (Serve) share it without a lock, which an LRU would need."""
    if size <= 0:
        return
    if len(cache) >= size:
        cache.clear()
    cache[key] = value


class AsinColumn(Sequence[str]):
    """The asin of each row, from the mapped `asins.npy`."""

    def __init__(self, directory: Path):
        self.encoded = _mapped(directory / "asins.npy")

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> str:
        return self.encoded[i].decode()


class AsinIndex(Mapping[str, Product]):
    """asin -> Product over a `ProductTable`, by binary search in the mapped sorted asins."""

    def __init__(self, table: ProductTable):
        self._table = table
        self._asins = table.asins.encoded
        self._order = _mapped(table.directory / "asin_order.npy")
        self._memo: dict[str, Product] = {}  # asins looked up lately: a page shows the same ones again

    def row(self, asin: str) -> int | None:
        """The row of `asin`, or None."""
        if not isinstance(asin, str) or not len(self._asins):
            return None
        key = asin.encode()
        if len(key) > self._asins.dtype.itemsize or not key or key.endswith(b"\0"):
            return None  # cannot be stored (fixed width; numpy drops trailing NULs)
        j = int(self._asins.searchsorted(key, sorter=self._order))
        if j < len(self._order) and self._asins[self._order[j]] == key:
            return int(self._order[j])
        return None

    def __getitem__(self, asin: str) -> Product:
        hit = self._memo.get(asin)
        if hit is not None:
            return hit
        row = self.row(asin)
        if row is None:
            raise KeyError(asin)
        product = self._table[row]
        _remember(self._memo, asin, product, self._table.cache_size)
        return product

    def __contains__(self, asin: object) -> bool:
        return asin in self._memo or self.row(asin) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._asins)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.asins)
