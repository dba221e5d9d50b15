"""Which exceptions are the user's to fix: `webshop-rl` prints them as one line and
exits with status 2 instead of a traceback (`run_reporting_user_errors`, used by
`cluster.cli.main` and `python -m cluster.train`)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from envs.products import CatalogError


class UsageError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""


USER_ERRORS = (CatalogError, UsageError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
"""Errors that come from the user's input (files and values named on the command line)."""
LAZY_USER_ERRORS = {"policies.checkpoint": ("CheckpointError", "UnsafeCheckpointError"),
                    "policies.il": ("ILFormatError",), "rollout_workers.schema": ("TrajectoryFormatError",),
                    "cluster.run_state": ("RunStateError",), "cluster.data.download": ("FetchError",),
                    "rollout_workers.human_demos": ("DemoReplayError",),
                    "policies.architectures": ("UnsupportedEncoderError", "EncoderLayersError"),
                    "cluster.config": ("ConfigError",)}
"""The same, from modules the subcommands import only when they need them (torch is slow to import)."""


def run_reporting_user_errors(command: str, run: Callable[[], int]) -> int:
    """`run()`; a user error (`user_error_types`) prints one line naming `command` and
    what to fix, and returns exit status 2 instead of a traceback."""
    try:
        return run()
    except Exception as e:
        if not isinstance(e, user_error_types()):
            raise
        print(f"webshop-rl {command}: error: " + " ".join(str(e).splitlines()), file=sys.stderr)
        return 2


def user_error_types() -> tuple[type[BaseException], ...]:
    """USER_ERRORS plus those of LAZY_USER_ERRORS' modules already imported: an error
    whose module was never imported cannot have been raised."""
    lazy = [getattr(sys.modules[m], n) for m, names in LAZY_USER_ERRORS.items() if m in sys.modules for n in names]
    return USER_ERRORS + tuple(lazy)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors (an unknown flag, a bad value) are one line, like
    every other user error: `PROG: error: MESSAGE`, exit status 2 (`--help` shows usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "_innermost_prog"):  # a subcommand's parser finishes first
            namespace._innermost_prog = self.prog
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown flag is blamed on the subcommand that was given it
        (`webshop-rl eval: error: ...`), not on the top-level command."""
        namespace, extras = self.parse_known_args(args, namespace)
        prog = vars(namespace).pop("_innermost_prog", self.prog)
        if extras:
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)}\n")
        return namespace


def count_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `low` (episodes, sizes, steps), else argparse's
    one-line error naming the flag."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


positive_int = count_at_least(1)
non_negative_int = count_at_least(0)
