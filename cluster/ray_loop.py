"""`RayLoop`: the RL phase with rollout workers, the buffer, a weight store and the
learner as Ray actors (`cluster.actors`); the driver's duties are `DriverLoop`'s.

The driver keeps one `rollout` call in flight per worker and one `train_for` call on
each learner rank. A worker that dies is restarted by Ray (`max_restarts=-1`); its call
fails with an actor error, the driver logs it and submits the next round, which
runs on the restarted actor (it reloads the catalog and policy, pulls the newest
weights and continues its goal order and RNGs from the driver's last record, so the
lost round is replayed under the same episode ids and stored once).

A learner (any rank of a learner group, `cluster.learner_group`) or buffer that dies
holds state no record can rebuild mid-flight, so the driver rolls the whole run back
to its last checkpoint generation, exactly as `--resume` would: every actor is
replaced, counters, cursors and the buffer's high-water mark come from the generation,
rows acknowledged since then wait for their replay, and the learner numbers its
weights after the highest version ever published.
A component that keeps dying stops the run with one line: a worker after
`MAX_WORKER_FAILURES` deaths in a row, the run after `MAX_ROLLBACKS` rollbacks with no
checkpoint generation committed between them.
"""

from __future__ import annotations

import os
import time

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cluster.actors import BufferActor, RemoteWorker, WeightStore
from cluster.components import actor_runtime_env
from cluster.learner_group import SCHEDULE_TIMEOUT_S, LearnerGroup
from cluster.loop import DriverLoop
from cluster.run_state import PUBLISH_LOG
from cluster.user_errors import UsageError
from policies.checkpoint import read_policy_config
from rollout_workers.worker import RoundStats

LEARNER_CALL_S = 5.0  # each `train_for` call's length: the driver counts updates between calls
MAX_WORKER_FAILURES = 5  # deaths in a row (no finished round between) before the run stops
MAX_ROLLBACKS = 5  # rollbacks with no checkpoint generation committed between them before the run stops
ACTOR_DEATH = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
CHAOS_TARGETS = ("worker", "buffer", "learner")


class ComponentDied(Exception):
    """The learner or the buffer actor is gone: the run rolls back to its last generation."""

    def __init__(self, component: str, error: BaseException):
        self.component, self.error = component, error
        super().__init__(f"the {component} actor died ({type(error).__name__})")


class WorkerFaults:
    """Counts each worker's deaths in a row (rounds lost to a dead actor, not calls that
    found it restarting): Ray restarts a dead worker, but one that dies every round (a
    bad node, a crash on start) would otherwise loop for ever."""

    def __init__(self, limit: int = MAX_WORKER_FAILURES):
        self.limit, self.in_a_row, self.total = limit, {}, 0

    def succeeded(self, worker: int) -> None:
        self.in_a_row[worker] = 0

    def failed(self, worker: int, error: BaseException) -> None:
        """Count a lost round; raise once `worker` has lost `limit` rounds in a row."""
        self.total += 1
        self.in_a_row[worker] = self.in_a_row.get(worker, 0) + 1
        if self.in_a_row[worker] >= self.limit:
            raise RuntimeError(f"rollout worker {worker} died {self.in_a_row[worker]} times in a row "
                               f"(last: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                               f"stopping the run: see the worker's log in the Ray session's logs folder")


def cpu_shares(num_workers: int, num_learners: int = 1) -> tuple[float, float, int]:
    """(worker CPUs, CPUs of each learner, GPUs of each learner) for this cluster: a GPU
    for each learner where the cluster has one for every learner free."""
    free = ray.available_resources()  # not the totals: other apps (e.g. Serve) may hold some
    free_gpus = int(free.get("GPU", 0))
    if 0 < free_gpus < num_learners:
        raise UsageError(f"learner.num_learners={num_learners} takes one GPU each, and this cluster has "
                         f"{free_gpus} free: use at most {free_gpus} learners, or add GPU nodes")
    gpus = int(free_gpus >= num_learners)
    cpus = max(free.get("CPU", 0.0), 0.1)
    if cpus >= num_workers + num_learners:
        return 1.0, 1.0, gpus
    share = cpus / (num_workers + num_learners)  # a small machine: split what there is, or nothing starts
    return share, share, gpus


def gpu_shares(num_workers: int, share: float, num_learners: int, learner_gpus: int) -> tuple[float, float]:
    """(GPU of each learner, GPU of each rollout worker) with `policy.worker_gpu_share`;
    0: the workers act on CPUs and the learners keep `learner_gpus` (`cpu_shares`).
    Learners take whole GPUs where the workers fit beside them; one learner on a node
    with too few for that (one GPU) takes what the workers leave of one of them."""
    if share <= 0:
        return learner_gpus, 0.0
    free = int(ray.available_resources().get("GPU", 0))
    per_gpu = int(1 / share + 1e-9)  # Ray packs whole shares on each GPU
    need = -(-num_workers // per_gpu)
    if free >= num_learners + need:
        return 1, share
    if num_learners == 1 and free >= need:
        beside = num_workers - (free - 1) * per_gpu  # the workers on the learner's GPU
        left = round(1.0 - beside * share, 4)
        if left > 0:
            return left, share
    learners = "a share left for the learner" if num_learners == 1 else f"the {num_learners} learners' own GPUs"
    raise UsageError(f"policy.worker_gpu_share={share} puts {per_gpu} worker(s) on a GPU: {num_workers} workers "
                     f"need {need} GPU(s) and {learners}, and {free} are free: use fewer workers, a smaller "
                     f"share, or 0 to act on CPUs")


def worker_strategies(run, cpus: float) -> list:
    """One scheduling strategy per worker: SPREAD, or a bundle of a placement group."""
    n = run.num_workers
    if run.worker_placement == "spread":
        return ["SPREAD"] * n
    if run.worker_placement != "placement_group":
        raise ValueError(f"run.worker_placement must be spread or placement_group, "
                         f"got {run.worker_placement!r}")
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"CPU": cpus}] * n, strategy="SPREAD")
    ray.get(pg.ready(), timeout=SCHEDULE_TIMEOUT_S)
    return [PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=i) for i in range(n)]


class RayLoop(DriverLoop):
    """Worker actors, a buffer actor, a weight store and the learner actor(s) on Ray."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.store = self.buffer_actor = None  # actor handles, made by _start
        self.learner: LearnerGroup | None = None
        self.workers: dict[int, object] = {}
        self.inflight: dict = {}  # rollout call -> worker index
        self.learner_calls: dict = {}  # the learners' `train_for` calls in flight -> rank
        self.learner_metrics: list[dict] = []  # rank 0's result of the calls in flight
        self.faults = WorkerFaults()  # rollout calls lost to a dead worker
        self.worker_version = -1  # the policy version of the newest round
        self.chaos_kills = 0  # fault drills (run.chaos_kill_every_updates): kills so far
        self.updates_seen = 0  # learner updates recorded by this driver, those rolled back included
        self.rollbacks_in_a_row = 0

    # -- start ---------------------------------------------------------------------------
    def _start(self) -> None:
        cfg, run = self.cfg, self.cfg.run
        if not ray.is_initialized():
            # "local": a fresh instance, never a stray cluster left on this machine
            address = run.address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
        num_learners = cfg.learner.num_learners
        w_cpu, l_cpu, l_gpu = cpu_shares(run.num_workers, num_learners)
        l_gpu, w_gpu = gpu_shares(run.num_workers, cfg.policy.worker_gpu_share, num_learners, l_gpu)
        # The buffer writes to the run directory on the driver's disk, and neither it nor
        # the weight store may vanish with a worker node: both live on the driver's node.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        env = actor_runtime_env()
        self.store = WeightStore.options(scheduling_strategy=here, runtime_env=env).remote()
        self.buffer_actor = BufferActor.options(scheduling_strategy=here, runtime_env=env).remote(
            str(self.out / "buffer"), cfg.buffer, run.seed, self.buffer_commit)
        threads = max(1, ((os.cpu_count() or 2) - run.num_workers) // num_learners) if not l_gpu else 4
        self.learner = LearnerGroup(cfg, self.il_path, l_cpu, l_gpu, {"runtime_env": env}, self.buffer_actor,
                                    self.store, self.learner_state_dir, threads, str(self.out / PUBLISH_LOG))
        self._start_workers(w_cpu, w_gpu, env)  # built while the learner starts
        # the learner publishes its weights as it starts: wait for that, so that no worker
        # acts on a head of its own before the first round
        self.counters["updates"] = ray.get(self.learner.leader.num_updates.remote())
        self._await_workers(w_cpu, w_gpu)
        self.inflight = {w.rollout.remote(self.cfg.round_episodes): i for i, w in self.workers.items()}
        self.learner_placement = self.learner.placement()
        self.learner_calls = self.learner.train_for(LEARNER_CALL_S, self._call_updates())
        self.worker_version = ray.get(self.store.current_version.remote())

    def _start_workers(self, cpus: float, gpus: float, env: dict) -> None:
        """One worker actor per `run.num_workers`, spread over nodes where there are several;
        `gpus`: each one's GPU share (it acts there) or 0."""
        cfg = self.cfg
        strategies = worker_strategies(cfg.run, cpus)
        policy_config = read_policy_config(self.il_path)
        for i in range(cfg.run.num_workers):
            self.workers[i] = RemoteWorker.options(num_cpus=cpus, num_gpus=gpus, scheduling_strategy=strategies[i],
                                                   runtime_env=env).remote(
                i, cfg, policy_config, self.store, self.buffer_actor, cfg.run.seed + 1000 * (i + 1), self.run_id)
            if str(i) in self.worker_states:
                self.workers[i].load_state.remote(self.worker_states[str(i)])

    def _await_workers(self, cpus: float, gpus: float) -> None:
        """Wait until every worker is built (their shares named if they cannot be placed)."""
        try:
            ray.get([w.ping.remote() for w in self.workers.values()], timeout=SCHEDULE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"rollout workers not scheduled after {SCHEDULE_TIMEOUT_S} s: each asks for "
                               f"{cpus:.2f} CPU and {gpus} GPU; free now: {ray.available_resources()}") from None

    def _call_updates(self) -> int | None:
        """What the learner's next call may do: the budget's rest and, in a fault drill, the
        updates before the next kill (so kills land on their update counts exactly)."""
        run = self.cfg.run
        left = [] if run.updates is None else [max(0, run.updates - self.counters["updates"])]
        if run.chaos_kill_every_updates is not None:
            left.append(max(0, run.chaos_kill_every_updates * (self.chaos_kills + 1) - self.updates_seen))
        return min(left, default=None)

    # -- rounds --------------------------------------------------------------------------
    def _step(self) -> None:
        """Wait for a call to finish (a worker's round or the learner's), handle every call
        finished by then and submit each again; roll back if the learner or buffer died."""
        try:
            self._maybe_kill()
            calls = list(self.inflight) + list(self.learner_calls)
            ready, _ = ray.wait(calls, num_returns=1, timeout=2.0)
            if ready:  # one call per step let the learner's starve the rounds when commits
                # (each waits for the learner's call to end) came as often as the calls
                ready, _ = ray.wait(calls, num_returns=len(calls), timeout=0)
            for ref in ready:
                if ref not in self.learner_calls:
                    self._finish_round(ref)
                elif self._finish_learner_call(ref):
                    self.learner_calls = self.learner.train_for(LEARNER_CALL_S, self._call_updates())
        except ComponentDied as died:
            self._roll_back(died)

    def _finish_learner_call(self, ref) -> bool:
        """Collect one rank's `train_for`; True once every rank's call is in and rank 0's
        updates are recorded. Raises ComponentDied when a learner (or the buffer) died."""
        rank = self.learner_calls.pop(ref)
        try:
            metrics = ray.get(ref)
        except ACTOR_DEATH as e:
            self._check_alive(learner=False)  # the learner's call also fails when the buffer it reads died
            raise ComponentDied("learner", e) from None
        except ray.exceptions.RayTaskError:
            if len(self.learner.ranks) > 1:  # a collective fails on the ranks whose peer died
                self._check_alive()
            raise
        if rank == 0:
            self.learner_metrics = metrics
        if self.learner_calls:
            return False
        self._record_updates(self.learner_metrics)
        self.updates_seen += len(self.learner_metrics)
        self.learner_metrics = []
        return True

    def _finish_round(self, ref) -> None:
        i = self.inflight.pop(ref)
        try:
            r: RoundStats = ray.get(ref)
            self.faults.succeeded(i)
            self._record_round(r)
            self.worker_version = r.version
            if r.sync_s is not None:
                self.log.write("sync", {"worker_seconds": r.sync_s, "worker_id": i}, step=self.counters["updates"])
        except ACTOR_DEATH as e:
            self._check_alive()  # a round also fails when the buffer it writes to died
            self.log.write("fault", {"component": "worker", "worker_id": i, "error": type(e).__name__},
                           step=self.counters["updates"])
            if not isinstance(e, ray.exceptions.ActorUnavailableError):  # that one is restarting, not dead
                self.faults.failed(i, e)
            if str(i) in self.worker_states:  # a restarted actor continues the goal order
                self.workers[i].load_state.remote(self.worker_states[str(i)])
        self.inflight[self.workers[i].rollout.remote(self.cfg.round_episodes)] = i

    def _check_alive(self, learner: bool = True) -> None:
        """Raise ComponentDied if the buffer or (with `learner`) a learner actor is dead.
        A learner rank busy in a collective answers only when its call ends: the dead
        one answers at once, so the pings are read as they come, for up to 60 s."""
        groups = [("buffer", [self.buffer_actor])] + ([("learner", self.learner.ranks)] if learner else [])
        for name, actors in groups:
            pending = [a.ping.remote() for a in actors]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=60)
                if not ready:
                    break
                try:
                    ray.get(ready[0])
                except ACTOR_DEATH as e:
                    raise ComponentDied(name, e) from None

    def _roll_back(self, died: ComponentDied) -> None:
        """Replace every actor and continue from the last checkpoint generation."""
        self.rollbacks_in_a_row += 1
        self.log.write("fault", {"component": died.component, "error": type(died.error).__name__,
                                 "rolled_back_to": self.committed.generation if self.committed else None},
                       step=self.counters["updates"])
        if self.rollbacks_in_a_row > MAX_ROLLBACKS:
            raise RuntimeError(f"{died}; the run rolled back {MAX_ROLLBACKS} times without committing a "
                               f"checkpoint generation in between: stopping (see the Ray session's logs)")
        t0 = time.perf_counter()
        self._stop_actors()
        self.restore()
        self.rollback_clock()
        self._start()
        self.log.write("recovered", {"component": died.component, "seconds": time.perf_counter() - t0},
                       step=self.counters["updates"])

    def _stop_actors(self) -> None:
        self.close()
        for actor in [*self.workers.values(), self.buffer_actor, self.store]:
            if actor is not None:
                ray.kill(actor, no_restart=True)
        if self.learner is not None:
            self.learner.kill()
        self.workers, self.inflight, self.learner_calls, self.learner_metrics = {}, {}, {}, []

    def commit(self, evaluator, rl_seconds: float) -> str:
        try:
            generation = super().commit(evaluator, rl_seconds)
        except ACTOR_DEATH as e:
            try:
                self._check_alive()
                died = ComponentDied("learner", e)
            except ComponentDied as found:
                died = found
            self._roll_back(died)
            return self.committed.generation if self.committed else ""
        self.rollbacks_in_a_row = 0
        return generation

    def _maybe_kill(self) -> None:
        """Fault drill: kill the next component in `CHAOS_TARGETS` order when due."""
        every = self.cfg.run.chaos_kill_every_updates
        if every is None or self.updates_seen < every * (self.chaos_kills + 1):
            return
        target = CHAOS_TARGETS[self.chaos_kills % len(CHAOS_TARGETS)]
        self.chaos_kills += 1
        row = {"killed": target}
        if target == "worker":
            i = int(np.random.default_rng(self.chaos_kills).integers(len(self.workers)))
            ray.kill(self.workers[i], no_restart=False)  # Ray re-creates it; its call in flight fails
            row["killed_worker"] = i
        elif target == "buffer":
            ray.kill(self.buffer_actor, no_restart=True)
        else:  # one rank of the learner group
            rank = int(np.random.default_rng(self.chaos_kills).integers(len(self.learner.ranks)))
            ray.kill(self.learner.ranks[rank], no_restart=True)
            row["killed_rank"] = rank
        self.log.write("chaos", row, step=self.counters["updates"])

    # -- weights, state, end -------------------------------------------------------------
    def versions(self) -> tuple[int, int]:
        return ray.get(self.store.current_version.remote()), self.worker_version

    def current_weights(self):
        version, ref = ray.get(self.store.newest.remote(-1))
        return version, ray.get(ref[0])

    def snapshot_learner(self, directory, generation: str) -> tuple[int, int, dict]:
        return ray.get(self.learner.leader.snapshot.remote(str(directory), generation))

    def buffer_state(self) -> dict:
        return ray.get(self.buffer_actor.checkpoint_state.remote())

    def _drain(self) -> bool:
        """Let the learners' current calls finish and count them (before the last checkpoint)."""
        try:
            while self.learner_calls:
                ready, _ = ray.wait(list(self.learner_calls), num_returns=1)
                self._finish_learner_call(ready[0])
        except ComponentDied as died:  # the run rolls back and trains on to its end
            self._roll_back(died)
            return False
        pushes = ray.get(self.learner.leader.publish_stats.remote())
        self.learner_placement["publishes"] = len(pushes)
        self.learner_placement["publish_p50_s"] = float(np.median(pushes)) if pushes else None
        return True

    def close(self) -> None:
        for ref in list(self.inflight):
            try:
                ray.cancel(ref)  # force=True is not allowed for actor tasks
            except Exception:  # noqa: BLE001 - the task may have finished or its actor died
                pass
