"""`webshop-rl catalog prepare`: this node's stored catalog and search index, built ahead.

Any command or worker that opens a catalog builds them on first use (one process per
node, the others wait); this command does it ahead of a run (a node's start-up script,
an image build) and says where they are and how big.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

from envs.catalog_store import describe
from envs.search import index_for


def add_prepare_parser(catalog_sub, add_catalog_args: Callable, catalog_from_args: Callable) -> None:
    p = catalog_sub.add_parser("prepare", help="parse a catalog into this node's shared, memory-mapped store "
                                               "and build its search index, ahead of a run")
    p.add_argument("--json", action="store_true", help="print what was prepared as JSON")
    add_catalog_args(p)
    p.set_defaults(func=cmd_catalog_prepare, load_catalog=catalog_from_args)


def cmd_catalog_prepare(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    catalog = args.load_catalog(args)
    index_for(catalog)
    info = {**describe(catalog.stored), "source": catalog.source, "seconds": round(time.perf_counter() - t0, 2)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    mib = lambda n: f"{n / 2**20:,.0f} MiB"  # noqa: E731
    print(f"catalog {info['source']}: {info['num_products']:,} products, {info['num_goals']:,} goals\n"
          f"  store  {info['store']} ({mib(info['store_bytes'])})\n"
          f"  index  {info['index']} ({mib(info['index_bytes'])})\n"
          f"  built in {info['parse_seconds']:.1f} s + {info['index_seconds']:.1f} s (index); "
          f"ready here in {info['seconds']:.1f} s")
    return 0
