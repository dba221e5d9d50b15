"""The learner's time per update, split into its parts: this tree against another revision.

    python bench/speed/learner_overhead.py --run RUN [--baseline f89e9b1] [--updates 30] [--repeats 2]
                                           [--algos dpo ppo]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/learner_overhead.py --run RUN     # the AVX2 fp32 path

RUN is a finished `webshop-rl train` run directory: its buffer (RUN/buffer) holds the pairs
and trajectories the learner reads, RUN/il/checkpoint the weights it starts from. Each tree
runs in a process of its own (the baseline from a `git worktree`) with its own local Ray:
a buffer actor on a copy of RUN/buffer and a weight store, as a run has them, and the
learner actor's class (`cluster.actors.LearnerShell`, the tree's shipped config) in the
driver, so that timers can wrap its functions. After `--warmup` untimed updates,
`train_for(max_updates=N)` runs the loop a run runs: select from the buffer actor, train,
publish when the sync interval is due. PPO takes each trajectory once, from the newest rows
only, so a finished run's buffer feeds a few PPO updates (`--ppo-updates`, after one untimed). This tree runs twice per repeat: with an empty
folder of shared encodings (a first run on the machine) and with the folder that run left
(later runs, or a run whose workers encoded these pages first).

Each update's seconds are split by timers around the functions that do the work; a part
nested in another is taken out of the outer one:
  fetch      `select`: asking the buffer actor for the update's rows (Ray transport);
  collate    Arrow rows -> Trajectory objects (`DPOBatch` / `PPOBatch.from_table`);
  tokenize   `Policy._tokenize`;
  encodings  reads and writes of the shared encodings folder (this tree only);
  forward    encoder layers, heads (`ActionScorer.encode_states/encode_actions/score`);
  backward   `Tensor.backward`;
  optimizer  the learner's optimizer step (gradient sum in a group, clipping, AdamW, zeroing);
  publish    the weights to the object store and the weight store;
  other      the rest: batch building, padding, caches, metrics, Python.
Host overhead = everything but forward, backward and optimizer. Prints per tree and algo the
median seconds per update [min-max over repeats], each part's share, the host share, and
updates/s against the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from ab_loop import ROOT, baseline_checkout, pinned_checkpoint, tree_env
from common import Timers

PARTS = ("fetch", "collate", "tokenize", "encodings", "forward", "backward", "optimizer", "publish", "other")
COMPUTE = ("forward", "backward", "optimizer")


def install(timers: Timers) -> None:
    """Wrap the functions each part is made of, in whichever tree is on sys.path."""
    import torch

    import cluster.actors as actors
    import learner.batches as batches
    import learner.learner as learner_module
    import policies.model as model_module
    import policies.policy as policy_module

    for cls in (batches.DPOBatch, batches.PPOBatch):
        timers.wrap(cls, "from_table", "collate")
    timers.wrap(policy_module.Policy, "_tokenize", "tokenize")
    for attr in ("encode_states", "encode_actions", "score"):
        timers.wrap(model_module.ActionScorer, attr, "forward")
    for name, module in list(sys.modules.items()):  # frozen layers run outside the ActionScorer too
        if name.startswith("policies.") and hasattr(module, "run_layers"):
            timers.wrap(module, "run_layers", "forward")
    timers.wrap(torch.Tensor, "backward", "backward")
    timers.wrap(learner_module.Learner, "_optimizer_step", "optimizer")
    timers.wrap(actors.LearnerShell, "publish", "publish")
    try:
        from policies.encoding_store import EncodingStore
    except ImportError:  # revisions before the shared encodings folder
        return
    for attr in ("get", "put"):
        timers.wrap(EncodingStore, attr, "encodings")


def child(args) -> None:
    """One tree, one algo: seconds per update and per part, as JSON on stdout's last line."""
    import ray
    import torch

    from cluster.actors import BufferActor, LearnerShell, WeightStore
    from cluster.config import load_config

    torch.set_num_threads(args.threads)
    cfg = load_config(Path("cluster/configs/cpu.yaml"), {"run": {"algo": args.algo}})
    timers = Timers()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    buffer = BufferActor.remote(args.buffer, cfg.buffer, cfg.run.seed)
    store = WeightStore.remote()
    shell = LearnerShell(cfg, args.il_checkpoint, "cpu", buffer, store, None, args.threads,
                         args.buffer + ".publishes.jsonl")
    install(timers)  # after start-up: the timed select also finds the buffer's rows loaded
    select = type(shell.learner.algorithm).select

    def fetch(self, *a, **k):
        with timers.part("fetch"):
            batch = select(self, *a, **k)
        if batch is None:  # train_for would wait for data that never comes
            raise SystemExit(f"the buffer holds no more fresh {args.algo} data: ask for fewer updates")
        return batch

    type(shell.learner.algorithm).select = fetch
    shell.train_for(1e9, args.warmup)
    timers.seconds.clear()
    start = time.perf_counter()
    done = len(shell.train_for(1e9, args.updates))
    total = time.perf_counter() - start
    parts = {k: v / done for k, v in timers.seconds.items()}
    parts["other"] = total / done - sum(parts.values())
    print(json.dumps({"seconds": total / done, "parts": parts, "updates": done}))


def run_tree(tree: Path, algo: str, buffer_src: str, cache: Path, tmp: Path, args, site: Path | None) -> dict:
    buffer = tmp / f"buffer-{os.getpid()}-{time.monotonic_ns()}"
    shutil.copytree(buffer_src, buffer)
    updates, warmup = (args.updates, args.warmup) if algo == "dpo" else (args.ppo_updates, 1)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--algo", algo, "--buffer", str(buffer),
           "--il-checkpoint", args.il_checkpoint, "--updates", str(updates), "--warmup", str(warmup),
           "--threads", str(args.threads)]
    env = tree_env(tree, cache, site)
    out = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True)
    shutil.rmtree(buffer)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, rows: list[dict], base: float) -> None:
    secs = [r["seconds"] for r in rows]
    med = statistics.median(secs)
    parts = {p: statistics.median(r["parts"].get(p, 0.0) for r in rows) for p in PARTS}
    summed = sum(parts.values())
    host = [1 - sum(r["parts"].get(p, 0.0) for p in COMPUTE) / r["seconds"] for r in rows]
    print(f"  {name:<30} {med:.3f} s/update [{min(secs):.3f}-{max(secs):.3f}]  {1 / med:.3f} updates/s  "
          f"x{base / med:.2f}  host {100 * statistics.median(host):.1f}% [{100 * min(host):.1f}-{100 * max(host):.1f}]")
    print("    " + "  ".join(f"{p} {100 * parts[p] / summed:.1f}%" for p in PARTS if parts[p] > 0.0005 * summed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a finished run directory (its buffer and il/checkpoint)")
    ap.add_argument("--baseline", default="f89e9b1", help="git revision to compare with")
    ap.add_argument("--algos", nargs="+", default=["dpo"], choices=["dpo", "ppo"])
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ppo-updates", type=int, default=3,
                    help="PPO uses each trajectory once and reads the newest 4n+64 rows: a run's buffer holds few")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a 2-core run's learner has 1)")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                    help="stored in the IL checkpoint copy (default: fp32 below AVX-512 kernels, else auto)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--algo", help=argparse.SUPPRESS)
    ap.add_argument("--buffer", help=argparse.SUPPRESS)
    ap.add_argument("--il-checkpoint", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        child(args)
        return
    if not args.run:
        ap.error("--run is required")
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    args.precision = args.precision or ("auto" if capability.startswith("AVX512") else "fp32")
    run = Path(args.run).resolve()
    print(f"CPU capability {capability}; precision {args.precision}; {args.threads} thread(s); baseline "
          f"{args.baseline}; {args.updates} DPO updates after {args.warmup} ({args.ppo_updates} PPO after 1), "
          f"{args.repeats} repeats; data {run}/buffer")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args.il_checkpoint = pinned_checkpoint(str(run / "il" / "checkpoint"), args.precision, tmp)
        with baseline_checkout(args.baseline, args.precision, tmp) as (base, site):
            for algo in args.algos:
                rows: dict[str, list[dict]] = defaultdict(list)
                for r in range(args.repeats):
                    cache = tmp / f"cache-{algo}-{r}"
                    rows[f"{args.baseline}"].append(run_tree(base, algo, str(run / "buffer"), cache / "b", tmp,
                                                             args, site))
                    rows["this tree, first run"].append(run_tree(ROOT, algo, str(run / "buffer"), cache / "n", tmp,
                                                                 args, None))
                    rows["this tree, later run"].append(run_tree(ROOT, algo, str(run / "buffer"), cache / "n", tmp,
                                                                 args, None))
                    print(f"{algo} repeat {r + 1}: " + "; ".join(f"{k} {v[-1]['seconds']:.3f} s" for k, v in rows.items()),
                          flush=True)
                print(f"\n{algo.upper()} (seconds per update, median over repeats; x = updates/s against {args.baseline}):")
                base_med = statistics.median(r["seconds"] for r in rows[args.baseline])
                for name, data in rows.items():
                    report(name, data, base_med)


if __name__ == "__main__":
    main()
