"""Crash-safe writes: a reader finds the old content or the new one, whole, never a mix.

A file is written to a unique temporary name beside it, fsynced, renamed over the
target (`os.replace` is atomic on POSIX) and its directory fsynced, so the rename
itself survives a power cut.

A directory is built in a staging directory beside the target (`.NAME.tmp-PID-RAND`),
every file in it fsynced, then swapped in: the old directory is renamed aside to
`.NAME.old`, the staged one renamed to NAME, the parent fsynced, the old one removed.
A kill between the two renames leaves no NAME but a whole `.NAME.old`:
`resolve_directory` reads that instead, and `recover_directory` (run by the next
writer) renames it back, or removes it once NAME exists. One writer per target.

Generation ids come from `os.urandom` (uuid4), so making one draws from no RNG that
training seeds.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OLD_SUFFIX = ".old"
STAGING_MARK = ".tmp-"


def new_generation() -> str:
    """A fresh generation id (32 hex digits; random, but from no seeded RNG)."""
    return uuid.uuid4().hex


def fsync_file(path: str | Path) -> None:
    """Flush one file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def whole_lines(path: str | Path) -> list[str]:
    """The lines of an append-only UTF-8 file that were written whole: a last line without
    its newline (a kill while appending) is left out; a missing file has none."""
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b""
    return data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()


def cut_torn_line(path: str | Path) -> int:
    """Truncate an append-only file to its whole lines (fsynced), so the next append
    starts a line of its own; returns how many bytes were cut."""
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b""
    torn = len(data) - (data.rfind(b"\n") + 1)
    if torn:
        os.truncate(path, len(data) - torn)
        fsync_file(path)
    return torn


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (creations, renames) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{STAGING_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_file_atomic(path: str | Path, data: str | bytes) -> Path:
    """Replace `path` with `data` (str as UTF-8): temp file, fsync, rename, fsync the directory."""
    target = Path(path)
    tmp = _temp_name(target)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def aside_path(target: str | Path) -> Path:
    """Where `replace_directory` parks the old directory while it swaps."""
    target = Path(target)
    return target.with_name(f".{target.name}{OLD_SUFFIX}")


def resolve_directory(target: str | Path) -> Path:
    """The committed directory for `target`: itself, or its parked copy when a swap was
    cut between its two renames (read-only; the next writer repairs it)."""
    target = Path(target)
    if not target.exists() and aside_path(target).is_dir():
        return aside_path(target)
    return target


def _undo_cut_swap(target: Path) -> None:
    aside = aside_path(target)
    if aside.exists():
        if target.exists():  # the new one was committed; the old one was being removed
            shutil.rmtree(aside)
        else:  # cut between the renames: the old one is the committed one
            os.rename(aside, target)
            fsync_dir(target.parent)


def recover_directory(target: str | Path) -> None:
    """Finish or undo a swap that a crash interrupted, and drop stale staging directories.

    Only the (single) writer of `target` should call this.
    """
    target = Path(target)
    _undo_cut_swap(target)
    if target.parent.is_dir():
        for stale in target.parent.glob(f".{target.name}{STAGING_MARK}*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (directories after their files)."""
    for dirpath, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_file(Path(dirpath) / name)
        fsync_dir(dirpath)


def replace_directory(staged: Path, target: Path) -> None:
    """Swap the fully written `staged` directory in as `target` (see the module docstring)."""
    _undo_cut_swap(target)
    aside = aside_path(target)
    if target.exists():
        os.rename(target, aside)
    os.rename(staged, target)
    fsync_dir(target.parent)
    if aside.exists():
        shutil.rmtree(aside)


@contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory beside `target`; when the block ends without an
    error, fsync all of it and swap it in as `target`. On an error it is removed and
    `target` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    staged = _temp_name(target)
    staged.mkdir()
    try:
        yield staged
        fsync_tree(staged)
        replace_directory(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
