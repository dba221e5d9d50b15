"""Chaos drill: kill every component of a training run and check, independently of the
driver, that nothing acknowledged was lost or stored twice.

    python bench/diagnostics/chaos.py                 # one Ray node, tiny model, ~3 min
    python bench/diagnostics/chaos.py --nodes 3       # a simulated 3-node cluster

A Ray cluster is started here (`ray.cluster_utils.Cluster`: a head, plus two worker
nodes with --nodes 3) and outlives the drivers. The run (`webshop-rl train`, 2 rollout
workers) kills a rollout worker, the buffer actor and the learner actor in turn, the
k-th after k * `--kill-every` learner updates (`run.chaos_kill_every_updates`; the
learner's calls stop at those counts). Once each was killed and a checkpoint generation
committed after that, the driver process itself is SIGKILLed and the run continued with
`--resume`, its budget the committed updates plus three kill periods and one update.
Kills count updates, rolled-back ones included, so the resume makes its third kill
before it can finish, however slow the machine is (a clock-timed drill once got only
two kills into a slow resume).

The checks read what the run left on disk, not what the driver reported:
- the buffer's ledger (`buffer/ledger.jsonl`: what it acknowledged) names exactly the
  rows in the segment files, and no id is on disk twice;
- no (worker, goal, env seed) appears twice among the stored episodes;
- the published versions (`publishes.jsonl`) never go back;
- kills per component, and the run finished (summary.json).
Figures go to bench/out/chaos.json; the exit status is 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cluster.run_state import PUBLISH_LOG, PublishLog, load_committed, read_pointer  # noqa: E402
from rollout_workers.ledger import read_ledger  # noqa: E402

TINY = ["policy.model=tiny", "catalog.size=150", "catalog.seed=4", "catalog.train_goals=0", "worker.num_envs=3",
        "worker.max_steps=6", "dpo.pairs_per_update=2", "il.num_demos=20", "il.epochs=1", "run.eval_episodes=4",
        "run.final_eval_episodes=4", "run.episodes_per_round=3", "run.eval_interval_s=1000"]


def metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by the driver's kill
            pass
    return rows


def kills(rows: list[dict]) -> Counter:
    return Counter(r["killed"] for r in rows if r.get("tag") == "chaos")


def driver(run: Path, address: str, args, updates: int, resume: bool) -> subprocess.Popen:
    """`webshop-rl train` (or its `--resume`) until `updates` learner updates."""
    argv = [sys.executable, "-m", "cluster.cli", "train", "--num-workers", "2", "--address", address,
            "--updates", str(updates), "--set", *TINY, f"run.chaos_kill_every_updates={args.kill_every}",
            f"run.checkpoint_interval_s={args.checkpoint_every}"]
    argv += ["--resume", str(run)] if resume else ["--out", str(run)]
    log = open(run.parent / f"driver-{'resume' if resume else 'first'}.log", "w")
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def kill_driver_when_ready(proc: subprocess.Popen, run: Path, timeout: float) -> dict:
    """SIGKILL the driver once each component was killed and a generation committed since."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline and proc.poll() is None:
        k = kills(metrics(run))
        if all(k[c] >= 1 for c in ("worker", "buffer", "learner")):
            pointer = read_pointer(run)
            seen = seen or pointer
            if pointer != seen:  # committed after the third kill
                proc.kill()
                proc.wait()
                return {"driver_killed": True, "generation_at_kill": pointer}
        time.sleep(0.2)
    raise RuntimeError(f"driver not killed: it exited with {proc.poll()} or the drill timed out "
                       f"(kills so far: {dict(kills(metrics(run)))}); see {run.parent}/driver-first.log")


def stored(run: Path, kind: str) -> list[dict]:
    folder = run / "buffer" / kind
    return [r for f in sorted(folder.glob("seg-*.parquet")) for r in pq.read_table(f).to_pylist()]


def check(run: Path) -> dict:
    """The checks that do not trust the driver (see the module docstring)."""
    ledger = read_ledger(run / "buffer")
    out: dict = {}
    for kind, id_field in (("trajectories", "traj_id"), ("pairs", "pair_id")):
        ids = [r[id_field] for r in stored(run, kind)]
        acked = ledger.get(kind, [])
        out[kind] = {"acknowledged": len(acked), "on_disk": len(ids), "duplicates_on_disk": len(ids) - len(set(ids)),
                     "acknowledged_missing": len(set(acked) - set(ids)), "unacknowledged_on_disk": len(set(ids) - set(acked))}
    episodes = [(r["worker_id"], r["goal_id"], r["seed"]) for r in stored(run, "trajectories")]
    out["episodes_repeated"] = len(episodes) - len(set(episodes))
    versions = PublishLog(run / PUBLISH_LOG).versions()
    out["publishes"] = len(versions)
    out["version_went_back"] = sum(b < a for a, b in zip(versions, versions[1:]))
    rows = metrics(run)
    out["kills"] = dict(kills(rows))
    out["rollbacks"] = sum(1 for r in rows if r.get("tag") == "fault" and r.get("component") in ("buffer", "learner"))
    out["worker_faults"] = sum(1 for r in rows if r.get("tag") == "fault" and r.get("component") == "worker")
    out["recovery_s"] = sorted(round(r["seconds"], 1) for r in rows if r.get("tag") == "recovered")
    out["finished"] = (run / "summary.json").exists()
    return out


def passed(report: dict) -> bool:
    c = report["checks"]
    whole = all(c[k]["duplicates_on_disk"] == c[k]["acknowledged_missing"] == c[k]["unacknowledged_on_disk"] == 0
                for k in ("trajectories", "pairs"))
    return (whole and c["episodes_repeated"] == 0 and c["version_went_back"] == 0 and c["finished"]
            and all(c["kills"].get(k, 0) >= 2 for k in ("worker", "buffer", "learner")) and report["driver_killed"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, choices=[1, 3], default=1)
    p.add_argument("--kill-every", type=int, default=15, help="learner updates between two kills")
    p.add_argument("--checkpoint-every", type=float, default=2.0)
    p.add_argument("--out", type=Path, default=None, help="scratch directory (default: a temp dir)")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "chaos.json")
    args = p.parse_args(argv)
    from ray.cluster_utils import Cluster

    scratch = args.out or Path(tempfile.mkdtemp(prefix="webshop-rl-chaos-"))
    scratch.mkdir(parents=True, exist_ok=True)
    run = scratch / "run"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3 if args.nodes == 1 else 1})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    t0 = time.perf_counter()
    try:
        # the first driver never reaches its budget: it is killed once each component was killed
        first = driver(run, cluster.address, args, updates=100 * args.kill_every, resume=False)
        report = kill_driver_when_ready(first, run, timeout=600)
        committed = load_committed(run).record["counters"]["updates"]
        report["updates_at_kill"] = committed
        second = driver(run, cluster.address, args, updates=committed + 3 * args.kill_every + 1, resume=True)
        report["resume_exit_code"] = second.wait(timeout=900)
    finally:
        cluster.shutdown()
    report.update(nodes=args.nodes, wall_s=round(time.perf_counter() - t0, 1), checks=check(run))
    report["passed"] = passed(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    c = report["checks"]
    print(f"| nodes | kills worker/buffer/learner/driver | rollbacks (recovery s) | acknowledged = on disk "
          f"(traj, pairs) | duplicates | episodes twice | versions back | finished |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {args.nodes} | {c['kills'].get('worker', 0)}/{c['kills'].get('buffer', 0)}/"
          f"{c['kills'].get('learner', 0)}/1 | {c['rollbacks']} ({', '.join(map(str, c['recovery_s']))}) | "
          f"{c['trajectories']['acknowledged']} = {c['trajectories']['on_disk']}, "
          f"{c['pairs']['acknowledged']} = {c['pairs']['on_disk']} | "
          f"{c['trajectories']['duplicates_on_disk'] + c['pairs']['duplicates_on_disk']} | {c['episodes_repeated']} "
          f"| {c['version_went_back']} | {c['finished']} |")
    print(f"{'PASSED' if report['passed'] else 'FAILED'} in {report['wall_s']} s; details in {args.json}; "
          f"run directory {run}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
