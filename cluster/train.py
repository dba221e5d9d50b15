"""The training driver: `webshop-rl train` and `python -m cluster.train` (the
`ray job submit` entrypoint).

IL first (from a given checkpoint, or trained on generated expert demonstrations),
then DPO or PPO: rollout workers fill the Arrow buffer, the learner updates from it
and publishes `(version, weights)` every `sync_interval_s`, workers pick the newest
version up between rounds. `--num-workers 0` runs all of it in this process.
The driver evaluates on the eval split periodically and on the test split at the
end, checkpoints every few minutes, logs `metrics.jsonl` and TensorBoard scalars,
and prints a before/after table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from cluster.components import catalog_from_section, resolve_device
from cluster.config import CONFIG_DIR, TrainConfig, load_config, parse_duration, parse_set
from cluster.eval.evaluate import evaluate_policy
from cluster.imitation import ILRunConfig, run_il
from cluster.metrics import MetricsLog
from cluster.rllib.train import ALGO as RLLIB_ALGO, check_rllib_config, train_rllib
from policies.checkpoint import load_checkpoint


def il_checkpoint(cfg: TrainConfig, catalog, out: Path, log) -> tuple[str, dict | None]:
    """The IL checkpoint to start from (trained here when none is given)."""
    if cfg.run.il_checkpoint:
        return cfg.run.il_checkpoint, None
    existing = out / "il" / "checkpoint" / "model.safetensors"
    if existing.exists():  # resumed run: IL already done
        return str(existing.parent), None
    il = ILRunConfig(out=str(out / "il"), demos=cfg.run.il_demos_path, num_demos=cfg.run.il_demos, preset=cfg.policy.preset,
                     model=cfg.policy.model, num_epochs=cfg.run.il_epochs, time_budget_s=cfg.run.il_time_budget_s,
                     eval_episodes=cfg.run.final_eval_episodes, seed=cfg.run.seed, disturb=cfg.run.il_disturb,
                     expert_pick=cfg.run.il_expert_pick,
                     device=resolve_device(cfg.policy.device))
    metrics = run_il(il, catalog, log=log)
    return metrics["checkpoint"], metrics.get("eval")


def set_aside_earlier_run(out: Path, log=print) -> Path | None:
    """Move an earlier run out of the way of a new one in the same directory.

    A new run in a directory holding an earlier one (its `config.json`) would otherwise
    pick up that run's learner, worker and buffer state and its spent budget, train
    nothing, and append to its metrics: continuing is what `--resume` is for. The
    earlier run goes to `OUT.prev-N`, so nothing of it is lost.
    """
    if not (out / "config.json").exists():
        return None
    if out.resolve() in (Path.cwd(), *Path.cwd().parents):  # `--out .`: the process stands in it
        raise ValueError(f"--out {out} holds an earlier run (config.json) and is the working directory, "
                         f"which cannot be moved aside: choose another --out, or continue it with --resume {out}")
    n = 1
    while (aside := out.with_name(f"{out.name}.prev-{n}")).exists():
        n += 1
    out.rename(aside)
    log(f"{out} held an earlier run; moved it to {aside} (to continue a run instead: --resume DIR)")
    return aside


def run_training(cfg: TrainConfig) -> dict:
    """IL (or the given checkpoint), the RL phase, the final test evaluation.

    The RL phase runs in this process (`LocalLoop`, `--num-workers 0`), on Ray actors
    (`RayLoop`) or on RLlib (`--algo rllib-ppo`). Returns the summary that is also
    written to OUT/summary.json.
    """
    if not cfg.run.resume:
        set_aside_earlier_run(Path(cfg.run.out))
    if cfg.run.algo == RLLIB_ALGO:
        check_rllib_config(cfg)
    cfg, out = prepare_run_dir(cfg)
    log = MetricsLog(out)
    catalog = catalog_from_section(cfg.catalog)
    print(f"catalog: {len(catalog)} products; goals: " + ", ".join(
        f"{s} {len(catalog.goal_ids(s))}" for s in ("train", "eval", "test")))
    t_il = time.perf_counter()
    il_path, il_eval = il_checkpoint(cfg, catalog, out, print)
    il_seconds = time.perf_counter() - t_il
    test_ids = list(catalog.goal_ids("test"))[: cfg.run.final_eval_episodes]
    eval_ids = list(catalog.goal_ids("eval"))[: cfg.run.eval_episodes]
    if cfg.run.algo == "il":
        return {"checkpoint": il_path, "before": None, "after": il_eval, "il_seconds": il_seconds}
    evaluator = load_checkpoint(il_path, device="cpu")
    before = il_eval or evaluate_policy(evaluator, catalog, test_ids)
    log.write("test/il", before, step=0)
    rl_phase = train_with_rllib if cfg.run.algo == RLLIB_ALGO else train_with_loop
    summary = rl_phase(cfg, catalog, il_path, evaluator, before, test_ids, eval_ids, out, log)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print_result_table(cfg, summary)
    log.close()
    return summary


def prepare_run_dir(cfg: TrainConfig) -> tuple[TrainConfig, Path]:
    """The run's directory and its config (a resumed run's saved one), written to OUT/config.json."""
    out = Path(cfg.run.resume or cfg.run.out)
    if cfg.run.resume:  # the saved config, with this call's budget (it may extend the run)
        saved = load_config(overrides=json.loads((out / "config.json").read_text()))
        cfg = replace(saved, run=replace(saved.run, resume=str(out), updates=cfg.run.updates,
                                         time_budget_s=cfg.run.time_budget_s))
    if cfg.run.algo in ("il", "ppo") and cfg.worker.pair_mode != "none":  # only DPO reads pairs
        cfg = replace(cfg, worker=replace(cfg.worker, pair_mode="none"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    return cfg, out


def train_with_loop(cfg: TrainConfig, catalog, il_path: str, evaluator, before: dict, test_ids: list[int],
                    eval_ids: list[int], out: Path, log: MetricsLog) -> dict:
    """DPO or PPO with the project's loop; the test evaluation of its last weights, or of
    the best periodic evaluation's (`keep_best`) when those differ. Returns the summary."""
    from cluster.loop import BEST_DIR

    if cfg.run.num_workers == 0:
        from cluster.loop import LocalLoop as loop_cls
    else:
        from cluster.ray_loop import RayLoop as loop_cls
    loop = loop_cls(cfg, catalog, il_path, resolve_device(cfg.policy.device), out, log)
    try:
        stats = loop.run(evaluator, eval_ids)
    finally:
        loop.close()
    version, weights = loop.current_weights()
    evaluator.set_weights(weights, version=version)
    last = evaluate_policy(evaluator, catalog, test_ids)
    ckpt = loop.save_checkpoint(evaluator, metrics={"test": last, "il_test": before})
    after, extra = last, {}
    best = loop.best
    if best is not None and best["policy_version"] != version:  # an earlier evaluation beat the last weights
        log.write("test/last", last, step=stats["updates"])
        ckpt = out / BEST_DIR
        chosen = load_checkpoint(ckpt, device="cpu")
        after = evaluate_policy(chosen, catalog, test_ids)
        loop.save_checkpoint(chosen, directory=ckpt, steps=best["step"],
                             metrics={"eval": best, "test": after, "il_test": before})
        extra = {"last": last, "selected": {"by": "eval", "step": best["step"], "version": best["policy_version"],
                                            "eval_success_rate": best["success_rate"], "eval_score": best["score"]}}
    log.write("test/final", after, step=stats["updates"])
    return {"checkpoint": str(ckpt), "before": before, "after": after, **extra, **stats}


def train_with_rllib(cfg: TrainConfig, catalog, il_path: str, evaluator, before: dict, test_ids: list[int],
                     eval_ids: list[int], out: Path, log: MetricsLog) -> dict:
    """RLlib's PPO (`cluster.rllib.train`), then the test evaluation of its last weights."""
    rl, stats = train_rllib(cfg, il_path, evaluator, catalog, eval_ids, out, log)
    after = evaluate_policy(evaluator, catalog, test_ids)
    log.write("test/final", after, step=stats["updates"])
    ckpt = rl.save_checkpoint(metrics={"test": after, "il_test": before})
    return {"checkpoint": str(ckpt), "before": before, "after": after, "algo": RLLIB_ALGO, **stats}


def print_result_table(cfg: TrainConfig, summary: dict) -> None:
    """The run's before/after table (markdown) and one line of its counters."""
    algo = cfg.run.algo.upper()
    rows = [("IL checkpoint", summary["before"]), (f"after {algo}", summary["after"])]
    if "selected" in summary:  # the best evaluation's weights are the result; the last ones for comparison
        rows[1] = (f"after {algo} (best eval, update {summary['selected']['step']})", summary["after"])
        rows.append((f"after {algo} (last weights, update {summary['updates']})", summary["last"]))
    print("\n| policy | test success | score | episodes |")
    print("|---|---|---|---|")
    for name, m in rows:
        print(f"| {name} | {100 * m['success_rate']:.1f}% ± {100 * m['success_ci95']:.1f} | "
              f"{m['score']:.1f} ± {m['score_ci95']:.1f} | {m['episodes']} |")
    where = summary.get("learner", {}).get("device")  # the RLlib path does not report it
    print(f"\nupdates {summary['updates']}, env steps {summary['env_steps']}, pairs {summary['pairs']}, "
          f"wall {summary['seconds']:.0f}s{f'; learner on {where}' if where else ''}; "
          f"checkpoint: {summary['checkpoint']}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="webshop-rl train", description="IL, then DPO or PPO, on Ray")
    p.add_argument("--config", type=Path, default=CONFIG_DIR / "cpu.yaml", help="YAML preset")
    p.add_argument("--algo", choices=["il", "dpo", "ppo", "rllib-ppo"])
    p.add_argument("--num-workers", type=int)
    p.add_argument("--envs-per-worker", type=int)
    p.add_argument("--time-budget", help="e.g. 30m, 600s")
    p.add_argument("--updates", type=int)
    p.add_argument("--sync-interval", help="weight publishing period, e.g. 5s")
    p.add_argument("--il-checkpoint")
    p.add_argument("--demos", help="IL demonstrations (trajectory Parquet or WebShop IL jsonl)")
    p.add_argument("--out")
    p.add_argument("--resume", help="run directory to continue")
    p.add_argument("--address", help="Ray address (default: RAY_ADDRESS or local)")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="config overrides; the flag may be repeated, and every value counts")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    run: dict = {}
    for flag, key in [("algo", "algo"), ("num_workers", "num_workers"), ("updates", "updates"),
                      ("il_checkpoint", "il_checkpoint"), ("out", "out"), ("resume", "resume"),
                      ("address", "address"), ("seed", "seed")]:
        if getattr(args, flag) is not None:
            run[key] = getattr(args, flag)
    if args.time_budget:
        run["time_budget_s"] = parse_duration(args.time_budget)
    if args.sync_interval:
        run["sync_interval_s"] = parse_duration(args.sync_interval)
    overrides: dict = {"run": run}
    if args.envs_per_worker:
        overrides["worker"] = {"num_envs": args.envs_per_worker}
    from cluster.config import merge

    overrides = merge(overrides, parse_set(args.set))
    cfg = load_config(args.config, overrides)
    if args.demos:
        cfg = replace(cfg, run=replace(cfg.run, il_demos_path=args.demos))
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_training(config_from_args(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
