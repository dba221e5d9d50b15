"""The experiment scripts' ledger: finished runs are recorded once and skipped,
interrupted ones resumed or restarted, and the results table holds the right numbers.
The "driver" here is a stand-in command that writes what the real one writes."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "experiments"))

import common  # noqa: E402

FAKE_DRIVER = """
import json, sys
from pathlib import Path
out, success = Path(sys.argv[1]), float(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
(out / "config.json").write_text(json.dumps({"run": {"algo": "dpo", "seed": 0}}))
final = {"success_rate": success, "success_ci95": 0.04, "score": 100 * success, "score_ci95": 2.0, "episodes": 500}
(out / "metrics.jsonl").write_text(json.dumps({"tag": "test/final", "step": 7, "wall_s": 9.0, **final}) + "\\n")
(out / "summary.json").write_text(json.dumps({"after": final, "updates": 7, "seconds": 9.0}))
with open(out.parent.parent / "calls.txt", "a") as f:
    f.write(out.name + "\\n")
"""


def args_for(tmp_path):
    return argparse.Namespace(out=tmp_path, dry_run=False)


def fake_cmd(tmp_path, name, success):
    script = tmp_path / "fake_driver.py"
    script.write_text(FAKE_DRIVER)
    return [sys.executable, str(script), str(tmp_path / "runs" / name), str(success), "--algo", "dpo",
            "--time-budget", "1s"]


def test_finished_runs_are_recorded_once_and_skipped(tmp_path):
    ledger = common.Ledger(tmp_path / "ledger.jsonl")
    args = args_for(tmp_path)
    for _ in range(2):  # the second pass skips both
        for seed, s in enumerate([0.40, 0.50]):
            row = common.run_once(args, ledger, f"dpo-seed{seed}", fake_cmd(tmp_path, f"dpo-seed{seed}", s),
                                  {"group": "dpo", "algo": "dpo", "seed": seed})
            assert row["success"] == s and row["updates"] == 7
    assert (tmp_path / "calls.txt").read_text().split() == ["dpo-seed0", "dpo-seed1"]
    assert [r["name"] for r in ledger.rows()] == ["dpo-seed0", "dpo-seed1"]


def test_a_finished_run_missing_from_the_ledger_is_recovered_not_rerun(tmp_path):
    ledger = common.Ledger(tmp_path / "ledger.jsonl")
    common.run_once(args_for(tmp_path), ledger, "a", fake_cmd(tmp_path, "a", 0.3), {"group": "x", "seed": 0})
    ledger.path.write_text("")  # killed after the run finished, before the ledger line
    row = common.run_once(args_for(tmp_path), ledger, "a", fake_cmd(tmp_path, "a", 0.3), {"group": "x", "seed": 0})
    assert row["recovered"] and row["success"] == 0.3
    assert (tmp_path / "calls.txt").read_text().split() == ["a"]


def test_interrupted_runs_resume_or_restart(tmp_path):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    cmd = ["python", "-m", "cluster.train", "--algo", "dpo", "--out", str(run), "--time-budget", "30m"]
    assert common._prepare(cmd, run) == cmd and not run.exists()  # no saved state: moved aside
    assert (tmp_path / "runs" / "r.partial-1").is_dir()
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "run_state.json").write_text("{}")
    resumed = common._prepare(cmd, run)
    assert resumed[-4:] == ["--resume", str(run), "--time-budget", "30m"]


def test_failed_run_is_not_recorded(tmp_path):
    ledger = common.Ledger(tmp_path / "ledger.jsonl")
    cmd = [sys.executable, "-c", "raise SystemExit(3)", "--algo", "dpo"]
    assert common.run_once(args_for(tmp_path), ledger, "bad", cmd, {"group": "x", "seed": 0}) is None
    assert ledger.rows() == []
    assert (tmp_path / "logs" / "bad.log").exists()


def test_results_table_mean_and_t_interval(tmp_path):
    rows = [{"group": "dpo", "seed": s, "success": v, "score": 100 * v, "updates": 10, "rl_seconds": 60.0,
             "run_dir": str(tmp_path / "missing")} for s, v in enumerate([0.40, 0.45, 0.50])]
    rows += [{"group": "ppo", "seed": 0, "success": 0.3, "score": 30.0, "updates": 5, "rl_seconds": 60.0,
              "run_dir": str(tmp_path / "missing")}]
    md = common.write_results(tmp_path / "res", "t", rows, ["dpo", "ppo", "mix"]).read_text()
    assert "| dpo | 3 (0, 1, 2) | 45.0 ± 12.4 | 45.0 ± 12.4 | 10 ± 0 | 60 ± 0 | 40.0, 45.0, 50.0 |" in md
    assert "| ppo | 1 (0) | 30.0 | 30.0 | 5 | 60 | 30.0 |" in md
    assert "| mix | 0 | not yet run |" in md
    assert (tmp_path / "res" / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert common.paired_difference(rows, "dpo", "ppo") == pytest.approx((0.1, None, 1))
