"""Exact resume in one process: N updates straight, and the same run SIGKILLed after a
few checkpoint generations and resumed to N, end with the same weights bit for bit and
the same buffer rows; the buffer's ledger names exactly the rows on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from cluster.run_state import load_committed, read_pointer
from rollout_workers.ledger import read_ledger

N_UPDATES = 6
SETTINGS = {
    "policy": {"model": "tiny"},
    "catalog": {"size": 150, "seed": 4, "train_goals": 0},
    "worker": {"num_envs": 3, "max_steps": 6},
    "dpo": {"pairs_per_update": 2},
    "il": {"num_demos": 20, "epochs": 1},
    "run": {"algo": "dpo", "num_workers": 0, "eval_episodes": 0, "final_eval_episodes": 2, "episodes_per_round": 3,
            "checkpoint_interval_s": 0, "time_budget_s": 3600, "seed": 5},
}
CHILD = """
import json, sys
from cluster.config import load_config
from cluster.train import run_training
overrides = json.loads(sys.argv[1])
run_training(load_config(overrides=overrides))
"""


def start(overrides: dict) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(overrides)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def with_run(base: dict, **run) -> dict:
    return {**base, "run": {**base["run"], **run}}


def segments(run: Path, kind: str) -> list[dict]:
    files = sorted((run / "buffer" / kind).glob("seg-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def final_weights(run: Path) -> dict:
    return load_file(str(load_committed(run).policy_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def il_checkpoint(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("il") / "run"
    finish(start(with_run(SETTINGS, algo="il", out=str(out))))
    return str(out / "il" / "checkpoint")


def test_killed_and_resumed_equals_straight(tmp_path, il_checkpoint):
    base = {**SETTINGS, "il": {**SETTINGS["il"], "checkpoint": il_checkpoint}}
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    finish(start(with_run(base, out=str(straight), updates=N_UPDATES)))
    broken.mkdir()  # the same run id, so the same episode ids (rollout_workers.worker.trajectory_id)
    (broken / "run_id").write_text((straight / "run_id").read_text())

    proc = start(with_run(base, out=str(broken), updates=N_UPDATES))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # a few generations committed, then kill
        pointer = read_pointer(broken) if (broken / "run_state.json").exists() else None
        if pointer and load_committed(broken).record["counters"]["updates"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    time.sleep(0.3)  # somewhere inside the next rounds, updates or saves
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_committed(broken).record["counters"]["updates"]
    assert 2 <= killed_at < N_UPDATES
    finish(start(with_run(base, out=str(broken), updates=N_UPDATES, resume=str(broken))))

    a, b = final_weights(straight), final_weights(broken)
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    for kind in ("trajectories", "pairs"):
        rows_a, rows_b = segments(straight, kind), segments(broken, kind)
        assert rows_a == rows_b and rows_a
        id_field = "traj_id" if kind == "trajectories" else "pair_id"
        ids = [r[id_field] for r in rows_b]
        assert len(set(ids)) == len(ids)
        assert sorted(read_ledger(broken / "buffer")[kind]) == sorted(ids)  # acknowledged == on disk
    for run in (straight, broken):
        counters = load_committed(run).record["counters"]
        assert counters["updates"] == N_UPDATES
    ca, cb = (load_committed(r).record["counters"] for r in (straight, broken))
    assert {k: v for k, v in ca.items() if k != "rl_seconds"} == {k: v for k, v in cb.items() if k != "rl_seconds"}
