"""Shared parts of the experiment scripts: a resumable ledger of finished runs, the
training driver as a subprocess per run, and the results table (markdown, mean over
seeds with a 95% t-interval) with a PNG.

Layout of an experiment's output directory:

    <out>/ledger.jsonl     one JSON line per finished run (the resume record)
    <out>/runs/<name>/     the driver's run directory (metrics.jsonl, checkpoint, ...)
    <out>/logs/<name>.log  the run's stdout and stderr
    <out>/results.md       the table, <out>/results.png the figure, <out>/report/ the curves

A run whose name is in the ledger is skipped; a run directory left by an interrupted
run is resumed (`--resume`) when it has a saved run state, else moved aside to
`<name>.partial-<n>` and started again, so the set can be completed in pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cluster.eval.report import load_run, t_interval  # noqa: E402

# A run of seconds on the tiny random model and a 150-product catalog: proves the
# plumbing and the resume logic, measures nothing.
SMOKE_SETS = ["policy.model=tiny", "catalog.size=150", "catalog.seed=4", "run.num_workers=0",
              "il.num_demos=30", "il.epochs=1", "run.eval_episodes=4", "run.final_eval_episodes=8",
              "run.eval_interval_s=2", "run.episodes_per_round=4", "run.checkpoint_interval_s=2",
              "worker.num_envs=4", "worker.max_steps=8", "dpo.pairs_per_update=2",
              "ppo.trajectories_per_update=4", "ppo.minibatch_size=16", "ppo.ppo_epochs=1"]


def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, default=Path(default_out), help="experiment directory (ledger, runs, results)")
    p.add_argument("--budget", default="30m", help="RL wall-clock per run, e.g. 30m, 90s")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config", type=Path, help="driver YAML preset (default: the driver's, cpu.yaml)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="driver overrides for every run (the flag may be repeated)")
    p.add_argument("--smoke", action="store_true", help="tiny model and catalog, seconds per run (a plumbing check)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return p


def driver_sets(args: argparse.Namespace) -> list[str]:
    return [*(SMOKE_SETS if args.smoke else []), *args.set]


def train_command(args: argparse.Namespace, run_dir: Path, algo: str, seed: int, *extra: str,
                  sets: Sequence[str] = ()) -> list[str]:
    """`python -m cluster.train ...` for one run."""
    cmd = [sys.executable, "-m", "cluster.train", "--algo", algo, "--out", str(run_dir), "--seed", str(seed),
           "--time-budget", str(args.budget), *extra]
    if args.config:
        cmd += ["--config", str(args.config)]
    all_sets = [*driver_sets(args), *sets]
    return cmd + (["--set", *all_sets] if all_sets else [])


def catalog_flags(args: argparse.Namespace) -> list[str]:
    """`webshop-rl` catalog flags matching the driver's `catalog.*` overrides."""
    flags = []
    for item in driver_sets(args):
        key, _, value = item.partition("=")
        if key == "catalog.size":
            flags += ["--catalog-size", value]
        elif key == "catalog.seed":
            flags += ["--catalog-seed", value]
        elif key == "catalog.dir":
            flags += ["--catalog", value]
    return flags


class Ledger:
    """Finished runs, one JSON line each, appended and flushed as they finish."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def get(self, name: str) -> dict | None:
        found = [r for r in self.rows() if r["name"] == name]
        return found[-1] if found else None

    def record(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _finished(run_dir: Path, cmd: list[str]) -> bool:
    """The driver writes summary.json last (RL runs); an IL-only run ends with il_metrics.json."""
    il_only = "--algo" in cmd and cmd[cmd.index("--algo") + 1] == "il"
    return (run_dir / "summary.json").exists() or (il_only and (run_dir / "il" / "il_metrics.json").exists())


def _prepare(cmd: list[str], run_dir: Path) -> list[str]:
    """Resume an interrupted run with saved state; move a stateless leftover aside."""
    if not run_dir.exists():
        return cmd
    if (run_dir / "run_state.json").exists() and (run_dir / "config.json").exists():
        budget = cmd[cmd.index("--time-budget") + 1]
        return [sys.executable, "-m", "cluster.train", "--resume", str(run_dir), "--time-budget", budget]
    n = 1
    while run_dir.with_name(f"{run_dir.name}.partial-{n}").exists():
        n += 1
    run_dir.rename(run_dir.with_name(f"{run_dir.name}.partial-{n}"))
    return cmd


def run_once(args: argparse.Namespace, ledger: Ledger, name: str, cmd: list[str], meta: dict) -> dict | None:
    """Run `cmd` unless `name` is in the ledger; record and return its result row."""
    done = ledger.get(name)
    if done:
        print(f"[skip] {name}: in the ledger (test success {100 * done['success']:.1f}%)", flush=True)
        return done
    run_dir = args.out / "runs" / name
    if args.dry_run:
        print("[dry-run]", " ".join(cmd))
        return None
    if _finished(run_dir, cmd):  # finished, but the ledger line was lost (killed in between)
        row = {"name": name, **meta, **run_result(run_dir), "command": cmd, "recovered": True}
        ledger.record(row)
        print(f"[recovered] {name}: finished run found in {run_dir}", flush=True)
        return row
    cmd = _prepare(cmd, run_dir)
    log = args.out / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"[run] {name}: {' '.join(cmd)} (log: {log})", flush=True)
    t0 = time.time()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    with open(log, "a") as f:
        rc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        print(f"[fail] {name}: exit {rc}; see {log}", flush=True)
        return None
    row = {"name": name, **meta, **run_result(run_dir), "wall_s": time.time() - t0, "command": cmd,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    ledger.record(row)
    print(f"[done] {name}: test success {100 * row['success']:.1f}% score {row['score']:.1f}", flush=True)
    return row


def run_result(run_dir: Path) -> dict:
    """The final test-split figures of a finished run (RL or IL-only)."""
    rec = load_run(run_dir)
    if rec.final is None:
        raise ValueError(f"{run_dir}: the run finished without a final evaluation")
    f = rec.final
    return {"run_dir": str(run_dir), "success": f["success_rate"], "success_ci95": f.get("success_ci95"),
            "score": f["score"], "score_ci95": f.get("score_ci95"), "episodes": f.get("episodes"),
            "updates": rec.updates, "rl_seconds": rec.rl_seconds,
            "il_success": (rec.il_test or {}).get("success_rate")}


def ledger_and_il(args: argparse.Namespace) -> tuple[Ledger, str | None]:
    """The experiment's ledger and the IL checkpoint every run starts from
    (`args.il_checkpoint`, else one IL run recorded in the ledger)."""
    ledger = Ledger(args.out / "ledger.jsonl")
    il = ensure_il(args, ledger, args.il_checkpoint)
    if il is None:
        print("the IL run failed; nothing to compare", file=sys.stderr)
    return ledger, il


def ensure_il(args: argparse.Namespace, ledger: Ledger, il_checkpoint: str | None, seed: int = 0) -> str | None:
    """The shared IL checkpoint: the one given, else an IL run recorded as `il-seed<seed>`."""
    if il_checkpoint:
        return il_checkpoint
    name = f"il-seed{seed}"
    row = run_once(args, ledger, name, train_command(args, args.out / "runs" / name, "il", seed),
                   {"group": "il", "algo": "il", "seed": seed})
    if row is None:
        return None if not args.dry_run else str(args.out / "runs" / name / "il" / "checkpoint")
    return str(Path(row["run_dir"]) / "il" / "checkpoint")


def machine() -> str:
    """A line naming this machine (CPU count, GPU if any, torch)."""
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        tv = torch.__version__
    except Exception:  # noqa: BLE001 - the line is informative only
        tv = "?"
    return f"{platform.node()}: {os.cpu_count()} CPU cores, {gpu}, {platform.python_version()}, torch {tv}"


def group_stats(rows: list[dict], group: str) -> dict:
    g = [r for r in rows if r["group"] == group]
    out = {"group": group, "runs": len(g), "seeds": [r["seed"] for r in g]}
    for key in ("success", "score", "updates", "rl_seconds"):
        vals = [r[key] for r in g if r.get(key) is not None]
        out[key] = t_interval(vals) if vals else (None, None)
        out[key + "_values"] = vals
    return out


def paired_difference(rows: list[dict], a: str, b: str, key: str = "success") -> tuple[float, float | None, int] | None:
    """Mean of (a - b) over seeds both groups have, its 95% t half-width, and the count."""
    by = {(r["group"], r["seed"]): r[key] for r in rows}
    diffs = [by[(a, s)] - by[(b, s)] for (g, s) in by if g == a and (b, s) in by]
    if not diffs:
        return None
    mean, half = t_interval(diffs)
    return mean, half, len(diffs)


def _fmt(mean, half, scale=1.0, digits=1) -> str:
    if mean is None:
        return "-"
    return f"{scale * mean:.{digits}f}" + (f" ± {scale * half:.{digits}f}" if half is not None else "")


def results_markdown(title: str, rows: list[dict], groups: Sequence[str], notes: Sequence[str] = ()) -> str:
    lines = [f"# {title}", "", f"Machine: {machine()}", "",
             "| arm | runs (seeds) | test success % | test score | updates | training wall-clock (s) | success % per seed |",
             "|---|---|---|---|---|---|---|"]
    for g in groups:
        s = group_stats(rows, g)
        if not s["runs"]:
            lines.append(f"| {g} | 0 | not yet run | | | | |")
            continue
        per_seed = ", ".join(f"{100 * v:.1f}" for v in s["success_values"])
        lines.append(f"| {g} | {s['runs']} ({', '.join(map(str, s['seeds']))}) | {_fmt(*s['success'], scale=100)} | "
                     f"{_fmt(*s['score'])} | {_fmt(*s['updates'], digits=0)} | {_fmt(*s['rl_seconds'], digits=0)} | "
                     f"{per_seed} |")
    lines += ["", "Mean over seeds ± the 95% t-interval half-width (none with one seed); success and score "
              "from each run's final test-split evaluation."]
    lines += [""] + list(notes) if notes else []
    return "\n".join(lines) + "\n"


def plot_results(rows: list[dict], groups: Sequence[str], path: Path, title: str) -> Path:
    """Bars: mean test success and score per arm with 95% t-intervals; dots: seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (key, scale, label) in zip(axes, [("success", 100, "test success %"), ("score", 1, "test score")]):
        for i, g in enumerate(groups):
            s = group_stats(rows, g)
            if not s["runs"]:
                continue
            mean, half = s[key]
            ax.bar(i, scale * mean, yerr=None if half is None else scale * half, capsize=6, alpha=0.6)
            ax.plot([i] * len(s[key + "_values"]), [scale * v for v in s[key + "_values"]], "k.")
        ax.set_xticks(range(len(groups)), list(groups), rotation=15)
        ax.set(ylabel=label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_results(out: Path, title: str, rows: list[dict], groups: Sequence[str], notes: Sequence[str] = ()) -> Path:
    """`results.md` and `results.png` in `out` (and `report/` curves of the runs)."""
    from cluster.eval.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    rows = [r for r in rows if r["group"] in groups]
    md = out / "results.md"
    text = results_markdown(title, rows, groups, notes)
    if rows:
        plot_results(rows, groups, out / "results.png", title)
        text += "\n![results](results.png)\n"
        run_dirs = [r["run_dir"] for r in rows if Path(r["run_dir"]).exists()]
        if run_dirs:
            write_report(run_dirs, out / "report")
            text += "\nLearning curves: [report/summary.md](report/summary.md), ![curves](report/curves.png)\n"
    md.write_text(text)
    print(text)
    return md
