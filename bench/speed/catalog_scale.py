"""The catalog at scale: one stored catalog + index per node, mapped by every worker.

    python bench/speed/catalog_scale.py --size 1000000 [--workers 2 4] [--repeats 3]
        [--old-code DIR --compare-sizes 100000 250000] [--cache DIR] [--rebuild]

For a generated catalog of `--size` products (written first if missing, timed): the
build time, peak memory and disk size of the stored catalog and of its search index;
the start-up time of a worker once they exist (interpreter start to its first search
done, page cache warm); the memory of K worker processes holding the catalog, its index
and an env after some random-agent episodes, read from /proc/PID/smaps_rollup (USS =
private pages; PSS = each shared page divided among its sharers; anonymous = heap),
for each K in `--workers`; search p50/p99 (no query cache; steady state, and the first
pass over index pages the process has not touched yet) and env steps per CPU-second
(random agent; query cache on and off) after `--warmup` CPU-seconds of episodes, which
a short run would otherwise mostly spend faulting in mapped pages and filling caches. With `--old-code` (a checkout of the code
before the node-shared store, e.g. `git archive 4995b78 | tar -x -C DIR`), the same
memory of two workers, search latency and env steps are measured for that design and
for this one at `--compare-sizes`, and the old design's per-worker memory is projected
linearly to `--size` (each of its workers parses the catalog into its own heap; at 1M
products that is many GB each, more than two fit in this machine).
Medians [min-max] over `--repeats`. Every process is its own child (bench/speed/
catalog_worker.py), so this process's memory does not mix in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("catalog_worker.py")
sys.path.insert(0, str(ROOT))


def spread(xs: list[float], fmt: str = ".3g") -> str:
    return f"{statistics.median(xs):{fmt}} [{min(xs):{fmt}}-{max(xs):{fmt}}]"


def child_env(cache: Path, code: Path = ROOT) -> dict:
    return {**os.environ, "WEBSHOP_RL_CACHE": str(cache), "PYTHONPATH": str(code),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run_child(args: list[str], env: dict) -> tuple[dict, float, float]:
    """Run a child to completion: (its last JSON line, wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"child failed ({p.returncode}): {' '.join(args)}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), time.perf_counter() - t0, usage.ru_maxrss / 1024


def smaps(pid: int) -> dict[str, float]:
    """MiB of a process: Rss, Pss, USS (private clean + dirty), Anonymous."""
    kb = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        kb[name] = int(value.split()[0])
    return {"rss": kb["Rss"] / 1024, "pss": kb["Pss"] / 1024,
            "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024, "anon": kb["Anonymous"] / 1024}


def search_figures(runs: list[dict]) -> str:
    f = lambda key: spread([r[key] for r in runs])  # noqa: E731
    return (f"steady p50 {f('search_p50_ms')} ms, p99 {f('search_p99_ms')} ms (CPU time p50 "
            f"{f('search_cpu_p50_ms')}, p99 {f('search_cpu_p99_ms')}); first pass over fresh pages "
            f"p50 {f('first_p50_ms')} ms, p99 {f('first_p99_ms')} ms")


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hold_workers(directory: Path, k: int, env: dict, seconds: float) -> list[dict]:
    """K workers started together; each opens everything, steps `seconds` of CPU time of
    episodes, then holds while all K are measured."""
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(directory), "hold", "--seconds", str(seconds),
                               "--seed", str(i)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for i in range(k)]
    reports = [json.loads(p.stdout.readline()) for p in procs]
    for p, r in zip(procs, reports):
        r.update(smaps(p.pid))
    for p in procs:
        p.stdin.close()
        p.wait()
    return reports


def mem_line(label: str, reports: list[dict]) -> str:
    """USS counts the mapped files' pages that only this process has touched so far
    (private until a sibling reads them too); anonymous memory is the process's own heap."""
    f = lambda key: statistics.median(r[key] for r in reports)  # noqa: E731
    return (f"{label}: per worker USS {f('uss'):.0f} MiB (anonymous {f('anon'):.0f}), PSS {f('pss'):.0f}, "
            f"RSS {f('rss'):.0f}; all {len(reports)} together PSS {sum(r['pss'] for r in reports):.0f} MiB; "
            f"ready in {spread([r['ready_s'] for r in reports])} s when started together")


def catalog_files(size: int, cache: Path) -> Path:
    from envs.generate import GENERATOR_VERSION

    d = cache / "catalogs" / f"gen-v{GENERATOR_VERSION}-n{size}-s0"
    if not (d / "catalog_meta.json").exists():
        code = f"from envs.generate import default_catalog_dir; default_catalog_dir({size}, 0)"
        _, wall, peak = run_child(["-c", code], child_env(cache))
        print(f"generated {size:,} products' WebShop-format files in {wall:.0f} s (peak RSS {peak:.0f} MiB)")
    mb = sum(p.stat().st_size for p in d.iterdir()) / 2**20
    print(f"catalog files: {d} ({mb:.0f} MiB of JSON)")
    return d


def build(directory: Path, cache: Path, rebuild: bool) -> dict:
    """Build (or find) the stored catalog and its index in a child: sizes, times, peak RSS."""
    info, _, peak = run_child([str(WORKER), str(directory), "build"], child_env(cache))
    if rebuild and info["existed"]:
        shutil.rmtree(info["store"])
        shutil.rmtree(info["index"])
        info, _, peak = run_child([str(WORKER), str(directory), "build"], child_env(cache))
    info["peak_mib"] = None if info["existed"] else peak
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="CPU seconds of episodes per measurement")
    ap.add_argument("--warmup", type=float, default=15.0, help="CPU seconds of episodes before those measured")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/webshop-rl-bench-cache"))
    ap.add_argument("--rebuild", action="store_true", help="time the store and index build even if they exist")
    ap.add_argument("--old-code", type=Path, help="a checkout of the code before the node-shared store")
    ap.add_argument("--compare-sizes", type=int, nargs="+", default=[1_000, 100_000, 250_000])
    ap.add_argument("--compare-only", action="store_true", help="only the comparison with --old-code")
    args = ap.parse_args()

    import torch

    print(f"# catalog at scale: {args.size:,} products; CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{os.cpu_count()} cores visible, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
          f"median [min-max] of {args.repeats}")
    if args.compare_only:
        return compare(args)
    directory = catalog_files(args.size, args.cache)
    info = build(directory, args.cache, args.rebuild)
    peak = f", peak RSS {info['peak_mib']:.0f} MiB" if info["peak_mib"] else " (built earlier)"
    print(f"store: {info['num_products']:,} products, {info['num_goals']:,} goals; parse + write "
          f"{info['parse_seconds']:.0f} s, index {info['index_seconds']:.0f} s{peak}; "
          f"on disk: catalog {info['store_bytes'] / 2**20:.0f} MiB, index {info['index_bytes'] / 2**20:.0f} MiB")

    env = child_env(args.cache)
    starts, walls = [], []
    for _ in range(args.repeats):
        r, wall, _ = run_child([str(WORKER), str(directory), "steps", "--seconds", "0"], env)
        starts.append(r)
        walls.append(wall)
    print(f"worker start-up, once the files exist: {spread(walls)} s to exit, "
          f"{spread([r['ready_s'] for r in starts])} s to its first search (imports "
          f"{spread([r['import_s'] for r in starts])}, catalog {spread([r['catalog_s'] for r in starts])}, "
          f"index {spread([r['index_s'] for r in starts])}, first step {spread([r['first_step_s'] for r in starts])})")

    for k in args.workers:
        print(mem_line(f"{k} workers, node-shared store", hold_workers(directory, k, env, args.seconds)))

    lat = [run_child([str(WORKER), str(directory), "search"], env)[0] for _ in range(args.repeats)]
    print(f"search, no query cache, {lat[0]['queries']} distinct goal instructions: {search_figures(lat)}")
    for cache_mode in ("on", "off"):
        runs = [run_child([str(WORKER), str(directory), "steps", "--seconds", str(args.seconds), "--seed", str(i),
                           "--warmup", str(args.warmup), "--query-cache", cache_mode], env)[0]
                for i in range(args.repeats)]
        print(f"env steps per CPU-second (one core), random agent, query cache {cache_mode}: "
              f"{spread([r['steps_per_cpu_s'] for r in runs], '.0f')} after {args.warmup:g} CPU-s of warm-up "
              f"(during it: {spread([r['warmup_steps_per_cpu_s'] for r in runs], '.0f')})")

    if args.old_code:
        compare(args)


def compare(args: argparse.Namespace) -> None:
    """Both designs at smaller sizes: two workers' memory, search and env steps; the old
    design's per-worker memory fitted by a line in the size and projected to `--size`."""
    old_cache = args.cache / "old-design"  # the old code's own index cache; the same catalog files
    uss: list[tuple[int, float]] = []
    for size in args.compare_sizes:
        directory = catalog_files(size, args.cache)
        envs = {"per-process catalog (before)": child_env(old_cache, args.old_code),
                "node-shared store": child_env(args.cache)}
        need = 2 * (100 + 10 * size / 1000) + 1024  # MiB: two old workers (~9.3 MiB per 1k products) and room
        if available_mib() < need:
            print(f"{size:,} products: skipped, two per-process workers need ~{need:,.0f} MiB and "
                  f"{available_mib():,.0f} MiB are available")
            continue
        for label, env in envs.items():
            run_child([str(WORKER), str(directory), "steps", "--seconds", "0"], env)  # index cache / store, once
            reports = hold_workers(directory, 2, env, args.seconds)
            print(mem_line(f"{size:,} products, 2 workers, {label}", reports))
            if env is envs["per-process catalog (before)"]:
                uss.append((size, statistics.median(r["uss"] for r in reports)))
            speed = [run_child([str(WORKER), str(directory), "speed", "--seconds", str(args.seconds), "--seed",
                                str(i), "--queries", "300", "--warmup", str(args.warmup)], env)[0]
                     for i in range(args.repeats)]
            print(f"{size:,} products, {label}: search {search_figures(speed)}; env steps per CPU-second "
                  f"{spread([r['steps_per_cpu_s'] for r in speed], '.0f')} after warm-up "
                  f"(during it {spread([r['warmup_steps_per_cpu_s'] for r in speed], '.0f')})")
    if len(uss) > 1:
        xs, ys = [x for x, _ in uss], [y for _, y in uss]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        slope = sum((x - mx) * (y - my) for x, y in uss) / sum((x - mx) ** 2 for x in xs)
        print(f"per-process design projected to {args.size:,} products (least-squares line through "
              f"{', '.join(f'{x:,}' for x in xs)}): USS {my + slope * (args.size - mx):,.0f} MiB per worker "
              f"({slope * 1e6:,.0f} MiB per million products)")


if __name__ == "__main__":
    main()
