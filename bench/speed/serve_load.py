"""Load test of the Ray Serve app on loopback: concurrent clients against POST /act.

    python bench/speed/serve_load.py [--baseline f89e9b1] [--clients 64 --seconds 20 --checkpoint DIR]
    python bench/speed/serve_load.py --sweep 4 8 16 32          # batch sizes, this tree only
    python bench/speed/serve_load.py --adversarial [--adversarial-share 0.25 --seconds 20]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/serve_load.py   # the AVX2 path on a newer CPU
    RAY_SERVE_ENABLE_HA_PROXY=1 python bench/speed/serve_load.py  # behind Ray's HAProxy ingress

Each server runs in its own process and local Ray instance, from this tree or, with
`--baseline REV`, from a `git worktree` of that revision (serving `--baseline-checkpoint`,
its own shipped model, where given): the same requests, machine and run, side by side;
each tree with a fresh folder of shared encodings. Phases (a fresh deployment each):

1. dynamic batching (`--batch-size`, the tree's admission) on new pages: throughput, p50/p99
   of answered requests, the share answered 503, errors, mean batch size; then the same
   pages again on the same server ("pages seen before": what repeating traffic sees);
2. batch size 1 on other new pages: the baseline of the batching gain;
3. batching again on other new pages while `POST /reload` swaps to a second checkpoint
   and back: failed requests (must be 0), versions served, reload times.

Requests are real pages: the observation, available actions and chosen options of every
step of expert episodes on the default catalog (search, results, item and sub pages), from
`--goals` goals of every split, shuffled; each phase takes pages no earlier phase sent, so
the server has not seen them (a real user's page, with its instruction, is new). Clients
loop closed: the next request when the last is answered; after a 503 they wait what
Retry-After says (at most until the phase ends). Latencies count answered (200) requests;
503s are reported as a share, anything else as errors.

`--adversarial` runs instead the adversarial phase (`bench/speed/serve_adversarial.py`):
the same requests mixed with hostile ones (20,000 whitespace characters, 5,000 candidates,
JSON nested 10,000 deep, invalid UTF-8, bodies over the size limit), a /healthz prober and
the /reload refusals, at the server's queue bounds and then past them (overload); its
figures go under "adversarial" in the same JSON file, the other phases' kept. The policy
is the CPU preset's (a fresh head, or `--checkpoint`). Every load loop is bounded in time
and count. Figures are printed as a Markdown table and written to bench/out/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cluster.serve.command import replica_count  # noqa: E402
from envs.agents import ExpertAgent  # noqa: E402
from envs.env import WebShopEnv  # noqa: E402
from envs.generate import default_catalog  # noqa: E402
from policies.search_queries import search_queries  # noqa: E402


def request_bodies(num_goals: int, seed: int = 0) -> list[dict]:
    """One /act body per step of expert episodes on the default catalog's goals (test goals
    first, then the other splits), shuffled."""
    catalog = default_catalog()
    env, agent, bodies = WebShopEnv(catalog=catalog), ExpertAgent(search_queries), []
    goals = [g for split in ("test", "eval", "train") for g in catalog.goal_ids(split)][:num_goals]
    for goal in goals:
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


def make_checkpoints(out: Path, given: str | None, precision: str | None = None) -> tuple[str, str]:
    """Two checkpoints to serve and swap: `given` (or a fresh MiniLM policy) as v1 and v2,
    set to `precision` if given."""
    from policies.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
    from policies.policy import Policy, preset_config

    policy = load_checkpoint(given) if given else Policy(preset_config("cpu"))
    if precision:
        policy = policy.with_config(precision=precision)
    first = save_checkpoint(policy, out / "v1", CheckpointMetadata(version=policy.version + 1))
    second = save_checkpoint(policy, out / "v2", CheckpointMetadata(version=policy.version + 2))
    return str(first), str(second)


async def run_load(url: str, bodies: list[dict], clients: int, seconds: float, max_requests: int,
                   reloads: list[tuple[float, str]] = ()) -> dict:
    """`clients` closed loops posting /act for `seconds` (at most `max_requests` in all), client
    k sending bodies k, k + clients, ... (wrapping around, counted as repeats); POST /reload
    at the given offsets. Latencies in ms, of answered requests."""
    import aiohttp

    latencies, errors, versions, batch_sizes, reload_log, pages = [], [], {}, [], [], set()
    sent = refused = repeats = 0
    start = time.perf_counter()
    deadline = start + seconds
    timeout = aiohttp.ClientTimeout(total=120)

    async def client(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal sent, refused, repeats
        i = k
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            repeats += i >= len(bodies)
            pages.add(i % len(bodies))
            body = bodies[i % len(bodies)]
            i += clients
            t0 = time.perf_counter()
            try:
                async with session.post(url + "/act", json=body) as r:
                    data = await r.json(content_type=None)
                    if r.status == 503:
                        refused += 1
                        wait = float(r.headers.get("Retry-After", "1"))
                        await asyncio.sleep(max(0.0, min(wait, deadline - time.perf_counter())))
                        continue
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
    total = len(latencies) + refused + len(errors)
    return {"requests": total, "ok": len(latencies), "refused_503": refused, "errors": len(errors),
            "refused_share": refused / max(total, 1), "repeated_pages": repeats,
            "error_examples": errors[:5], "seconds": elapsed, "throughput_rps": len(latencies) / elapsed,
            "p50_ms": pick(0.50), "p99_ms": pick(0.99), "mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "mean_batch_size": statistics.fmean(batch_sizes) if batch_sizes else 0.0,
            "versions": versions, "reloads": reload_log, "pages_sent": sorted(pages)}


SERVER = """
import json, signal, sys, threading
cfg = json.loads(sys.argv[1])
from ray import serve
import ray
from cluster.serve.app import ServeArgs, start
known = {k: v for k, v in cfg["args"].items() if k in ServeArgs.model_fields}
if known.get("replicas") == "auto":  # what this tree's `webshop-rl serve` runs by default
    try:
        from cluster.serve.command import usable_cores
        known["replicas"] = usable_cores()
    except ImportError:  # a revision from before --replicas auto: its own default
        del known["replicas"]
start(ServeArgs(**known), host="127.0.0.1", port=cfg["port"])
print("READY", json.dumps(sorted(set(cfg["args"]) - set(known))), flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
serve.shutdown()
ray.shutdown()
"""


class Server:
    """One Serve app in its own process and Ray instance, from the code in `tree`, with an empty
    encodings folder of its own that also holds its stderr (`server.log`); `stop` removes it."""

    def __init__(self, tree: Path, args: dict, port: int):
        self.cache = Path(tempfile.mkdtemp(prefix="serve-load-cache-"))
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local instance of its own
        env.update(PYTHONPATH=str(tree), WEBSHOP_RL_CACHE=str(self.cache))
        self.url = f"http://127.0.0.1:{port}"
        with (self.cache / "server.log").open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps({"args": args, "port": port})],
                                         cwd=tree, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            tail = (self.cache / "server.log").read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(f"the server from {tree} did not start (exit {self.proc.poll()}):\n{tail}")
        self.ignored = json.loads(line.split(" ", 1)[1])  # settings this tree does not have

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.cache, ignore_errors=True)  # half a gigabyte after a phase


def baseline_tree(rev: str) -> Path:
    """A detached `git worktree` of `rev` in a temporary folder."""
    root = Path(__file__).resolve().parents[2]
    tree = Path(tempfile.mkdtemp(prefix="serve-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    return tree


def server_args(v1: str, batch_size: int, threads: int, replicas: int | str = 1,
                max_wait_s: float | None = None) -> dict:
    """The app's settings (a revision without one of them ignores it: `Server.ignored`)."""
    args = {"checkpoint": v1, "max_batch_size": batch_size, "threads": threads,
            "replicas": replicas, "poll_s": 0.5, "access_log": False, "allow_reload": True, "reload_root": "/"}
    return args if max_wait_s is None else {**args, "max_wait_s": max_wait_s}


def measured(name: str, url: str, warm: list[dict], pages: list[dict], args, reloads=()) -> dict:
    """A warm-up on `warm` (not counted), then the phase on `pages`; the pages it sent under
    "pages_sent" (indices into `pages`)."""
    asyncio.run(run_load(url, warm, args.clients, args.warmup_seconds, 10**6))  # process warm-up, not counted
    stats = asyncio.run(run_load(url, pages, args.clients, args.seconds, args.max_requests, reloads))
    print(f"  {name}: {stats['ok']} ok / {stats['refused_503']} 503 ({100 * stats['refused_share']:.0f}%) / "
          f"{stats['errors']} errors in {stats['seconds']:.1f}s, {stats['throughput_rps']:.1f} req/s, "
          f"p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms, mean batch {stats['mean_batch_size']:.1f}"
          + (f", {stats['repeated_pages']} pages repeated" if stats["repeated_pages"] else ""), flush=True)
    return stats


def run_tree(label: str, tree: Path, slices: list[list[dict]], v1: str, v2: str, args) -> dict:
    """The three phases (module doc) against servers from `tree`, each with an empty folder
    of shared encodings (`Server`), so that no phase starts with another's encodings."""
    print(f"{label} ({tree}):", flush=True)
    out = {}
    batched = server_args(v1, args.batch_size, args.threads, args.replicas, args.max_wait)
    with Server(tree, batched, args.port) as server:
        out["batched"] = measured(f"batch <= {args.batch_size}, new pages", server.url, slices[0], slices[1], args)
        seen = [slices[1][i] for i in out["batched"]["pages_sent"]]
        out["seen"] = measured(f"batch <= {args.batch_size}, pages seen before", server.url, seen[:50], seen, args)
    out["ignored_settings"] = server.ignored
    with Server(tree, server_args(v1, 1, args.threads, args.replicas, args.max_wait), args.port) as server:
        out["batch_1"] = measured("batch = 1, new pages", server.url, slices[2], slices[3], args)
    third = args.seconds / 3
    with Server(tree, batched, args.port) as server:
        out["reload"] = measured("reload under load, new pages", server.url, slices[4], slices[5], args,
                                 reloads=[(third, v2), (2 * third, v1)])
    out["batching_gain"] = out["batched"]["throughput_rps"] / max(out["batch_1"]["throughput_rps"], 1e-9)
    for phase in ("batched", "seen", "batch_1", "reload"):
        out[phase]["pages_sent"] = len(out[phase]["pages_sent"])
    return out


def page_slices(bodies: list[dict], clients: int, count: int) -> list[list[dict]]:
    """`count` disjoint slices, warm-up slices (every odd one from 0) a fifth of the measured ones."""
    unit = len(bodies) // (count // 2 * 6)
    sizes = [unit if k % 2 == 0 else 5 * unit for k in range(count)]
    if unit < clients:
        raise SystemExit(f"{len(bodies)} pages are too few for {clients} clients: raise --goals")
    out, start = [], 0
    for n in sizes:
        out.append(bodies[start:start + n])
        start += n
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup-seconds", type=float, default=5.0)
    p.add_argument("--max-requests", type=int, default=200_000, help="bound per phase")
    p.add_argument("--batch-size", type=int, default=32, help="the batched phases' max_batch_size (the app's default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each replica")
    p.add_argument("--replicas", type=replica_count, default=1, help="replicas per server (auto: each tree's default)")
    p.add_argument("--max-wait", type=float, help="the app's admission bound in seconds (0: off; default: the app's)")
    p.add_argument("--goals", type=int, default=1500, help="expert episodes whose pages are the requests")
    p.add_argument("--checkpoint", help="serve this checkpoint (default: a fresh MiniLM policy)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="the served checkpoints' precision "
                   "(default: fp32 below AVX-512 kernels, where older revisions' auto read the CPU flags)")
    p.add_argument("--baseline", metavar="REV", help="also run the servers of this git revision, side by side")
    p.add_argument("--baseline-checkpoint", help="the baseline serves this checkpoint (default: as this tree)")
    p.add_argument("--sweep", type=int, nargs="+", metavar="N", help="only the batched phase, for these batch sizes")
    p.add_argument("--port", type=int, default=8741)
    p.add_argument("--out", type=Path, default=Path("bench/out/serve_load.json"))
    p.add_argument("--adversarial", action="store_true", help="run the adversarial phase instead (module doc)")
    p.add_argument("--adversarial-share", type=float, default=0.25, help="share of hostile requests")
    args = p.parse_args(argv)
    if args.adversarial:
        return adversarial(args)
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    bodies = request_bodies(args.goals)
    print(f"CPU capability {capability}; {len(bodies)} distinct /act requests from {args.goals} expert episodes",
          flush=True)
    precision = args.precision or ("auto" if capability.startswith("AVX512") else "fp32")
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    atexit.register(shutil.rmtree, tmp, True)  # the checkpoints served
    v1, v2 = make_checkpoints(tmp, args.checkpoint, precision)
    own = args.baseline_checkpoint
    base = make_checkpoints(tmp / "baseline", own, precision) if own else (v1, v2)
    here = Path(__file__).resolve().parents[2]
    ingress = "haproxy" if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1" else "serve proxy"
    results: dict = {"cpu_capability": capability, "precision": precision, "ingress": ingress, "clients": args.clients,
                     "seconds": args.seconds, "batch_size": args.batch_size,
                     "threads": args.threads, "replicas": args.replicas, "requests_pool": len(bodies)}
    if args.sweep:
        slices = page_slices(bodies, args.clients, 2 * len(args.sweep))
        for k, size in enumerate(args.sweep):
            settings = server_args(v1, size, args.threads, args.replicas, args.max_wait)
            with Server(here, settings, args.port) as server:  # each size starts with an empty folder
                results[f"batch_{size}"] = measured(f"batch <= {size}, new pages", server.url, slices[2 * k],
                                                    slices[2 * k + 1], args)
                results[f"batch_{size}"]["pages_sent"] = len(results[f"batch_{size}"]["pages_sent"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
        return 0
    slices = page_slices(bodies, args.clients, 6)
    trees = [("this tree", here, (v1, v2))]
    if args.baseline:
        trees.insert(0, (f"baseline {args.baseline}", baseline_tree(args.baseline), base))
    try:
        for label, tree, served in trees:
            results[label] = run_tree(label, tree, slices, *served, args)
    finally:
        if args.baseline:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(trees[0][1])], check=False)
            shutil.rmtree(trees[0][1].parent, ignore_errors=True)
    print(f"\nCPU capability {capability}, precision {precision}, {ingress}, {args.clients} clients, "
          f"{args.seconds:g} s per phase")
    print("\n| code | phase | ok | 503 | errors | req/s | p50 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, *_ in trees:
        r = results[label]
        for key, name in [("batched", f"batching (max {args.batch_size}), new pages"),
                          ("seen", "batching, pages seen before"), ("batch_1", "batch size 1, new pages"),
                          ("reload", "batching + 2 reloads, new pages")]:
            s = r[key]
            print(f"| {label} | {name} | {s['ok']} | {100 * s['refused_share']:.0f}% | {s['errors']} | "
                  f"{s['throughput_rps']:.1f} | {s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['mean_batch_size']:.1f} |")
        print(f"| {label} | batching gain | | | | x{r['batching_gain']:.2f} | | | |")
    if args.baseline:
        new, old = results["this tree"], results[f"baseline {args.baseline}"]
        print("\nthis tree / baseline, req/s: " + ", ".join(
            f"{key} x{new[key]['throughput_rps'] / max(old[key]['throughput_rps'], 1e-9):.2f}"
            for key in ("batched", "seen", "batch_1", "reload")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    phases = [results[label] for label, *_ in trees]
    failed = sum(r[k]["errors"] for r in phases for k in ("batched", "seen", "batch_1", "reload"))
    bad_reloads = [r for phase in phases for r in phase["reload"]["reloads"] if r["status"] != 200]
    return 1 if failed or bad_reloads else 0


def adversarial(args) -> int:
    """The adversarial phase on its own Ray instance; figures merged into `args.out`."""
    import ray
    from ray import serve

    from serve_adversarial import failed, run_phases

    bodies = request_bodies(args.goals)
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    atexit.register(shutil.rmtree, tmp, True)
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
