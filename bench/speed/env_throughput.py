"""Environment figures: search latency, env steps/s, memory per env copy.

    python bench/speed/env_throughput.py [--sizes 1000 10000 100000] [--repeats 3]

One process, one core (torch is not involved; BLAS threads pinned to 1). For each
catalog size: index build time, search p50/p99 over distinct goal instructions
with bm25s and with the naive `rank_bm25` baseline (same tokens, same run), env
steps/s of random-action episodes (with the query cache on, as in training, and
off), and the memory an extra env copy costs beyond the shared catalog and index.
Medians of `--repeats` runs with min-max spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from envs import WebShopEnv  # noqa: E402
from envs.agents import RandomAgent  # noqa: E402
from envs.generate import default_catalog  # noqa: E402
from envs.search import SearchIndex  # noqa: E402


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g} [{min(xs):.3g}-{max(xs):.3g}]"


def search_latency(index, queries) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def rank_bm25_latency(catalog, index, queries, limit: int) -> tuple[float, float]:
    from rank_bm25 import BM25Okapi

    docs = [index.query_tokens(p.search_text()) for p in catalog.products]
    bm = BM25Okapi(docs)
    times = []
    for q in queries[:limit]:
        toks = index.query_tokens(q)
        t0 = time.perf_counter()
        scores = bm.get_scores(toks)
        np.argsort(-scores)[:50]
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def steps_per_second(catalog, index, seconds: float, seed: int) -> float:
    env = WebShopEnv(catalog=catalog, search_index=index)
    agent = RandomAgent(seed)
    ids = list(catalog.goal_ids("train"))
    steps, i, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        obs, info = env.reset(seed=seed + i, options={"goal_id": ids[i % len(ids)]})
        agent.reset(env)
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(agent.act(obs, info))
            steps += 1
            done = term or trunc
        i += 1
    return steps / (time.perf_counter() - t0)


def memory_per_env(catalog, index, copies: int = 200) -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    envs = []
    for i in range(copies):
        e = WebShopEnv(catalog=catalog, search_index=index)
        e.reset(seed=i)
        e.step(f"search[{e.session.goal.instruction_text}]")
        envs.append(e)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return total / copies / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--naive-limit", type=int, default=60, help="rank_bm25 queries per size (it is slow)")
    args = ap.parse_args()
    print(f"# env benchmark, {os.cpu_count()} cores visible, 1 thread; median [min-max] of {args.repeats}")
    for size in args.sizes:
        t0 = time.perf_counter()
        catalog = default_catalog(size, 0)
        load_s = time.perf_counter() - t0
        builds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            index = SearchIndex(catalog, cache_dir=None, query_cache_size=0)
            builds.append(time.perf_counter() - t0)
        queries = [g.instruction_text for g in catalog.goals[: args.queries]]
        lat = [search_latency(index, queries) for _ in range(args.repeats)]
        naive = rank_bm25_latency(catalog, index, queries, args.naive_limit)
        p50 = [x[0] for x in lat]
        p99 = [x[1] for x in lat]
        cached = SearchIndex(catalog, cache_dir=None)
        sps = [steps_per_second(catalog, cached, args.seconds, seed=r) for r in range(args.repeats)]
        sps_nc = [steps_per_second(catalog, index, args.seconds, seed=r) for r in range(args.repeats)]
        mem = memory_per_env(catalog, cached)
        print(f"\n## {size} products ({len(catalog.goals)} goals; catalog load {load_s:.1f}s)")
        print(f"index build s        : {spread(builds)}")
        print(f"search p50 ms (bm25s): {spread(p50)}   p99 ms: {spread(p99)}")
        print(f"search p50 ms (rank_bm25 baseline): {naive[0]:.3g}   p99: {naive[1]:.3g}   "
              f"-> bm25s is {naive[0] / statistics.median(p50):.0f}x faster at p50")
        print(f"env steps/s, random agent, query cache on : {spread(sps)}")
        print(f"env steps/s, random agent, query cache off: {spread(sps_nc)}")
        print(f"memory per extra env copy: {mem:.1f} KiB")


if __name__ == "__main__":
    main()
