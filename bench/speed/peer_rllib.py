"""RLlib's PPO as the peer: the same machine, model, catalog and time budget as our PPO and DPO.

    python bench/speed/peer_rllib.py [--budget 120] [--workers 1] [--envs-per-worker 8]
                               [--model default|tiny] [--il-checkpoint DIR]
                               [--systems rllib-ppo ppo dpo] [--test-episodes 100]

Each system is one `webshop-rl train` run (`python -m cluster.train`, its own
process and its own local Ray instance) with the CPU preset config
(`cluster/configs/cpu.yaml`), the same starting checkpoint, `--workers` rollout
workers (RLlib: env runners) of `--envs-per-worker` env copies, and the budget
`--budget` seconds of RL; periodic evaluation and timed checkpoints are off so that
only training competes for the cores. The starting checkpoint is `--il-checkpoint`,
or an IL checkpoint trained first on `--il-demos` expert demos (`--il-budget`).
Our PPO runs with `worker.pair_mode=none` (it uses no pairs); DPO with expert pairs.

Figures, from each run's metrics.jsonl and summary.json:
  env steps/s       policy decisions sampled / RL wall time
  while sampling    the same decisions / the time spent sampling them (ours: the
                    workers' rounds; RLlib: env_runner_sampling_timer), i.e. the
                    sampler's own speed, without waiting on the learner
  learner samples/s env steps an update trains on / its update time (ours:
                    Learner.update's steps/seconds; RLlib: the iteration's sampled
                    steps / learner_update_timer); PPO passes over them ppo_epochs times
  updates           learner updates (RLlib: training iterations) in the budget
  weight sync       median time for new weights to reach a rollout worker (ours: the
                    worker's fetch from the object store + load; RLlib: synch_weights,
                    learner -> all env runners, blocking)
  test success      after the budget, greedy, the first `--test-episodes` test goals
and the ratios ours / RLlib.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CPU_CONFIG = ROOT / "cluster" / "configs" / "cpu.yaml"


def train(args, algo: str, out: Path, flags: list[str], sets: list[str]) -> float:
    """One `cluster.train` run in its own process (log beside `out`); returns its wall seconds."""
    sets = [f"catalog.size={args.catalog_size}", f"run.final_eval_episodes={args.test_episodes}",
            "run.eval_interval_s=1000000", "run.checkpoint_interval_s=1000000", *sets]
    if args.model != "default":
        sets.append(f"policy.model={args.model}")
    cmd = [sys.executable, "-m", "cluster.train", "--config", str(CPU_CONFIG), "--algo", algo, "--out", str(out),
           "--num-workers", str(args.workers), "--envs-per-worker", str(args.envs_per_worker),
           "--seed", str(args.seed), *flags, "--set", *sets]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local instance each time
    print(f"$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT,
                       timeout=args.budget + args.il_budget + 1800)
    return time.perf_counter() - t0


def il_checkpoint(args) -> str:
    """`--il-checkpoint`, or one trained here on generated expert demos (reused if present)."""
    if args.il_checkpoint:
        return args.il_checkpoint
    run = args.out / "il_run"
    checkpoint = run / "il" / "checkpoint"
    if not (checkpoint / "model.safetensors").exists():
        train(args, "il", run, [], [f"il.num_demos={args.il_demos}", "il.epochs=2",
                                    f"il.time_budget_s={args.il_budget}"])
    return str(checkpoint)


def read_run(out: Path) -> dict:
    """The figures of one run directory (see module doc)."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())

    def tagged(tag: str) -> list[dict]:
        return [r for r in rows if r["tag"] == tag]

    learner, rollout = tagged("learner"), tagged("rollout")
    sync = [r["worker_seconds"] for r in tagged("sync")]
    env_steps = sum(r["env_steps"] for r in rollout)
    samples, seconds = sum(r["steps"] for r in learner), sum(r["seconds"] for r in learner)
    if summary.get("algo") == "rllib-ppo":  # an iteration trains on what it sampled
        samples = env_steps
    wall, sampling = summary["seconds"], sum(r["seconds"] for r in rollout)
    return {
        "env_steps": env_steps, "wall_s": wall, "env_steps_per_s": env_steps / max(wall, 1e-9),
        "sampling_steps_per_s": env_steps / sampling if sampling else 0.0,
        "learner_samples_per_s": samples / seconds if seconds else 0.0, "updates": summary["updates"],
        "sync_s": statistics.median(sync) if sync else float("nan"), "syncs": len(sync),
        "episodes": sum(r["episodes"] for r in rollout),
        "success": summary["after"]["success_rate"], "success_ci95": summary["after"]["success_ci95"],
        "score": summary["after"]["score"], "il_success": summary["before"]["success_rate"],
    }


def print_table(results: dict[str, dict], args) -> None:
    print(f"\nbudget {args.budget:.0f}s per system, {args.workers} worker(s) x {args.envs_per_worker} envs, "
          f"model {args.model}, catalog {args.catalog_size}, test goals {args.test_episodes}, "
          f"{os.cpu_count()} CPUs (load avg {os.getloadavg()[0]:.1f} at the end)")
    print("\n| system | env steps/s | while sampling | learner samples/s | updates | weight sync (median) "
          "| test success | score | (start) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['env_steps_per_s']:.1f} ({r['env_steps']} in {r['wall_s']:.0f}s) | "
              f"{r['sampling_steps_per_s']:.1f} | "
              f"{r['learner_samples_per_s']:.1f} | {r['updates']} | {1e3 * r['sync_s']:.1f} ms ({r['syncs']}) | "
              f"{100 * r['success']:.1f}% ± {100 * r['success_ci95']:.1f} | {r['score']:.1f} | "
              f"{100 * r['il_success']:.1f}% |")
    peer = results.get("rllib-ppo")
    if not peer:
        return
    print("\nratios ours / RLlib PPO:")
    for name in ("ppo", "dpo"):
        if name not in results:
            continue
        r = results[name]

        def ratio(key: str, r: dict = r) -> float:
            return r[key] / peer[key] if peer[key] else float("inf")

        print(f"  {name}: env steps/s x{ratio('env_steps_per_s'):.2f} (while sampling "
              f"x{ratio('sampling_steps_per_s'):.2f}), learner samples/s "
              f"x{ratio('learner_samples_per_s'):.2f}, weight sync time x{ratio('sync_s'):.2f} (lower is faster), "
              f"test success {100 * r['success']:.1f}% vs {100 * peer['success']:.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=120.0, help="RL seconds per system")
    ap.add_argument("--workers", type=int, default=1, help="rollout workers / RLlib env runners")
    ap.add_argument("--envs-per-worker", type=int, default=8)
    ap.add_argument("--model", default="default", help="default (MiniLM-L6) or tiny")
    ap.add_argument("--catalog-size", type=int, default=1000)
    ap.add_argument("--test-episodes", type=int, default=100)
    ap.add_argument("--il-checkpoint", help="start all systems here (default: train one first)")
    ap.add_argument("--il-demos", type=int, default=300)
    ap.add_argument("--il-budget", type=float, default=180.0, help="IL seconds when training one")
    ap.add_argument("--systems", nargs="+", default=["rllib-ppo", "ppo", "dpo"],
                    choices=["rllib-ppo", "ppo", "dpo"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "peer_rllib")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = il_checkpoint(args)
    results = {}
    for algo in args.systems:
        out = args.out / algo
        if (out / "metrics.jsonl").exists():
            raise SystemExit(f"{out} holds an earlier run; remove it or pass another --out")
        flags = ["--time-budget", f"{args.budget}s", "--il-checkpoint", start]
        train(args, algo, out, flags, ["worker.pair_mode=none"] if algo == "ppo" else [])
        results[algo] = read_run(out)
        print(json.dumps({algo: results[algo]}), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results, args)


if __name__ == "__main__":
    main()
