"""Every Ray actor of a run: the plain classes of the loop, each in a thin shell.

The shells only move data between Ray and the plain objects (`RolloutWorker`,
`ArrowBuffer`, `Learner`), so the same objects run in one process (`LocalLoop`,
`--num-workers 0`). Actors that mostly wait (buffer, weight store) ask for
`num_cpus=0`: on a 2-core machine, whole CPUs for them starve the learner.
"""

from __future__ import annotations

import dataclasses
import time

import ray

from cluster.components import build_learner, catalog_from_section, share_encodings
from cluster.schedule import Interval
from cluster.run_state import PublishLog
from learner.group import TorchGroup, connect_store, open_store
from learner.prefetch import Prefetcher
from policies.checkpoint import load_checkpoint
from policies.policy import Policy
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from rollout_workers.worker import RolloutWorker, RoundStats


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

    def __init__(self, directory: str, config, seed: int = 0, committed: dict | None = None):
        self.buffer = ArrowBuffer(directory, config, seed=seed, committed=committed)

    def checkpoint_state(self) -> dict:
        return self.buffer.checkpoint_state()

    def ping(self) -> bool:
        return True

    def add(self, traj_batch, pair_batch) -> tuple[int, int]:
        n_t = self.buffer.add_trajectories(traj_batch) if traj_batch is not None else 0
        n_p = self.buffer.add_pairs(pair_batch) if pair_batch is not None else 0
        return n_t, n_p

    def sample_pairs(self, n: int, min_version: int):
        return self.buffer.sample_pairs(n, min_version)

    def newest_policy_states(self, num_rows: int):
        return self.buffer.newest_policy_states(num_rows)

    def fresh_policy_trajectories(self, n: int, min_version: int, exclude_ids=()):
        return self.buffer.fresh_policy_trajectories(n, min_version, exclude_ids)

    def stats(self) -> dict:
        return self.buffer.stats()


def acting_device(gpu_ids: list, cuda_available: bool) -> str:
    """Where a rollout worker acts: the GPU Ray gave it (`policy.worker_gpu_share`), else the CPU."""
    if not gpu_ids:
        return "cpu"
    if not cuda_available:
        raise RuntimeError(f"this rollout worker was given GPU {gpu_ids} but torch sees no CUDA device (a CPU "
                           f"build of torch?): install the CUDA build on the GPU nodes, or set "
                           f"policy.worker_gpu_share=0")
    return "cuda"


class WorkerShell:
    """A rollout worker that pushes to the buffer and pulls weights between rounds."""

    def __init__(self, worker_id: int, cfg, policy_config, store, buffer, seed: int, run_id: str,
                 start_weights=None):
        """`policy_config`: the IL checkpoint's, so that the learner's weights fit this policy."""
        import torch

        torch.set_num_threads(max(1, cfg.policy.threads_per_worker))
        catalog = catalog_from_section(cfg.catalog)
        device = acting_device(ray.get_gpu_ids(), torch.cuda.is_available())
        policy = Policy(dataclasses.replace(policy_config, device=device))
        share_encodings(cfg.policy, policy)
        self.worker = RolloutWorker(worker_id, catalog, policy, cfg.worker, seed=seed, run_id=run_id)
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

    def rollout(self, num_episodes: int) -> RoundStats:
        """One round: newest weights, `num_episodes` episodes, pushed to the buffer."""
        self.pull_weights()
        batch = self.worker.sample(num_episodes)
        traj = trajectories_to_batch(batch.trajectories)
        pairs = pairs_to_batch(batch.pairs) if batch.pairs else None
        n_t, n_p = ray.get(self.buffer.add.remote(traj, pairs))
        return batch.stats(n_t, n_p, sync_s=self.sync_seconds[-1] if self.sync_seconds else None,
                           node_id=ray.get_runtime_context().get_node_id())

    def load_state(self, state: dict) -> None:
        self.worker.load_state(state)

    def ping(self) -> int:
        return self.worker.version


class _BufferProxy:
    """The `ArrowBuffer` methods the learner calls (`Learner.update`), over the buffer actor."""

    def __init__(self, actor):
        self.actor = actor

    def sample_pairs(self, n, min_version):
        return ray.get(self.actor.sample_pairs.remote(n, min_version))

    def newest_policy_states(self, num_rows):
        return ray.get(self.actor.newest_policy_states.remote(num_rows))

    def fresh_policy_trajectories(self, n, min_version, exclude_ids=()):
        return ray.get(self.actor.fresh_policy_trajectories.remote(n, min_version, exclude_ids))


class LearnerShell:
    """The learner as an actor: updates from the buffer actor, publishes on its `Interval`.

    Starts from the IL weights or a committed learner state (`state_dir`). Each publish
    is first recorded in the run's publish log (`PublishLog`); a learner restored from
    an earlier generation continues its version numbers after the highest one ever
    logged, so a version number never names two different sets of weights.

    `rank`: its rank in the run's learner group (`cluster.learner_group`): rank 0 reads
    the buffer, publishes and snapshots; every rank trains (`learner.group`)."""

    def __init__(self, cfg, il_path: str, device: str, buffer, store, state_dir: str | None, threads: int,
                 publish_log: str, rank: int = 0):
        import torch

        torch.set_num_threads(max(1, threads))
        policy = load_checkpoint(il_path, device=device)
        self.learner = build_learner(cfg, policy, load_checkpoint(il_path, device=device))
        reference = self.learner.reference
        share_encodings(cfg.policy, policy, *([reference.policy] if reference is not None else []))
        if state_dir:
            self.learner.load(state_dir)
        self.rank, self.rendezvous = rank, None
        self.buffer, self.store = _BufferProxy(buffer), store
        # on a GPU the next batch is selected while one trains; a CPU update spends ~2% fetching
        self.prefetch = Prefetcher(self.learner, self.buffer) if self.learner.device.type == "cuda" else None
        self.schedule = Interval(cfg.run.sync_interval_s)
        self.publish_seconds: list[float] = []
        if rank == 0:
            self.log = PublishLog(publish_log)
            self.learner.continue_versions_after(self.log.highest())
            self.publish()

    def open_store(self) -> tuple[str, int]:
        """Rank 0: open the rendezvous of the group's process group; its (host, port)."""
        host = ray.util.get_node_ip_address()
        self.rendezvous = open_store(host)
        return host, self.rendezvous.port

    def join(self, host: str, port: int, size: int) -> None:
        """Join the group's process group (every rank at once, rank 0's store at host:port)."""
        store = self.rendezvous if self.rank == 0 else connect_store(host, port)
        self.learner.join(TorchGroup(self.rank, size, store, self.learner.device))

    def publish(self) -> int:
        t0 = time.perf_counter()
        version, weights = self.learner.publish()
        self.log.record(version, self.learner.num_updates)
        ray.get(self.store.publish.remote(version, [ray.put(weights)]))
        self.publish_seconds.append(time.perf_counter() - t0)
        self.schedule.restart()  # the period counts from the end of a publish
        return version

    def train_for(self, seconds: float, max_updates: int | None) -> list[dict]:
        """Update until `seconds` pass (or `max_updates`); publish when the schedule is due.
        In a group every rank runs it at once and rank 0's clock decides for all."""
        end, out, group = time.perf_counter() + seconds, [], self.learner.group
        while not group.broadcast(time.perf_counter() >= end or (max_updates is not None and len(out) >= max_updates)):
            m = self.prefetch.update() if self.prefetch is not None else self.learner.update(self.buffer)
            if m is None:
                time.sleep(0.2)  # not enough fresh data yet
            else:
                out.append(m)
            if self.rank == 0 and self.schedule.due():
                self.publish()
        return out

    def version(self) -> int:
        return self.learner.version

    def ping(self) -> bool:
        return True

    def placement(self) -> dict:
        """Where Ray put this actor and where its model lives (the GPU check of a run)."""
        param = next(self.learner.policy.model.parameters())
        return {"device": str(param.device), "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
                "node_id": ray.get_runtime_context().get_node_id()}

    def num_updates(self) -> int:
        return self.learner.num_updates

    def weights(self):
        return self.learner.publish()

    def snapshot(self, directory: str, generation: str) -> tuple[int, int, dict]:
        return self.learner.snapshot(directory, generation)

    def publish_stats(self) -> list[float]:
        return list(self.publish_seconds)


RemoteWorker = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(WorkerShell)
RemoteLearner = ray.remote(max_restarts=0)(LearnerShell)
"""Resources and runtime env are given per run (`.options`): they depend on the cluster.
A dead learner or buffer is not restarted by Ray: the driver rolls the whole run back to
its last checkpoint generation (`cluster.ray_loop.RayLoop`), as `--resume` would."""
