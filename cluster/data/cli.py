"""`webshop-rl data fetch` (WebShop's published files) and `webshop-rl data demos`
(its human demonstrations replayed into trajectory Parquet). Nothing else in the
project downloads: a run whose catalog is not there stops and names this command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from cluster.data.download import Fetched, fetch_all
from cluster.data.sources import CATALOG_SOURCES, DEMOS_FILE, MIRROR_ENV, SET_DIRS, SETS, set_dir
from cluster.user_errors import UsageError

SET_FLAGS = (("small", "small"), ("full", "full"), ("human_demos", "human-demos"))


def parse_urls(items: list[str] | None) -> dict[str, str]:
    """`--url NAME=URL ...` as {NAME: URL}; NAME must be one of the published files."""
    names = {f.name for files in SETS.values() for f in files}
    urls = {}
    for item in items or []:
        name, sep, url = item.partition("=")
        if not sep or name not in names:
            raise UsageError(f"--url {item}: expected NAME=URL with NAME one of {sorted(names)}")
        urls[name] = url
    return urls


def describe(got: Fetched) -> str:
    """One line about a fetched file: size, sha256 and whether that checksum was known before."""
    how = "downloaded" if got.downloaded else "already there"
    known = "checksum matches the recorded one" if got.pinned else \
        "no checksum recorded for it yet (docs/REFERENCE.md: pin this one)"
    return f"{got.path.name}: {how}, {got.size:,} bytes, sha256 {got.sha256}; {known}"


def catalog_setting(catalog: str) -> str:
    """The `--set` that names a catalog given as a fetched set's name or a directory."""
    return f"catalog.source={catalog}" if catalog in CATALOG_SOURCES else f"catalog.dir={catalog}"


def next_commands(dirs: dict[str, Path], default_dirs: bool) -> list[str]:
    """What to run with what was fetched (`dirs`: set -> its directory)."""
    lines = []
    fetched = next((s for s in ("full", "small") if s in dirs), None)
    catalog = str(dirs[fetched]) if fetched and not default_dirs else f"webshop-{fetched or 'small'}"
    if fetched:
        lines += [f"webshop-rl rollout --policy rule --catalog {catalog} --episodes 100",
                  f"webshop-rl train --set {catalog_setting(catalog)}"]
    if "human-demos" in dirs:
        demos = dirs["human-demos"] / DEMOS_FILE
        if not fetched:
            lines.append("webshop-rl data fetch --small   (the catalog to replay them in; or --full)")
        lines += [f"webshop-rl data demos {demos} --catalog {catalog} --out human_demos.parquet",
                  f"webshop-rl train --demos {demos} --set {catalog_setting(catalog)}"]
    return lines


def cmd_data_fetch(args: argparse.Namespace) -> int:
    sets = [name for flag, name in SET_FLAGS if getattr(args, flag)]
    if not sets:
        raise UsageError("say what to fetch: --small, --full and/or --human-demos")
    if args.dir and args.small and args.full:  # one folder would hold two catalogs' files
        raise UsageError("--small and --full go to separate folders; fetch them with one --dir each")
    mirror = args.mirror or os.environ.get(MIRROR_ENV) or None
    urls = parse_urls(args.url)
    dirs = {name: Path(args.dir) if args.dir else set_dir(name) for name in sets}
    plan = list({(dirs[name], f.target): (f, dirs[name]) for name in sets for f in SETS[name]}.values())
    fetch_all(plan, mirror, urls, on_file=lambda got: print(describe(got), flush=True))  # a shared file once
    print(f"\nchecksums of these files: {' '.join(sorted({str(d / 'SHA256SUMS') for d in dirs.values()}))}")
    print("next:\n" + "\n".join(f"  {line}" for line in next_commands(dirs, default_dirs=not args.dir)))
    return 0


def cmd_data_demos(args: argparse.Namespace) -> int:
    from rollout_workers.human_demos import replay_human_demos
    from rollout_workers.recording import write_trajectories

    if not (args.catalog or args.products):
        raise UsageError("give the catalog to replay in: --catalog webshop-small | webshop-full | DIR")
    catalog = args.load_catalog(args)
    trajs, report = replay_human_demos(args.demos, catalog, split=None if args.split == "all" else args.split)
    path = write_trajectories(trajs, args.out)
    print(report.describe())
    setting = catalog_setting(str(args.catalog)) if args.catalog else "catalog.dir=..."
    print(f"wrote {len(trajs)} trajectories ({report.num_imitated} steps to imitate) to {path}\n"
          f"next:\n  webshop-rl train --demos {path} --set {setting}")
    return 0


def add_data_parser(sub, add_catalog_args: Callable[[argparse.ArgumentParser], None],
                    catalog_from_args: Callable[[argparse.Namespace], object]) -> None:
    """The `data` subcommands on the `webshop-rl` parser (its catalog flags and their reader given)."""
    data = sub.add_parser("data", help="fetch WebShop's files; replay its human demonstrations")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser("fetch", help="download WebShop's published files (resumable, checked)")
    f.add_argument("--small", action="store_true",
                   help="the 1,000-product catalog: " + ", ".join(x.name for x in SETS["small"]))
    f.add_argument("--full", action="store_true",
                   help="the 1.18M-product catalog (about 5 GB): " + ", ".join(x.name for x in SETS["full"]))
    f.add_argument("--human-demos", action="store_true", help=f"WebShop's human demonstrations ({DEMOS_FILE})")
    f.add_argument("--dir", type=Path, help="put every file here (default: " + ", ".join(
        f"{d}/ for --{n}" for n, d in SET_DIRS.items()) + " under $WEBSHOP_RL_DATA or ~/.cache/webshop-rl/data)")
    f.add_argument("--mirror", metavar="URL", help=f"a base URL serving the same file names "
                                                    f"(default: ${MIRROR_ENV}, else WebShop's own sources)")
    f.add_argument("--url", action="append", metavar="NAME=URL", help="take one file from this URL (repeatable)")
    f.set_defaults(func=cmd_data_fetch)

    d = data_sub.add_parser("demos", help="replay WebShop's human demonstrations into trajectory Parquet")
    d.add_argument("demos", type=Path, help=DEMOS_FILE)
    d.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    d.add_argument("--split", default="train", choices=["train", "eval", "test", "all"],
                   help="keep trajectories whose goal is in this split (IL uses train)")
    add_catalog_args(d)
    d.set_defaults(func=cmd_data_demos, load_catalog=catalog_from_args)
