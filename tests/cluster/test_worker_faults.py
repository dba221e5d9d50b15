"""A rollout worker that keeps dying stops the run with one clear message."""

from __future__ import annotations

import pytest

from cluster.ray_loop import WorkerFaults


def test_a_success_resets_the_count_and_other_workers_count_apart():
    faults = WorkerFaults(limit=3)
    for _ in range(2):
        faults.failed(0, OSError("node lost"))
    faults.succeeded(0)
    for _ in range(2):
        faults.failed(0, OSError("node lost"))
        faults.failed(1, OSError("node lost"))
    assert faults.total == 6 and faults.in_a_row == {0: 2, 1: 2}


def test_the_limit_stops_the_run_naming_the_worker_and_error():
    faults = WorkerFaults(limit=3)
    faults.failed(2, ValueError("x"))
    faults.failed(2, ValueError("x"))
    with pytest.raises(RuntimeError, match=r"rollout worker 2 died 3 times in a row \(last: ValueError: x\)"):
        faults.failed(2, ValueError("x\nsecond line of a traceback"))
