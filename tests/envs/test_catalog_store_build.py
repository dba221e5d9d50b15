"""Building the node's stored catalog: once when processes start together, whole or not
at all, keyed by the files' content (and a pointer that spares re-hashing them)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import shutil
import socket
import time

import pytest

import envs.catalog_store as store
import envs.node_cache as node_cache
from envs import Catalog, CatalogError, Product
from envs.catalog_store import CatalogFiles, open_store, store_key, store_root
from envs.node_cache import publish
from envs.generate import GeneratorConfig, write_catalog
from envs.webshop_files import find_catalog_files, read_catalog_files

from tests.conftest import FIXTURES


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "_OPENED", {})
    return tmp_path / "cache"


def files_of(directory) -> CatalogFiles:
    return CatalogFiles(**{k: None if v is None else str(v) for k, v in find_catalog_files(directory).items()})


def _open(barrier, queue, files, builds_log) -> None:
    try:
        real = store.write_store

        def counted(f, out):
            with open(builds_log, "a") as log:
                log.write(f"{os.getpid()}\n")
            return real(f, out)

        store.write_store = counted
        barrier.wait(timeout=60)
        s = open_store(files)
        queue.put(("ok", str(s.directory), [p.title for p in s.products], [g.instruction_text for g in s.goals]))
    except BaseException as e:  # reported to the test, not swallowed
        queue.put(("error", repr(e)))


def _race(tmp_path, files, n=3) -> list:
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(barrier, queue, files, tmp_path / "builds.log")) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [r[0] for r in results] == ["ok"] * n, results
    assert all(r[1:] == results[0][1:] for r in results)
    return results


def _leftovers(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if ".tmp" in p.name)


@pytest.mark.parametrize("trial", [0, 1])
def test_processes_starting_together_build_one_store(tmp_path, cache, trial):
    files = files_of(write_catalog(GeneratorConfig(size=150, seed=trial), tmp_path / "cat"))
    results = _race(tmp_path, files)
    assert len((tmp_path / "builds.log").read_text().split()) == 1  # one built, the others waited
    assert [p.name for p in store_root().iterdir() if p.is_dir() and p.name != "sources"] == \
        [os.path.basename(results[0][1])]
    assert len([p for p in (cache / "search").glob("v2-*") if p.is_dir()]) == 1 and _leftovers(cache) == []


def test_without_the_lock_a_loser_of_the_race_uses_the_winners_files(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(node_cache, "locked", lambda path: contextlib.nullcontext())  # a file system without flock
    files = files_of(write_catalog(GeneratorConfig(size=150, seed=3), tmp_path / "cat"))
    results = _race(tmp_path, files)
    assert len((tmp_path / "builds.log").read_text().split()) >= 1
    assert len([p for p in store_root().iterdir() if p.is_dir() and p.name != "sources"]) == 1
    assert _leftovers(cache) == [] and results[0][2]


def test_publish_keeps_the_first_complete_build(tmp_path):
    final = tmp_path / "store"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(name)
    assert publish(tmp_path / "a", final, "meta.json") is True
    assert publish(tmp_path / "b", final, "meta.json") is False  # the caller removes its own copy
    assert (final / "meta.json").read_text() == "a"
    (tmp_path / "c").mkdir()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "products.arrow").write_text("")
    with pytest.raises(OSError):  # something else in the way is not taken for a build
        publish(tmp_path / "c", tmp_path / "half", "meta.json")


def test_a_failed_build_leaves_nothing_and_the_fixed_files_build(tmp_path, cache):
    d = tmp_path / "cat"
    shutil.copytree(FIXTURES, d)
    good = (d / "items_shuffle_fixture.json").read_text()
    records = json.loads(good)
    records[2]["name"] = 7
    (d / "items_shuffle_fixture.json").write_text(json.dumps(records))
    with pytest.raises(CatalogError, match="record 2: field 'name': expected str, got int"):
        Catalog.from_dir(d)
    assert [p.name for p in store_root().iterdir() if p.is_dir() and p.name != "sources"] == []
    assert _leftovers(cache) == []
    (d / "items_shuffle_fixture.json").write_text(good)
    assert len(Catalog.from_dir(d)) == 5


def test_a_dead_builders_temporary_directory_is_removed(tmp_path, cache):
    files = files_of(FIXTURES)
    key = store_key(files)
    dead = subprocess_pid_that_exited()
    stale = store_root() / f".{key}.tmp-{socket.gethostname()}-{dead}"
    stale.mkdir(parents=True)
    (stale / "products.arrow").write_bytes(b"half")
    open_store(files)
    assert not stale.exists() and (store_root() / key / "meta.json").exists()


def subprocess_pid_that_exited() -> int:
    p = mp.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    return p.pid


def test_the_key_follows_content_and_a_pointer_spares_hashing(tmp_path, cache, monkeypatch):
    d = tmp_path / "cat"
    shutil.copytree(FIXTURES, d, copy_function=shutil.copyfile)  # new modification times
    files = files_of(d)
    key = store_key(files)
    assert not (store_root() / "sources").exists()  # files written just now: no pointer yet
    old = time.time() - 3600
    for p in d.iterdir():
        os.utime(p, (old, old))
    assert store_key(files) == key
    pointers = list((store_root() / "sources").iterdir())
    assert len(pointers) == 1 and json.loads(pointers[0].read_text())["key"] == key
    assert key == store_key(files_of(FIXTURES))  # same bytes elsewhere: same store
    with monkeypatch.context() as m:
        m.setattr(store, "_file_sha256", lambda path: pytest.fail(f"hashed {path}"))
        assert store_key(files) == key  # the pointer, no hashing
    text = (d / "items_human_ins.json").read_text()
    (d / "items_human_ins.json").write_text(text.replace("shampoo", "shampoO"))  # same size, new bytes
    assert store_key(files_of(d)) != key
    assert store_key(CatalogFiles(**{**files.__dict__, "num_products": 3})) != key


def test_products_across_many_record_batches_read_back_exactly(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(store, "BATCH_ROWS", 16)  # 150 products: 9 full batches and 6 rows
    monkeypatch.setattr(store._BatchWriter, "STEP", 5)  # converted in parts that do not divide 16
    d = write_catalog(GeneratorConfig(size=150, seed=4), tmp_path / "cat")
    stored = Catalog.from_dir(d)
    items, goals = read_catalog_files(**find_catalog_files(d))
    table = stored.products
    assert (table._products.batch_rows, len(table._products.columns), len(table)) == (16, 10, 150)
    names = [f.name for f in dataclasses.fields(Product)]
    assert [[getattr(p, k) for k in names] for p in table] == [[getattr(p, k) for k in names] for p in items]
    assert stored.goals == goals
    assert all(stored.by_asin[p.asin].asin == p.asin for p in items[::7])
