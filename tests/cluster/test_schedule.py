"""`Interval`: the schedule of publishes, evaluations, checkpoints and fault drills."""

from cluster.schedule import Interval


def test_due_after_the_period_and_only_restart_moves_it():
    t = Interval(5.0, start=100.0)
    assert not t.due(104.9) and t.due(105.0) and t.due(110.0)  # looking does not restart it
    t.restart(110.0)
    assert not t.due(114.0) and t.due(115.0)


def test_a_zero_period_is_always_due():
    t = Interval(0.0, start=7.0)
    assert t.due(7.0)
    t.restart(7.0)
    assert t.due(7.0)
