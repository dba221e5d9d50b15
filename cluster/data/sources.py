"""Where WebShop's published files come from, what the project knows about them, and
where `webshop-rl data fetch` puts them.

The product files are the ones WebShop's own `setup.sh` downloads with `gdown` from
Google Drive (`-d small`: the 1,000-product set; `-d all`: the full 1.18M-product
catalog). `items_human_ins.json` and the human demonstrations
(`il_trajs_finalized_images.zip`, which holds `il_trajs_finalized_images.jsonl`) are
taken from WebShop's git repository at a pinned commit (setup.sh fetches the same
`items_human_ins.json` from Drive id 14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O; the
repository's copy is the one whose identity is known: its git object id).

What is recorded per file is only what is known: the git object id of the files in
WebShop's repository (from its tree at `WEBSHOP_COMMIT`). WebShop publishes no sizes
or checksums for the Drive files, so those have none yet; `webshop-rl data fetch`
prints the sha256 and size of every file it fetched and writes them to `SHA256SUMS`
beside the files, so they can be pinned here (`sha256=`, `size=`) once someone with
network has fetched them (docs/REFERENCE.md, "WebShop's data").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WEBSHOP_COMMIT = "64fa2a5c15c7daa698b9ac93f5bb5437b634c9bd"
"""princeton-nlp/WebShop master when these sources were recorded."""
GITHUB_RAW = f"https://raw.githubusercontent.com/princeton-nlp/WebShop/{WEBSHOP_COMMIT}/"
DRIVE = "https://drive.google.com/uc?export=download&id="
MIRROR_ENV = "WEBSHOP_RL_DATA_MIRROR"
"""A base URL serving the same file names (a mirror); the `--mirror` flag wins over it."""
DATA_ENV = "WEBSHOP_RL_DATA"
"""Where fetched data lives by default; else `$WEBSHOP_RL_CACHE/data` (~/.cache/webshop-rl/data)."""
KINDS = ("products", "attributes", "human-instructions", "demos-zip")


@dataclass(frozen=True)
class DataFile:
    """One published file."""

    name: str
    """The file's name on disk (and on a mirror)."""
    url: str
    """Where WebShop publishes it."""
    kind: str
    """What it must hold (one of KINDS; checked after the transfer)."""
    git_blob: str | None = None
    """Its git object id in WebShop's repository (sha1 of "blob <size>\\0" + bytes)."""
    sha256: str | None = None
    """Its sha256, once pinned."""
    size: int | None = None
    """Its size in bytes, once pinned."""
    member: str | None = None
    """For a zip: the file to extract from it (the zip itself is removed after)."""

    @property
    def target(self) -> str:
        """The name of the file this one leaves on disk (a zip's member)."""
        return self.member or self.name


HUMAN_INS = DataFile("items_human_ins.json", GITHUB_RAW + "baseline_models/data/items_human_ins.json",
                     "human-instructions", git_blob="b2ab7479b9798e0b62ea394e065f3d506875f090")
SETS: dict[str, tuple[DataFile, ...]] = {
    "small": (
        DataFile("items_shuffle_1000.json", DRIVE + "1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib", "products"),
        DataFile("items_ins_v2_1000.json", DRIVE + "1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu", "attributes"),
        HUMAN_INS,
    ),
    "full": (
        DataFile("items_shuffle.json", DRIVE + "1A2whVgOO0euk5O13n2iYDM0bQRkkRduB", "products"),
        DataFile("items_ins_v2.json", DRIVE + "1s2j6NgHljiZzQNL3veZaAiyW_qDEgBNi", "attributes"),
        HUMAN_INS,
    ),
    "human-demos": (
        DataFile("il_trajs_finalized_images.zip", GITHUB_RAW + "baseline_models/data/il_trajs_finalized_images.zip",
                 "demos-zip", git_blob="36da904c4223b5ee53f49c22201c5772144f6bc3",
                 member="il_trajs_finalized_images.jsonl"),
    ),
}
"""The sets `webshop-rl data fetch --small | --full | --human-demos` downloads."""
SET_DIRS = {"small": "webshop-small", "full": "webshop-full", "human-demos": "webshop-human-demos"}
"""Each set's directory under the data root when no `--dir` is given."""
CATALOG_SOURCES = ("generated", "webshop-small", "webshop-full")
"""`catalog.source`: the generated catalog, or a fetched WebShop set."""
DEMOS_FILE = "il_trajs_finalized_images.jsonl"


def data_root() -> Path:
    """$WEBSHOP_RL_DATA, else the `data` folder of the project's cache root."""
    from envs.search import cache_root

    return Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else cache_root() / "data"


def set_dir(name: str) -> Path:
    """Where set `name` goes by default."""
    return data_root() / SET_DIRS[name]


def fetched_catalog_dir(source: str) -> Path:
    """The directory of a fetched catalog source (`webshop-small`, `webshop-full`).

    Raises:
        FileNotFoundError: it has not been fetched (the message says how to fetch it).
    """
    if source not in CATALOG_SOURCES[1:]:
        raise ValueError(f"catalog source must be one of {CATALOG_SOURCES}, got {source!r}")
    name = source.removeprefix("webshop-")
    d = set_dir(name)
    products = next(f.name for f in SETS[name] if f.kind == "products")
    if not (d / products).is_file():
        raise FileNotFoundError(f"catalog {source}: {d / products} is not there; fetch it with "
                                f"`webshop-rl data fetch --{name}` (or set {DATA_ENV} to where it is)")
    return d


def catalog_dir(source: str = "generated", directory: str | os.PathLike | None = None) -> str | None:
    """The catalog directory a `catalog:` section (or a `--catalog` value) names: `directory`
    when given (the names `webshop-small` / `webshop-full` stand for the fetched sets
    unless a directory of that name exists), else the fetched `source`'s directory, else
    None for the generated catalog."""
    if directory:
        if str(directory) in CATALOG_SOURCES[1:] and not Path(directory).exists():
            return str(fetched_catalog_dir(str(directory)))
        return str(directory)
    return None if source == "generated" else str(fetched_catalog_dir(source))
