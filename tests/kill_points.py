"""Kill a save at its k-th file-system call: a forked child counts its calls to the os
functions a save goes through (open, write, fsync, rename, replace, unlink, mkdir,
rmdir) and SIGKILLs itself at the k-th, as a crash or an OOM kill would.

Native writers (safetensors' Rust code) are not counted inside; the calls around
them are, so a kill lands before and after each of their files.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable
from pathlib import Path

COUNTED = ("open", "fsync", "rename", "replace", "unlink", "mkdir", "rmdir", "write")


def _run_child(save: Callable[[], object], kill_at: int, count_file: Path) -> int:
    """Fork; the child runs `save` with counted os calls, killed at call `kill_at`
    (0: never; it writes its count to `count_file`). Returns the child's exit signal or code."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            import sys

            if "torch" in sys.modules:  # the parent's OpenMP team is gone in a forked child:
                sys.modules["torch"].set_num_threads(1)  # a parallel copy would wait for it forever
            calls = [0]

            def counted(fn):
                def wrapper(*args, **kwargs):
                    calls[0] += 1
                    if calls[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(*args, **kwargs)
                return wrapper

            for name in COUNTED:
                setattr(os, name, counted(getattr(os, name)))
            io.open = counted(io.open)
            import builtins
            builtins.open = io.open
            save()
            count_file.write_text(str(calls[0]))
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def kill_points(save: Callable[[], object], scratch: Path, at_least: int = 20, at_most: int = 40) -> list[int]:
    """The call numbers to kill `save` at: every one when there are few, else `at_most`
    spread over all of them. Asserts the save makes at least `at_least` calls."""
    count_file = scratch / "calls.txt"
    assert _run_child(save, 0, count_file) == 0, "the save failed without a kill"
    total = int(count_file.read_text())
    count_file.unlink()
    assert total >= at_least, f"only {total} file-system calls to kill at"
    if total <= at_most:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (at_most - 1)) for i in range(at_most)})


def kill_save_at(save: Callable[[], object], k: int, scratch: Path) -> None:
    """Run `save` in a child killed at its k-th counted call; asserts it was killed."""
    assert _run_child(save, k, scratch / "calls.txt") == -signal.SIGKILL, f"not killed at call {k}"
