"""BM25 search over a catalog, shared read-only by every env copy in a process.

Backed by `bm25s` (sparse-matrix BM25, Lucene scoring). Documents are a
product's title, description, bullet points, attributes and option values,
lower-cased, English stop-words removed and Snowball-stemmed. The index is cached
on disk under a directory named by the catalog's content hash, so a second
process (or run) loads it instead of rebuilding; `index_for(catalog)` returns the
one instance a process holds per catalog.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import bm25s
import numpy as np
import Stemmer

if TYPE_CHECKING:
    from envs.catalog import Catalog

SEARCH_RETURN_N = 50
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where indexes are cached: $WEBSHOP_RL_CACHE or ~/.cache/webshop-rl."""
    return Path(os.environ.get("WEBSHOP_RL_CACHE", Path.home() / ".cache" / "webshop-rl"))


class SearchIndex:
    """BM25 over one catalog; `search(query)` returns up to 50 asins, best first.

    Args:
        catalog: the products to index.
        cache_dir: where to load/save the index; None disables the disk cache.
        query_cache_size: how many distinct queries' results to keep in memory.
    """

    def __init__(self, catalog: Catalog, cache_dir: Path | None = None, query_cache_size: int = 4096):
        self.asins = [p.asin for p in catalog.products]
        self._stemmer = Stemmer.Stemmer("english")
        self._stop = frozenset(bm25s.stopwords.STOPWORDS_EN)
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self._cache_size = query_cache_size
        self._lock = threading.Lock()
        self.loaded_from_disk = False
        path = cache_dir / catalog.content_hash if cache_dir is not None else None
        if path is not None and (path / "params.index.json").exists():
            self._bm25 = bm25s.BM25.load(str(path), show_progress=False)
            self.loaded_from_disk = True
        else:
            self._bm25 = bm25s.BM25()
            docs = [p.search_text() for p in catalog.products]
            tokens = bm25s.tokenize(docs, stopwords="en", stemmer=self._stemmer, show_progress=False)
            self._bm25.index(tokens, show_progress=False)
            if path is not None:
                self._save(path)
        self._vocab: dict[str, int] = self._bm25.vocab_dict

    def _save(self, path: Path) -> None:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(tmp), show_progress=False)
        try:
            tmp.rename(path)  # atomic: concurrent processes never see half an index
        except OSError:
            _log.debug("index cache %s already written by another process", path)

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
        ids = [self._vocab[t] for t in self.query_tokens(query) if t in self._vocab]
        result: list[str] = []
        if ids:
            scores = self._bm25.get_scores_from_ids(ids)
            n = min(k, int(np.count_nonzero(scores)))
            if n:
                top = np.argpartition(-scores, n - 1)[:n]
                # stable order: score desc, then catalog order (deterministic ties)
                top = top[np.lexsort((top, -scores[top]))]
                result = [self.asins[i] for i in top]
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
