"""`webshop-rl report` on hand-made run directories."""

import json
import math

import pytest

from cluster.cli import main as cli
from cluster.eval.report import load_run, t_interval, t_quantile_975, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(root, name, algo, seed, final_success, final_score, evals, updates=100, seconds=600.0,
             il_success=0.25, with_summary=True):
    """A run directory as the driver writes it: config.json, metrics.jsonl, summary.json."""
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"run": {"algo": algo, "seed": seed, "time_budget_s": seconds}}))
    il = {"episodes": 500, "success_rate": il_success, "success_ci95": 0.04, "score": 58.0, "score_ci95": 3.0}
    final = {"episodes": 500, "success_rate": final_success, "success_ci95": 0.043, "score": final_score,
             "score_ci95": 2.5}
    rows = [{"tag": "test/il", "step": 0, "wall_s": 100.0, **il}]
    for (t, step, s, sc) in evals:
        rows.append({"tag": "rollout", "step": step, "wall_s": 100.0 + t - 1, "episodes": 8})
        rows.append({"tag": "eval", "step": step, "wall_s": 100.0 + t, "success_rate": s, "score": sc,
                     "success_ci95": 0.09, "score_ci95": 6.0, "episodes": 100})
    rows.append({"tag": "test/final", "step": updates, "wall_s": 100.0 + seconds + 20, **final})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if with_summary:
        (d / "summary.json").write_text(json.dumps({"before": il, "after": final, "updates": updates,
                                                    "seconds": seconds}))
    return d


@pytest.fixture
def runs(tmp_path):
    dirs = []
    for seed, (s, sc) in enumerate([(0.40, 70.0), (0.45, 72.0), (0.50, 74.0)]):
        dirs.append(make_run(tmp_path / "runs", f"dpo-s{seed}", "dpo", seed, s, sc,
                             [(120, 40, 0.30, 60.0), (240, 90, s, sc)], updates=100 + 10 * seed))
    for seed, (s, sc) in enumerate([(0.20, 60.0), (0.30, 64.0)]):
        dirs.append(make_run(tmp_path / "runs", f"ppo-s{seed}", "ppo", seed, s, sc,
                             [(150, 10, 0.22, 58.0), (300, 20, s, sc)], updates=20))
    return dirs


def t_cdf_by_simpson(t, df, steps=20_000):
    """Student-t CDF at t > 0: 1/2 plus Simpson's rule on the density over [0, t]."""
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = lambda x: math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))  # noqa: E731
    h = t / steps
    inner = sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, steps))
    return 0.5 + h / 3 * (pdf(0.0) + inner + pdf(t))


def test_t_quantile_by_hand():
    # df = 1 (Cauchy): tan(pi * (0.975 - 1/2)); df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)) = 0.975
    assert t_quantile_975(1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-9)
    assert t_quantile_975(2) == pytest.approx(math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2)), rel=1e-9)
    assert t_quantile_975(4) == pytest.approx(2.776, abs=5e-4)  # the printed tables' value
    for df in (4, 9, 45):  # the density integrated independently reaches 0.975 there
        assert t_cdf_by_simpson(t_quantile_975(df), df) == pytest.approx(0.975, abs=1e-9)
    assert t_quantile_975(10_000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError, match="degrees of freedom must be >= 1, got 0"):
        t_quantile_975(0)


def test_t_interval_by_hand():
    mean, half = t_interval([0.40, 0.45, 0.50])
    assert mean == pytest.approx(0.45)
    t2 = math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2))  # t_{0.975, 2} = 4.3027 (closed form for df = 2)
    assert half == pytest.approx(t2 * 0.05 / 3 ** 0.5, rel=1e-9)  # sd = 0.05
    assert t_interval([0.3]) == (0.3, None)


def test_load_run_reads_curve_and_finals(runs):
    r = load_run(runs[0])
    assert (r.algo, r.seed, r.updates, r.rl_seconds) == ("dpo", 0, 100, 600.0)
    assert [p["rl_s"] for p in r.curve] == [120.0, 240.0]  # seconds since RL started (the test/il row)
    assert [p["updates"] for p in r.curve] == [40, 90]
    assert r.final["success_rate"] == 0.40 and r.il_test["success_rate"] == 0.25


def test_report_markdown_numbers_and_pngs(runs, tmp_path):
    out = write_report(runs, tmp_path / "report")
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "| dpo-s1 | dpo | 1 | 45.0 ± 4.3 | 72.0 ± 2.5 | 25.0 | 110 | 600 |" in md
    assert "| ppo-s0 | ppo | 0 | 20.0 ± 4.3 | 60.0 ± 2.5 | 25.0 | 20 | 600 |" in md
    # by algo: DPO 45.0 +- 4.303 * 5 / sqrt(3) = 12.4 points; score 72.0 +- 4.303 * 2 / sqrt(3) = 5.0
    assert "| dpo | 3 | 45.0 ± 12.4 | 72.0 ± 5.0 | 110 ± 25 |" in md
    # PPO: two seeds, t_{0.975, 1} = 12.706: 25.0 +- 12.706 * 0.0707 / sqrt(2) = 63.5
    assert "| ppo | 2 | 25.0 ± 63.5 | 62.0 ± 25.4 | 20 ± 0 |" in md
    assert (tmp_path / "report" / "curves.png").read_bytes()[:8] == PNG_MAGIC
    assert out["png"].endswith("curves.png")


def test_report_cli_handles_a_run_without_summary_and_resumed_time(tmp_path, capsys):
    d = make_run(tmp_path, "partial", "dpo", 7, 0.3, 65.0, [(60, 5, 0.2, 55.0)], with_summary=False)
    with open(d / "metrics.jsonl", "a") as f:  # resumed: a new log starts wall_s at 0 again
        f.write(json.dumps({"tag": "test/il", "step": 5, "wall_s": 50.0, "success_rate": 0.25, "score": 58}) + "\n")
        f.write(json.dumps({"tag": "eval", "step": 9, "wall_s": 80.0, "success_rate": 0.3, "score": 60}) + "\n")
    r = load_run(d)
    assert r.curve[-1]["rl_s"] == pytest.approx(620 + 30)  # first segment ends at 720 - 100 s; then 30 s
    assert cli(["report", str(d), "--out", str(tmp_path / "rep")]) == 0
    assert "| partial | dpo | 7 | 30.0 ± 4.3 |" in capsys.readouterr().out
    assert (tmp_path / "rep" / "curves.png").read_bytes()[:8] == PNG_MAGIC


def test_report_names_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: neither metrics.jsonl nor summary.json"):
        load_run(tmp_path / "empty")
