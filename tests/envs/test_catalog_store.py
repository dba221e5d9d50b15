"""The node-shared stored catalog reads exactly as the catalog held in memory did, and
the env on it behaves exactly as before the storage change (pages, search, rewards).

The pinned digests were taken with the in-memory design (main at 4995b78) on the
default generated catalog (1,000 products, seed 0): the rule baseline's test split
scored 42/500 successes and a mean score of 48.77 there.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle

import pytest

from envs import Catalog, Product, WebShopEnv
from envs.agents import make_agent
from envs.catalog_store import store_root
from envs.generate import default_catalog, default_catalog_dir
from envs.product_table import ProductTable
from envs.search import SearchIndex, index_for
from envs.webshop_files import find_catalog_files, read_catalog_files

from tests.conftest import FIXTURES

RULE_TRACE = "31969da63463aba68b77a354e9457e8117e9eddc450597b3b43ba49800169983"
RANDOM_TRACE = "cb0c0a87aafba1d278f02a2e603ea6bb1844b407f5518784487f01becbe6e7d9"
GOAL_SEARCH_DIGEST = "67d0b48d63105d47e008248cfbbe1fea4a2248b350a6584ed63e39ebb5e6a361"
CONTENT_HASH = "19da220e3552004955d775dbd4c7486ed725cdf34d4278959f71c7d794b31ec8"


def _fields(p) -> dict:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(Product)}


def in_memory(directory) -> Catalog:
    items, goals = read_catalog_files(**find_catalog_files(directory))
    return Catalog(items, goals, source=str(directory))


@pytest.mark.parametrize("which", ["fixture", "generated"])
def test_the_stored_catalog_reads_as_the_in_memory_one(which):
    directory = FIXTURES if which == "fixture" else default_catalog_dir()
    stored, memory = Catalog.from_dir(directory), in_memory(directory)
    assert isinstance(stored.products, ProductTable) and isinstance(memory.products, list)
    assert len(stored) == len(memory) and list(stored.asins) == memory.asins
    for a, b in zip(stored.products, memory.products):
        assert _fields(a) == _fields(b)
    assert stored.goals == memory.goals and stored.splits == memory.splits
    assert stored.option_values == memory.option_values
    assert stored.content_hash == memory.content_hash
    for asin in memory.asins[:50]:
        assert _fields(stored.by_asin[asin]) == _fields(memory.by_asin[asin])
    for missing in ["", "B0NOTTHERE", memory.asins[0].lower(), memory.asins[0] + "X" * 20, "B0\0"]:
        assert missing not in stored.by_asin and stored.by_asin.get(missing) is None
        with pytest.raises(KeyError):
            stored.by_asin[missing]
    assert stored.source == str(directory)


def rule_trace(catalog: Catalog, episodes: int = 500) -> tuple[str, list[float]]:
    """Digest of every page, action and reward of the rule baseline on the test split."""
    env, agent = WebShopEnv(catalog=catalog), make_agent("rule", seed=0)
    h, rewards = hashlib.sha256(), []
    for g in list(catalog.goal_ids("test"))[:episodes]:
        obs, info = env.reset(seed=g, options={"goal_id": g})
        agent.reset(env)
        h.update(obs.encode())
        done = False
        while not done:
            a = agent.act(obs, info)
            obs, r, terminated, truncated, info = env.step(a)
            h.update(f"|{a}|{r!r}|".encode() + obs.encode() + b"None")
            done = terminated or truncated
        rewards.append(r)
    return h.hexdigest(), rewards


def test_rule_baseline_unchanged_on_the_default_catalog():
    catalog = default_catalog()
    assert isinstance(catalog.products, ProductTable)
    digest, rewards = rule_trace(catalog)
    assert sum(r >= 1 - 1e-9 for r in rewards) == 42  # 8.4% success
    assert 100 * sum(rewards) / len(rewards) == pytest.approx(48.77, abs=1e-9)
    assert digest == RULE_TRACE  # and every page, action and reward as before


def test_random_walks_through_every_page_unchanged():
    catalog = default_catalog()
    env = WebShopEnv(catalog=catalog, observation_mode="text_rich", show_attrs=True, max_steps=30)
    agent = make_agent("random", seed=3)
    h, pages = hashlib.sha256(), {}
    for g in list(catalog.goal_ids("eval"))[:300]:
        obs, info = env.reset(seed=g, options={"goal_id": g})
        agent.reset(env)
        h.update(obs.encode())
        done = False
        while not done:
            a = agent.act(obs, info)
            obs, r, terminated, truncated, info = env.step(a)
            pages[info["page"]] = pages.get(info["page"], 0) + 1
            h.update(f"|{a}|{r!r}|{sorted(info.items())!r}".encode() + obs.encode())
            done = terminated or truncated
    assert pages == {"results": 1279, "item": 2800, "sub": 729, "search": 679, "done": 200}
    assert h.hexdigest() == RANDOM_TRACE


def test_search_results_unchanged():
    catalog = default_catalog()
    assert catalog.content_hash == CONTENT_HASH
    index = index_for(catalog)
    assert index.search("wireless bluetooth headphones")[:3] == ["B00U2N84GF", "B06J8VS14A", "B04HXH9KR6"]
    assert index.search("gluten free protein bar")[:3] == ["B0PYCE20G4", "B0FGMF1NXM", "B0MQWCZGGP"]
    assert index.search("queen size bed sheet set")[:3] == ["B0R8XZYF8T", "B0J9DVDSRM", "B0DE4U4KBC"]
    assert index.search("zzzz") == []
    built = SearchIndex(in_memory(default_catalog_dir()), cache_dir=None)  # in memory, no mapping
    h = hashlib.sha256()
    for g in catalog.goals:
        result = index.search(g.instruction_text)
        assert len(result) == 50
        h.update("\n".join(result).encode() + b"|")
        if g.goal_id % 10 == 0:
            assert result == built.search(g.instruction_text)
    assert h.hexdigest() == GOAL_SEARCH_DIGEST  # the top 50 of all 3,000 goals' instructions


def test_a_stored_catalog_travels_as_a_reference(fixture_catalog):
    cat = Catalog.from_dir(FIXTURES)
    cat.add_train_goals(cat.goals[:2])
    for other in (pickle.loads(pickle.dumps(cat)), copy.deepcopy(cat)):
        assert other.stored.directory == cat.stored.directory and other.products is cat.products
        assert other.goals == cat.goals and other.goals is not cat.goals
        assert other.splits == cat.splits and other.source == cat.source
    table = pickle.loads(pickle.dumps(cat.products))
    assert [p.title for p in table] == [p.title for p in cat.products]
    assert len(pickle.dumps(cat.products)) < 500  # the path, not the rows


def test_product_rows_and_slices(fixture_catalog):
    table = fixture_catalog.products
    assert table[-1].asin == table[len(table) - 1].asin == "B01GRANOLA"
    assert [p.asin for p in table[1:3]] == ["B09QKP7XQL", "B08XYZ1234"]
    assert table[0] is table[0]  # read once, then cached
    with pytest.raises(IndexError, match="product row 5 out of range"):
        table[5]
    assert [table.asins[4], table.asins[0]] == ["B01GRANOLA", "B07ZJHQ3YT"]
    assert list(fixture_catalog.by_asin) == list(table.asins)


def test_one_store_for_the_same_files_and_its_layout(tmp_path):
    cat = Catalog.from_dir(FIXTURES)
    copied = tmp_path / "copy"
    copied.mkdir()
    for p in FIXTURES.iterdir():
        (copied / p.name).write_bytes(p.read_bytes())
    again = Catalog.from_dir(copied)
    assert again.stored.directory == cat.stored.directory  # keyed by content, not by path
    assert again.source == str(copied)
    assert sorted(p.name for p in cat.stored.directory.iterdir()) == [
        "asin_order.npy", "asins.npy", "goals.arrow", "meta.json", "products.arrow", "reviews.arrow"]
    assert cat.stored.directory.parent == store_root()
    meta = cat.stored.meta
    assert (meta["num_products"], meta["num_goals"], meta["store_version"]) == (5, 4, 2)


def test_rows_read_from_buffers_equal_pyarrows_values():
    import pyarrow as pa

    from envs.product_table import _reader

    strings = pa.list_(pa.string())
    arrays = [
        pa.array(["", "caf\u00e9 \u203a", "x" * 300, ""]),
        pa.array([[], ["a", ""], ["\u00e9"], []], strings),
        pa.array([[], [("Color", ["navy | white", "red"])], [("size", [])], [("a", ["1"]), ("b", ["2"])]],
                 pa.map_(pa.string(), strings)),
        pa.array([[100.0], [45.99, 69.99], [], [0.1]], pa.list_(pa.float64())),
        pa.array([1.5, 0.1, 1e300, -0.0]),
        pa.array(["4.5", None, "3", None]),  # nulls: pyarrow's own path
        pa.array(["a", "b", "c", "d", "e", "f"]).slice(2),  # a slice: pyarrow's own path
    ]
    for arr in arrays:
        read = _reader(arr)
        want = arr.to_pylist()
        if pa.types.is_map(arr.type):
            want = [dict(v) for v in want]
        assert [read(k) for k in range(len(arr))] == want


def test_a_stored_product_reads_a_field_when_first_used(fixture_catalog):
    from envs.product_table import StoredProduct

    p = StoredProduct(fixture_catalog.products, 0)
    assert p.title == "Easy Spirit Traveltime529 Mule Shoes, Taupe Leather" and p.price_tag == "$45.99 to $69.99"
    with pytest.raises(AttributeError):
        Product.description.__get__(p)  # not read yet
    assert p.title_nouns == ["easy", "spirit", "traveltime529", "mule", "shoes", "taupe", "leather"]
    memory = in_memory(FIXTURES).products[0]
    assert _fields(p) == _fields(memory) and isinstance(p, Product)
    again = pickle.loads(pickle.dumps(StoredProduct(fixture_catalog.products, 0)))
    assert _fields(again) == _fields(memory) and repr(again) == "Stored" + repr(memory)
