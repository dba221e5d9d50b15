"""The next update's batch selected while the current one trains (GPU learners).

A GPU learner's update takes tens of milliseconds, about what asking the buffer actor for
its rows and turning them into trajectories takes, so without this it waits on the host
for much of its time. `Prefetcher.update` trains on the batch selected during the previous
update while a thread selects the next one, for the version that update will have.

The batches are those `Learner.update` selects one after the other whenever the buffer does
not change in between (the tests compare the weights bit for bit); in a run, rows that
arrive while a batch is selected wait for a later one. Only selection runs on the thread
(DPO's anchor draw is its one use of the learner's generator; PPO draws only in training
and marks its trajectories used when it selects them), and `update` returns only once
the thread is idle, so a snapshot or publish between updates never races with it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from learner.batches import DPOBatch, PPOBatch
from learner.learner import Learner


class Prefetcher:
    """`update()` as `Learner.update(buffer)`, with the next batch selected meanwhile."""

    def __init__(self, learner: Learner, buffer):
        self.learner, self.buffer = learner, buffer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="learner-prefetch")
        self._next: Future | None = None

    def update(self) -> dict[str, float] | None:
        learner = self.learner
        batch: DPOBatch | PPOBatch | None = None
        if learner.group.rank == 0:
            batch = self._next.result() if self._next is not None else learner.select(self.buffer)
            self._next = None if batch is None else self._pool.submit(learner.select, self.buffer, 1)
        batch = learner.group.broadcast(batch)
        try:
            return None if batch is None else learner.train(batch)
        finally:
            if self._next is not None:
                self._next.exception()  # wait, idle until the next update (its error is raised there)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
