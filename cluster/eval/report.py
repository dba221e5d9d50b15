"""`webshop-rl report`: learning curves and a markdown summary of training runs.

Reads what the driver writes into each run directory (`cluster/train.py`):

- `config.json`: the TrainConfig (algo, seed, budgets);
- `metrics.jsonl`: one row per event, `{"tag", "step" (learner updates), "wall_s", ...}`;
  `eval` rows hold the periodic eval-split `success_rate` / `score`, `test/il` the IL
  checkpoint on the test split (written just before RL starts), `test/final` the end;
- `summary.json`: the final test-split figures (`after`), `updates`, RL `seconds`;
- for `--algo il` runs, `il/il_metrics.json` (`eval`) instead of the summary.

Wall-clock on the curves is seconds since RL started (the `test/il` row), summed over
resumed segments (a resumed run starts its `wall_s` at 0 again).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from cluster.run_state import RunStateError, read_run_json


def t_quantile_975(df: float) -> float:
    """t_{0.975} with `df` degrees of freedom: the two-sided 95% Student-t quantile."""
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(stats.t.ppf(0.975, df))


def t_interval(values: list[float]) -> tuple[float, float | None]:
    """(mean, half-width of the 95% t-interval of the mean); None with one value."""
    if not values:
        raise ValueError("no values")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t_quantile_975(n - 1) * sd / math.sqrt(n)


def fmt_interval(mean: float | None, half: float | None, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    if mean is None:
        return "-"
    text = f"{scale * mean:.{digits}f}{unit}"
    return text + (f" ± {scale * half:.{digits}f}" if half is not None else "")


@dataclass
class RunRecord:
    """What a report needs from one run directory."""

    name: str
    algo: str
    seed: int | None
    curve: list[dict] = field(default_factory=list)  # eval rows: rl_s, updates, success_rate, score
    il_test: dict | None = None  # the IL checkpoint on the test split
    final: dict | None = None  # the final test-split evaluation
    updates: int | None = None
    rl_seconds: float | None = None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise RunStateError(f"{path}:{i}: not a JSON line: {e}") from None
    return rows


def _rl_time(rows: list[dict]) -> list[float]:
    """Seconds since RL started for each row, summed over resumed segments."""
    out, offset, seg_start, last = [], 0.0, 0.0, None
    for r in rows:
        w = float(r.get("wall_s", 0.0))
        if last is not None and w < last:  # a resumed run: a new MetricsLog, wall_s from 0
            offset, seg_start = out[-1] if out else 0.0, 0.0
        if r.get("tag") == "test/il":
            seg_start = w
        out.append(offset + max(0.0, w - seg_start))
        last = w
    return out


def load_run(run_dir: str | Path, name: str | None = None) -> RunRecord:
    """The run's algo, seed, eval curve and final figures."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such run directory")
    cfg_path = d / "config.json"
    cfg = read_run_json(cfg_path) if cfg_path.exists() else {}
    run_cfg = cfg.get("run", {})
    rec = RunRecord(name=name or d.name, algo=str(run_cfg.get("algo", "?")), seed=run_cfg.get("seed"))
    metrics = d / "metrics.jsonl"
    rows = _read_jsonl(metrics) if metrics.exists() else []
    for r, t in zip(rows, _rl_time(rows)):
        tag = r.get("tag")
        if tag == "eval":
            rec.curve.append({"rl_s": t, "updates": int(r.get("step", 0)), "success_rate": r["success_rate"],
                              "score": r["score"]})
        elif tag == "test/il" and rec.il_test is None:
            rec.il_test = r
        elif tag == "test/final":
            rec.final, rec.updates = r, int(r.get("step", 0))
    summary = d / "summary.json"
    if summary.exists():
        s = read_run_json(summary)
        rec.final = s.get("after") or rec.final
        rec.il_test = s.get("before") or rec.il_test
        rec.updates = s.get("updates", rec.updates)
        rec.rl_seconds = s.get("seconds")
    il_metrics = d / "il" / "il_metrics.json"
    if rec.final is None and il_metrics.exists():  # an --algo il run
        m = read_run_json(il_metrics)
        rec.final, rec.rl_seconds = m.get("eval"), m.get("train_seconds")
    if not rows and rec.final is None:
        raise FileNotFoundError(f"{d}: neither metrics.jsonl nor summary.json (not a run directory?)")
    return rec


def summary_markdown(runs: list[RunRecord], images: list[str] = ()) -> str:
    """A table per run and, per algo, the mean over seeds with a 95% t-interval."""
    lines = ["# Training runs", "",
             "| run | algo | seed | test success % (95% CI) | test score (95% CI) | IL test success % | "
             "updates | RL wall-clock (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        f = r.final or {}
        lines.append(
            f"| {r.name} | {r.algo} | {'-' if r.seed is None else r.seed} | "
            f"{fmt_interval(f.get('success_rate'), f.get('success_ci95'), 100)} | "
            f"{fmt_interval(f.get('score'), f.get('score_ci95'))} | "
            f"{fmt_interval((r.il_test or {}).get('success_rate'), None, 100)} | "
            f"{'-' if r.updates is None else r.updates} | "
            f"{'-' if r.rl_seconds is None else f'{r.rl_seconds:.0f}'} |")
    lines += ["", "## By algorithm (mean over runs, 95% t-interval)", "",
              "| algo | runs | test success % | test score | updates |", "|---|---|---|---|---|"]
    for algo in sorted({r.algo for r in runs}):
        group = [r for r in runs if r.algo == algo and r.final]
        if not group:
            continue
        succ = t_interval([r.final["success_rate"] for r in group])
        score = t_interval([r.final["score"] for r in group])
        ups = [r.updates for r in group if r.updates is not None]
        upd = fmt_interval(*t_interval(ups), digits=0) if ups else "-"
        lines.append(f"| {algo} | {len(group)} | {fmt_interval(*succ, scale=100)} | {fmt_interval(*score)} | {upd} |")
    lines += ["", "Success and score of single runs: the final test-split evaluation with its normal 95% "
              "interval over episodes; by algorithm: the t-interval over runs (seeds)."]
    if images:
        lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in images]
    return "\n".join(lines) + "\n"


def _mean_curve(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Mean of curves interpolated on a grid over the x range they all cover."""
    lo = max(c[0].min() for c in curves)
    hi = min(c[0].max() for c in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    return grid, np.mean([np.interp(grid, x, y) for x, y in curves], axis=0)


def plot_curves(runs: list[RunRecord], path: str | Path) -> str:
    """success and score (eval split) vs RL wall-clock and vs updates; one colour per
    algo, a thin line per run (seed), a thick line for the mean over its runs; test-split
    figures of the IL start (o) and the end (*) as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    algos = sorted({r.algo for r in runs})
    for row, (metric, scale, label) in enumerate([("success_rate", 100, "success % (eval split)"),
                                                  ("score", 1, "score (eval split)")]):
        for col, (xkey, xlabel) in enumerate([("rl_s", "RL wall-clock (s)"), ("updates", "learner updates")]):
            ax = axes[row][col]
            for k, algo in enumerate(algos):
                c = colors[k % len(colors)]
                curves = []
                for r in (r for r in runs if r.algo == algo):
                    x = np.array([p[xkey] for p in r.curve], dtype=float)
                    y = np.array([scale * p[metric] for p in r.curve], dtype=float)
                    if len(x):
                        ax.plot(x, y, color=c, alpha=0.35, linewidth=1)
                        curves.append((x, y))
                    end_x = r.rl_seconds if xkey == "rl_s" else r.updates
                    end_x = end_x if end_x is not None else (x[-1] if len(x) else 0)
                    if r.il_test:
                        ax.plot([0], [scale * r.il_test[metric]], "o", color=c, alpha=0.5, markersize=4)
                    if r.final:
                        ax.plot([end_x], [scale * r.final[metric]], "*", color=c, alpha=0.7, markersize=8)
                if curves:
                    gx, gy = _mean_curve(curves)
                    ax.plot(gx, gy, color=c, linewidth=2.5, label=f"{algo} (mean of {len(curves)})")
            ax.set(xlabel=xlabel, ylabel=label)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.suptitle("eval-split curves; o = IL checkpoint on the test split, * = final test split")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write_report(run_dirs: list[str | Path], out: str | Path) -> dict:
    """Write `curves.png` and `summary.md` into `out`; returns their paths and the runs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = [Path(d) for d in run_dirs]
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):  # same leaf names (e.g. many "run"): use parent/leaf
        names = [f"{d.parent.name}/{d.name}" for d in dirs]
    runs = [load_run(d, n) for d, n in zip(dirs, names)]
    png = plot_curves(runs, out / "curves.png")
    md = out / "summary.md"
    md.write_text(summary_markdown(runs, [png]))
    return {"png": png, "markdown": str(md), "runs": runs}
