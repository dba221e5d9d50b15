"""A simulated 3-node Ray cluster on one machine (`ray.cluster_utils.Cluster`).

Starts a head node and two worker nodes (2 logical CPUs each), runs the training
driver with two rollout workers spread over the nodes (SPREAD), removes the node
that hosts worker 1 part-way through, and reports: which node each worker ran on
before and after, the faults the driver saw, whether the run finished, and that
the buffer on disk holds every acknowledged trajectory.

    python bench/speed/multinode_sim.py                 # tiny model, ~2 min
    python bench/speed/multinode_sim.py --model default --budget 180
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

from cluster.config import load_config
from cluster.train import run_training


def rollout_rows(metrics: Path) -> list[dict]:
    if not metrics.exists():
        return []
    rows = []
    for line in metrics.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if row.get("tag") == "rollout":
            rows.append(row)
    return rows


def remove_worker_node(cluster: Cluster, metrics: Path, after_s: float, worker: int, report: dict) -> None:
    """After `after_s`, remove the (non-head) node worker `worker` last reported from."""
    time.sleep(after_s)
    head = cluster.head_node.node_id
    for _ in range(120):
        rows = rollout_rows(metrics)
        nodes = [r["node_id"] for r in rows if r.get("worker_id") == worker]
        if nodes and nodes[-1] != head:
            report["removed_wall_s"] = rows[-1]["wall_s"]  # the run log's clock at removal
            victim = next(n for n in cluster.list_all_nodes() if n.node_id == nodes[-1])
            report["removed_node"] = victim.node_id
            report["removed_at_s"] = time.perf_counter() - report["t0"]
            cluster.remove_node(victim)
            return
        time.sleep(1.0)
    report["removed_node"] = None  # the worker never ran off the head node


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="policy encoder (tiny: a random 2-layer BERT)")
    ap.add_argument("--budget", type=float, default=75.0, help="training seconds")
    ap.add_argument("--remove-after", type=float, default=25.0, help="seconds into training")
    ap.add_argument("--out", default=None, help="run directory (default: a temp dir)")
    args = ap.parse_args(argv)

    out = Path(args.out or tempfile.mkdtemp(prefix="multinode-")) / "run"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    nodes = {n.node_id: ("head" if n is cluster.head_node else f"node{i}")
             for i, n in enumerate(cluster.list_all_nodes())}
    cfg = load_config(overrides={
        "policy": {"model": args.model},
        "catalog": {"size": 300, "seed": 0},
        "worker": {"num_envs": 4, "max_steps": 10},
        "il": {"num_demos": 40, "epochs": 1},
        "run": {"algo": "dpo", "out": str(out), "num_workers": 2, "time_budget_s": args.budget,
                "eval_episodes": 0, "final_eval_episodes": 20,
                "episodes_per_round": 4, "sync_interval_s": 2, "checkpoint_interval_s": 30,
                "worker_placement": "spread"},
    })
    report: dict = {"t0": time.perf_counter()}
    killer = threading.Thread(target=remove_worker_node,
                              args=(cluster, out / "metrics.jsonl", args.remove_after, 1, report), daemon=True)
    killer.start()
    summary = run_training(cfg)
    killer.join(timeout=5)

    rows = rollout_rows(out / "metrics.jsonl")
    removed_at = report.get("removed_wall_s", float("inf"))
    placement: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        phase = "after" if r["wall_s"] > removed_at else "before"
        names = placement.setdefault(f"worker {r['worker_id']}", {"before": [], "after": []})[phase]
        name = nodes.get(r["node_id"], r["node_id"][:8])
        if name not in names:
            names.append(name)
    faults = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
              if '"tag": "fault"' in line]
    on_disk = pq.read_table(out / "buffer" / "trajectories").num_rows
    acked = sum(r["acked"] for r in rows)
    print(f"nodes: {sorted(nodes.values())}")
    print(f"removed: {nodes.get(report.get('removed_node'), report.get('removed_node'))} "
          f"{removed_at:.0f}s into the run")
    for worker, where in sorted(placement.items()):
        print(f"{worker}: before removal on {where['before']}, after on {where['after']}")
    print(f"faults seen by the driver: {len(faults)} ({sorted({f.get('error') for f in faults})})")
    print(f"run finished: updates {summary.get('updates')}, episodes {summary.get('episodes')}, "
          f"final test success {100 * summary['after']['success_rate']:.1f}% on {summary['after']['episodes']}")
    print(f"buffer: {on_disk} trajectories on disk, {acked} acknowledged")
    ray.shutdown()
    cluster.shutdown()
    return 0 if on_disk >= acked and report.get("removed_node") else 1


if __name__ == "__main__":
    raise SystemExit(main())
