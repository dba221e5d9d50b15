"""Progress a person can follow: a bar with ETA on a terminal, plain lines elsewhere.

On a terminal `Progress` is a `tqdm` bar. When stdout is a pipe or a log file (`ray job
submit`, CI, `> log`), a bar's carriage returns would be noise, so it prints one plain
line each time another tenth of the work is done, with the elapsed time, an ETA and
the same figures the bar shows.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm import tqdm


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Progress of `total` units of work (batches, episodes, seconds of a budget).

    Args:
        total: the amount of work; `advance` and `set` move towards it.
        desc: what is being done, e.g. "IL epoch 1/3".
        unit: the unit's name, e.g. "batch", "episode", "s".
        file: where to write (default: stdout).
        bar: force a bar (True) or plain lines (False); default: a bar on a terminal.
        fraction: plain mode prints whenever another `fraction` of `total` is done.
    """

    def __init__(self, total: float, desc: str, unit: str = "it", file: IO[str] | None = None,
                 bar: bool | None = None, fraction: float = 0.1):
        self.total, self.desc, self.unit = total, desc, unit  # ints stay ints: "7/10", not "7.0/10"
        self.file = file or sys.stdout
        self.done, self.postfix = 0, ""
        self.start = time.perf_counter()
        self.step = max(float(total) * fraction, 1e-9)
        self.next_line = self.step
        use_bar = self.file.isatty() if bar is None else bar
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, dynamic_ncols=True,
                         mininterval=0.5) if use_bar else None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def advance(self, n: float = 1, **figures) -> None:
        """`n` more units done; `figures` (name=value) are shown beside the bar."""
        self.set(self.done + n, **figures)

    def set(self, done: float, **figures) -> None:
        """Progress is now `done` units (e.g. seconds of a time budget used)."""
        done = min(done, self.total)
        if figures:
            self.postfix = " ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
        if self._bar is not None:
            if figures:
                self._bar.set_postfix_str(self.postfix, refresh=False)
            self._bar.update(done - self.done)
        self.done = done
        slack = 1e-9 * self.step  # tenths of e.g. 26 batches add up to 26.000000000000004
        if self._bar is None and done >= self.next_line - slack:
            while self.next_line <= done + slack:
                self.next_line += self.step
            self._line()

    def _line(self) -> None:
        elapsed = self.elapsed()
        share = self.done / self.total if self.total else 1.0
        eta = elapsed * (1 - share) / share if share > 0 else 0.0
        count = f"{self.done:.0f}/{self.total:.0f} {self.unit}"
        print(f"{self.desc}: {100 * share:3.0f}% ({count}) elapsed {_clock(elapsed)}, "
              f"ETA {_clock(eta)}" + (f" | {self.postfix}" if self.postfix else ""),
              file=self.file, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingProgress:
    """The RL phase's `Progress`: seconds of the time budget, or updates when the run
    stops at a fixed number of them (`--updates`), with the loop's figures beside it.

    Args:
        desc: the algorithm, e.g. "DPO".
        time_budget_s: seconds this process may still train (None: no clock).
        updates: the run's update target, or None to follow the time budget. The bar
            counts updates whenever there is a target.
        counters: the run's counters now (a resumed run starts from its saved ones);
            rates and update progress count from here.
        file, bar: as for `Progress`.
    """

    def __init__(self, desc: str, time_budget_s: float | None, updates: int | None, counters: dict,
                 file: IO[str] | None = None, bar: bool | None = None):
        self.by_updates = updates is not None
        total = max(0, updates - counters["updates"]) if self.by_updates else max(0.0, time_budget_s)
        self.at_start = {k: counters[k] for k in ("env_steps", "pairs", "updates")}
        self.bar = Progress(total, desc, "update" if self.by_updates else "s", file=file, bar=bar)

    def show(self, counters: dict, version: int, lag: int, recent_success: float, last_eval: dict | None) -> None:
        """Move to where the loop is: `counters` as in the loops, `version` the learner's,
        `lag` how many versions the workers are behind, `last_eval` the newest evaluation."""
        elapsed = max(self.bar.elapsed(), 1e-9)
        done = counters["updates"] - self.at_start["updates"] if self.by_updates else elapsed
        self.bar.set(done, **{
            "steps/s": (counters["env_steps"] - self.at_start["env_steps"]) / elapsed,
            "pairs/s": (counters["pairs"] - self.at_start["pairs"]) / elapsed,
            "updates": counters["updates"], "version": version, "lag": lag,
            "success": f"{100 * recent_success:.1f}%",
            "eval": f"{100 * last_eval['success_rate']:.1f}%" if last_eval else "-"})

    def close(self) -> None:
        self.bar.close()


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
