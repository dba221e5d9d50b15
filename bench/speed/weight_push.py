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
    def __init__(self, preset: str, model: str = "default"):
        import torch

        from policies.policy import Policy, preset_config

        torch.set_num_threads(1)
        self.policy = Policy(preset_config(preset, model=model))

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


def measure(preset: str, trainable_only: bool, workers: int, pushes: int, model: str = "default") -> dict:
    """Push `pushes` versions of a `preset` policy's weights to `workers` holders (Ray
    already initialised). Returns MiB pushed, seconds per push through the object store
    and by value, and the largest version lag a worker saw after a push."""
    from policies.policy import Policy, preset_config

    learner = Policy(preset_config(preset, model=model))
    weights = learner.get_weights(trainable_only=trainable_only)
    store = WeightStore.remote()
    holders = [Holder.remote(preset, model) for _ in range(workers)]
    ray.get([h.pull.remote(store, 0) for h in holders])
    times, by_value, lags = [], [], []
    for v in range(1, pushes + 1):
        t0 = time.perf_counter()
        ray.get(store.publish.remote(v, [ray.put(weights)]))
        got = ray.get([h.pull.remote(store, v - 1) for h in holders])
        times.append(time.perf_counter() - t0)
        lags.append(max(v - g for g in got))
        t0 = time.perf_counter()
        ray.get([h.take.remote(v, weights) for h in holders])
        by_value.append(time.perf_counter() - t0)
    for h in holders + [store]:
        ray.kill(h)
    return {"mib": sum(a.nbytes for a in weights.values()) / 2**20, "object_store_s": times,
            "by_value_s": by_value, "max_lag": max(lags)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pushes", type=int, default=15)
    args = ap.parse_args()
    ray.init(address="local", num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    for preset, trainable_only in [("cpu", True), ("full", False)]:
        r = measure(preset, trainable_only, args.workers, args.pushes)
        times, by_value = r["object_store_s"], r["by_value_s"]
        print(f"{preset:>4} preset, {'trainable-only' if trainable_only else 'full state dict'} "
              f"({r['mib']:.1f} MiB) to {args.workers} workers: object store {spread(times)}; "
              f"by value {spread(by_value)} ({statistics.median(by_value) / statistics.median(times):.1f}x); "
              f"max lag after a push: {r['max_lag']}")
    ray.shutdown()


if __name__ == "__main__":
    main()
