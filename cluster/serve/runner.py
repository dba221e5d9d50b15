"""Batching and admission for a Serve replica: `BatchRunner`, and `Overloaded` for a refusal."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from typing import Any, Callable, Iterator

ActItem = Decision = Any  # `cluster.serve.core`'s request item and answer (not imported: core imports this)


class Overloaded(RuntimeError):
    """More work waiting than the server takes; answered 503 with Retry-After."""

    def __init__(self, retry_after_s: int = 1):
        super().__init__("the server is overloaded; retry later")
        self.retry_after_s = retry_after_s


class BatchRunner:
    """One forward pass at a time, over every request list waiting when the model frees up,
    and admission of requests by the wait they would see.

    Each request is submitted on its own; when the model frees up, every request that
    queued meanwhile goes into the next pass (up to `max_items`), so the batch grows with
    the queue and nothing waits while the model is idle. Serve's `@serve.batch` in front
    of it lost: it closes a batch when its wait expires and parks it until the model is
    free, which keeps batches at the size they started with (AVX2, 64 clients, 2 replicas:
    66-73 req/s with its 5 ms wait, 57 with none, 73-75 without it; docs/RESULTS.md).

    Admission (`admitted`): a request is taken only if the requests already admitted and
    its own are expected to be answered within `max_wait_s`, at the pace the replica has
    been answering: admitted requests answered per second while any was in hand (decayed
    with a half-life of `HALF_LIFE_S`, so a slower CPU, colder pages or a busier host admit
    fewer). The pace covers the whole handling - parsing, state text, waiting, the forward
    pass - not only the model. Otherwise `Overloaded` (503 with Retry-After, `retry_after_s`)
    at once: latency stays bounded under any load, and what cannot be served in time is
    refused promptly. A request finding none in hand is always taken.

    Args:
        run: items -> decisions, called in a worker thread (the forward pass).
        max_items: most items per forward pass.
        max_waiting: most items waiting for the model; beyond it `submit` raises
            `Overloaded` at once (a hard bound on the queue, whatever the timing).
        max_wait_s: the admission bound (None: admit every request).
    """

    HALF_LIFE_S = 5.0
    """How fast the measured pace forgets: older answers count half after this long."""
    MAX_RETRY_AFTER_S = 30
    LOADING_SLOWDOWN = 2.0
    """While a checkpoint loads beside the forward passes (`loading`), a request is expected
    to take this many times the measured pace: the load takes about half of the replica's
    CPU for a second or so (AVX2, 2 replicas on 2 cores: 26 -> 38-57 ms per answered
    request), too briefly for the decayed pace to notice before the queue has grown."""

    def __init__(self, run: Callable[[list[ActItem]], list[Decision]], max_items: int,
                 max_waiting: int | None = None, max_wait_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.run, self.max_items, self.max_waiting, self.max_wait_s = run, max_items, max_waiting, max_wait_s
        self.pending: deque[tuple[list[ActItem], asyncio.Future]] = deque()
        self.busy = False
        self.inside = 0  # admitted requests not yet answered
        self.clock = clock
        self._answered = self._busy_s = self._refused = 0.0  # decayed: answers, seconds with a request
        # in hand, refusals
        self._last = clock()
        self._loads = 0  # checkpoint loads running beside the forward passes

    def waiting(self) -> int:
        """Items submitted and not yet in a forward pass."""
        return sum(len(items) for items, _ in self.pending)

    def _advance(self) -> None:
        now = self.clock()
        elapsed, self._last = now - self._last, now
        decay = 0.5 ** (elapsed / self.HALF_LIFE_S)
        self._answered *= decay
        self._refused *= decay
        self._busy_s = self._busy_s * decay + (elapsed if self.inside > 0 else 0.0)

    def expected_s(self) -> float:
        """Seconds until a request admitted now would be answered (0 before any answer)."""
        self._advance()
        slowdown = self.LOADING_SLOWDOWN if self._loads else 1.0
        return slowdown * (self.inside + 1) * self._busy_s / self._answered if self._answered > 0 else 0.0

    def retry_after_s(self) -> int:
        """Whole seconds a refused client should wait: until the requests in hand, its own
        and those refused in a second (the decayed rate of refusals) could be answered at
        the measured pace. Each client honouring it comes back once per wait, so under
        sustained overload the wait grows with the number of clients refused and the
        refusals, each a full pass through the HTTP proxy and this replica, stay a small
        share of the work instead of most of it (at most `MAX_RETRY_AFTER_S`)."""
        self._advance()
        per_request = self._busy_s / self._answered if self._answered > 0 else 0.0
        refused_per_s = self._refused * math.log(2) / self.HALF_LIFE_S
        wait = (self.inside + 1 + refused_per_s) * per_request
        return min(self.MAX_RETRY_AFTER_S, max(1, math.ceil(wait)))

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Hold while a checkpoint loads in this process: admission expects `LOADING_SLOWDOWN`
        times the measured pace meanwhile."""
        self._loads += 1
        try:
            yield
        finally:
            self._loads -= 1

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one admission for a request's whole handling (an episode: all its steps).

        Raises:
            Overloaded: the expected answer time is over `max_wait_s`.
        """
        expected = self.expected_s()
        if self.max_wait_s is not None and self.inside > 0 and expected > self.max_wait_s:
            self._refused += 1
            raise Overloaded(retry_after_s=self.retry_after_s())
        self.inside += 1
        try:
            yield
        finally:
            self._advance()
            self.inside -= 1
            self._answered += 1

    async def submit(self, items: list[ActItem]) -> list[Decision]:
        if self.max_waiting is not None and self.waiting() + len(items) > self.max_waiting:
            raise Overloaded()
        future = asyncio.get_running_loop().create_future()
        self.pending.append((list(items), future))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                group, size = [], 0
                while self.pending and (not group or size + len(self.pending[0][0]) <= self.max_items):
                    group.append(self.pending.popleft())
                    size += len(group[-1][0])
                flat = [item for items, _ in group for item in items]
                try:
                    decisions = await asyncio.to_thread(self.run, flat)
                except Exception as e:  # every waiting request gets the error, none hangs
                    for _, future in group:
                        if not future.done():
                            future.set_exception(e)
                    continue
                start = 0
                for items, future in group:
                    if not future.done():
                        future.set_result(decisions[start:start + len(items)])
                    start += len(items)
        finally:
            self.busy = False
