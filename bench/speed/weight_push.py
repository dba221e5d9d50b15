"""Weight push from the learner to rollout workers through the Ray object store.

    python bench/speed/weight_push.py [--workers 2] [--pushes 15]

A learner-side policy publishes `(version, weights)` to the weight store (one
`ray.put` of a dict of numpy arrays); each worker actor polls the store, fetches
the arrays zero-copy and copies them into its own model. Timed per push until every
worker holds the new version: full state dict (the GPU `full` preset) and the CPU
preset's trainable-only tensors. Baseline in the same run: the same dict passed by
value to each worker. Prints median [min-max] and the version lag seen by workers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ray  # noqa: E402

from cluster.actors import WeightStore  # noqa: E402


@ray.remote(num_cpus=0)
class Holder:
    def __init__(self, preset: str):
        import torch

        from policies.policy import Policy, preset_config

        torch.set_num_threads(1)
        self.policy = Policy(preset_config(preset))

    def pull(self, store, have: int) -> int:
        found = ray.get(store.newest.remote(have))
        if found is None:
            return have
        version, ref = found
        self.policy.set_weights(ray.get(ref[0]), version=version)
        return version

    def take(self, version: int, weights: dict) -> int:
        self.policy.set_weights(weights, version=version)
        return version


def spread(xs) -> str:
    return f"{1e3 * statistics.median(xs):.1f} ms [{1e3 * min(xs):.1f}-{1e3 * max(xs):.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pushes", type=int, default=15)
    args = ap.parse_args()
    ray.init(address="local", num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    from policies.policy import Policy, preset_config

    for preset, trainable_only in [("cpu", True), ("full", False)]:
        learner = Policy(preset_config(preset))
        weights = learner.get_weights(trainable_only=trainable_only)
        mb = sum(a.nbytes for a in weights.values()) / 2**20
        store = WeightStore.remote()
        holders = [Holder.remote(preset) for _ in range(args.workers)]
        ray.get([h.pull.remote(store, 0) for h in holders])
        times, by_value, lags = [], [], []
        for v in range(1, args.pushes + 1):
            t0 = time.perf_counter()
            ray.get(store.publish.remote(v, [ray.put(weights)]))
            got = ray.get([h.pull.remote(store, v - 1) for h in holders])
            times.append(time.perf_counter() - t0)
            lags.append(max(v - g for g in got))
            t0 = time.perf_counter()
            ray.get([h.take.remote(v, weights) for h in holders])
            by_value.append(time.perf_counter() - t0)
        print(f"{preset:>4} preset, {'trainable-only' if trainable_only else 'full state dict'} "
              f"({mb:.1f} MiB) to {args.workers} workers: object store {spread(times)}; "
              f"by value {spread(by_value)} ({statistics.median(by_value) / statistics.median(times):.1f}x); "
              f"max lag after a push: {max(lags)}")
        for h in holders:
            ray.kill(h)
    ray.shutdown()


if __name__ == "__main__":
    main()
