"""policies.atomic: files and directories replaced whole; a swap cut between its two
renames is read from the parked copy and repaired by the next writer."""

from __future__ import annotations

import os

import pytest

from policies.atomic import (
    aside_path,
    recover_directory,
    resolve_directory,
    staged_directory,
    write_file_atomic,
)


def test_write_file_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "config.json"
    write_file_atomic(path, "one")
    write_file_atomic(path, b"two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_staged_directory_replaces_whole_and_keeps_old_on_error(tmp_path):
    target = tmp_path / "ckpt"
    with staged_directory(target) as d:
        (d / "a").write_text("1")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_directory(target) as d:
            (d / "a").write_text("2")
            raise RuntimeError("boom")
    assert (target / "a").read_text() == "1"
    with staged_directory(target) as d:
        (d / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]  # old files gone with the old directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_swap_cut_between_renames_reads_old_and_is_repaired(tmp_path):
    target = tmp_path / "ckpt"
    with staged_directory(target) as d:
        (d / "a").write_text("old")
    os.rename(target, aside_path(target))  # as if killed right after parking the old one
    (tmp_path / ".ckpt.tmp-1-x").mkdir()  # and a half-written staging directory
    assert resolve_directory(target) == aside_path(target)
    recover_directory(target)
    assert (target / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_leftover_old_copy_is_removed_once_new_is_in(tmp_path):
    target = tmp_path / "ckpt"
    for text in ("old", "new"):
        with staged_directory(target if text == "new" else aside_path(target)) as d:
            (d / "a").write_text(text)
    assert resolve_directory(target) == target
    recover_directory(target)
    assert (target / "a").read_text() == "new" and not aside_path(target).exists()
