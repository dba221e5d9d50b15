"""One process of `bench/speed/catalog_scale.py`: what a rollout worker does with the
catalog (open it, its search index, an env; step episodes), timed, then held open so
the parent can read its memory from /proc while its siblings hold theirs.

    python bench/speed/catalog_worker.py CATALOG_DIR hold|search|steps|speed|build [--seconds S] [--queries N]

It only uses the API the code before and after the node-shared store have in common
(`Catalog.from_dir`, `index_for`, `WebShopEnv`), so the parent runs it on either code
(PYTHONPATH) and compares the designs in one run (`build` needs the store's code).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
T_START = time.perf_counter()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from envs import Catalog, WebShopEnv  # noqa: E402
from envs.agents import RandomAgent  # noqa: E402
from envs.search import index_for  # noqa: E402

# pyarrow's first array costs a process ~30 MB of heap once, whatever its size; a rollout
# worker pays it for its trajectory batches in either design, so it is paid here up front
pa.array([0])


def open_all(directory: str) -> tuple[Catalog, object, WebShopEnv, dict]:
    t0 = time.perf_counter()
    catalog = Catalog.from_dir(directory)
    t1 = time.perf_counter()
    index = index_for(catalog)
    t2 = time.perf_counter()
    env = WebShopEnv(catalog=catalog, search_index=index)
    obs, info = env.reset(seed=0, options={"goal_id": catalog.goal_ids("train")[0]})
    env.step(f"search[{env.session.goal.instruction_text}]")
    t3 = time.perf_counter()
    times = {"import_s": t0 - T_START, "catalog_s": t1 - t0, "index_s": t2 - t1, "first_step_s": t3 - t2,
             "ready_s": t3 - T_START}
    return catalog, index, env, times


def episodes(env: WebShopEnv, catalog: Catalog, cpu_seconds: float, seed: int) -> tuple[int, float]:
    """Random-agent episodes over train goals for `cpu_seconds` of this process's CPU
    time (so other work on the machine does not count against it): (steps, cpu s)."""
    agent = RandomAgent(seed)
    ids = list(catalog.goal_ids("train"))
    steps, i, t0 = 0, 0, time.process_time()
    while time.process_time() - t0 < cpu_seconds:
        obs, info = env.reset(seed=seed + i, options={"goal_id": ids[(seed * 7919 + i) % len(ids)]})
        agent.reset(env)
        done = False
        while not done:
            obs, r, terminated, truncated, info = env.step(agent.act(obs, info))
            steps += 1
            done = terminated or truncated
        i += 1
    return steps, time.process_time() - t0


def search_latency(catalog: Catalog, queries: int) -> dict:
    """p50/p99 (ms) of uncached searches for distinct goal instructions, on the clock and
    in this process's CPU time (which other work on the machine does not inflate). The
    queries run twice: the first pass meets index pages this process has not touched yet
    (a mapped index faults them in; a loaded one has them), the second is steady state."""
    index = index_for(catalog)
    size, index._cache_size = index._cache_size, 0  # every query scored: no query cache
    index._cache.clear()
    texts = list(dict.fromkeys(g.instruction_text for g in catalog.goals))[:queries]
    out = {"queries": len(texts)}
    for name in ("first", "search"):
        times, cpu = [], []
        for q in texts:
            t0, c0 = time.perf_counter(), time.process_time()
            index.search(q)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out.update({f"{name}_p50_ms": float(np.percentile(times, 50) * 1e3),
                    f"{name}_p99_ms": float(np.percentile(times, 99) * 1e3),
                    f"{name}_cpu_p50_ms": float(np.percentile(cpu, 50) * 1e3),
                    f"{name}_cpu_p99_ms": float(np.percentile(cpu, 99) * 1e3)})
    index._cache_size = size
    return out


def build(directory: str) -> dict:
    """Open (building first where this node has none) the stored catalog and its index;
    what `describe` says, and whether they were there already (the store's code only)."""
    from envs.catalog_store import CatalogFiles, describe, store_key, store_root
    from envs.webshop_files import find_catalog_files

    files = CatalogFiles(**{k: None if v is None else str(v) for k, v in find_catalog_files(directory).items()})
    existed = (store_root() / store_key(files) / "meta.json").exists()
    t0 = time.perf_counter()
    catalog = Catalog.from_dir(directory)
    return {**describe(catalog.stored), "existed": existed, "open_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("catalog")
    ap.add_argument("mode", choices=["hold", "search", "steps", "speed", "build"])
    ap.add_argument("--seconds", type=float, default=5.0, help="CPU seconds of episodes")
    ap.add_argument("--warmup", type=float, default=0.0, help="CPU seconds of episodes before those measured")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--query-cache", choices=["on", "off"], default="on")
    args = ap.parse_args()
    if args.mode == "build":
        print(json.dumps(build(args.catalog)), flush=True)
        return
    catalog, index, env, out = open_all(args.catalog)
    out["products"], out["goals"] = len(catalog), len(catalog.goals)
    if args.mode in ("search", "speed"):
        out.update(search_latency(catalog, args.queries))
    if args.mode != "search":
        if args.query_cache == "off":
            index._cache_size = 0
        if args.warmup:  # steady state: the pages this process reads are mapped, its caches filled
            warm_steps, warm_cpu = episodes(env, catalog, args.warmup, args.seed + 1000)
            out["warmup_steps_per_cpu_s"] = warm_steps / warm_cpu if warm_steps else 0.0
        steps, cpu = episodes(env, catalog, args.seconds, args.seed)
        out.update(steps=steps, cpu_s=cpu, steps_per_cpu_s=steps / cpu if steps else 0.0)
    print(json.dumps(out), flush=True)
    if args.mode == "hold":
        sys.stdin.readline()  # the parent reads /proc/<pid>/smaps_rollup, then closes stdin


if __name__ == "__main__":
    main()
