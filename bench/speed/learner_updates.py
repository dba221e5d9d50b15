"""Learner update throughput: DPO and PPO updates/s of the real `Learner`, per device.

    python bench/speed/learner_updates.py --checkpoint IL_DIR --pairs RUN/buffer/pairs \
        --trajectories RUN/buffer/trajectories [--devices cpu cuda] [--presets cpu full] \
        [--dpo-scopes trajectory step] [--updates 8] [--warmup 2] [--repeats 3] [--json OUT.json]

Each (device, preset, algo) builds a fresh `Learner` from the IL checkpoint with the
dpo / ppo / learner sections of the preset's run config (cpu -> cluster/configs/cpu.yaml, full ->
gpu.yaml: pairs per update, PPO epochs and minibatches, state cache), then runs
`--warmup` untimed and `--updates` timed updates, `--repeats` times. Data are real
records from a run's buffer (`pyarrow.parquet.read_table` of its segment folders):
every DPO update takes pairs it has not seen before, so the reference forward and
the state-side encoding are paid as in a run where pairs arrive faster than they are
reused; PPO takes fresh policy trajectories each update (as the learner does).

Prints seconds/update as median [min-max] over repeats, updates/s, pairs/s (DPO)
or steps/s (PPO), and each device's ratio to the CPU row of the same preset and
algo when both ran. `--dpo-scopes` times DPO once per `dpo.scope` (what a pair
compares: whole trajectories, or only the decision where it parts) on the same pairs,
with each scope's ratio to the first.

Where the preset's config asks for anchor states (DPO, scope "step": the exact KL to
the reference at `anchor_states` recent policy states per update), each update also
gets that many states of the policy trajectories, new ones every update (as in a
run, where they come from the newest trajectories; other scopes get none). `--pack-tokens
on off` times each row with and without `BiAttentionHead.pack_tokens` (the head's ReLU
layer on real action tokens only) and prints the ratio to the row with it off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from common import spread, sync  # noqa: E402

from cluster.config import load_config, merge  # noqa: E402
from cluster.components import build_learner  # noqa: E402
from learner.batches import DPOBatch, PPOBatch  # noqa: E402
from learner.config import DPO_SCOPES  # noqa: E402
from learner.learner import Learner  # noqa: E402
from policies.checkpoint import load_checkpoint  # noqa: E402
from policies.policy import PRESETS  # noqa: E402
from rollout_workers.schema import batch_to_trajectories  # noqa: E402

CONFIG_OF_PRESET = {"cpu": "cpu.yaml", "full": "gpu.yaml"}


def load_data(pairs_dir: str, trajs_dir: str, max_rows: int):
    pairs = pq.read_table(pairs_dir).slice(0, max_rows)  # a pairs table, as the buffer hands the learner
    table = pq.read_table(trajs_dir)
    trajs = [t for t in batch_to_trajectories(table.slice(0, max_rows)) if t.source == "policy" and t.num_steps]
    if not pairs.num_rows or not trajs:
        raise SystemExit(f"need pairs in {pairs_dir} and policy trajectories in {trajs_dir}")
    return pairs, trajs


def build(checkpoint: str, device: str, preset: str, algo: str, scope: str, overrides: dict | None = None) -> Learner:
    """A fresh `Learner` from the IL checkpoint with the preset's run config; `overrides`
    change sections of it (e.g. {"dpo": {"pairs_per_update": 8}})."""
    dpo = {"scope": scope} if scope == "step" else {"scope": scope, "anchor_states": 0}  # anchors: step only
    cfg = load_config(Path(__file__).resolve().parents[2] / "cluster" / "configs" / CONFIG_OF_PRESET[preset],
                      merge({"run": {"algo": algo}, "dpo": dpo}, overrides or {}))
    policy = load_checkpoint(checkpoint, device=device, **PRESETS[preset])
    reference = load_checkpoint(checkpoint, device=device, **PRESETS[preset]) if algo == "dpo" else None
    return build_learner(cfg, policy, reference)



def time_updates(learner: Learner, algo: str, pairs, trajs, warmup: int, updates: int, device: str):
    """Seconds per timed update and items (pairs or steps) per update; data never repeat
    within one call while there are enough records (then it wraps around)."""
    cfg, cursor, seconds, items = learner.algorithm.config, 0, [], []
    states = [(s, c) for t in trajs for s, c in zip(t.states, t.candidates)]  # anchor states
    n_anchor = cfg.anchor_states if algo == "dpo" else 0  # DPOConfig allows them only with step scope, KL
    for k in range(warmup + updates):
        anchors = [states[(k * n_anchor + i) % len(states)] for i in range(n_anchor)]
        if algo == "dpo":
            n = cfg.pairs_per_update
            batch = DPOBatch.from_table(pairs.take([(cursor + i) % pairs.num_rows for i in range(n)]), anchors)
        else:
            n = cfg.trajectories_per_update
            batch = PPOBatch([trajs[(cursor + i) % len(trajs)] for i in range(n)])
        cursor += n
        sync(device)
        start = time.perf_counter()
        metrics = learner.train(batch)
        sync(device)
        if k >= warmup:
            seconds.append(time.perf_counter() - start)
            items.append(n if algo == "dpo" else metrics["steps"])
    return seconds, items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--pairs", required=True, help="a folder of pair Parquet segments (RUN/buffer/pairs)")
    ap.add_argument("--trajectories", required=True, help="RUN/buffer/trajectories of a PPO run")
    ap.add_argument("--devices", nargs="+", default=["cpu"])
    ap.add_argument("--presets", nargs="+", default=["cpu", "full"], choices=sorted(CONFIG_OF_PRESET))
    ap.add_argument("--algos", nargs="+", default=["dpo", "ppo"], choices=["dpo", "ppo"])
    ap.add_argument("--dpo-scopes", nargs="+", default=["trajectory"], choices=list(DPO_SCOPES))
    ap.add_argument("--pack-tokens", nargs="+", default=["on"], choices=["on", "off"])
    ap.add_argument("--updates", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-rows", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs, trajs = load_data(args.pairs, args.trajectories, args.max_rows)
    print(f"data: {pairs.num_rows} pairs, {len(trajs)} policy trajectories; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""), flush=True)
    rows = []
    for preset in args.presets:
        variants = [(a, s, pk) for a in args.algos for s in (args.dpo_scopes if a == "dpo" else ["trajectory"])
                    for pk in args.pack_tokens]
        for algo, scope, pack in variants:
            for device in args.devices:
                per_update, rates = [], []
                for _ in range(args.repeats):
                    learner = build(args.checkpoint, device, preset, algo, scope)
                    for policy in (learner.policy, learner.reference and learner.reference.policy):
                        if policy is not None:
                            policy.model.head.pack_tokens = pack == "on"
                    bf16 = learner.policy.bf16
                    secs, items = time_updates(learner, algo, pairs, trajs, args.warmup, args.updates, device)
                    per_update.append(statistics.median(secs))
                    rates.append(sum(items) / sum(secs))
                    del learner
                row = {"preset": preset, "algo": algo, "scope": scope, "device": device,
                       "bf16": bf16, "pack_tokens": pack,
                       "s_per_update": per_update, "items_per_s": rates,
                       "items": "pairs" if algo == "dpo" else "steps"}
                rows.append(row)
                print(f"{preset:5s} {algo:4s} {scope if algo == 'dpo' else '':10s} {device:6s} "
                      f"{'bf16' if bf16 else 'fp32'} packed head {pack:3s} "
                      f"s/update {spread(per_update)}  "
                      f"updates/s {1 / statistics.median(per_update):.3g}  "
                      f"{row['items']}/s {spread(rates)}", flush=True)
    def median_ratio(base: dict, row: dict) -> float:  # row's updates/s over base's
        return statistics.median(base["s_per_update"]) / statistics.median(row["s_per_update"])

    def like(row: dict, *fields: str) -> list[dict]:
        return [r for r in rows if all(r[f] == row[f] for f in fields)]

    for row in rows:
        base = next((r for r in like(row, "preset", "algo", "scope", "pack_tokens")
                     if r["device"] == "cpu"), None)
        if base is not None and row is not base:
            print(f"{row['preset']} {row['algo']} {row['scope']}: {row['device']} is "
                  f"x{median_ratio(base, row):.1f} the CPU's updates/s")
        first = like(row, "device", "preset", "algo", "pack_tokens")[0]
        if row is not first:
            print(f"{row['preset']} {row['algo']} {row['device']}: scope {row['scope']} is x{median_ratio(first, row):.1f} "
                  f"the updates/s of scope {first['scope']} (same pairs per update)")
        off = next((r for r in like(row, "device", "preset", "algo", "scope") if r["pack_tokens"] == "off"), None)
        if row["pack_tokens"] == "on" and off is not None:
            print(f"{row['preset']} {row['algo']} {row['scope']} {row['device']}: the packed head gives "
                  f"x{median_ratio(off, row):.2f} the updates/s of the row without")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
