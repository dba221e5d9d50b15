"""Several processes building the same uncached generated catalog at once all succeed
and leave one complete, identical copy (unique temp names + a lock file)."""

import hashlib
import multiprocessing as mp

import pytest

from envs.generate import GeneratorConfig, default_catalog_dir, write_catalog

SIZE, SEED = 120, 5


def _build(barrier, queue) -> None:
    try:
        barrier.wait(timeout=60)
        d = default_catalog_dir(SIZE, SEED)
        queue.put(("ok", {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}))
    except BaseException as e:  # reported to the test, not swallowed
        queue.put(("error", repr(e)))


@pytest.mark.parametrize("trial", [0, 1])
def test_three_processes_build_one_catalog(tmp_path, monkeypatch, trial):
    monkeypatch.setenv("WEBSHOP_RL_CACHE", str(tmp_path / f"cache{trial}"))
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_build, args=(barrier, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [r[0] for r in results] == ["ok"] * 3, results
    assert results[0][1] == results[1][1] == results[2][1]
    reference = write_catalog(GeneratorConfig(size=SIZE, seed=SEED), tmp_path / "plain")
    want = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(reference.iterdir())}
    assert results[0][1] == want  # complete, no temp files left, the bytes a single writer gives
