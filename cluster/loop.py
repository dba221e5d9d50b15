"""The RL phase of a run: the driver's duties (`DriverLoop`) and the one-process loop
(`LocalLoop`); `cluster.ray_loop.RayLoop` is the same loop over Ray actors.

The driver's duties are the same in both: a round of rollouts and updates (`_step`,
each loop's own), then the progress bar, periodic evaluation on the eval split (the
best one kept in OUT/best with `keep_best`) and timed checkpoints (policy checkpoint +
learner state + worker goal cursors, so `--resume` continues exactly).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cluster.components import build_learner
from cluster.eval.evaluate import evaluate_policy
from cluster.progress import TrainingProgress
from cluster.schedule import Interval
from policies.atomic import write_file_atomic
from policies.checkpoint import CheckpointMetadata, load_checkpoint, read_metadata, save_checkpoint
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from rollout_workers.worker import RolloutWorker, RoundStats

RUN_STATE = "run_state.json"
BEST_DIR = "best"


def better_eval(new: dict, best: dict | None) -> bool:
    """Whether eval result `new` is at least as good as `best`: higher success, then
    higher score; on a tie the later one (more training) wins."""
    return best is None or (new["success_rate"], new["score"]) >= (best["success_rate"], best["score"])


class DriverLoop:
    """What the driver does around the rounds, whatever runs them.

    A subclass provides `_start` (models and actors ready), `_step` (one round: rollouts
    into the buffer, learner updates, weights published when due), `versions`,
    `current_weights`, `save_learner_state`, `_drain` (finish work in flight) and `close`.
    """

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

    # -- what each loop provides ---------------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _step(self) -> None:
        raise NotImplementedError

    def versions(self) -> tuple[int, int]:
        """(the learner's newest published version, the version the workers last acted with)."""
        raise NotImplementedError

    def current_weights(self) -> tuple[int, dict]:
        """`(version, weights)` the learner published last."""
        raise NotImplementedError

    def save_learner_state(self) -> None:
        raise NotImplementedError

    def _drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    # -- shared duties -----------------------------------------------------------------
    def run(self, evaluator, eval_ids) -> dict:
        """Train until the time budget (or `run.updates`) is spent; returns the run's counters."""
        run = self.cfg.run
        self._start()  # actors and models ready before the budget starts
        self.log.write("placement", self.learner_placement, step=self.counters["updates"])
        start = time.perf_counter()
        eval_timer, ckpt_timer = Interval(run.eval_interval_s, start), Interval(run.checkpoint_interval_s, start)
        progress = TrainingProgress(run.algo.upper(), run.time_budget_s - self.counters["rl_seconds"],
                                    run.updates, self.counters)
        try:
            while not self._done(start):
                self._step()
                self._show(progress)
                self._maybe_eval(evaluator, eval_ids, eval_timer)
                self._maybe_checkpoint(evaluator, ckpt_timer, start)
        finally:
            progress.close()
        self._drain()
        if run.keep_best:  # the last weights compete with the periodic ones
            self._maybe_eval(evaluator, eval_ids, eval_timer, force=True)
        self._maybe_checkpoint(evaluator, ckpt_timer, start, force=True)
        self.counters["rl_seconds"] += time.perf_counter() - start
        return {**self.counters, "seconds": self.counters["rl_seconds"], "learner": self.learner_placement}

    def _done(self, start: float) -> bool:
        run = self.cfg.run
        elapsed = self.counters["rl_seconds"] + time.perf_counter() - start
        return elapsed >= run.time_budget_s or (run.updates is not None and self.counters["updates"] >= run.updates)

    def _record_round(self, r: RoundStats) -> None:
        c = self.counters
        c["env_steps"] += r.env_steps
        c["episodes"] += r.episodes
        c["pairs"] += r.pairs
        c["successes"] += r.success
        self.recent_success = (self.recent_success + [r.success / max(r.episodes, 1)])[-20:]
        self.worker_states[str(r.worker_id)] = r.state
        self.log.write("rollout", r.log_row(), step=c["updates"])

    def _record_updates(self, metrics: list[dict]) -> None:
        for m in metrics:
            self.counters["updates"] += 1
            self.log.write("learner", m, step=self.counters["updates"])

    def _show(self, progress: TrainingProgress) -> None:
        version, worker_version = self.versions()
        rs = self.recent_success
        progress.show(self.counters, version, max(0, version - worker_version),
                      sum(rs) / len(rs) if rs else 0.0, self.last_eval)

    def _maybe_eval(self, evaluator, eval_ids, timer: Interval, force: bool = False) -> None:
        now = time.perf_counter()
        if not eval_ids or (not force and not timer.due(now)):
            return
        timer.restart(now)
        version, weights = self.current_weights()
        evaluator.set_weights(weights, version=version)
        self.last_eval = evaluate_policy(evaluator, self.catalog, eval_ids)
        self.log.write("eval", self.last_eval, step=self.counters["updates"])
        if self.cfg.run.keep_best and better_eval(self.last_eval, self.best):
            self.best = dict(self.last_eval, step=self.counters["updates"])
            self.save_checkpoint(evaluator, metrics={"eval": self.best}, directory=self.out / BEST_DIR)

    def _maybe_checkpoint(self, evaluator, timer: Interval, start: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and not timer.due(now):
            return
        timer.restart(now)
        version, weights = self.current_weights()
        evaluator.set_weights(weights, version=version)
        self.save_checkpoint(evaluator)
        self.save_learner_state()
        counters = dict(self.counters, rl_seconds=self.counters["rl_seconds"] + now - start)
        write_file_atomic(self.out / RUN_STATE, json.dumps({"counters": counters, "workers": self.worker_states},
                                                           indent=2))

    def save_checkpoint(self, policy, metrics: dict | None = None, directory: Path | None = None,
                        steps: int | None = None) -> Path:
        """`policy` as a checkpoint of this run (OUT/checkpoint unless `directory`)."""
        steps = self.counters["updates"] if steps is None else steps
        meta = CheckpointMetadata(version=policy.version, steps=steps,
                                  metrics=metrics or {}, train_config=self.cfg.to_dict())
        return save_checkpoint(policy, directory or self.out / "checkpoint", meta)


class LocalLoop(DriverLoop):
    """Worker, buffer and learner as plain objects in this process (`--num-workers 0`)."""

    def _start(self) -> None:
        cfg = self.cfg
        policy = load_checkpoint(self.il_path, device=self.device)
        self.learner = build_learner(cfg, policy, load_checkpoint(self.il_path, device=self.device))
        if (self.out / "learner" / "learner.json").exists():
            self.learner.load(self.out / "learner")
        self.counters["updates"] = self.learner.num_updates
        self.learner_placement = {"device": str(next(policy.model.parameters()).device), "gpu_ids": ""}
        acting = load_checkpoint(self.il_path, device="cpu")
        self.worker = RolloutWorker(0, self.catalog, acting, cfg.worker, seed=cfg.run.seed)
        if "0" in self.worker_states:
            self.worker.load_state(self.worker_states["0"])
        self.publish_schedule = Interval(cfg.run.sync_interval_s)
        self._publish()
        self.buffer = ArrowBuffer(self.out / "buffer", cfg.buffer, seed=cfg.run.seed)

    def _publish(self) -> None:
        version, weights = self.learner.publish()
        self.worker.set_weights(version, weights)
        self.publish_schedule.restart()  # the period counts from the end of a publish

    def _step(self) -> None:
        batch = self.worker.sample(self.cfg.run.episodes_per_round)
        n_t = self.buffer.add_trajectories(trajectories_to_batch(batch.trajectories))
        n_p = self.buffer.add_pairs(pairs_to_batch(batch.pairs)) if batch.pairs else 0
        self._record_round(batch.stats(n_t, n_p))
        m = self.learner.update(self.buffer)
        if m is not None:
            self._record_updates([m])
        if self.publish_schedule.due():
            self._publish()

    def versions(self) -> tuple[int, int]:
        return self.learner.version, self.worker.version

    def current_weights(self):
        return self.learner.publish()

    def save_learner_state(self) -> None:
        self.learner.save(self.out / "learner")
