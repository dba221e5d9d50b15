"""Files built once per node and shared by its processes: where they live, and how a
build stays whole when many processes start at the same time.

A builder takes an exclusive lock beside the target (the others wait, then find it
built), writes a temporary directory of its own and renames it into place, so no
reader ever sees half of it. Where the lock does not hold (some network file
systems), two builders may both finish: the first rename wins and the other uses the
winner's files (`publish`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def cache_root() -> Path:
    """Where node-shared files are kept: $WEBSHOP_RL_CACHE or ~/.cache/webshop-rl."""
    return Path(os.environ.get("WEBSHOP_RL_CACHE", Path.home() / ".cache" / "webshop-rl"))


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on `lock_path` (created), released on exit or process death."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def publish(tmp: Path, directory: Path, marker: str) -> bool:
    """Rename a finished build into place; False (and `tmp` left to remove) when another
    process's complete build (one holding `marker`) is already there, which is then used."""
    try:
        os.rename(tmp, directory)
        return True
    except OSError:
        if (directory / marker).exists():
            return False
        raise


def build_once(directory: Path, marker: str, build: Callable[[Path], object]) -> bool:
    """Make `directory` by `build(tmp)` unless it holds `marker` already; one process per
    node builds (the others wait on the lock). Returns True when this call built it."""
    if (directory / marker).exists():
        return False
    with locked(directory.with_name(directory.name + ".lock")):
        if (directory / marker).exists():
            return False  # built while this process waited for the lock
        prefix = f".{directory.name}.tmp-{socket.gethostname()}-"
        _remove_dead_builds(directory.parent, prefix)
        tmp = directory.with_name(f"{prefix}{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            return publish(tmp, directory, marker)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_dead_builds(parent: Path, prefix: str) -> None:
    """Temporary directories of builders on this host that died mid-build."""
    for d in parent.glob(prefix + "*"):
        pid = d.name[len(prefix):]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
