"""bench/gpu_check.py: without a GPU the full check stops in one line (exit 2); --smoke runs
every part at tiny sizes, anywhere, and says plainly when no GPU was present."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
NO_GPU = ("no GPU present: the GPU parts (acting, learner, weights to the host) ran on the CPU at smoke sizes; "
          "none of the figures above is a GPU figure")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only behaviour")
def test_without_a_gpu_the_full_check_stops_in_one_line():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gpu_check: error: no GPU: ")
    assert "--smoke" in proc.stderr


@pytest.mark.ray
def test_the_smoke_mode_runs_every_part(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["info"]["mode"] == "smoke (tiny sizes)"
    assert list(results["encoders"]) == ["tiny BERT (stand-in for MiniLM-L6)",
                                         "BERT-shaped tiny stand-in, random weights"]
    for row in results["encoders"].values():
        assert len(row["acting"]["2"]) == 2 and min(row["acting"]["2"]) > 0  # 2 timed calls of 2 envs
        for algo in ("dpo", "ppo"):
            timed = row["learner"][algo]
            assert len(timed["s_per_update"]) == 2 and min(timed["items_per_s"]) > 0  # 2 timed updates
        assert set(row["learner"]["dpo_selecting"]) == {"in line", "prefetched"}
    arms = results["attention"]  # the GPU attention kernels as shipped against cuDNN's first
    assert list(arms) == ["shipped", "cudnn first"]
    for arm in arms.values():  # 2 act calls on new shapes, the same 2 again, 2 DPO updates
        assert [len(arm[k]) for k in ("act_new_shapes_s", "act_repeated_shapes_s", "dpo_s_per_update")] == [2, 2, 2]
        assert min(row["learner"]["dpo_selecting"].values()) > 0
    first = results["encoders"]["tiny BERT (stand-in for MiniLM-L6)"]
    assert first["worker_env_steps_per_s"] > 0 and len(first["weights_to_host_s"]) == 2
    assert results["rollout"]["workers"] == 2 and min(results["rollout"]["env_steps_per_s"]) > 0
    assert min(results["rollout"]["gpu_acting_env_steps_per_s"]) > 0  # workers on half a (logical) GPU each
    for preset in ("full", "cpu"):
        push = results["weight_push"][preset]
        assert len(push["object_store_s"]) == 2 and push["max_lag"] == 0  # every worker got each version
    assert results["weight_push"]["cpu"]["mib"] < results["weight_push"]["full"]["mib"]
    lines = proc.stdout.splitlines()
    for heading in ("1. acting on", "2. the learner on", "3. env steps/s with all 2 cores", "4. weight push"):
        assert any(line.startswith(heading) for line in lines), heading
    if not torch.cuda.is_available():
        assert results["info"]["device"] == "CPU only (no GPU)" and lines[-1] == NO_GPU
