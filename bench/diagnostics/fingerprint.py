"""A fixed-seed fingerprint of the main job, to prove a refactor changed no behaviour.

Runs, through the `webshop-rl` command as a user would:
  1. IL on 500 generated expert demos for 2 epochs (~300 batches of 16), then a
     100-goal greedy evaluation on the test split;
  2. DPO from that checkpoint in local mode (`--num-workers 0`), `--updates 30`,
     weights published every round (`--sync-interval 0s`, so nothing depends on the
     clock), then a 100-goal greedy evaluation on the test split.

Every clock-driven choice (the IL learning rate's progress by time, the publish,
evaluation and checkpoint timers) sees a stopped clock (`time.perf_counter` frozen in
the child process), so the figures depend on the seeds alone. `--il-checkpoint DIR`
skips step 1 and starts DPO from a saved checkpoint, so DPO can be compared on its own.

Prints (and writes as JSON with `--out`): IL loss / accuracy per epoch, each
evaluation's success / score, every DPO update's loss and log-prob margin, a SHA-256
of each checkpoint's tensors and of the buffer's rows (ids and times left out: they
are random and wall-clock). `--compare OLD.json` says, figure by figure, whether
this run equals an earlier one (bit for bit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from safetensors.numpy import load_file

VOLATILE = {"traj_id", "pair_id", "chosen_id", "rejected_id", "created_at", "seconds", "time", "wall_s"}


def tensors_sha(directory: Path) -> str:
    tensors = load_file(str(directory / "model.safetensors"))
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].tobytes())
    return h.hexdigest()


def rows_sha(directory: Path) -> tuple[int, str]:
    """Row count and a hash of the rows' content, segments in order, volatile fields dropped."""
    if not directory.exists():
        return 0, ""
    h, n = hashlib.sha256(), 0
    for seg in sorted(directory.glob("seg-*.parquet")):
        for row in pq.read_table(seg).to_pylist():
            row = {k: v for k, v in row.items() if k not in VOLATILE}
            for side in ("chosen", "rejected"):
                if isinstance(row.get(side), dict):
                    row[side] = {k: v for k, v in row[side].items() if k not in VOLATILE}
            h.update(json.dumps(row, sort_keys=True, default=str).encode())
            n += 1
    return n, h.hexdigest()


def evaluation(m: dict) -> dict:
    return {"success_rate": m["success_rate"], "score": round(m["score"], 6), "mean_steps": m["mean_steps"]}


STOPPED_CLOCK = ("import sys, time; time.perf_counter = lambda: 0.0; "
                 "from cluster.cli import main; sys.exit(main(sys.argv[1:]))")
IL_SET = ["il.num_demos=500", "il.epochs=2", "run.final_eval_episodes=100"]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def il_fingerprint(il_out: Path, il_set: list[str]) -> dict:
    run([sys.executable, "-c", STOPPED_CLOCK, "train", "--algo", "il", "--out", str(il_out), "--seed", "0", "--set", *il_set])
    il_metrics = json.loads((il_out / "il" / "il_metrics.json").read_text())
    return {"epochs": [{k: round(e[k], 6) for k in ("loss", "accuracy")} | {"batches": e["batches"]}
                       for e in il_metrics["epochs"]],
            "decisions": il_metrics["decisions"], "test_100": evaluation(il_metrics["eval"]),
            "weights_sha256": tensors_sha(il_out / "il" / "checkpoint")}


def fingerprint(work: Path, il_ckpt: Path | None, il_set: list[str]) -> dict:
    cli = [sys.executable, "-c", STOPPED_CLOCK, "train"]
    dpo_out = work / "dpo_run"
    result = {}
    if il_ckpt is None:
        result["il"] = il_fingerprint(work / "il_run", il_set)
        il_ckpt = work / "il_run" / "il" / "checkpoint"
    run(cli + ["--algo", "dpo", "--num-workers", "0", "--updates", "30", "--sync-interval", "0s",
               "--il-checkpoint", str(il_ckpt), "--out", str(dpo_out), "--seed", "0",
               "--set", "run.time_budget_s=10h", "run.eval_interval_s=10h", "run.checkpoint_interval_s=10h",
               "run.eval_episodes=100", "run.final_eval_episodes=100"])
    summary = json.loads((dpo_out / "summary.json").read_text())
    rows = [json.loads(line) for line in (dpo_out / "metrics.jsonl").read_text().splitlines()]
    updates = [{"loss": round(r["loss"], 6), "logp_margin": round(r["logp_margin"], 6)}
               for r in rows if r["tag"] == "learner"]
    trajs = rows_sha(dpo_out / "buffer" / "trajectories")
    pairs = rows_sha(dpo_out / "buffer" / "pairs")
    return {
        **result,
        "dpo": {"il_checkpoint_sha256": tensors_sha(il_ckpt), "updates": updates,
                "test_100_before": evaluation(summary["before"]),
                "test_100_after": evaluation(summary["after"]),
                "weights_sha256": tensors_sha(dpo_out / "checkpoint"),
                "trajectories": {"rows": trajs[0], "sha256": trajs[1]},
                "pairs": {"rows": pairs[0], "sha256": pairs[1]}},
    }


def compare(new: dict, old: dict, path: str = "") -> list[str]:
    """Every place where two fingerprints differ, as 'path: old -> new'."""
    if isinstance(new, dict) and isinstance(old, dict):
        return [d for k in sorted(set(new) | set(old)) for d in compare(new.get(k), old.get(k), f"{path}.{k}")]
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [d for i, (a, b) in enumerate(zip(new, old)) for d in compare(a, b, f"{path}[{i}]")]
    return [] if new == old else [f"{path}: {old!r} -> {new!r}"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="write the fingerprint here (JSON)")
    p.add_argument("--compare", type=Path, help="an earlier fingerprint to compare with")
    p.add_argument("--work", type=Path, help="run directory (default: a temporary one)")
    p.add_argument("--il-checkpoint", type=Path, help="start DPO from this checkpoint (no IL step)")
    p.add_argument("--il-set", nargs="+", default=IL_SET, metavar="SECTION.KEY=VALUE",
                   help=f"the IL run's config overrides (default: {' '.join(IL_SET)})")
    args = p.parse_args()
    import torch

    work = args.work or Path(tempfile.mkdtemp(prefix="fingerprint-"))
    result = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), **fingerprint(work, args.il_checkpoint, args.il_set)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.compare:
        old = json.loads(args.compare.read_text())
        shared = set(result) & set(old)  # a run from --il-checkpoint has no "il" part
        diffs = compare({k: result[k] for k in shared}, {k: old[k] for k in shared})
        print("\nidentical to " + str(args.compare) if not diffs else
              f"\n{len(diffs)} difference(s) from {args.compare}:\n" + "\n".join(diffs))
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
