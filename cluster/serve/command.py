"""`webshop-rl serve`: its arguments, and the command that starts the app and waits."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from cluster.user_errors import UsageError, non_negative_int, positive_int


def usable_cores() -> int:
    """CPU cores this process may run on (a container's or taskset's limit included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def replica_count(text: str) -> int | str:
    """--replicas: "auto" or a positive integer."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    return int(text)


def cmd_serve(args: argparse.Namespace) -> int:
    import ray  # here, not at the top: `webshop-rl --help` should not load Ray
    from ray import serve

    from cluster.data.sources import catalog_dir
    from cluster.serve.app import ServeArgs, start
    from cluster.serve.core import RequestError, resolve_checkpoint
    from cluster.serve.guard import TOKEN_ENV
    from envs.webshop_files import find_catalog_files

    try:  # before Ray starts: a wrong path is one line, not a failed deployment
        checkpoint = resolve_checkpoint(args.checkpoint)
    except RequestError as e:
        raise UsageError(f"--checkpoint {e.message}") from None
    if args.catalog:
        find_catalog_files(catalog_dir(directory=args.catalog))
    cfg = ServeArgs(checkpoint=str(checkpoint), catalog=str(args.catalog) if args.catalog else None,
                    replicas=usable_cores() if args.replicas == "auto" else args.replicas,
                    max_replicas=args.max_replicas, max_batch_size=args.max_batch_size,
                    num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                    threads=args.threads, device=args.device, watch_s=args.watch,
                    max_wait_s=args.max_wait, max_queued_requests=args.max_queued,
                    request_timeout_s=args.request_timeout,
                    allow_reload=args.allow_reload, reload_root=str(args.reload_root) if args.reload_root else None,
                    reload_token=os.environ.get(TOKEN_ENV) or None)
    start(cfg, host=args.host, port=args.port, address=args.address)
    print(f"serving {cfg.checkpoint} at http://{args.host}:{args.port} (docs: /docs, viewer: /viewer); "
          f"Ctrl-C stops", flush=True)
    stop = threading.Event()  # explicit handlers: a background start inherits SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0


def add_serve_parser(sub) -> None:
    """Add `serve` to the `webshop-rl` subcommands (`sub`: argparse's subparsers)."""
    sv = sub.add_parser("serve", help="serve a checkpoint with Ray Serve (/act, /episode, /reload, /viewer)")
    sv.add_argument("--checkpoint", type=Path, required=True, help="checkpoint or run directory")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 exposes it to the network)")
    sv.add_argument("--port", type=non_negative_int, default=8000, help="HTTP port")
    sv.add_argument("--replicas", type=replica_count, default="auto",
                    help="model replicas, the minimum when autoscaling (auto: one per core of this machine, "
                         "each on one torch thread)")
    sv.add_argument("--max-replicas", type=positive_int, help="autoscale between --replicas and this")
    sv.add_argument("--max-batch-size", type=positive_int, default=32,
                    help="most requests a replica scores in one pass")
    sv.add_argument("--num-cpus", type=float, default=0.0, help="CPUs each replica reserves")
    sv.add_argument("--threads", type=positive_int, default=1, help="torch threads per replica")
    sv.add_argument("--num-gpus", type=float, default=0.0, help="GPUs each replica reserves")
    sv.add_argument("--device", default="auto", help="auto: cuda where a replica reserved a GPU, else cpu")
    sv.add_argument("--watch", type=float, default=0.0, metavar="SECONDS",
                    help="re-load the checkpoint when it is saved again, checked this often (0: off)")
    sv.add_argument("--catalog", type=Path, help="WebShop-format catalog (default: the checkpoint's)")
    sv.add_argument("--address", help="Ray address (default: RAY_ADDRESS or a new local instance)")
    sv.add_argument("--max-wait", type=float, default=0.8, metavar="SECONDS",
                    help="admit a request only if it is expected to be answered this soon, else 503 (0: admit all)")
    sv.add_argument("--max-queued", type=non_negative_int, default=256,
                    help="requests queued beyond those in work; more get 503")
    sv.add_argument("--request-timeout", type=float, default=60.0, metavar="SECONDS",
                    help="drop a request unanswered this long (408)")
    sv.add_argument("--allow-reload", action="store_true",
                    help="serve POST /reload; beyond loopback it needs a token in $WEBSHOP_RL_RELOAD_TOKEN")
    sv.add_argument("--reload-root", type=Path,
                    help="/reload loads only checkpoints inside this directory (default: the checkpoint's parent)")
    sv.set_defaults(func=cmd_serve)
