"""The RL phase of a run: the driver's duties (`DriverLoop`) and the one-process loop
(`LocalLoop`); `cluster.ray_loop.RayLoop` is the same loop over Ray actors.

The driver's duties are the same in both: a round of rollouts and updates (`_step`,
each loop's own), then the progress bar, periodic evaluation on the eval split (the
best one kept in OUT/best with `keep_best`) and timed checkpoint generations
(`cluster.run_state`: policy, learner state, worker cursors and RNGs, the buffer's
high-water mark and RNG, best/, committed as one), from which `--resume` continues.
In one process a resume repeats the lost stretch bit for bit.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cluster.components import build_learner, share_encodings
from cluster.eval.evaluate import evaluate_policy
from cluster.progress import TrainingProgress
from cluster.run_state import RUN_ID_FILE, commit_generation, link_directory, load_committed
from cluster.schedule import Interval
from policies.atomic import resolve_directory
from policies.checkpoint import CheckpointMetadata, check_generation, load_checkpoint, save_checkpoint
from rollout_workers.buffer import ArrowBuffer, nothing_committed
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from rollout_workers.worker import RolloutWorker, RoundStats

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
        self.run_id = (out / RUN_ID_FILE).read_text().strip()
        self.learner_placement: dict = {}  # device and GPU ids of the learner's model, set by _start
        self.restore()

    def restore(self) -> None:
        """The driver's state as the run's committed generation has it (a fresh run's
        when there is none); OUT/best is put back to that generation's."""
        self.committed = load_committed(self.out)
        record = self.committed.record if self.committed else {}
        self.counters = {"env_steps": 0, "episodes": 0, "pairs": 0, "updates": 0, "rl_seconds": 0.0,
                         "successes": 0, **record.get("counters", {})}
        self.worker_states: dict[str, dict] = dict(record.get("workers", {}))
        self.buffer_commit = record.get("buffer") or nothing_committed(self.cfg.run.seed)
        self.recent_success: list[float] = []  # success rate of the last 20 rounds
        self.last_eval: dict | None = None
        best = record.get("best")
        self.best: dict | None = best["eval"] if best else None  # the best periodic evaluation (keep_best)
        target = resolve_directory(self.out / BEST_DIR)
        if best is None and target.exists():  # written after the commit: found again by the replay
            shutil.rmtree(target)
        elif best is not None and (not target.exists() or check_generation(target) != best["generation"]):
            link_directory(self.committed.best_dir, self.out / BEST_DIR)

    @property
    def learner_state_dir(self) -> str | None:
        """The committed learner state to start the learner from (None: the IL weights)."""
        return str(self.committed.learner_dir) if self.committed else None

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

    def snapshot_learner(self, directory: Path, generation: str) -> tuple[int, int, dict]:
        """Save the learner's state into `directory` as `generation`; returns
        `(version, num_updates, weights)` of that same state."""
        raise NotImplementedError

    def buffer_state(self) -> dict:
        """The buffer's `checkpoint_state()`."""
        raise NotImplementedError

    def _drain(self) -> bool:
        """Finish work in flight before the last evaluation and commit; False when that
        rolled the run back (training goes on)."""
        return True

    def close(self) -> None:
        pass

    # -- shared duties -----------------------------------------------------------------
    def run(self, evaluator, eval_ids) -> dict:
        """Train until `run.updates` or the time budget is spent; returns the run's counters."""
        run = self.cfg.run
        self._start()  # actors and models ready before the budget starts
        self.log.write("placement", self.learner_placement, step=self.counters["updates"])
        self.rollback_clock()
        eval_timer = Interval(run.eval_interval_s, self.clock_start)
        ckpt_timer = Interval(run.checkpoint_interval_s, self.clock_start)
        left = None if run.time_budget_s is None else run.time_budget_s - self.counters["rl_seconds"]
        progress = TrainingProgress(run.algo.upper(), left, run.updates, self.counters)
        try:
            while True:
                while not self._done():
                    self._step()
                    self._show(progress)
                    self._maybe_eval(evaluator, eval_ids, eval_timer)
                    self._maybe_checkpoint(evaluator, ckpt_timer)
                if self._drain():
                    break
        finally:
            progress.close()
        if run.keep_best:  # the last weights compete with the periodic ones
            self._maybe_eval(evaluator, eval_ids, eval_timer, force=True)
        self._maybe_checkpoint(evaluator, ckpt_timer, force=True)
        self.counters["rl_seconds"] = self.elapsed()
        return {**self.counters, "seconds": self.counters["rl_seconds"], "learner": self.learner_placement}

    def rollback_clock(self) -> None:
        """Count the budget from now on top of the restored `rl_seconds` (at the start and
        after a rollback: time lost since the generation is not counted, as on --resume)."""
        self.clock_start = time.perf_counter()

    def elapsed(self) -> float:
        """RL seconds of the run so far, earlier sessions included."""
        return self.counters["rl_seconds"] + time.perf_counter() - self.clock_start

    def _done(self) -> bool:
        run = self.cfg.run
        return ((run.time_budget_s is not None and self.elapsed() >= run.time_budget_s)
                or (run.updates is not None and self.counters["updates"] >= run.updates))

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

    def _maybe_checkpoint(self, evaluator, timer: Interval, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and not timer.due(now):
            return
        timer.restart(now)
        self.commit(evaluator, rl_seconds=self.elapsed())

    def commit(self, evaluator, rl_seconds: float) -> str:
        """Write and commit one checkpoint generation of the run; refresh OUT/checkpoint."""
        def parts(directory: Path, generation: str) -> dict:
            version, updates, weights = self.snapshot_learner(directory / "learner", generation)
            evaluator.set_weights(weights, version=version)
            self.save_checkpoint(evaluator, directory=directory / "policy", steps=updates, generation=generation)
            best = None
            if self.best is not None:
                link_directory(resolve_directory(self.out / BEST_DIR), directory / "best")
                best = {"eval": self.best, "generation": check_generation(directory / "best")}
            counters = dict(self.counters, updates=updates, rl_seconds=rl_seconds)
            return {"counters": counters, "workers": self.worker_states, "buffer": self.buffer_state(), "best": best}

        self.committed = commit_generation(self.out, parts)
        link_directory(self.committed.policy_dir, self.out / "checkpoint")
        return self.committed.generation

    def save_checkpoint(self, policy, metrics: dict | None = None, directory: Path | None = None,
                        steps: int | None = None, generation: str | None = None) -> Path:
        """`policy` as a checkpoint of this run (OUT/checkpoint unless `directory`)."""
        steps = self.counters["updates"] if steps is None else steps
        meta = CheckpointMetadata(version=policy.version, steps=steps,
                                  metrics=metrics or {}, train_config=self.cfg.to_dict())
        return save_checkpoint(policy, directory or self.out / "checkpoint", meta, generation=generation)


class LocalLoop(DriverLoop):
    """Worker, buffer and learner as plain objects in this process (`--num-workers 0`).

    The worker takes the learner's weights after every update (a copy in memory), and
    policies fill their caches canonically (`policies.encoding_store.encode_canonical`), so
    nothing here depends on the clock or on what was cached before: a run is a function
    of its config and seed, and a resume from a checkpoint generation repeats the lost
    stretch bit for bit."""

    def _start(self) -> None:
        cfg = self.cfg
        policy = load_checkpoint(self.il_path, device=self.device)
        reference = load_checkpoint(self.il_path, device=self.device)
        self.learner = build_learner(cfg, policy, reference)
        if self.learner_state_dir:
            self.learner.load(self.learner_state_dir)
        self.counters["updates"] = self.learner.num_updates
        self.learner_placement = {"device": str(next(policy.model.parameters()).device), "gpu_ids": ""}
        acting = load_checkpoint(self.il_path, device="cpu")
        share_encodings(cfg.policy, policy, reference, acting)
        self.worker = RolloutWorker(0, self.catalog, acting, cfg.worker, seed=cfg.run.seed, run_id=self.run_id)
        if "0" in self.worker_states:
            self.worker.load_state(self.worker_states["0"])
        self._publish()
        self.buffer = ArrowBuffer(self.out / "buffer", cfg.buffer, seed=cfg.run.seed, committed=self.buffer_commit)

    def _publish(self) -> None:
        version, weights = self.learner.publish()
        self.worker.set_weights(version, weights)

    def _step(self) -> None:
        batch = self.worker.sample(self.cfg.round_episodes)
        n_t = self.buffer.add_trajectories(trajectories_to_batch(batch.trajectories))
        n_p = self.buffer.add_pairs(pairs_to_batch(batch.pairs)) if batch.pairs else 0
        self._record_round(batch.stats(n_t, n_p))
        m = self.learner.update(self.buffer)
        if m is not None:
            self._record_updates([m])
            self._publish()

    def versions(self) -> tuple[int, int]:
        return self.learner.version, self.worker.version

    def current_weights(self):
        return self.learner.publish()

    def snapshot_learner(self, directory: Path, generation: str) -> tuple[int, int, dict]:
        return self.learner.snapshot(directory, generation)

    def buffer_state(self) -> dict:
        return self.buffer.checkpoint_state()

    def close(self) -> None:
        if getattr(self, "buffer", None) is not None:
            self.buffer.close()
