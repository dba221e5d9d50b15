"""Thin Ray wrappers: the plain classes of the loop made into actors.

Everything here is a few lines per class so the same objects run in one process
(`--num-workers 0`). Actors that mostly wait (buffer, weight store) ask for
`num_cpus=0`: on a 2-core machine, whole CPUs for them starve the learner.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from cluster.runtime import build_policy, load_catalog_section
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from rollout_workers.worker import RolloutWorker


@ray.remote(num_cpus=0)
class WeightStore:
    """Holds the newest `(version, [ObjectRef])`; workers poll it between episodes.

    The ref is wrapped in a list so Ray passes the reference, not the weights."""

    def __init__(self):
        self.version, self.ref = -1, None

    def publish(self, version: int, ref_list: list) -> None:
        if version > self.version:
            self.version, self.ref = version, ref_list[0]

    def newest(self, have: int) -> tuple[int, list] | None:
        if self.ref is None or self.version <= have:
            return None
        return self.version, [self.ref]

    def current_version(self) -> int:
        return self.version


@ray.remote(num_cpus=0)
class BufferActor:
    """`ArrowBuffer` as an actor; every append is on disk before it returns."""

    def __init__(self, directory: str, config, seed: int = 0):
        self.buffer = ArrowBuffer(directory, config, seed=seed)

    def add(self, traj_batch, pair_batch) -> tuple[int, int]:
        n_t = self.buffer.add_trajectories(traj_batch) if traj_batch is not None else 0
        n_p = self.buffer.add_pairs(pair_batch) if pair_batch is not None else 0
        return n_t, n_p

    def sample(self, kind: str, n: int, min_version: int | None = None, recency: float = 0.0):
        return self.buffer.sample(kind, n, min_version=min_version, recency=recency)

    def newest(self, kind: str, n: int):
        return self.buffer.newest(kind, n)

    def sample_pairs(self, n: int, min_version: int):
        return self.buffer.sample_pairs(n, min_version)

    def newest_policy_states(self, num_rows: int):
        return self.buffer.newest_policy_states(num_rows)

    def fresh_policy_trajectories(self, n: int, min_version: int, exclude_ids=()):
        return self.buffer.fresh_policy_trajectories(n, min_version, exclude_ids)

    def stats(self) -> dict:
        return self.buffer.stats()


class WorkerShell:
    """A rollout worker that pushes to the buffer and pulls weights between rounds."""

    def __init__(self, worker_id: int, cfg, store, buffer, seed: int, start_weights=None):
        import torch

        torch.set_num_threads(max(1, cfg.policy.threads_per_worker))
        catalog = load_catalog_section(cfg.catalog)
        policy = build_policy(cfg.policy, device="cpu", acting=True)
        self.worker = RolloutWorker(worker_id, catalog, policy, cfg.worker, seed=seed)
        self.store, self.buffer = store, buffer
        if start_weights is not None:
            version, ref = start_weights
            self.worker.set_weights(version, ray.get(ref[0]) if isinstance(ref, list) else ref)
        self.sync_seconds: list[float] = []

    def pull_weights(self) -> bool:
        found = ray.get(self.store.newest.remote(self.worker.version))
        if found is None:
            return False
        t0 = time.perf_counter()
        version, ref = found
        self.worker.set_weights(version, ray.get(ref[0]))
        self.sync_seconds.append(time.perf_counter() - t0)
        return True

    def rollout(self, num_episodes: int) -> dict[str, Any]:
        """One round: newest weights, `num_episodes` episodes, pushed to the buffer."""
        self.pull_weights()
        batch = self.worker.sample(num_episodes)
        traj = trajectories_to_batch(batch.trajectories)
        pairs = pairs_to_batch(batch.pairs) if batch.pairs else None
        n_t, n_p = ray.get(self.buffer.add.remote(traj, pairs))
        return {"worker_id": self.worker.worker_id, "episodes": len(batch.trajectories), "acked": n_t,
                "pairs": n_p, "env_steps": batch.env_steps, "seconds": batch.seconds,
                "version": batch.policy_version, "success": sum(t.score >= 1.0 for t in batch.trajectories),
                "score_sum": sum(t.score for t in batch.trajectories),
                "sync_s": self.sync_seconds[-1] if self.sync_seconds else None, "state": self.worker.state(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def load_state(self, state: dict) -> None:
        self.worker.load_state(state)

    def ping(self) -> int:
        return self.worker.version


RemoteWorker = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(WorkerShell)
