"""The benchmarks' timers (bench/speed/common.py, used by learner_overhead.py and
profile_cpu.py): a part nested in another counts for the inner part only, so the parts add
up to the time measured (hand-made clock)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "speed" / "common.py"
spec = importlib.util.spec_from_file_location("bench_speed_common", SCRIPT)
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nested_parts_are_exclusive_and_wrapped_methods_keep_working(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(common.time, "perf_counter", clock)
    timers = common.Timers()

    class Batch:
        @classmethod
        def from_table(cls, rows):
            clock.now += 0.25  # collating
            return cls, rows

    class Algo:
        def select(self, rows):
            clock.now += 1.0  # waiting for the buffer
            return Batch.from_table(rows)

    timers.wrap(Batch, "from_table", "collate")
    timers.wrap(Algo, "select", "fetch")
    assert Algo().select([1, 2]) == (Batch, [1, 2])
    assert Algo().select([3]) == (Batch, [3])
    assert dict(timers.seconds) == {"collate": 0.5, "fetch": 2.0}
    assert sum(timers.seconds.values()) == clock.now
