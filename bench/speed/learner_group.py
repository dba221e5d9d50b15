"""DPO updates/s of one learner against a learner group (`learner.group`) on this machine.

    python bench/speed/learner_group.py [--modes 1x2 2x1 1x1] [--updates 6] [--warmup 1] [--repeats 3]

Each row trains the shipped recipe's DPO (`cluster/configs/cpu.yaml`: "step" scope, 8
pairs and 16 anchor states per update, the `cpu` policy preset on the bundled
MiniLM-L6) on synthetic WebShop-like pairs, new ones every update (so the reference
and the frozen encodings are computed as in a run where pairs arrive faster than they
are reused). A mode NxT is N learners of T torch threads each: N > 1 are N processes
in one gloo process group, all taking the same global batches. `--updates` timed
updates follow `--warmup` untimed ones; every mode runs once per repeat, in turned
order, so load from other work falls on all alike. Rows print the median seconds per
update of each repeat as median [min-max] over the repeats (rank 0's clock, so the
group's pace), updates/s, and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from common import decision, spread  # noqa: E402

from cluster.components import build_learner  # noqa: E402
from cluster.config import load_config  # noqa: E402
from learner.batches import DPOBatch  # noqa: E402
from learner.group import SOLO, TorchGroup, connect_store, open_store  # noqa: E402
from policies.policy import Policy, preset_config  # noqa: E402
from rollout_workers.schema import Trajectory  # noqa: E402


def episode(first: tuple[str, list[str]], second: tuple[str, list[str]], click: int) -> Trajectory:
    return Trajectory(goal_id=0, source="policy", states=[first[0], second[0]], candidates=[first[1], second[1]],
                      chosen=[0, click], logp=[0.0, 0.0], values=[0.0, 0.0], rewards=[0.0, float(click == 0)],
                      terminated=True, policy_version=0, score=float(click == 0))


def batches(num: int, seed: int = 0) -> list[DPOBatch]:
    """`num` DPO batches of the recipe's size: pairs that part at their second decision."""
    cfg, rng = load_config().dpo, random.Random(seed)
    out = []
    for _ in range(num):
        pairs = []
        for _ in range(cfg.pairs_per_update):
            first, second = decision(rng), decision(rng)
            pairs.append((episode(first, second, 0), episode(first, second, rng.randint(1, 11))))
        out.append(DPOBatch(pairs, [decision(rng) for _ in range(cfg.anchor_states)]))
    return out


def time_updates(group, data: list[DPOBatch], warmup: int) -> list[float]:
    """Seconds per update after `warmup` (a fresh learner; every rank runs the same calls)."""
    cfg = load_config()
    learner = build_learner(cfg, Policy(preset_config("cpu", device="cpu")), Policy(preset_config("cpu", device="cpu")))
    learner.join(group)
    seconds = []
    for k, batch in enumerate(data):
        group.broadcast(None)  # start together
        start = time.perf_counter()
        learner.train(batch)
        if k >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def _rank(rank: int, size: int, port: int, data: list[DPOBatch], warmup: int, threads: int, out: str) -> None:
    torch.set_num_threads(threads)
    group = TorchGroup(rank, size, connect_store("127.0.0.1", port), "cpu")
    try:
        seconds = time_updates(group, data, warmup)
        if rank == 0:
            torch.save(seconds, out)
    finally:
        group.close()


def run(learners: int, threads: int, data: list[DPOBatch], warmup: int, scratch: Path) -> list[float]:
    if learners == 1:
        torch.set_num_threads(threads)
        return time_updates(SOLO, data, warmup)
    store = open_store("127.0.0.1")
    out = scratch / f"rank0-{learners}.pt"
    mp.spawn(_rank, args=(learners, store.port, data, warmup, threads, str(out)), nprocs=learners)
    return torch.load(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", nargs="+", default=["1x2", "2x1", "1x1"],
                    help="LEARNERSxTHREADS (threads of each learner)")
    ap.add_argument("--updates", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp"))
    args = ap.parse_args()
    modes = [tuple(int(x) for x in m.split("x")) for m in args.modes]
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{os.cpu_count()} cores; DPO as shipped (8 pairs, 16 anchors, 'cpu' preset, MiniLM-L6)", flush=True)
    per_update: dict = {m: [] for m in modes}
    loads = []
    for r in range(args.repeats):  # every mode once per repeat, the order turned each time
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            loads.append(os.getloadavg()[0])
            secs = run(*mode, batches(args.warmup + args.updates, seed=r), args.warmup, args.scratch)
            per_update[mode].append(statistics.median(secs))
            print(f"  repeat {r}: {mode[0]} x {mode[1]}: {statistics.median(secs):.3f} s/update "
                  f"(load average {loads[-1]:.1f})", flush=True)
    for (n, t), secs in per_update.items():
        print(f"{n} learner{'s' if n > 1 else ' '} x {t} thread{'s' if t > 1 else ' '}: s/update {spread(secs)}, "
              f"updates/s {spread([1 / s for s in secs])}", flush=True)
    print(f"1-minute load average before each row: {spread(loads)} (other work on the machine)")


if __name__ == "__main__":
    main()
