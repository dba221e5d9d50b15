"""Where a Serve /act request's time goes on a CPU, part by part.

    python bench/speed/profile_serve.py [--batch-sizes 1 16] [--calls 12] [--http]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/profile_serve.py     # the AVX2 path on a newer CPU

Requests are real pages (every step of expert episodes, as `bench/speed/serve_load.py`
sends them), each page new to the server, and run through the functions the replica runs:
the request body parsed into `ActRequest`, its state text and candidates
(`cluster.serve.api._prepare_act`), one batched `Policy.act` (`act_batch`), the response
built and serialised. The forward pass is split by the timers of
`bench/speed/profile_cpu.py` (tokenize, frozen state layers, frozen action encoder,
trainable layer, heads); "other" is the rest (caches, the encoding folder, padding,
indexing). Padding waste counts the padded tokens each encoder ran beyond the real ones.
A second run of the same requests shows a replica's time once the pages' frozen encodings
are in the machine's folder (`policies.encoding_store`). `--checkpoint` profiles a trained
policy instead of the cpu preset's fresh one, and `--catalog-ready` first encodes the
catalog's candidate texts as a replica does before it serves (`prefill_catalog`), so that
"new pages" costs what a served new page costs: its state and its search queries.

`--http` also deploys the app on a local Ray (one replica, batch size 1) and times the same
requests one at a time over HTTP: the difference to the in-process time is the HTTP proxy,
Ray's transport to the replica and the batching machinery.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import policies.frozen as frozen_module  # noqa: E402
import policies.policy as policy_module  # noqa: E402
from cluster.serve.api import ActRequest, ActResponse, _prepare_act  # noqa: E402
from cluster.serve.core import ActItem, act_batch, prefill_catalog  # noqa: E402
from envs.generate import default_catalog  # noqa: E402
from policies.checkpoint import load_checkpoint  # noqa: E402
from policies.encoding_store import EncodingStore  # noqa: E402
from profile_cpu import Timers, fresh_policy, install, profiled  # noqa: E402
from serve_load import request_bodies  # noqa: E402

PARTS = ("parse request", "state text and candidates", "tokenize", "frozen state layers", "frozen action encoder",
         "trainable layers fwd", "heads fwd", "response", "other")


class Padding:
    """Tokens each encoder ran (slabs, filler rows, padded chunks) against the real tokens
    of its inputs; wrapped around `encode_canonical` and `encode_hidden_sequences`."""

    def __init__(self):
        self.real: dict[str, int] = {}
        self.run: dict[str, int] = {}

    def wrap(self, owner, attr: str, kind: str) -> None:
        original = getattr(owner, attr)

        def counted(encode, inputs, *args, **kwargs):
            def counting(ids_or_hidden, mask):
                self.run[kind] = self.run.get(kind, 0) + mask.numel()
                return encode(ids_or_hidden, mask)

            self.real[kind] = self.real.get(kind, 0) + sum(len(x) for x in inputs)
            return original(counting, inputs, *args, **kwargs)

        setattr(owner, attr, counted)


def serve_call(policy, catalog, timers: Timers, bodies: list[bytes]) -> list[bytes]:
    """What a replica does for `bodies` arriving together: parse, prepare, one forward, respond."""
    with timers.part("parse request"):
        reqs = [ActRequest.model_validate_json(b) for b in bodies]
    with timers.part("state text and candidates"):
        prepared = [_prepare_act(catalog, r) for r in reqs]
    decisions = act_batch(policy, [ActItem(s, list(c.texts), r.greedy) for (c, s), r in zip(prepared, reqs)])
    with timers.part("response"):
        out = []
        for (c, _), d in zip(prepared, decisions):
            body = {"action": c.actions[d.index], "candidate": c.texts[d.index], "index": d.index,
                    "prob": d.probs[d.index], "logp": d.logp, "value": d.value, "policy_version": d.version,
                    "batch_size": d.batch_size, "candidates": [
                        {"text": t, "action": a, "prob": p} for t, a, p in zip(c.texts, c.actions, d.probs)]}
            out.append(ActResponse.model_validate(body).model_dump_json().encode())
    return out


def profile(policy, catalog, timers, padding, calls: list[list[bytes]]) -> tuple[list[float], dict[str, float]]:
    timers.seconds.clear()
    padding.real.clear()
    padding.run.clear()
    times = []
    for call in calls:
        start = time.perf_counter()
        serve_call(policy, catalog, timers, call)
        times.append(time.perf_counter() - start)
    parts = dict(timers.seconds)
    parts["other"] = sum(times) - sum(parts.values())
    return times, parts


def report(label: str, times: list[float], parts: dict[str, float], padding: Padding, per_call: int) -> None:
    med, total = statistics.median(times), sum(times)
    print(f"\n{label}: {1000 * med:.0f} ms per call [{1000 * min(times):.0f}-{1000 * max(times):.0f}], "
          f"{per_call / med:.1f} requests/s (median of {len(times)})")
    for name in PARTS:
        if parts.get(name, 0.0) > 0:
            print(f"  {name:<28} {100 * parts[name] / total:5.1f}%   {1000 * parts[name] / len(times):7.1f} ms/call")
    for kind in sorted(padding.run):
        real, run = padding.real[kind], padding.run[kind]
        print(f"  padding, {kind:<19} {100 * (run - real) / max(run, 1):5.1f}% of {run / len(times):.0f} "
              f"tokens/call are padding")


def replica_policy(checkpoint: str | None, precision: str, store: EncodingStore):
    """The policy a replica starting now would serve: `checkpoint`, else the cpu preset's fresh one."""
    if checkpoint is None:
        return fresh_policy(precision, store)
    policy = load_checkpoint(checkpoint)
    return profiled(policy if precision == "auto" else policy.with_config(precision=precision), store)


def http_latency(bodies: list[bytes], threads: int) -> list[float]:
    """Seconds per request over HTTP, one at a time, one replica with batch size 1."""
    import urllib.request

    import ray
    from ray import serve

    from cluster.serve.app import ServeArgs, start
    from policies.checkpoint import CheckpointMetadata, save_checkpoint
    from policies.policy import Policy, preset_config

    folder = Path(tempfile.mkdtemp(prefix="profile-serve-"))
    checkpoint = save_checkpoint(Policy(preset_config("cpu")), folder / "v1", CheckpointMetadata(version=1))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start(ServeArgs(checkpoint=str(checkpoint), max_batch_size=1, threads=threads,
                        access_log=False), host="127.0.0.1", port=8743)
        times = []
        for body in bodies:
            req = urllib.request.Request("http://127.0.0.1:8743/act", data=body,
                                         headers={"content-type": "application/json"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            times.append(time.perf_counter() - t0)
        return times
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goals", type=int, default=300, help="expert episodes whose pages are the requests")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--calls", type=int, default=12, help="timed calls per batch size")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a replica's default: 1)")
    ap.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--http", action="store_true", help="also time the requests over HTTP (module doc)")
    ap.add_argument("--checkpoint", help="profile this checkpoint (default: the cpu preset, fresh weights)")
    ap.add_argument("--catalog-ready", action="store_true",
                    help="encode the catalog's candidate texts first, as a replica does (module doc)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), precision {args.precision}")
    catalog = default_catalog()
    bodies = [json.dumps(b).encode() for b in request_bodies(args.goals)]
    needed = sum(args.batch_sizes) * (args.calls + 1)
    if len(bodies) < needed:
        raise SystemExit(f"--goals {args.goals} gives {len(bodies)} pages; {needed} are needed")
    timers, padding = Timers(), Padding()
    install(timers)
    padding.wrap(frozen_module, "encode_canonical", "frozen layers")
    padding.wrap(policy_module, "encode_hidden_sequences", "trainable layer")
    print(f"{len(bodies)} distinct pages from {args.goals} expert episodes; each call takes new ones")
    medians = {}
    with tempfile.TemporaryDirectory() as folder:
        store = EncodingStore(folder, max_bytes=1 << 40)
        if args.catalog_ready:
            began = time.perf_counter()
            ready = prefill_catalog(replica_policy(args.checkpoint, args.precision, store), catalog)
            print(f"{ready} catalog candidate texts encoded in {time.perf_counter() - began:.1f} s")
        start = 0
        for size in args.batch_sizes:
            calls = [bodies[start + i * size:start + (i + 1) * size] for i in range(args.calls + 1)]
            start += size * (args.calls + 1)
            for mode in ("new pages", "pages in the folder"):
                policy = replica_policy(args.checkpoint, args.precision, store)  # a replica that starts now
                serve_call(policy, catalog, timers, calls[0])  # thread pool, allocator
                times, parts = profile(policy, catalog, timers, padding, calls[1:])
                report(f"batch of {size}, {mode}", times, parts, padding, size)
                medians[(size, mode)] = statistics.median(times)
    if args.http:
        pool = bodies[start:start + args.calls + 1] if len(bodies) > start + args.calls else bodies[:args.calls + 1]
        times = http_latency(pool, args.threads)[1:]
        local = medians.get((1, "new pages"))
        med = statistics.median(times)
        print(f"\nover HTTP, batch size 1, new pages, one at a time: {1000 * med:.0f} ms per request "
              f"[{1000 * min(times):.0f}-{1000 * max(times):.0f}]"
              + (f"; in process {1000 * local:.0f} ms: transport and batching {1000 * (med - local):.0f} ms"
                 if local else ""))


if __name__ == "__main__":
    main()
