"""Load test of the Ray Serve app on loopback: concurrent clients against POST /act.

    python bench/speed/serve_load.py [--clients 64 --seconds 30 --batch-size 16 --checkpoint DIR]
    python bench/speed/serve_load.py --adversarial [--adversarial-share 0.25 --seconds 20]

Three phases on one local Ray instance, same requests, same machine, same run:

1. dynamic batching (`--batch-size`, `--batch-wait-ms`): throughput, p50/p99 latency, errors,
   mean batch size;
2. batch size 1 (the same app redeployed with max_batch_size=1): the baseline of the
   batching gain;
3. batching again while `POST /reload` swaps to a second checkpoint and back: failed
   requests (must be 0), versions served, reload times.

Requests are real pages: the observation, available actions and chosen options of every
step of expert episodes on the default catalog (search, results, item and sub pages).

`--adversarial` runs instead the adversarial phase (`bench/speed/serve_adversarial.py`):
the same requests mixed with hostile ones (20,000 whitespace characters, 5,000 candidates,
JSON nested 10,000 deep, invalid UTF-8, bodies over the size limit), a /healthz prober and
the /reload refusals, at the server's queue bounds and then past them (overload); its
figures go under "adversarial" in the same JSON file, the other phases' kept.
The policy is the default MiniLM-L6 with the CPU preset (a fresh head, or `--checkpoint`).
Every load loop is bounded in time and in count. Figures are printed as a Markdown
table and written to bench/out/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from envs.agents import ExpertAgent  # noqa: E402
from envs.env import WebShopEnv  # noqa: E402
from envs.generate import default_catalog  # noqa: E402
from policies.search_queries import search_queries  # noqa: E402


def request_bodies(num_goals: int, seed: int = 0) -> list[dict]:
    """One /act body per step of expert episodes on the default catalog's test goals."""
    catalog = default_catalog()
    env, agent, bodies = WebShopEnv(catalog=catalog), ExpertAgent(search_queries), []
    for goal in list(catalog.goal_ids("test"))[:num_goals]:
        obs, info = env.reset(options={"goal_id": goal})
        agent.reset(env)
        done = False
        while not done:
            bodies.append({"observation": obs, "available_actions": info["available_actions"],
                           "clicked_options": list((env.session.options or {}).values())})
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
    random.Random(seed).shuffle(bodies)
    return bodies


def make_checkpoints(out: Path, given: str | None) -> tuple[str, str]:
    """Two checkpoints to serve and swap: `given` (or a fresh MiniLM policy) as v1 and v2."""
    from policies.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
    from policies.policy import Policy, preset_config

    policy = load_checkpoint(given) if given else Policy(preset_config("cpu"))
    first = save_checkpoint(policy, out / "v1", CheckpointMetadata(version=policy.version + 1))
    second = save_checkpoint(policy, out / "v2", CheckpointMetadata(version=policy.version + 2))
    return str(first), str(second)


async def run_load(url: str, bodies: list[dict], clients: int, seconds: float, max_requests: int,
                   reloads: list[tuple[float, str]] = ()) -> dict:
    """`clients` concurrent loops posting /act for `seconds` (at most `max_requests` in all);
    POST /reload at the given offsets. Latencies in ms."""
    import aiohttp

    latencies, errors, versions, batch_sizes, reload_log = [], [], {}, [], []
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    timeout = aiohttp.ClientTimeout(total=120)

    async def client(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal sent
        i = k
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            body = bodies[i % len(bodies)]
            i += clients
            t0 = time.perf_counter()
            try:
                async with session.post(url + "/act", json=body) as r:
                    data = await r.json(content_type=None)
                    if r.status != 200:
                        errors.append(f"{r.status}: {str(data)[:200]}")
                        continue
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                errors.append(repr(e)[:200])
                continue
            latencies.append(1000 * (time.perf_counter() - t0))
            versions[data["policy_version"]] = versions.get(data["policy_version"], 0) + 1
            batch_sizes.append(data["batch_size"])

    async def reloader(session: aiohttp.ClientSession) -> None:
        for at, checkpoint in reloads:
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            t0 = time.perf_counter()
            async with session.post(url + "/reload", json={"checkpoint": checkpoint}) as r:
                data = await r.json(content_type=None)
            reload_log.append({"at_s": round(t0 - start, 2), "status": r.status, "seconds": time.perf_counter() - t0,
                               "version": data.get("version"), "replicas_updated": data.get("replicas_updated")})

    connector = aiohttp.TCPConnector(limit=clients + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, k) for k in range(clients)), reloader(session))
    elapsed = time.perf_counter() - start
    lat = sorted(latencies)
    pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
    return {"requests": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_examples": errors[:5], "seconds": elapsed, "throughput_rps": len(latencies) / elapsed,
            "p50_ms": pick(0.50), "p99_ms": pick(0.99), "mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "mean_batch_size": statistics.fmean(batch_sizes) if batch_sizes else 0.0,
            "versions": versions, "reloads": reload_log}


def deploy(checkpoint: str, port: int, batch_size: int, batch_wait_ms: float, threads: int, first: bool) -> str:
    from ray import serve

    from cluster.serve.app import APP_NAME, ServeArgs, app, start

    args = ServeArgs(checkpoint=checkpoint, max_batch_size=batch_size, batch_wait_ms=batch_wait_ms,
                     threads=threads, poll_s=0.5, access_log=False,
                     allow_reload=True, reload_root="/")  # loopback only; swaps between two checkpoints
    if first:
        start(args, host="127.0.0.1", port=port)
    else:
        serve.run(app(args.model_dump()), name=APP_NAME, route_prefix="/")
    return f"http://127.0.0.1:{port}"


def phase(name: str, url: str, bodies: list[dict], args, reloads=()) -> dict:
    asyncio.run(run_load(url, bodies, args.clients, args.warmup_seconds, 10**6))  # warm caches, not counted
    stats = asyncio.run(run_load(url, bodies, args.clients, args.seconds if not reloads else args.reload_seconds,
                                 args.max_requests, reloads))
    print(f"{name}: {stats['ok']} ok / {stats['errors']} errors in {stats['seconds']:.1f}s, "
          f"{stats['throughput_rps']:.1f} req/s, p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms, "
          f"mean batch {stats['mean_batch_size']:.1f}", flush=True)
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--reload-seconds", type=float, default=20.0)
    p.add_argument("--warmup-seconds", type=float, default=5.0)
    p.add_argument("--max-requests", type=int, default=200_000, help="bound per phase")
    p.add_argument("--batch-size", type=int, default=16,
                   help="16: the best single-thread CPU batch here (bench: 84 states/s vs 71 at 32)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the replica")
    p.add_argument("--goals", type=int, default=100, help="expert episodes whose pages are the requests")
    p.add_argument("--checkpoint", help="serve this checkpoint (default: a fresh MiniLM policy)")
    p.add_argument("--port", type=int, default=8741)
    p.add_argument("--out", type=Path, default=Path("bench/out/serve_load.json"))
    p.add_argument("--adversarial", action="store_true", help="run the adversarial phase instead (module doc)")
    p.add_argument("--adversarial-share", type=float, default=0.25, help="share of hostile requests")
    args = p.parse_args(argv)
    if args.adversarial:
        return adversarial(args)

    import ray
    from ray import serve

    bodies = request_bodies(args.goals)
    print(f"{len(bodies)} distinct /act requests from {args.goals} expert episodes", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    v1, v2 = make_checkpoints(tmp, args.checkpoint)
    # address="local": a fresh instance even when `ray start` runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    results: dict = {"clients": args.clients, "seconds": args.seconds, "batch_size": args.batch_size,
                     "batch_wait_ms": args.batch_wait_ms, "threads": args.threads, "requests_pool": len(bodies)}
    try:
        url = deploy(v1, args.port, args.batch_size, args.batch_wait_ms, args.threads, first=True)
        results["batched"] = phase(f"batch <= {args.batch_size}", url, bodies, args)
        deploy(v1, args.port, 1, 0.0, args.threads, first=False)
        results["batch_1"] = phase("batch = 1", url, bodies, args)
        deploy(v1, args.port, args.batch_size, args.batch_wait_ms, args.threads, first=False)
        third = args.reload_seconds / 3
        results["reload"] = phase("reload under load", url, bodies, args, reloads=[(third, v2), (2 * third, v1)])
    finally:
        serve.shutdown()
        ray.shutdown()
    results["batching_gain"] = results["batched"]["throughput_rps"] / max(results["batch_1"]["throughput_rps"], 1e-9)
    print("\n| phase | requests ok | errors | req/s | p50 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for key, label in [("batched", f"batching (max {args.batch_size}, wait {args.batch_wait_ms:g} ms)"),
                       ("batch_1", "batch size 1"), ("reload", "batching + 2 reloads")]:
        s = results[key]
        print(f"| {label} | {s['ok']} | {s['errors']} | {s['throughput_rps']:.1f} | {s['p50_ms']:.0f} | "
              f"{s['p99_ms']:.0f} | {s['mean_batch_size']:.1f} |")
    print(f"\nbatching gain: {results['batching_gain']:.2f}x throughput; reloads: "
          + ", ".join(f"v{r['version']} in {r['seconds']:.1f}s ({r['status']})" for r in results["reload"]["reloads"])
          + f"; versions served: {results['reload']['versions']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    failed = results["batched"]["errors"] + results["batch_1"]["errors"] + results["reload"]["errors"]
    return 1 if failed or any(r["status"] != 200 for r in results["reload"]["reloads"]) else 0


def adversarial(args) -> int:
    """The adversarial phase on its own Ray instance; figures merged into `args.out`."""
    import shutil

    import ray
    from ray import serve

    from serve_adversarial import failed, run_phases

    bodies = request_bodies(args.goals)
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    inside, outside = make_checkpoints(tmp / "root", args.checkpoint)
    outside = shutil.move(outside, tmp / "outside")  # a real checkpoint, outside the reload root
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_phases(args, bodies, inside, str(outside))
    finally:
        serve.shutdown()
        ray.shutdown()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**previous, "adversarial": results}, indent=2, default=str))
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
