"""The adversarial phase of the Serve load test (`serve_load.py --adversarial`).

`clients` concurrent loops post to /act: most send the normal bodies of `serve_load.py`
(real expert pages), `share` of them one of the hostile kinds below, chosen at random per
request; a prober GETs /healthz every `HEALTHZ_EVERY_S` meanwhile, and a third of the way
in, the /reload refusals are checked under the load. It runs on one replica:

- `baseline`: normal requests only, the same clients, to compare with;
- `limits`: the server's default queue bounds (`max_ongoing_requests`, `max_queued_requests`
  of `ServeArgs`), which 64 clients do not reach: 503s are not expected;
- `overload`: the same mix against `OVERLOAD_ONGOING` + `OVERLOAD_QUEUED` slots, fewer than
  the clients, so the proxy must shed load with 503s while what it admits keeps a bounded
  latency. Clients honour Retry-After (capped at 1 s), as a client should.

Server errors (5xx other than admission control's 503) and client-side failures
(connection errors, timeouts) must both be 0; each hostile kind must get the status
`hostile_bodies` names for it (or a 503). Every loop is bounded in time and in count.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

OVERLOAD_ONGOING, OVERLOAD_QUEUED = 8, 8
HEALTHZ_EVERY_S = 0.05
TOKEN = "bench-reload-token"
JSON = {"content-type": "application/json"}


def hostile_bodies() -> dict[str, tuple[bytes, tuple[int, ...]]]:
    """Kind -> (raw /act body, the statuses it may get besides admission control's 503)."""
    pad = " \t\n\u3000\xa0" * 4_000  # 20,000 whitespace characters, mixed kinds
    page = "WebShop [SEP] Instruction: [SEP] i want red running shoes" + pad
    deep = 10_000
    return {
        # cut to the 20,000- and 2,000-character limits: answered, not refused
        "whitespace_observation": (json.dumps({"observation": page[:20_000],
                                               "available_actions": ["search[...]", "click[buy now]"]}).encode(),
                                   (200,)),
        "whitespace_instruction": (json.dumps({"instruction": ("red shoes" + pad)[:2_000],
                                               "available_actions": ["search[...]"]}).encode(), (200,)),
        "many_candidates": (json.dumps({"instruction": "red shoes", "available_actions":
                                        [f"click[b{i:09d}]" for i in range(5_000)]}).encode(), (422,)),
        "deep_json": (b'{"observation": ' + b"[" * deep + b"]" * deep + b', "available_actions": ["search[...]"]}',
                      (400,)),
        "bad_utf8": (b'{"instruction": "red \xff\xfe shoes \xc3\x28", "available_actions": ["search[...]"]}', (400,)),
        "oversized": (b'{"observation": "' + b"x" * 1_100_000 + b'", "available_actions": ["search[...]"]}', (413,)),
    }


def percentiles(ms: list[float]) -> dict:
    s = sorted(ms)
    pick = (lambda q: round(s[min(len(s) - 1, int(q * len(s)))], 1)) if s else (lambda q: None)
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": round(s[-1], 1) if s else None}


async def reload_checks(session, url: str, inside: str, outside: str) -> list[dict]:
    """Each refusal /reload must give (and one accepted call, so the refusals are not a
    broken endpoint): (what, expected status, status got, ms)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cases = [("outside the root, with the token", {**JSON, **auth}, {"checkpoint": outside}, 403),
             ("'../' out of the root, with the token", {**JSON, **auth},
              {"checkpoint": "../" * 12 + outside.lstrip("/")}, 403),
             ("inside the root, no token", JSON, {"checkpoint": inside}, 401),
             ("inside the root, a wrong token", {**JSON, "Authorization": "Bearer nope"}, {"checkpoint": inside}, 401),
             ("a text/plain body (a cross-site form), with the token", {"content-type": "text/plain", **auth},
              {"checkpoint": inside}, 415),
             ("inside the root, with the token", {**JSON, **auth}, {"checkpoint": inside}, 200)]
    out = []
    for what, headers, body, expected in cases:
        t0 = time.perf_counter()
        for tries in range(1, 21):  # a 503 (the queue is full) is no answer: retry as told
            async with session.post(url + "/reload", data=json.dumps(body).encode(), headers=headers) as r:
                text, retry_after = await r.text(), r.headers.get("Retry-After")
            if r.status != 503:
                break
            await asyncio.sleep(min(float(retry_after or 1), 1.0))
        out.append({"what": what, "expected": expected, "status": r.status, "tries": tries,
                    "ms": round(1000 * (time.perf_counter() - t0), 1), "leaks_path": outside in text})
    return out


async def run_mixed(url: str, normal: list[dict], clients: int, seconds: float, max_requests: int,
                    share: float, seed: int = 0, reload_paths: tuple[str, str] | None = None) -> dict:
    """The mixed load (module doc); per-kind statuses and latencies, healthz, reload checks."""
    import aiohttp

    hostile = hostile_bodies()
    normal_raw = [json.dumps(b).encode() for b in normal]
    log: list[tuple[str, object, float]] = []  # (kind, status or exception, ms)
    health: list[tuple[object, float]] = []
    checks: list[dict] = []
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def client(session, k: int) -> None:
        nonlocal sent
        rng, i = random.Random(seed * 1_000 + k), k
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            if rng.random() < share:
                kind = rng.choice(sorted(hostile))
                body = hostile[kind][0]
            else:
                kind, body = "normal", normal_raw[i % len(normal_raw)]
                i += clients
            t0 = time.perf_counter()
            retry_after = None
            try:
                async with session.post(url + "/act", data=body, headers=JSON) as r:
                    await r.read()
                    status, retry_after = r.status, r.headers.get("Retry-After")
            except Exception as e:  # noqa: BLE001 - a failure is counted, by type
                status = type(e).__name__
            log.append((kind, status, 1000 * (time.perf_counter() - t0)))
            if status == 503:  # a polite client waits as told (at most 1 s here)
                await asyncio.sleep(min(float(retry_after or 1), 1.0))

    async def prober(session) -> None:
        for _ in range(int(seconds / HEALTHZ_EVERY_S) + 1):
            if time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            try:
                async with session.get(url + "/healthz") as r:
                    await r.read()
                    status = r.status
            except Exception as e:  # noqa: BLE001
                status = type(e).__name__
            health.append((status, 1000 * (time.perf_counter() - t0)))
            await asyncio.sleep(max(0.0, HEALTHZ_EVERY_S - (time.perf_counter() - t0)))

    async def reloader(session) -> None:
        if reload_paths:
            await asyncio.sleep(seconds / 3)
            checks.extend(await reload_checks(session, url, *reload_paths))

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 8), timeout=timeout) as session:
        await asyncio.gather(*(client(session, k) for k in range(clients)), prober(session), reloader(session))
    return summarize(log, health, checks, time.perf_counter() - start, {k: v[1] for k, v in hostile.items()})


def summarize(log: list, health: list, checks: list, elapsed: float, expected: dict) -> dict:
    kinds: dict = {}
    for kind in ["normal", *sorted(expected)]:
        rows = [(s, ms) for k, s, ms in log if k == kind]
        statuses: dict = {}
        for s, _ in rows:
            statuses[str(s)] = statuses.get(str(s), 0) + 1
        answered = [ms for s, ms in rows if s != 503]
        kinds[kind] = {"count": len(rows), "statuses": statuses, **percentiles(answered),
                       "p99_ms_503": percentiles([ms for s, ms in rows if s == 503])["p99_ms"]}
    allowed = {"normal": (200,), **expected}
    unexpected = [f"{k}: {s}" for k, s, _ in log if isinstance(s, int) and s != 503 and s not in allowed[k]]
    server_errors = sum(1 for _, s, _ in log if isinstance(s, int) and s >= 500 and s != 503)
    failures = [f"{k}: {s}" for k, s, _ in log if not isinstance(s, int)]
    n503 = sum(1 for _, s, _ in log if s == 503)
    return {"seconds": elapsed, "requests": len(log), "answers_per_s": len(log) / elapsed,
            "normal_ok_per_s": kinds["normal"]["statuses"].get("200", 0) / elapsed,
            "server_errors": server_errors, "client_failures": len(failures), "failure_examples": failures[:5],
            "unexpected_statuses": len(unexpected), "unexpected_examples": unexpected[:5],
            "share_503": n503 / max(len(log), 1), "kinds": kinds,
            "healthz": {"count": len(health), "statuses": {str(s): sum(1 for x, _ in health if x == s)
                                                           for s in {x for x, _ in health}},
                        **percentiles([ms for _, ms in health])},
            "reload_checks": checks}


def deploy(checkpoint: str, root: str, port: int, cli, first: bool, overload: bool) -> str:
    """One replica of the app with reloads on (confined to `root`, token required)."""
    from ray import serve

    from cluster.serve.app import APP_NAME, ServeArgs, app, start

    limits = {"max_ongoing_requests": OVERLOAD_ONGOING, "max_queued_requests": OVERLOAD_QUEUED} if overload else {}
    args = ServeArgs(checkpoint=checkpoint, max_batch_size=cli.batch_size,
                     threads=cli.threads, poll_s=0.5, access_log=False, allow_reload=True, reload_root=root,
                     reload_token=TOKEN, **limits)
    if first:
        start(args, host="127.0.0.1", port=port)
    else:
        serve.run(app(args.model_dump()), name=APP_NAME, route_prefix="/")
    return f"http://127.0.0.1:{port}"


def run_phases(cli, normal: list[dict], inside: str, outside: str) -> dict:
    """Both runs (module doc) on the Ray instance the caller started; printed and returned."""
    root = str(Path(inside).parent)
    results = {"share": cli.adversarial_share, "clients": cli.clients, "seconds": cli.seconds,
               "overload_slots": {"max_ongoing_requests": OVERLOAD_ONGOING, "max_queued_requests": OVERLOAD_QUEUED}}
    for name, overload in [("limits", False), ("overload", True)]:
        url = deploy(inside, root, cli.port, cli, first=name == "limits", overload=overload)
        asyncio.run(run_mixed(url, normal, cli.clients, cli.warmup_seconds, 10**6, 0.0))  # warm, not counted
        if name == "limits":  # the same clients, normal requests only: what the hostile ones cost
            results["baseline"] = asyncio.run(run_mixed(url, normal, cli.clients, cli.seconds, cli.max_requests, 0.0))
            print_phase("baseline (no hostile requests)", results["baseline"])
        stats = asyncio.run(run_mixed(url, normal, cli.clients, cli.seconds, cli.max_requests,
                                      cli.adversarial_share, reload_paths=(inside, outside)))
        results[name] = stats
        print_phase(name, stats)
    return results


def print_phase(name: str, s: dict) -> None:
    print(f"\n{name}: {s['requests']} requests in {s['seconds']:.1f}s ({s['answers_per_s']:.1f} answers/s, "
          f"normal 200s {s['normal_ok_per_s']:.1f}/s); server errors {s['server_errors']}, client failures "
          f"{s['client_failures']}, unexpected statuses {s['unexpected_statuses']}, 503 share {s['share_503']:.1%}; "
          f"/healthz p50 {s['healthz']['p50_ms']} ms p99 {s['healthz']['p99_ms']} ms {s['healthz']['statuses']}")
    print("| kind | count | statuses | p50 ms | p99 ms | max ms | p99 ms of 503s |")
    print("|---|---|---|---|---|---|---|")
    for kind, k in s["kinds"].items():
        if not k["count"]:
            continue
        print(f"| {kind} | {k['count']} | {k['statuses']} | {k['p50_ms']} | {k['p99_ms']} | {k['max_ms']} | "
              f"{k['p99_ms_503']} |")
    for c in s["reload_checks"]:
        print(f"/reload {c['what']}: {c['status']} (expected {c['expected']}) in {c['ms']} ms, "
              f"{c['tries']} tr{'y' if c['tries'] == 1 else 'ies'}")


def failed(results: dict) -> bool:
    """Any server error, client failure, unexpected status or reload check off."""
    for name in ("limits", "overload"):
        s = results[name]
        if s["server_errors"] or s["client_failures"] or s["unexpected_statuses"]:
            return True
        if len(s["reload_checks"]) != 6 or any(c["status"] != c["expected"] or c["leaks_path"]
                                               for c in s["reload_checks"]):
            return True
    return results["limits"]["share_503"] > 0
