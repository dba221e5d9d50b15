"""One GPU check: the figures issue 27 asks of a GPU node, in one run of at most 8 minutes.

    python bench/gpu_check.py [--bert-base LOCAL_DIR] [--json OUT.json]
    python bench/gpu_check.py --smoke      # any machine, CPU-only ones too: tiny sizes, seconds

After the device, the CPU capability, the core count and the versions, it prints:
  1. acting on the GPU: decisions/s of `Policy.act` (full preset, bf16 where native) for
     8 and 64 envs x 12 candidates, new products every call (bench/speed/common.py's
     batches), for MiniLM-L6 and BERT-base; then one `RolloutWorker` with 64 envs acting
     on the GPU (its envs step on one core), which also collects the learner's data;
  1b. for MiniLM-L6, the encoders' attention kernels as shipped against cuDNN's first (what
     torch picks on a Hopper GPU): act calls on new and repeated shapes, DPO updates;
  2. the learner on the GPU: DPO updates/s (8 pairs per update, the issue's goal; scope
     and anchor states as gpu.yaml ships) and PPO samples (policy steps)/s of the real
     `Learner`, built and timed by bench/speed/learner_updates.py from gpu.yaml, on the
     pairs and trajectories just collected, for MiniLM-L6 and BERT-base; and DPO updates/s
     when the learner selects each batch from a buffer, in line and prefetched;
  3. env steps/s with all the node's cores: one Ray rollout worker per core acting on
     the CPU (bench/speed/rollout_scaling.py: CPU-preset MiniLM, one thread, 8 envs);
     the same workers acting on the GPU, an equal share each (`policy.worker_gpu_share`:
     full preset, 32 envs each); and the env alone (random agent, one core:
     bench/speed/env_throughput.py);
  4. weight push p50: the GPU learner's weights to the host (`get_weights`), and through
     the object store to 8 workers (bench/speed/weight_push.py), full and cpu presets.
BERT-base is the local copy given by --bert-base, else BERT-base-shaped random weights
(the output says which; speed does not depend on the weights' values). Without a GPU the
script stops with one line (exit 2) unless --smoke: that runs every part at tiny sizes on
the CPU (tiny BERTs stand in for both encoders) and ends by saying that no GPU was
present, so that nothing it printed is taken for a GPU figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "speed")]

import attention_kernels  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402
from common import sync  # noqa: E402

NUM_CANDIDATES = 12


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of each part runs."""

    model: str  # the MiniLM slot: "default" (MiniLM-L6) or "tiny"
    bert_shape: dict  # BertConfig fields of the random BERT-base stand-in ({} = BERT-base)
    act_envs: tuple[int, ...]  # batch sizes of the acting figure
    act_calls: int  # timed calls per batch size
    collect_envs: int  # envs of the GPU-acting worker that collects the learner's data
    collect_episodes: int
    pairs_per_update: int
    ppo: dict  # overrides of gpu.yaml's ppo section ({} = as it ships)
    warmup: int  # untimed learner updates
    updates: int  # timed learner updates
    workers: int  # Ray rollout workers (one per core)
    window_s: float  # one measured rollout window
    windows: int
    envs_per_worker: int
    gpu_envs_per_worker: int  # envs of each worker acting on a GPU share
    push_workers: int
    pushes: int


def full_sizes() -> Sizes:
    return Sizes(model="default", bert_shape={}, act_envs=(8, 64), act_calls=10, collect_envs=64,
                 collect_episodes=128, pairs_per_update=8, ppo={}, warmup=2, updates=10, workers=os.cpu_count() or 1,
                 window_s=20.0, windows=2, envs_per_worker=8, gpu_envs_per_worker=32, push_workers=8, pushes=15)


SMOKE = Sizes(model="tiny", bert_shape={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                        "intermediate_size": 64},
              act_envs=(2,), act_calls=2, collect_envs=4, collect_episodes=4, pairs_per_update=2,
              ppo={"trajectories_per_update": 2, "ppo_epochs": 1}, warmup=1,
              updates=2, workers=2, window_s=1.0, windows=1, envs_per_worker=2, gpu_envs_per_worker=2, push_workers=1,
              pushes=2)



def header(device: str, smoke: bool) -> dict:
    import ray
    import transformers

    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU only (no GPU)",
            "cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "transformers": transformers.__version__, "ray": ray.__version__,
            "mode": "smoke (tiny sizes)" if smoke else "full"}
    print("# gpu_check " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    return info


def encoders(device: str, sizes: Sizes, bert_base: str | None, smoke: bool) -> dict:
    """Label -> a function building a full-preset policy on `device`."""
    from common import BERT_BASE_LABEL, random_bert_policy

    from policies.policy import Policy, preset_config

    config = preset_config("full", device=device, model=sizes.model)
    if bert_base:
        bert = ("BERT-base " + bert_base, lambda: Policy(dataclasses.replace(config, model=bert_base)))
    else:
        label = "BERT-shaped tiny stand-in, random weights" if smoke else BERT_BASE_LABEL
        bert = (label, lambda: random_bert_policy(preset_config("full", device=device), **sizes.bert_shape))
    minilm = "tiny BERT (stand-in for MiniLM-L6)" if smoke else "MiniLM-L6"
    return {minilm: lambda: Policy(config), bert[0]: bert[1]}


def acting(policy, device: str, sizes: Sizes) -> dict:
    """Decisions/s of batched `act` calls, new products every call."""
    from common import batch, spread

    out = {}
    for n in sizes.act_envs:
        policy.act(*batch(10_000 + n, n, NUM_CANDIDATES))  # warm-up: the common buttons cached
        rates = []
        for r in range(sizes.act_calls):
            states, cands = batch(1000 * n + r, n, NUM_CANDIDATES)
            sync(device)
            t0 = time.perf_counter()
            policy.act(states, cands)
            sync(device)
            rates.append(n / (time.perf_counter() - t0))
        out[n] = rates
        print(f"    act, {n:3d} envs x {NUM_CANDIDATES} candidates: decisions/s {spread(rates)}", flush=True)
    return out


def collect(policy, device: str, sizes: Sizes):
    """A worker acting on `device` plays episodes: its env steps/s, its pairs and trajectories."""
    from envs.generate import default_catalog
    from rollout_workers.schema import pairs_to_batch
    from rollout_workers.worker import RolloutWorker, WorkerConfig

    worker = RolloutWorker(0, default_catalog(), policy, WorkerConfig(num_envs=sizes.collect_envs), seed=0)
    got = worker.sample(sizes.collect_episodes)
    trajs = [t for t in got.trajectories if t.source == "policy" and t.num_steps]
    rate = got.env_steps / got.seconds
    print(f"    RolloutWorker, {sizes.collect_envs} envs acting on {device}: env steps/s {rate:.4g} "
          f"({got.env_steps} steps; {len(got.pairs)} pairs, {len(trajs)} policy trajectories for the learner)",
          flush=True)
    if not got.pairs or not trajs:
        raise SystemExit("gpu_check: the collecting worker found no pairs or no policy trajectories")
    return rate, pa.Table.from_batches([pairs_to_batch(got.pairs)]), trajs


def learning(checkpoint: str, device: str, sizes: Sizes, pairs, trajs) -> dict:
    """DPO and PPO updates of the real Learner (gpu.yaml's sections) from a checkpoint."""
    import learner_updates
    from common import spread

    from cluster.config import CONFIG_DIR, load_config

    scope = load_config(CONFIG_DIR / "gpu.yaml").dpo.scope
    out = {}
    for algo in ("dpo", "ppo"):
        learner = learner_updates.build(checkpoint, device, "full", algo, scope,
                                        {"dpo": {"pairs_per_update": sizes.pairs_per_update}, "ppo": sizes.ppo})
        secs, items = learner_updates.time_updates(learner, algo, pairs, trajs, sizes.warmup, sizes.updates, device)
        rates = [n / s for n, s in zip(items, secs)]
        what = f"pairs/s (scope {scope}, {sizes.pairs_per_update} pairs per update)" if algo == "dpo" else \
            f"samples (steps)/s ({learner.algorithm.config.trajectories_per_update} trajectories x " \
            f"{learner.algorithm.config.ppo_epochs} epochs per update)"
        print(f"    {algo.upper()}: updates/s {1 / statistics.median(secs):.3g} (s/update {spread(secs)} over "
              f"{len(secs)} updates), {what} {spread(rates)}", flush=True)
        out[algo] = {"s_per_update": secs, "items_per_s": rates}
        del learner
    return out


def selecting(checkpoint: str, device: str, sizes: Sizes, pairs, trajs, tmp: Path) -> dict:
    """DPO updates/s when the learner selects every batch from a buffer (an in-process Arrow
    buffer holding the collected pairs and trajectories), one after the other and with the
    next batch selected while one trains (`learner.prefetch`, what a CUDA learner runs)."""
    import learner_updates

    from cluster.config import CONFIG_DIR, load_config
    from learner.prefetch import Prefetcher
    from rollout_workers.buffer import ArrowBuffer
    from rollout_workers.schema import trajectories_to_batch

    scope = load_config(CONFIG_DIR / "gpu.yaml").dpo.scope
    rates = {}
    for mode in ("in line", "prefetched"):
        buffer = ArrowBuffer(tmp / f"buffer-{mode.replace(' ', '-')}")
        buffer.add_pairs(pairs)
        buffer.add_trajectories(trajectories_to_batch(trajs))
        learner = learner_updates.build(checkpoint, device, "full", "dpo", scope, {"dpo": {
            "pairs_per_update": sizes.pairs_per_update, "max_version_lag": 10**6}})  # every collected pair stays usable
        step = Prefetcher(learner, buffer).update if mode == "prefetched" else (lambda: learner.update(buffer))
        for _ in range(sizes.warmup):
            step()
        sync(device)
        start = time.perf_counter()
        if any(step() is None for _ in range(sizes.updates)):
            raise SystemExit("gpu_check: the buffer ran out of pairs")
        sync(device)
        rates[mode] = sizes.updates / (time.perf_counter() - start)
    print(f"    selecting from a buffer (in-process): DPO updates/s {rates['in line']:.3g} in line, "
          f"{rates['prefetched']:.3g} with the next batch prefetched (x{rates['prefetched'] / rates['in line']:.2f})",
          flush=True)
    return rates


def weights_to_host(policy, device: str, pushes: int) -> list[float]:
    """Seconds of `get_weights()` (the whole state dict to numpy) from the policy on `device`."""
    times = []
    for _ in range(pushes):
        sync(device)
        t0 = time.perf_counter()
        policy.get_weights()
        times.append(time.perf_counter() - t0)
    return times


def rollout_cores(sizes: Sizes, gpu_device: str | None = None) -> list[float]:
    """Env steps/s of one Ray rollout worker per core, acting on the CPU (cpu preset), or
    with `gpu_device` on an equal share of the GPU (full preset, as `policy.worker_gpu_share`
    places a run's workers)."""
    import ray
    import rollout_scaling

    if gpu_device is None:
        actors = [rollout_scaling.ScalingWorker.remote(i, sizes.model, sizes.envs_per_worker, None)
                  for i in range(sizes.workers)]
    else:
        actors = [rollout_scaling.ScalingWorker.options(num_gpus=1 / sizes.workers).remote(
            i, sizes.model, sizes.gpu_envs_per_worker, None, preset="full", device=gpu_device)
            for i in range(sizes.workers)]
    rates = []
    for _ in range(sizes.windows):
        results = ray.get([a.run.remote(sizes.window_s) for a in actors])
        rates.append(sum(s for s, _ in results) / max(t for _, t in results))
    for a in actors:
        ray.kill(a)
    return rates


def env_alone(seconds: float) -> float:
    import env_throughput

    from envs.generate import default_catalog
    from envs.search import SearchIndex

    catalog = default_catalog()
    return env_throughput.steps_per_second(catalog, SearchIndex(catalog, cache_dir=None), seconds, seed=0)


def ray_parts(sizes: Sizes, results: dict, device: str) -> None:
    import ray
    import weight_push
    from common import spread

    # The workers import the actor classes' modules (bench/speed) and this checkout's packages.
    paths = [str(ROOT), str(ROOT / "bench" / "speed"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    # without a GPU (--smoke) one logical GPU lets the GPU-share workers be scheduled; they act on the CPU
    gpus = None if device.startswith("cuda") else 1
    ray.init(address="local", num_cpus=sizes.workers, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    try:
        print(f"3. env steps/s with all {sizes.workers} cores: one Ray rollout worker per core acting on the CPU "
              f"({sizes.envs_per_worker} envs each, cpu preset, one thread; windows of {sizes.window_s:g} s: "
              f"{sizes.windows})", flush=True)
        rates = rollout_cores(sizes)
        alone = env_alone(min(5.0, sizes.window_s))
        print(f"    env steps/s {spread(rates)}; the env alone (random agent, one core) {alone:.4g} steps/s",
              flush=True)
        results["rollout"] = {"workers": sizes.workers, "env_steps_per_s": rates, "env_alone_one_core": alone}
        print(f"   the same workers acting on one GPU, a 1/{sizes.workers} share each (policy.worker_gpu_share; "
              f"full preset, {sizes.gpu_envs_per_worker} envs each)", flush=True)
        rates = rollout_cores(sizes, device)
        print(f"    env steps/s {spread(rates)}", flush=True)
        results["rollout"]["gpu_acting_env_steps_per_s"] = rates
        print(f"4. weight push through the object store until every worker holds the version "
              f"(workers: {sizes.push_workers}, pushes: {sizes.pushes})", flush=True)
        for preset, trainable_only in (("full", False), ("cpu", True)):
            r = weight_push.measure(preset, trainable_only, sizes.push_workers, sizes.pushes, sizes.model)
            p50 = statistics.median(r["object_store_s"])
            print(f"    {preset} preset, {'trainable-only' if trainable_only else 'full state dict'} "
                  f"({r['mib']:.1f} MiB): p50 {1e3 * p50:.1f} ms (s: {spread(r['object_store_s'])}), "
                  f"max version lag {r['max_lag']}", flush=True)
            results.setdefault("weight_push", {})[preset] = r
    finally:
        ray.shutdown()


def over_budget(deadline: float, part: str) -> bool:
    if time.perf_counter() < deadline:
        return False
    print(f"{part}: skipped, the time budget (--budget-s) is spent", flush=True)
    return True


def gpu_parts(device: str, sizes: Sizes, bert_base: str | None, smoke: bool, results: dict, out: Path,
              deadline: float) -> None:
    from common import spread

    from policies.checkpoint import save_checkpoint

    data = None
    for label, build in encoders(device, sizes, bert_base, smoke).items():
        if over_budget(deadline, label):
            continue
        policy = build()
        print(f"## {label} on {device}: full preset, {'bf16' if policy.bf16 else 'fp32'}, "
              f"{sum(p.numel() for p in policy.model.parameters()) / 1e6:.1f}M params\n1. acting on {device}",
              flush=True)
        row = {"acting": acting(policy, device, sizes)}
        if data is None:  # the first encoder's worker collects the data both learners train on
            rate, pairs, trajs = collect(policy, device, sizes)
            row["worker_env_steps_per_s"], data = rate, (pairs, trajs)
            row["weights_to_host_s"] = w = weights_to_host(policy, device, sizes.pushes)
            print(f"    get_weights() to the host, full state dict: p50 {1e3 * statistics.median(w):.1f} ms "
                  f"(s: {spread(w)})", flush=True)
        checkpoint = out / label.split()[0]
        save_checkpoint(policy, checkpoint)
        if "attention" not in results:  # the first encoder only
            print(f"1b. attention kernels on {device}", flush=True)
            results["attention"] = attention_kernels.arms(policy, str(checkpoint), device, sizes.act_envs,
                                                          sizes.act_calls, sizes.pairs_per_update, sizes.updates, *data)
        del policy
        print(f"2. the learner on {device} (gpu.yaml's dpo, ppo and learner sections)", flush=True)
        row["learner"] = learning(str(checkpoint), device, sizes, *data)
        row["learner"]["dpo_selecting"] = selecting(str(checkpoint), device, sizes, *data, out)
        results.setdefault("encoders", {})[label] = row
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds; runs without a GPU")
    ap.add_argument("--bert-base", help="a local BERT-base directory (default: BERT-base-shaped random weights)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="a part not started by then is skipped (the check is sized to take about half)")
    args = ap.parse_args(argv)
    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        print("gpu_check: error: no GPU: torch sees no CUDA device (torch.cuda.is_available() is False); "
              "--smoke runs every part at tiny sizes on the CPU", file=sys.stderr)
        return 2
    device, sizes = ("cuda" if gpu else "cpu"), (SMOKE if args.smoke else full_sizes())
    if args.smoke:
        torch.set_num_threads(1)  # tiny models: more threads only wait on each other (on a busy machine, 50x)
    start = time.perf_counter()
    results = {"info": header(device, args.smoke)}
    deadline = start + args.budget_s
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        gpu_parts(device, sizes, args.bert_base, args.smoke, results, Path(tmp), deadline)
    if not over_budget(deadline, "3-4. rollout workers and weight push"):
        ray_parts(sizes, results, device)
    results["info"]["seconds"] = round(time.perf_counter() - start, 1)
    print(f"# done in {results['info']['seconds']:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not gpu:
        print("no GPU present: the GPU parts (acting, learner, weights to the host) ran on the CPU at smoke "
              "sizes; none of the figures above is a GPU figure")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
