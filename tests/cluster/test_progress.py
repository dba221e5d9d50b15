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
