"""The RL phase of a run, in one process (`LocalLoop`) or on Ray (`RayLoop`).

Both share the driver-side duties (`_LoopBase`): periodic evaluation on the eval
split, timed checkpoints (policy checkpoint + learner state + worker goal cursors,
so `--resume` continues exactly), metrics and the progress line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cluster.eval.evaluate import evaluate_policy
from cluster.train_helpers import build_learner, load_policy
from policies.checkpoint import CheckpointMetadata, read_metadata, save_checkpoint
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from rollout_workers.worker import RolloutWorker

RUN_STATE = "run_state.json"
BEST_DIR = "best"


def better_eval(new: dict, best: dict | None) -> bool:
    """Whether eval result `new` is at least as good as `best`: higher success, then
    higher score; on a tie the later one (more training) wins."""
    return best is None or (new["success_rate"], new["score"]) >= (best["success_rate"], best["score"])


class _LoopBase:
    def __init__(self, cfg, catalog, il_path: str, device: str, out: Path, log):
        self.cfg, self.catalog, self.il_path, self.device, self.out, self.log = cfg, catalog, il_path, device, out, log
        self.counters = {"env_steps": 0, "episodes": 0, "pairs": 0, "updates": 0, "rl_seconds": 0.0,
                         "successes": 0}
        self.worker_states: dict[str, dict] = {}
        self.recent_success: list[float] = []  # success rate of the last 20 rounds
        self.last_eval: dict | None = None
        self.learner_placement: dict = {}  # device and GPU ids of the learner's model, set by _start
        self.best: dict | None = None  # the best periodic evaluation so far (keep_best), as saved in OUT/best
        if (out / BEST_DIR / "metadata.json").exists():  # a resumed run: the checkpoint on disk is the truth
            self.best = read_metadata(out / BEST_DIR).metrics["eval"]
        state_path = out / RUN_STATE
        if state_path.exists():
            saved = json.loads(state_path.read_text())
            self.counters.update(saved["counters"])
            self.worker_states = saved["workers"]

    # -- shared duties -----------------------------------------------------------------
    def _done(self, start: float) -> bool:
        run = self.cfg.run
        elapsed = self.counters["rl_seconds"] + time.perf_counter() - start
        return elapsed >= run.time_budget_s or (run.updates is not None and self.counters["updates"] >= run.updates)

    def _record_round(self, r: dict) -> None:
        c = self.counters
        c["env_steps"] += r["env_steps"]
        c["episodes"] += r["episodes"]
        c["pairs"] += r["pairs"]
        c["successes"] += r["success"]
        self.recent_success = (self.recent_success + [r["success"] / max(r["episodes"], 1)])[-20:]
        self.worker_states[str(r["worker_id"])] = r["state"]
        self.log.write("rollout", {k: v for k, v in r.items() if k != "state"}, step=c["updates"])

    def _progress(self, progress, version: int, worker_version: int) -> None:
        rs = self.recent_success
        progress.show({
            "env_steps": self.counters["env_steps"], "pairs": self.counters["pairs"],
            "updates": self.counters["updates"], "version": version, "lag": max(0, version - worker_version),
            "recent_success": sum(rs) / len(rs) if rs else 0.0,
            "eval": f"{100 * self.last_eval['success_rate']:.1f}%" if self.last_eval else "-",
        })

    def _maybe_eval(self, evaluator, eval_ids, timers: dict, force: bool = False) -> None:
        now = time.perf_counter()
        if not eval_ids or (not force and now - timers["eval"] < self.cfg.run.eval_interval_s):
            return
        timers["eval"] = now
        version, weights = self.current_weights()
        evaluator.set_weights(weights, version=version)
        self.last_eval = evaluate_policy(evaluator, self.catalog, eval_ids)
        self.log.write("eval", self.last_eval, step=self.counters["updates"])
        if self.cfg.run.keep_best and better_eval(self.last_eval, self.best):
            self.best = dict(self.last_eval, step=self.counters["updates"])
            self.save_checkpoint(evaluator, metrics={"eval": self.best}, directory=self.out / BEST_DIR)

    def _maybe_checkpoint(self, evaluator, timers: dict, start: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - timers["ckpt"] < self.cfg.run.checkpoint_interval_s:
            return
        timers["ckpt"] = now
        version, weights = self.current_weights()
        evaluator.set_weights(weights, version=version)
        self.save_checkpoint(evaluator)
        self.save_learner_state()
        counters = dict(self.counters, rl_seconds=self.counters["rl_seconds"] + now - start)
        tmp = self.out / (RUN_STATE + ".tmp")
        tmp.write_text(json.dumps({"counters": counters, "workers": self.worker_states}, indent=2))
        tmp.replace(self.out / RUN_STATE)

    def save_checkpoint(self, policy, final: bool = False, metrics: dict | None = None,
                        directory: Path | None = None, steps: int | None = None) -> Path:
        steps = self.counters["updates"] if steps is None else steps
        meta = CheckpointMetadata(version=policy.version, steps=steps,
                                  metrics=metrics or {}, train_config=self.cfg.to_dict())
        return save_checkpoint(policy, directory or self.out / "checkpoint", meta)

    def run(self, evaluator, eval_ids) -> dict:
        from cluster.train import Progress

        self._start()  # actors and models ready before the budget starts
        self.log.write("placement", self.learner_placement, step=self.counters["updates"])
        start = time.perf_counter()
        progress = Progress(self.cfg.run.time_budget_s - self.counters["rl_seconds"])
        timers = {"eval": start, "ckpt": start, "sync": start}
        while not self._done(start):
            self._step(timers)
            version, worker_version = self.versions()
            self._progress(progress, version, worker_version)
            self._maybe_eval(evaluator, eval_ids, timers)
            self._maybe_checkpoint(evaluator, timers, start)
        self._drain()
        if self.cfg.run.keep_best:  # the last weights compete with the periodic ones
            self._maybe_eval(evaluator, eval_ids, timers, force=True)
        self._maybe_checkpoint(evaluator, timers, start, force=True)
        self.counters["rl_seconds"] += time.perf_counter() - start
        return {**self.counters, "seconds": self.counters["rl_seconds"], "learner": self.learner_placement}


class LocalLoop(_LoopBase):
    """Worker, buffer and learner as plain objects in this process."""

    def _start(self) -> None:
        cfg = self.cfg
        policy = load_policy(self.il_path, self.device)
        self.learner = build_learner(cfg, policy, load_policy(self.il_path, self.device))
        if (self.out / "learner" / "learner.json").exists():
            self.learner.load(self.out / "learner")
        self.counters["updates"] = self.learner.num_updates
        self.learner_placement = {"device": str(next(policy.model.parameters()).device), "gpu_ids": ""}
        acting = load_policy(self.il_path, "cpu")
        self.worker = RolloutWorker(0, self.catalog, acting, cfg.worker, seed=cfg.run.seed)
        if "0" in self.worker_states:
            self.worker.load_state(self.worker_states["0"])
        version, weights = self.learner.publish()
        self.worker.set_weights(version, weights)
        self.buffer = ArrowBuffer(self.out / "buffer", cfg.buffer, seed=cfg.run.seed)

    def _step(self, timers: dict) -> None:
        batch = self.worker.sample(self.cfg.run.episodes_per_round)
        n_t = self.buffer.add_trajectories(trajectories_to_batch(batch.trajectories))
        n_p = self.buffer.add_pairs(pairs_to_batch(batch.pairs)) if batch.pairs else 0
        self._record_round({"worker_id": 0, "episodes": len(batch.trajectories), "acked": n_t, "pairs": n_p,
                            "env_steps": batch.env_steps, "seconds": batch.seconds, "version": batch.policy_version,
                            "success": sum(t.score >= 1.0 for t in batch.trajectories),
                            "score_sum": sum(t.score for t in batch.trajectories), "state": self.worker.state()})
        m = self.learner.update(self.buffer)
        if m is not None:
            self.counters["updates"] += 1
            self.log.write("learner", m, step=self.counters["updates"])
        if time.perf_counter() - timers["sync"] >= self.cfg.run.sync_interval_s:
            timers["sync"] = time.perf_counter()
            version, weights = self.learner.publish()
            self.worker.set_weights(version, weights)

    def versions(self) -> tuple[int, int]:
        return self.learner.version, self.worker.version

    def current_weights(self):
        return self.learner.publish()

    def final_weights(self):
        return self.learner.publish()

    def save_learner_state(self) -> None:
        self.learner.save(self.out / "learner")

    def _drain(self) -> None:
        pass

    def close(self) -> None:
        pass


class RayLoop(_LoopBase):
    """Worker actors, a buffer actor, a weight store and a learner actor on Ray."""

    def _start(self) -> None:
        from cluster.ray_loop import start_actors

        start_actors(self)

    def _step(self, timers: dict) -> None:
        from cluster.ray_loop import step

        step(self, timers)

    def versions(self) -> tuple[int, int]:
        from cluster.ray_loop import versions

        return versions(self)

    def current_weights(self):
        from cluster.ray_loop import current_weights

        return current_weights(self)

    final_weights = current_weights

    def _drain(self) -> None:
        from cluster.ray_loop import drain

        drain(self)

    def save_learner_state(self) -> None:
        import ray

        ray.get(self.learner.save.remote(str(self.out / "learner")))

    def close(self) -> None:
        from cluster.ray_loop import shutdown

        shutdown(self)
