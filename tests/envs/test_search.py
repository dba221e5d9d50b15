from envs import Catalog
from envs.search import SearchIndex, index_for, index_path

from tests.conftest import FIXTURES


def test_bm25_ranks_and_stems(fixture_catalog):
    idx = SearchIndex(fixture_catalog)
    assert idx.search("sulfate free shampoo")[0] == "B09QKP7XQL"
    assert idx.search("coffee tables")[0] == "B07DEADBEE"  # "tables" stems to "tabl"
    assert idx.search("shoe")[0] == "B07ZJHQ3YT"
    assert idx.search("zzzz qqqq") == []  # nothing matches: no hits, not random ones
    assert idx.search("the of and") == []  # stop-words only
    assert set(idx.search("hair")) == {"B09QKP7XQL", "B08XYZ1234"}
    assert len(idx.search("hair", k=1)) == 1


def test_disk_cache_keyed_by_content_hash(tmp_path, fixture_catalog):
    built = SearchIndex(fixture_catalog, cache_dir=tmp_path)
    assert not built.loaded_from_disk
    assert index_path(fixture_catalog.content_hash, tmp_path) == tmp_path / f"v2-{fixture_catalog.content_hash}"
    assert (index_path(fixture_catalog.content_hash, tmp_path) / "params.index.json").exists()
    loaded = SearchIndex(Catalog.from_dir(FIXTURES), cache_dir=tmp_path)
    assert loaded.loaded_from_disk
    for q in ["hair", "argan oil", "granola bars oats", "walnut table"]:
        assert loaded.search(q) == built.search(q)
    other = Catalog.from_files(FIXTURES / "items_shuffle_fixture.json", FIXTURES / "items_ins_v2_fixture.json",
                               num_products=2)
    assert other.content_hash != fixture_catalog.content_hash
    assert not SearchIndex(other, cache_dir=tmp_path).loaded_from_disk


def test_one_index_per_catalog_per_process(fixture_catalog):
    assert index_for(fixture_catalog) is index_for(fixture_catalog)


def test_threads_searching_at_once_get_the_sequential_results():
    from concurrent.futures import ThreadPoolExecutor

    from envs.generate import default_catalog

    catalog = default_catalog()
    index = SearchIndex(catalog, cache_dir=None, query_cache_size=0)  # every call scores
    queries = [g.instruction_text for g in catalog.goals[:200]]
    want = [index.search(q) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(index.search, queries)) == want
