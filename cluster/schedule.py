"""`Interval`: a wall-clock period, the one schedule behind every timed duty of a run.

The learner publishes weights every `run.sync_interval_s` (in `LocalLoop` and in the
Ray learner actor alike), the driver evaluates every `run.eval_interval_s`,
and checkpoints every `run.checkpoint_interval_s`.
"""

from __future__ import annotations

import time


class Interval:
    """Due once `seconds` have passed since it was last restarted (or created).

    `due` only looks; the owner calls `restart` when it has done the duty, so the
    period can be counted from the duty's end (a publish) or its start (an eval).
    """

    def __init__(self, seconds: float, start: float | None = None):
        self.seconds = seconds
        self.last = time.perf_counter() if start is None else start

    def due(self, now: float | None = None) -> bool:
        now = time.perf_counter() if now is None else now
        return now - self.last >= self.seconds

    def restart(self, now: float | None = None) -> None:
        self.last = time.perf_counter() if now is None else now
