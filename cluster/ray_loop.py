"""The Ray side of `RayLoop`: actors, rounds, weight pushes, restarts.

The driver keeps one `rollout` call in flight per worker and one `train_for` call on
the learner. A worker that dies is restarted by Ray (`max_restarts=-1`); its call
fails with an actor error, the driver logs it and submits the next round, which
runs on the restarted actor (it reloads the catalog and policy, pulls the newest
weights and continues its goal order from the driver's last record).
"""

from __future__ import annotations

import os
import time

import numpy as np
import ray

from cluster.actors import BufferActor, RemoteWorker, WeightStore
from cluster.runtime import actor_runtime_env
from cluster.train_helpers import build_learner, load_policy


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
    """The learner as an actor: updates from the buffer actor, publishes on a timer."""

    def __init__(self, cfg, il_path: str, device: str, buffer, store, state_dir: str | None, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        policy = load_policy(il_path, device)
        self.learner = build_learner(cfg, policy, load_policy(il_path, device))
        if state_dir and os.path.exists(os.path.join(state_dir, "learner.json")):
            self.learner.load(state_dir)
        self.buffer, self.store = _BufferProxy(buffer), store
        self.sync_interval = cfg.run.sync_interval_s
        self.publish_seconds: list[float] = []
        self.publish()

    def publish(self) -> int:
        t0 = time.perf_counter()
        version, weights = self.learner.publish()
        ref = ray.put(weights)
        ray.get(self.store.publish.remote(version, [ref]))
        self.publish_seconds.append(time.perf_counter() - t0)
        self._last_publish = time.perf_counter()
        return version

    def train_for(self, seconds: float, max_updates: int | None) -> list[dict]:
        """Update until `seconds` pass (or `max_updates`); publish every sync interval."""
        end, out = time.perf_counter() + seconds, []
        while time.perf_counter() < end and (max_updates is None or len(out) < max_updates):
            m = self.learner.update(self.buffer)
            if m is None:
                time.sleep(0.2)  # not enough fresh data yet
            else:
                out.append(m)
            if time.perf_counter() - self._last_publish >= self.sync_interval:
                self.publish()
        return out

    def version(self) -> int:
        return self.learner.version

    def placement(self) -> dict:
        """Where Ray put this actor and where its model lives (the GPU check of a run)."""
        param = next(self.learner.policy.model.parameters())
        return {"device": str(param.device), "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
                "node_id": ray.get_runtime_context().get_node_id()}

    def num_updates(self) -> int:
        return self.learner.num_updates

    def weights(self):
        return self.learner.publish()

    def save(self, directory: str) -> None:
        self.learner.save(directory)

    def publish_stats(self) -> list[float]:
        return list(self.publish_seconds)


def _resources(cfg) -> tuple[float, float, int]:
    """(worker CPUs, learner CPUs, learner GPUs) for this cluster."""
    free = ray.available_resources()  # not the totals: other apps (e.g. Serve) may hold some
    gpus = int(free.get("GPU", 0) >= 1)
    cpus = max(free.get("CPU", 0.0), 0.1)
    n = cfg.run.num_workers
    if cpus >= n + 1:
        return 1.0, 1.0, gpus
    share = cpus / (n + 1)  # a small machine: split what there is, or nothing starts
    return share, share, gpus


def _worker_strategies(cfg, cpus: float) -> list:
    """One scheduling strategy per worker: SPREAD, or a bundle of a placement group."""
    n = cfg.run.num_workers
    if cfg.run.worker_placement == "spread":
        return ["SPREAD"] * n
    if cfg.run.worker_placement != "placement_group":
        raise ValueError(f"run.worker_placement must be spread or placement_group, "
                         f"got {cfg.run.worker_placement!r}")
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"CPU": cpus}] * n, strategy="SPREAD")
    ray.get(pg.ready(), timeout=600)
    return [PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=i) for i in range(n)]


def start_actors(loop) -> None:
    cfg = loop.cfg
    if not ray.is_initialized():
        # "local": a fresh instance, never a stray cluster left on this machine
        address = cfg.run.address or os.environ.get("RAY_ADDRESS") or "local"
        ray.init(address=address, include_dashboard=False,
                 ignore_reinit_error=True, log_to_driver=True)
    w_cpu, l_cpu, l_gpu = _resources(cfg)
    # The buffer writes to the run directory on the driver's disk, and neither it nor
    # the weight store may vanish with a worker node: both live on the driver's node.
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    env = actor_runtime_env()
    loop.store = WeightStore.options(scheduling_strategy=here, runtime_env=env).remote()
    loop.buffer_actor = BufferActor.options(scheduling_strategy=here, runtime_env=env).remote(
        str(loop.out / "buffer"), cfg.buffer, cfg.run.seed)
    device = "cuda" if l_gpu else "cpu"
    threads = max(1, (os.cpu_count() or 2) - cfg.run.num_workers) if not l_gpu else 4
    learner_cls = ray.remote(num_cpus=l_cpu, num_gpus=l_gpu, max_restarts=0, runtime_env=env)(LearnerShell)
    loop.learner = learner_cls.remote(cfg, loop.il_path, device, loop.buffer_actor, loop.store,
                                      str(loop.out / "learner"), threads)
    loop.workers = {}
    strategies = _worker_strategies(cfg, w_cpu)
    for i in range(cfg.run.num_workers):
        # rollout workers go to different nodes where there are several
        loop.workers[i] = RemoteWorker.options(num_cpus=w_cpu, scheduling_strategy=strategies[i],
                                               runtime_env=env).remote(
            i, cfg, loop.store, loop.buffer_actor, cfg.run.seed + 1000 * (i + 1))
        if str(i) in loop.worker_states:
            loop.workers[i].load_state.remote(loop.worker_states[str(i)])
    try:  # constructed: the budget starts now
        ray.get([w.ping.remote() for w in loop.workers.values()], timeout=600)
    except ray.exceptions.GetTimeoutError:
        raise RuntimeError(f"rollout workers not scheduled after 600 s: each asks for {w_cpu:.2f} CPU; "
                           f"free now: {ray.available_resources()}") from None
    loop.inflight = {w.rollout.remote(cfg.run.episodes_per_round): i for i, w in loop.workers.items()}
    loop.counters["updates"] = ray.get(loop.learner.num_updates.remote())
    loop.learner_placement = ray.get(loop.learner.placement.remote())
    loop.learner_call = loop.learner.train_for.remote(5.0, None)
    loop.worker_errors = 0
    loop.worker_version = ray.get(loop.store.current_version.remote())


def _chaos(loop, timers: dict) -> None:
    interval = loop.cfg.run.chaos_kill_interval_s
    if not interval or time.perf_counter() - timers.setdefault("chaos", time.perf_counter()) < interval:
        return
    timers["chaos"] = time.perf_counter()
    i = int(np.random.default_rng(loop.counters["episodes"]).integers(len(loop.workers)))
    ray.kill(loop.workers[i], no_restart=False)  # Ray re-creates it; its call in flight fails
    loop.log.write("chaos", {"killed_worker": i}, step=loop.counters["updates"])


def step(loop, timers: dict) -> None:
    cfg = loop.cfg
    _chaos(loop, timers)
    pending = list(loop.inflight) + ([loop.learner_call] if loop.learner_call is not None else [])
    ready, _ = ray.wait(pending, num_returns=1, timeout=2.0)
    for ref in ready:
        if ref == loop.learner_call:
            metrics = ray.get(ref)
            for m in metrics:
                loop.counters["updates"] += 1
                loop.log.write("learner", m, step=loop.counters["updates"])
            left = None if cfg.run.updates is None else max(0, cfg.run.updates - loop.counters["updates"])
            loop.learner_call = loop.learner.train_for.remote(5.0, left)
            continue
        i = loop.inflight.pop(ref)
        try:
            r = ray.get(ref)
            loop._record_round(r)
            loop.worker_version = r["version"]
            if r.get("sync_s") is not None:
                loop.log.write("sync", {"worker_seconds": r["sync_s"], "worker_id": i}, step=loop.counters["updates"])
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            loop.worker_errors += 1
            loop.log.write("fault", {"worker_id": i, "error": type(e).__name__}, step=loop.counters["updates"])
            if str(i) in loop.worker_states:  # a restarted actor continues the goal order
                loop.workers[i].load_state.remote(loop.worker_states[str(i)])
        loop.inflight[loop.workers[i].rollout.remote(cfg.run.episodes_per_round)] = i


def versions(loop) -> tuple[int, int]:
    return ray.get(loop.store.current_version.remote()), loop.worker_version


def current_weights(loop):
    found = ray.get(loop.store.newest.remote(-1))
    version, ref = found
    return version, ray.get(ref[0])


def drain(loop) -> None:
    """Let the learner's current call finish and count it (before the last checkpoint)."""
    if loop.learner_call is None:
        return
    for m in ray.get(loop.learner_call):
        loop.counters["updates"] += 1
        loop.log.write("learner", m, step=loop.counters["updates"])
    loop.learner_call = None
    pushes = ray.get(loop.learner.publish_stats.remote())
    loop.learner_placement["publishes"] = len(pushes)
    loop.learner_placement["publish_p50_s"] = float(np.median(pushes)) if pushes else None


def shutdown(loop) -> None:
    for ref in list(getattr(loop, "inflight", {})):
        try:
            ray.cancel(ref)  # force=True is not allowed for actor tasks
        except Exception:  # noqa: BLE001 - the task may have finished or its actor died
            pass
