"""Chaos drills (bench/diagnostics/chaos.py) in the suite: on one Ray node and on a
simulated 3-node cluster, a run whose rollout worker, buffer and learner actors are
each killed at least twice and whose driver is SIGKILLed once (then `--resume`)
finishes, and the buffer's own ledger, the segment files and the publish log agree:
nothing acknowledged lost, nothing stored twice, no episode played twice, no version
published after a higher one."""

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "chaos", Path(__file__).resolve().parents[2] / "bench" / "diagnostics" / "chaos.py")
chaos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chaos)


@pytest.mark.ray
@pytest.mark.parametrize("nodes", [1, 3])
def test_every_component_killed_and_nothing_acknowledged_lost(tmp_path, nodes):
    out = tmp_path / "report.json"
    code = chaos.main(["--nodes", str(nodes), "--out", str(tmp_path / "drill"), "--json", str(out)])
    report = json.loads(out.read_text())
    c = report["checks"]
    for kind in ("trajectories", "pairs"):
        assert c[kind]["acknowledged"] == c[kind]["on_disk"] > 0
        assert c[kind]["duplicates_on_disk"] == c[kind]["acknowledged_missing"] == 0
        assert c[kind]["unacknowledged_on_disk"] == 0
    assert c["episodes_repeated"] == 0 and c["version_went_back"] == 0 and c["publishes"] >= 2
    assert all(c["kills"][k] >= 2 for k in ("worker", "buffer", "learner")) and report["driver_killed"]
    assert c["rollbacks"] >= 4 and c["finished"] and report["resume_exit_code"] == 0
    assert code == 0
