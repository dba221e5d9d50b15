"""BM25 search over a catalog, shared read-only by every process on a node.

Backed by `bm25s` (sparse-matrix BM25, Lucene scoring). Documents are a
product's title, description, bullet points, attributes and option values,
lower-cased, English stop-words removed and Snowball-stemmed. The index is built
once per node into `$WEBSHOP_RL_CACHE/search/v2-<content hash>/` (bm25s's arrays
plus the vocabulary, sorted, as an Arrow file) and every process maps those files
read-only: its postings and vocabulary cost a process only the pages a query
touches. `index_for(catalog)` returns the one instance a process holds per catalog.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import bm25s
import numpy as np
import pyarrow as pa
import Stemmer

from envs.node_cache import build_once, cache_root
from envs.products import Product

SEARCH_RETURN_N = 50
INDEX_VERSION = 2
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def index_path(content_hash: str, cache_dir: Path | None = None) -> Path:
    """The directory of the index of a catalog with this content hash."""
    return (cache_dir if cache_dir is not None else cache_root() / "search") / f"v{INDEX_VERSION}-{content_hash}"


def build_bm25(docs: list[str]) -> bm25s.BM25:
    """The BM25 index of `docs` (already lower-cased search texts). Empties `docs` once
    they are tokenised: a large catalog's texts take GBs, and indexing needs its own."""
    bm25 = bm25s.BM25()
    tokens = bm25s.tokenize(docs, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
    docs.clear()
    bm25.index(tokens, show_progress=False)
    return bm25


def ensure_index(content_hash: str, docs: Callable[[], list[str]], cache_dir: Path | None = None) -> bool:
    """Build the index of a catalog into its directory unless it is there (once per
    node, whole or not at all: `envs.node_cache.build_once`). True when this call built it."""

    def build(tmp: Path) -> None:
        bm25 = build_bm25(docs())
        bm25.save(str(tmp), show_progress=False)
        Vocabulary.from_dict(bm25.vocab_dict).write(tmp / "vocab.arrow")

    return build_once(index_path(content_hash, cache_dir), "vocab.arrow", build)


class Vocabulary:
    """token -> id by binary search in the tokens sorted (Arrow strings, mapped from
    disk when loaded), so a process holds no dictionary of a million tokens."""

    MEMO_SIZE = 1 << 16

    def __init__(self, tokens: pa.Array, ids: np.ndarray):
        self._tokens, self._ids = tokens, ids
        self._keys = _Strings(tokens)
        self._memo: dict[str, int] = {}  # tokens looked up lately (queries repeat words); -1: absent

    @classmethod
    def from_dict(cls, vocab: Mapping[str, int]) -> "Vocabulary":
        items = sorted(vocab.items())
        return cls(pa.array([t for t, _ in items], pa.large_string()),
                   np.array([i for _, i in items], dtype=np.int64))

    def write(self, path: Path) -> None:
        table = pa.table({"token": self._tokens, "id": pa.array(self._ids)})
        with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        column = lambda name: table.column(name).combine_chunks()  # noqa: E731  (one chunk: no copy)
        return cls(column("token"), column("id").to_numpy())

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of the tokens that are in the vocabulary, in query order."""
        out = []
        for t in tokens:
            i = self._memo.get(t)
            if i is None:
                j = bisect.bisect_left(self._keys, t)
                i = int(self._ids[j]) if j < len(self._keys) and self._keys[j] == t else -1
                if len(self._memo) >= self.MEMO_SIZE:
                    self._memo.clear()
                self._memo[t] = i
            if i >= 0:
                out.append(i)
        return out


class _Strings:
    """An Arrow string array as a Python sequence (what `bisect` needs)."""

    def __init__(self, array: pa.Array):
        self._array = array

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, i: int) -> str:
        return self._array[i].as_py()


class Catalog(Protocol):
    """What an index reads of an `envs.catalog.Catalog` (which imports this module)."""

    products: Sequence[Product]
    asins: Sequence[str]

    @property
    def content_hash(self) -> str: ...


class SearchIndex:
    """BM25 over one catalog; `search(query)` returns up to 50 asins, best first.

    Args:
        catalog: the products to index.
        cache_dir: where the node's indexes live (built there once, then mapped);
            None builds this one in memory only.
        query_cache_size: how many distinct queries' results to keep in memory.
    """

    def __init__(self, catalog: Catalog, cache_dir: Path | None = None, query_cache_size: int = 4096):
        self.asins = catalog.asins
        self._stemmer = Stemmer.Stemmer("english")
        self._stop = frozenset(bm25s.stopwords.STOPWORDS_EN)
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self._cache_size = query_cache_size
        self._lock = threading.Lock()
        self._scratch = threading.local()  # per-thread score buffers (`_score`)
        if cache_dir is None:
            self._bm25 = build_bm25([p.search_text() for p in catalog.products])
            self._vocab = Vocabulary.from_dict(self._bm25.vocab_dict)
            self.loaded_from_disk = False
            return
        built = ensure_index(catalog.content_hash, lambda: [p.search_text() for p in catalog.products], cache_dir)
        self.loaded_from_disk = not built
        path = index_path(catalog.content_hash, cache_dir)
        self._bm25 = bm25s.BM25.load(str(path), mmap=True, load_vocab=False, show_progress=False)
        for name in ("data", "indices", "indptr"):  # plain views of the same mapping: slicing a
            self._bm25.scores[name] = np.asarray(self._bm25.scores[name])  # np.memmap costs ~2 us
        self._vocab = Vocabulary.load(path / "vocab.arrow")
        if self._bm25.nonoccurrence_array is not None:  # `_score` sums Lucene BM25's terms only
            raise ValueError(f"{path}: a BM25 variant with a non-occurrence term ({self._bm25.method})")

    def _score(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores of every document, a buffer as large) for the query's token ids:
        bm25s's `get_scores_from_ids` for its Lucene scoring (no non-occurrence term), the
        same sums in the same order, into this thread's buffers. A fresh catalog-sized
        array per query would be mapped anew by malloc and fault its pages in each time
        (+60% search time at 250k products)."""
        data, indices, indptr = (self._bm25.scores[k] for k in ("data", "indices", "indptr"))
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            size, dtype = self._bm25.scores["num_docs"], np.dtype(self._bm25.dtype)
            buffers = self._scratch.buffers = (np.zeros(size, dtype), np.empty(size, dtype))
        scores = buffers[0]
        scores.fill(0)
        for t in ids:
            start, end = indptr[t], indptr[t + 1]
            np.add.at(scores, indices[start:end], data[start:end])
        return buffers

    def query_tokens(self, query: str) -> list[str]:
        """Tokenise a query the way documents were tokenised."""
        words = [w for w in _TOKEN.findall(query.lower()) if w not in self._stop]
        return self._stemmer.stemWords(words)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        """Asins of the top-`k` products for `query` (fewer if fewer match)."""
        key = f"{k}\0{query}"
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        ids = self._vocab.ids(self.query_tokens(query))
        result: list[str] = []
        if ids:
            scores, negated = self._score(ids)
            n = min(k, int(np.count_nonzero(scores)))
            if n:
                np.negative(scores, out=negated)
                top = np.argpartition(negated, n - 1)[:n]
                # stable order: score desc, then catalog order (deterministic ties)
                top = top[np.lexsort((top, negated[top]))]
                result = [self.asins[int(i)] for i in top]
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result


_INDEXES: dict[str, SearchIndex] = {}
_INDEX_LOCK = threading.Lock()


def index_for(catalog: Catalog, use_disk_cache: bool = True) -> SearchIndex:
    """The process-wide index of `catalog` (built or loaded once per process)."""
    key = catalog.content_hash
    with _INDEX_LOCK:
        if key not in _INDEXES:
            cache = cache_root() / "search" if use_disk_cache else None
            _INDEXES[key] = SearchIndex(catalog, cache_dir=cache)
        return _INDEXES[key]
