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

from cluster.components import (
    catalog_from_section,
    encoding_store,
    resolve_device,
    section_policy_config,
    share_encodings,
)
from cluster.config import CONFIG_DIR, ConfigError, TrainConfig, load_config, merge, parse_duration, parse_set
from cluster.eval.evaluate import evaluate_policy
from cluster.imitation import ESTIMATE_AFTER_S, run_il
from cluster.metrics import MetricsLog
from cluster.rllib.train import ALGO as RLLIB_ALGO, check_rllib_config, train_rllib
from cluster.run_state import RUN_ID_FILE, load_committed, new_run_id, read_run_json
from cluster.user_errors import OneLineParser, UsageError, non_negative_int, positive_int, run_reporting_user_errors
from policies.atomic import write_file_atomic
from policies.checkpoint import is_committed, load_checkpoint, read_metadata
from policies.encoder import check_encoder


def il_checkpoint(cfg: TrainConfig, catalog, out: Path, log) -> tuple[str, dict | None]:
    """The IL checkpoint to start from (trained here when none is given) and, when
    trained here, its test-split evaluation (a resumed run's from the checkpoint's metadata)."""
    if cfg.il.checkpoint:
        return cfg.il.checkpoint, None
    existing = out / "il" / "checkpoint"
    if is_committed(existing):  # resumed run: IL already done (its whole directory was committed)
        tested = read_metadata(existing).metrics.get("eval")
        same = tested is not None and tested.get("episodes") == cfg.run.final_eval_episodes
        return str(existing), tested if same else None
    policy_config = section_policy_config(cfg.policy, seed=cfg.run.seed)
    metrics = run_il(cfg.il, catalog, policy_config, out / "il", seed=cfg.run.seed,
                     eval_episodes=cfg.run.final_eval_episodes, log=log, encodings=encoding_store(cfg.policy),
                     on_estimate=lambda il_s, batch_s: log(job_estimate(cfg, il_s, batch_s)))
    return metrics["checkpoint"], metrics.get("eval")


UPDATE_IN_IL_BATCHES = 3.8
"""A learner update in the loop takes about this many first-epoch IL batches of time (rollouts
share the CPU): 1.2 s vs 0.28 s on machine A (bf16), 4.5 s vs 1.3 s on machine B (AVX2)."""
TEST_GOAL_IN_IL_BATCHES = 0.25
"""Evaluating one goal takes about this many first-epoch IL batches of time."""


def job_estimate(cfg: TrainConfig, il_seconds: float, batch_seconds: float) -> str:
    """One line: how long the whole job will take at this machine's speed, from IL's first
    minute (`il_seconds` the whole of IL training, `batch_seconds` a first-epoch batch)."""
    tests = 0 if cfg.run.algo == "il" else 3 if cfg.run.keep_best else 2
    rl_s = 0.0
    if cfg.run.algo != "il":
        by_updates = (cfg.run.updates or 0) * UPDATE_IN_IL_BATCHES * batch_seconds
        rl_s = min(x for x in (by_updates if cfg.run.updates else None, cfg.run.time_budget_s) if x is not None)
        if cfg.run.eval_interval_s > 0:  # 0 evaluates at every turn of the loop: not estimated
            tests += rl_s / cfg.run.eval_interval_s * cfg.run.eval_episodes / cfg.run.final_eval_episodes
    eval_s = (1 + tests) * cfg.run.final_eval_episodes * TEST_GOAL_IN_IL_BATCHES * batch_seconds
    total = il_seconds + rl_s + eval_s
    finish = time.strftime("%H:%M", time.localtime(time.time() + total - ESTIMATE_AFTER_S))
    rl = "" if cfg.run.algo == "il" else f", {cfg.run.algo.upper()} ~{rl_s / 60:.0f} min"
    return (f"estimate at this machine's speed: IL training ~{il_seconds / 60:.0f} min{rl}, evaluations "
            f"~{eval_s / 60:.0f} min: about {total / 60:.0f} min in all (done near {finish})")


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
        raise UsageError(f"--out {out} holds an earlier run (config.json) and is the working directory, "
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
    if cfg.run.resume:
        load_committed(out)  # a damaged or older run directory stops here, in one line, before any work
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
    share_encodings(cfg.policy, evaluator)
    before = il_eval or evaluate_policy(evaluator, catalog, test_ids, progress="test: IL checkpoint")
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
        saved_path = out / "config.json"
        if not saved_path.is_file():
            raise UsageError(f"--resume {out}: not a run directory (no config.json)")
        saved = load_config(overrides=read_run_json(saved_path), source=str(saved_path))
        cfg = replace(saved, run=replace(saved.run, resume=str(out), updates=cfg.run.updates,
                                         time_budget_s=cfg.run.time_budget_s))
    if cfg.run.algo in ("il", "ppo") and cfg.worker.pair_mode != "none":  # only DPO reads pairs
        cfg = replace(cfg, worker=replace(cfg.worker, pair_mode="none"))
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_ID_FILE).exists():  # names the run's episodes (rollout_workers.worker.trajectory_id)
        write_file_atomic(out / RUN_ID_FILE, new_run_id() + "\n")
    path = out / "config.json"
    if not (cfg.run.resume and _same_run(json.loads(path.read_text()), cfg.to_dict())):
        write_file_atomic(path, json.dumps(cfg.to_dict(), indent=2, default=str))
    return cfg, out


def _same_run(saved: dict, current: dict) -> bool:
    """Whether a resume changes nothing in the saved config but where it resumes from
    (then config.json is left as it is: a crash cannot tear what is not rewritten)."""
    def without_resume(d: dict) -> dict:
        return {**d, "run": {k: v for k, v in d["run"].items() if k != "resume"}}

    return without_resume(saved) == without_resume(json.loads(json.dumps(current, default=str)))


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
    last = evaluate_policy(evaluator, catalog, test_ids, progress="test: last weights")
    ckpt = loop.save_checkpoint(evaluator, metrics={"test": last, "il_test": before})
    after, extra = last, {}
    best = loop.best
    if best is not None and best["policy_version"] != version:  # an earlier evaluation beat the last weights
        log.write("test/last", last, step=stats["updates"])
        ckpt = out / BEST_DIR
        chosen = load_checkpoint(ckpt, device="cpu")
        share_encodings(cfg.policy, chosen)
        after = evaluate_policy(chosen, catalog, test_ids, progress="test: best evaluation's weights")
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
    after = evaluate_policy(evaluator, catalog, test_ids, progress="test: final weights")
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
    p = OneLineParser(
        prog="webshop-rl train", description="IL, then DPO or PPO, on Ray (or in this process).",
        epilog="Any config field can be set with --set SECTION.KEY=VALUE (sections: run, il, catalog, policy, "
               "worker, learner, optim, dpo, ppo, buffer; see cluster/config.py), e.g. --set dpo.beta=0.3 "
               "worker.correction_cuts=[evidence,noop].")
    p.add_argument("--config", type=Path, default=CONFIG_DIR / "cpu.yaml",
                   help="YAML preset (default: cpu.yaml, the shipped recipe; gpu.yaml, multinode.yaml)")
    p.add_argument("--algo", choices=["il", "dpo", "ppo", "rllib-ppo"],
                   help="il stops after imitation learning; rllib-ppo runs RLlib's PPO (run.algo)")
    p.add_argument("--num-workers", type=non_negative_int,
                   help="rollout worker actors; 0 runs everything in this process")
    p.add_argument("--num-learners", type=positive_int,
                   help="learner actors training together (data parallel; learner.num_learners); default 1")
    p.add_argument("--envs-per-worker", type=positive_int,
                   help="env copies each worker steps together (worker.num_envs)")
    p.add_argument("--updates", type=positive_int, help="RL learner updates after IL (run.updates; default 400)")
    p.add_argument("--time-budget", help="RL training time after IL instead, e.g. 30m, 600s (run.time_budget_s; "
                   "without --updates the run then stops on the clock alone)")
    p.add_argument("--sync-interval", help="weight publishing period, e.g. 5s (run.sync_interval_s)")
    p.add_argument("--il-checkpoint", help="start RL from this IL checkpoint instead of training one (il.checkpoint)")
    p.add_argument("--demos", help="IL demonstrations: trajectory Parquet, or WebShop's human IL jsonl (replayed "
                                   "in the run's catalog, e.g. --set catalog.source=webshop-small) (il.demos)")
    p.add_argument("--out", help="run directory (run.out)")
    p.add_argument("--resume", help="run directory to continue exactly")
    p.add_argument("--address", help="Ray address (default: RAY_ADDRESS or a local instance)")
    p.add_argument("--seed", type=non_negative_int, help="seed of IL, rollouts and the learner (run.seed)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="config overrides; the flag may be repeated, and every value counts")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of `webshop-rl train ARGS`: the preset, then the flags, then `--set`."""
    run: dict = {}
    for key in ("algo", "num_workers", "updates", "out", "resume", "address", "seed"):
        if getattr(args, key) is not None:
            run[key] = getattr(args, key)
    for flag, key in (("time_budget", "time_budget_s"), ("sync_interval", "sync_interval_s")):
        if getattr(args, flag):
            try:
                run[key] = parse_duration(getattr(args, flag))
            except ValueError as e:
                raise ConfigError(f"--{flag.replace('_', '-')}: {e}") from None
    if args.time_budget and args.updates is None:  # the user chose the clock
        run["updates"] = None
    il = {k: v for k, v in (("checkpoint", args.il_checkpoint), ("demos", args.demos)) if v is not None}
    overrides: dict = {"run": run, **({"il": il} if il else {})}
    if args.envs_per_worker:
        overrides["worker"] = {"num_envs": args.envs_per_worker}
    if args.num_learners is not None:
        overrides["learner"] = {"num_learners": args.num_learners}
    return load_config(args.config, merge(overrides, parse_set(args.set)), source="--set")


def main(argv: list[str] | None = None) -> int:
    """`webshop-rl train` (also `python -m cluster.train`, as under `ray job submit`); a user
    error is one line and exit status 2 (`run_reporting_user_errors`)."""

    def run() -> int:
        cfg = config_from_args(build_parser().parse_args(argv))
        if cfg.policy.model or cfg.policy.encoder_layers:  # a missing or unsupported encoder, or
            # one with fewer layers than asked for, stops here, before Ray and IL
            policy_config = section_policy_config(cfg.policy)
            check_encoder(policy_config.model, policy_config.encoder_layers)
        for key, flag, path in (("il.checkpoint", "--il-checkpoint", cfg.il.checkpoint),
                                ("il.demos", "--demos", cfg.il.demos)):
            if path and not cfg.run.resume and not Path(path).exists():  # likewise, before the catalog
                raise UsageError(f"{flag} ({key}) {path}: no such file or directory")
        run_training(cfg)
        return 0

    return run_reporting_user_errors("train", run)


if __name__ == "__main__":
    sys.exit(main())
