"""The plain-line mode of `cluster.progress.Progress` (what `ray job submit` and CI logs show)."""

from __future__ import annotations

import io

from cluster.progress import Progress


def test_plain_lines_every_tenth_with_figures():
    out = io.StringIO()
    with Progress(50, "IL epoch 1/3", "batch", file=out) as p:
        for _ in range(50):
            p.advance(loss=0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[2].startswith("IL epoch 1/3:  30% (15/50 batch) elapsed 00:00, ETA ")
    assert lines[2].endswith("| loss=0.5")
    assert lines[-1].startswith("IL epoch 1/3: 100% (50/50 batch)")


def test_set_jumps_print_one_line_and_clip_at_total():
    out = io.StringIO()
    p = Progress(600, "DPO", "s", file=out)
    p.set(250, updates=7)  # past 10%, 20%, 30% and 40% at once: one line
    p.set(900)
    p.close()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == ["42", "100"]
    assert "| updates=7" in lines[0] and "(600/600 s)" in lines[1]


def test_bar_mode_writes_a_tqdm_bar():
    out = io.StringIO()
    with Progress(4, "eval", "episode", file=out, bar=True) as p:
        p.advance(4)
    assert "eval: 100%" in out.getvalue() and "4/4 [" in out.getvalue()


def test_training_progress_counts_updates_from_a_resumed_start():
    from cluster.progress import TrainingProgress

    out = io.StringIO()
    counters = {"env_steps": 100, "pairs": 10, "updates": 20}
    p = TrainingProgress("DPO", 600, 30, counters, file=out)  # 10 updates left of 30
    p.show(dict(counters, updates=25), version=25, lag=1, recent_success=0.125, last_eval=None)
    p.show(dict(counters, updates=30), version=30, lag=0, recent_success=0.25, last_eval={"success_rate": 0.4})
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("DPO:  50% (5/10 update)") and "updates=25 version=25 lag=1 success=12.5%" in lines[0]
    assert lines[0].endswith("eval=-")
    assert lines[1].startswith("DPO: 100% (10/10 update)") and lines[1].endswith("success=25.0% eval=40.0%")
    assert "steps/s=0 pairs/s=0" in lines[1]  # nothing sampled since the start


def test_training_progress_follows_the_time_budget_without_updates():
    from cluster.progress import TrainingProgress

    p = TrainingProgress("PPO", 600, None, {"env_steps": 0, "pairs": 0, "updates": 0}, file=io.StringIO())
    assert p.bar.unit == "s" and p.bar.total == 600
