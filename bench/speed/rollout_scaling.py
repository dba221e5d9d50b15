"""Rollout throughput with 1 vs N Ray rollout workers on one machine.

Each worker is an actor holding its own policy (CPU preset, one torch thread) and
`--envs` env copies; all sample episodes for `--seconds`, with no learner running,
so the figure is rollout capacity alone. Reports env steps/s and decisions/s per
configuration (median of `--repeats` windows, with min-max) and the ratio to 1 worker.

    python bench/speed/rollout_scaling.py --workers 1 2 --seconds 60
"""

from __future__ import annotations

import argparse
import statistics
import time

import ray


@ray.remote(num_cpus=1)
class ScalingWorker:
    def __init__(self, worker_id: int, model: str, num_envs: int, checkpoint: str | None, preset: str = "cpu",
                 device: str = "cpu"):
        import torch

        from cluster.config import load_config
        from envs.generate import default_catalog
        from policies.checkpoint import load_checkpoint
        from policies.policy import Policy, preset_config
        from rollout_workers.worker import RolloutWorker, WorkerConfig

        torch.set_num_threads(1)
        policy = (load_checkpoint(checkpoint, device=device) if checkpoint
                  else Policy(preset_config(preset, model=model, device=device)))
        self.worker = RolloutWorker(worker_id, default_catalog(), policy,
                                    WorkerConfig(num_envs=num_envs, pair_mode="none"), seed=worker_id)
        self.worker.sample(num_envs)  # warm the action cache and the allocator
        # rounds as a run's worker makes them: every env copy starts an episode
        self.round = load_config(None, {"worker": {"num_envs": num_envs}}).round_episodes

    def run(self, seconds: float) -> tuple[int, float]:
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            steps += self.worker.sample(self.round).env_steps
        return steps, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--envs", type=int, default=8, help="env copies per worker")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of one measured window")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--checkpoint", default=None, help="act with this checkpoint instead of fresh weights")
    args = ap.parse_args(argv)

    ray.init(address="local", num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False)
    base = None
    print(f"{'workers':>7} | {'env steps/s (median [min-max])':>32} | ratio to 1 worker")
    for n in args.workers:
        actors = [ScalingWorker.remote(i, args.model, args.envs, args.checkpoint) for i in range(n)]
        rates = []
        for _ in range(args.repeats):
            results = ray.get([a.run.remote(args.seconds) for a in actors])
            rates.append(sum(s for s, _ in results) / max(t for _, t in results))
        med = statistics.median(rates)
        base = base or med
        print(f"{n:>7} | {med:>12.1f} [{min(rates):.1f}-{max(rates):.1f}]{'':>9} | {med / base:.2f}x", flush=True)
        for a in actors:
            ray.kill(a)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
