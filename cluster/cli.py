"""The `webshop-rl` command: catalogs, rollouts, play, demos, eval, compare, report, train, serve, data.

Subcommands added by later parts of the project (train, eval, serve, ...) hang
off the same parser.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cluster.catalog_cli import add_prepare_parser
from cluster.data.cli import add_data_parser
from cluster.data.sources import catalog_dir
from cluster.serve.command import add_serve_parser
from cluster.user_errors import OneLineParser, UsageError, non_negative_int, positive_int, run_reporting_user_errors
from envs import Catalog, WebShopEnv
from envs.agents import AGENTS, make_agent
from envs.generate import GeneratorConfig, write_catalog
from envs.generate import load_catalog as load_generated_or_dir
from envs.rollout import COMPONENTS, run_episode, summarize


def add_catalog_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("catalog (default: the generated 1k-product catalog)")
    g.add_argument("--catalog", type=Path, help="directory with WebShop-format files, or webshop-small | "
                                                "webshop-full (fetched by `webshop-rl data fetch`)")
    g.add_argument("--products", type=Path, help="items_shuffle*.json")
    g.add_argument("--attributes", type=Path, help="items_ins_v2*.json")
    g.add_argument("--human-instructions", type=Path, help="items_human_ins.json")
    g.add_argument("--catalog-size", type=positive_int, default=1000, help="generated catalog size")
    g.add_argument("--catalog-seed", type=non_negative_int, default=0, help="generated catalog seed")
    g.add_argument("--train-goals", type=non_negative_int, default=0,
                   help="fresh generated goals added to the train split (generated catalogs; test/eval unchanged)")


def catalog_from_args(args: argparse.Namespace) -> Catalog:
    if args.products or args.attributes:
        if not (args.products and args.attributes):
            raise UsageError("--products and --attributes go together")
        return Catalog.from_files(args.products, args.attributes, args.human_instructions)
    return load_generated_or_dir(catalog_dir(directory=args.catalog), args.catalog_size, args.catalog_seed,
                                 args.train_goals)


def print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for k, v in summary.items():
        print(f"{k:>16}: {v:.4f}" if isinstance(v, float) else f"{k:>16}: {v}")


def cmd_catalog_build(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = write_catalog(GeneratorConfig(size=args.size, seed=args.seed), args.out)
    cat = Catalog.from_dir(out)
    print(f"wrote {len(cat)} products and {len(cat.goals)} goals to {out} in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    catalog = catalog_from_args(args)
    env = WebShopEnv(catalog=catalog, max_steps=args.max_steps)
    ids = list(catalog.goal_ids(args.split))[: args.episodes]
    if Path(args.policy).exists():
        from cluster.eval.evaluate import evaluate_checkpoint
        from cluster.run_state import result_checkpoint

        summary = evaluate_checkpoint(result_checkpoint(args.policy), env, ids)
    else:
        if args.policy not in AGENTS:
            raise UsageError(f"--policy {args.policy}: neither a checkpoint directory nor one of {sorted(AGENTS)}")
        agent = make_agent(args.policy, seed=args.seed)
        t0 = time.perf_counter()
        results = [run_episode(env, agent, g, seed=g) for g in ids]
        summary = summarize(results)
        summary["seconds"] = time.perf_counter() - t0
    summary.update(policy=args.policy, split=args.split, catalog=catalog.source)
    print_summary(summary, args.json)
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    catalog = catalog_from_args(args)
    env = WebShopEnv(catalog=catalog, max_steps=args.max_steps, observation_mode=args.mode)
    goal_id = args.goal_id if args.goal_id is not None else catalog.goal_ids("test")[0]
    if not 0 <= goal_id < len(catalog.goals):
        raise UsageError(f"--goal-id {goal_id} is out of range: this catalog's goals are 0 to {len(catalog.goals) - 1}")
    obs, info = env.reset(options={"goal_id": goal_id})
    steps = [{"observation": obs, "available_actions": info["available_actions"]}]
    scripted = args.actions is not None
    reward, done = 0.0, False
    queue = list(args.actions or [])
    while not done:
        if scripted:
            if not queue:
                break
            action = queue.pop(0)
        else:
            print("\n" + obs + "\n")
            print("actions:", ", ".join(info["available_actions"]))
            try:
                action = input("> ").strip()
            except EOFError:
                break
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        steps.append({"action": action, "observation": obs, "available_actions": info["available_actions"],
                      "reward": reward, "valid": info["valid"], "reward_info": info.get("reward_info")})
    result = {"goal_id": goal_id, "instruction": env.session.goal.instruction_text,
              "reward": reward, "done": done, "steps": steps}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if scripted:  # what the script did, and where it left the shop
            for step in steps[1:]:
                note = "" if step["valid"] else "   (not available on that page: nothing happened)"
                print(f"> {step['action']}{note}")
            print("\n" + obs)
        print(f"\nreward: {reward:.3f}" + ("" if done else " (episode not finished)"))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from cluster.imitation import generate_demos
    from rollout_workers.recording import write_trajectories

    catalog = catalog_from_args(args)
    t0 = time.perf_counter()
    trajs = generate_demos(catalog, args.policy, args.episodes, split=args.split, seed=args.seed)
    path = write_trajectories(trajs, args.out)
    ok = sum(t.score >= 1.0 for t in trajs)
    print(f"wrote {len(trajs)} {args.policy} trajectories ({ok} successful, "
          f"{sum(t.num_steps for t in trajs)} steps) to {path} in {time.perf_counter() - t0:.1f}s")
    return 0


def format_eval(summary: dict) -> str:
    """An evaluation as a small table: each figure with its 95% interval half-width."""
    rows = [("success %", 100 * summary["success_rate"], 100 * summary["success_ci95"], 1),
            ("score x100", summary["score"], summary["score_ci95"], 1)]
    for c in COMPONENTS:
        if summary.get(f"mean_{c}") is not None:
            rows.append((f"{c} (bought)", summary[f"mean_{c}"], summary.get(f"mean_{c}_ci95"), 3))
    rows.append(("steps", summary["mean_steps"], summary.get("mean_steps_ci95"), 2))
    head = (f"{summary.get('checkpoint', '')}: {summary['episodes']} episodes of the {summary.get('split')} split, "
            f"{'greedy' if summary.get('greedy', True) else 'sampled'} decoding, catalog {summary.get('catalog')}")
    lines = [head, "", "| figure | mean | 95% interval |", "|---|---|---|"]
    for name, mean, half, d in rows:
        lines.append(f"| {name} | {mean:.{d}f} | " + (f"± {half:.{d}f} |" if half is not None else "- |"))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from cluster.eval.evaluate import evaluate_policy
    from cluster.run_state import result_checkpoint
    from policies.checkpoint import load_checkpoint

    catalog = catalog_from_args(args)
    policy = load_checkpoint(result_checkpoint(args.checkpoint))
    ids = list(catalog.goal_ids(args.split))[: args.episodes]
    greedy = args.decoding == "greedy" and not args.sampled
    summary = evaluate_policy(policy, catalog, ids, greedy=greedy, max_steps=args.max_steps, seed=args.seed,
                              progress=None if args.json else f"eval {args.split}")
    summary.update(checkpoint=str(args.checkpoint), split=args.split, catalog=catalog.source)
    if args.json:
        print_summary(summary, True)
    else:
        print(format_eval(summary))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import numpy as np

    from cluster.eval.compare import ThompsonAB, format_table, plot_comparison, run_thompson
    from cluster.run_state import result_checkpoint
    from policies.checkpoint import load_checkpoint
    from rollout_workers.worker import RolloutWorker, WorkerConfig

    if len(args.checkpoints) < 2:
        raise UsageError(f"compare needs at least two checkpoints, got {len(args.checkpoints)}")
    catalog = catalog_from_args(args)
    policies = [load_checkpoint(result_checkpoint(c)) for c in args.checkpoints]
    goals = [int(g) for g in np.random.default_rng(args.seed).permutation(list(catalog.goal_ids(args.split)))]
    wcfg = WorkerConfig(num_envs=1, max_steps=args.max_steps, greedy=not args.sampled, pair_mode="none")
    ab = ThompsonAB([str(c) for c in args.checkpoints], metric=args.metric, threshold=args.threshold,
                    allocation=args.allocation, seed=args.seed)

    def play(arm: int) -> float:  # the next goal of the split, on the chosen arm
        goal = goals[ab.rounds % len(goals)]
        worker = RolloutWorker(-1, catalog, policies[arm], wcfg, seed=args.seed + ab.rounds, goal_ids=[goal])
        return worker.sample(1).trajectories[0].score

    def show(r: int, arm: int, score: float, pb) -> None:
        if not args.json and (r + 1) % 10 == 0:
            print(f"episode {r + 1}: P(best) " + " ".join(f"{p:.3f}" for p in pb), flush=True)

    t0 = time.perf_counter()
    run = run_thompson(ab, play, args.budget, on_round=show)
    rows = ab.table(np.array(run.prob_best[-1]) if run.prob_best else None)
    png = plot_comparison(ab, run, str(args.out)) if args.out else None
    result = {"episodes": run.episodes, "stopped": run.stopped, "threshold": args.threshold, "metric": args.metric,
              "allocation": args.allocation, "split": args.split, "seconds": time.perf_counter() - t0,
              "arms": rows, "png": png}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    best = max(rows, key=lambda r: r["prob_best"])
    verdict = (f"{best['arm']} is best with P = {best['prob_best']:.3f} after {run.episodes} episodes"
               if run.stopped else f"no arm reached P(best) >= {args.threshold} within {args.budget} episodes")
    print(format_table(rows, args.metric) + "\n\n" + verdict + (f"; plot: {png}" if png else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from cluster.eval.report import write_report

    out = write_report(args.run_dirs, args.out)
    print(Path(out["markdown"]).read_text())
    print(f"wrote {out['markdown']} and {out['png']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from cluster.train import main as train_main

    return train_main(args.train_args)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="webshop-rl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    cat = sub.add_parser("catalog", help="build a generated catalog; prepare this node's stored catalog")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True)
    build = cat_sub.add_parser("build", help="write a generated catalog in WebShop's file format")
    build.add_argument("--size", type=positive_int, default=1000, help="number of products")
    build.add_argument("--seed", type=non_negative_int, default=0,
                       help="generator seed (the same seed gives the same files)")
    build.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    build.set_defaults(func=cmd_catalog_build)
    add_prepare_parser(cat_sub, add_catalog_args, catalog_from_args)

    ro = sub.add_parser("rollout", help="run a policy on a split and print its scores")
    ro.add_argument("--policy", default="rule", help="rule | random | expert | human-like | checkpoint directory")
    ro.add_argument("--split", default="test", choices=["train", "eval", "test"], help="goals to play")
    ro.add_argument("--episodes", type=positive_int, default=500, help="episodes: the split's first goals, one each")
    ro.add_argument("--max-steps", type=positive_int, default=15, help="actions before an episode is cut off")
    ro.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random and human-like agents")
    ro.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_catalog_args(ro)
    ro.set_defaults(func=cmd_rollout)

    play = sub.add_parser("play", help="shop by hand, or replay scripted actions")
    play.add_argument("--goal-id", type=int, help="goal to shop for (default: the test split's first)")
    play.add_argument("--actions", nargs="*", help="scripted actions; no prompt")
    play.add_argument("--mode", default="text", choices=["text", "text_rich"], help="observation format")
    play.add_argument("--max-steps", type=positive_int, default=15, help="actions before the episode is cut off")
    play.add_argument("--json", action="store_true", help="print every step as JSON")
    add_catalog_args(play)
    play.set_defaults(func=cmd_play)
    gen = sub.add_parser("generate", help="write demonstrations (trajectory Parquet)")
    gen.add_argument("--policy", default="expert", choices=sorted(AGENTS),
                     help="expert (oracle), human-like (noisy stand-in for human demonstrations), rule, random")
    gen.add_argument("--episodes", type=positive_int, default=1000, help="episodes: the split's first goals, one each")
    gen.add_argument("--split", default="train", choices=["train", "eval", "test"], help="goals to play")
    gen.add_argument("--seed", type=non_negative_int, default=0,
                     help="episode seeds start here (and the agent's, if it has one)")
    gen.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    add_catalog_args(gen)
    gen.set_defaults(func=cmd_generate)

    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("--checkpoint", type=Path, required=True, help="checkpoint or run directory")
    ev.add_argument("--split", default="test", choices=["train", "eval", "test"], help="goals to play")
    ev.add_argument("--episodes", type=positive_int, default=500, help="episodes: the split's first goals, one each")
    ev.add_argument("--decoding", default="greedy", choices=["greedy", "sampled"],
                    help="argmax actions, or actions sampled from the policy")
    ev.add_argument("--sampled", action="store_true", help="same as --decoding sampled")
    ev.add_argument("--seed", type=non_negative_int, default=0, help="seed of sampled decoding")
    ev.add_argument("--max-steps", type=positive_int, default=15, help="actions before an episode is cut off")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_catalog_args(ev)
    ev.set_defaults(func=cmd_eval)

    cmp_ = sub.add_parser("compare", help="A/B-test checkpoints online by Thompson sampling")
    cmp_.add_argument("checkpoints", nargs="+", type=Path, help="two or more checkpoint (or run) directories")
    cmp_.add_argument("--budget", type=positive_int, default=1000, help="most episodes in all")
    cmp_.add_argument("--split", default="test", choices=["train", "eval", "test"], help="goals to play")
    cmp_.add_argument("--seed", type=non_negative_int, default=0, help="goal order, posterior draws, sampled decoding")
    cmp_.add_argument("--threshold", type=float, default=0.95, help="stop when P(best) reaches this")
    cmp_.add_argument("--metric", default="success", choices=["success", "score"],
                      help="the posterior that allocates and stops (both are reported)")
    cmp_.add_argument("--allocation", default="thompson", choices=["thompson", "top-two", "equal"],
                      help="how the next episode's arm is chosen")
    cmp_.add_argument("--sampled", action="store_true", help="sample actions instead of greedy")
    cmp_.add_argument("--max-steps", type=positive_int, default=15, help="actions before an episode is cut off")
    cmp_.add_argument("--out", type=Path, default=Path("compare.png"), help="PNG of posteriors and allocation")
    cmp_.add_argument("--json", action="store_true", help="print the result as JSON")
    add_catalog_args(cmp_)
    cmp_.set_defaults(func=cmd_compare)

    rep = sub.add_parser("report", help="learning curves (PNG) and a markdown summary of run directories")
    rep.add_argument("run_dirs", nargs="+", type=Path, help="run directories (each with metrics.jsonl)")
    rep.add_argument("--out", type=Path, default=Path("report"), help="folder for curves.png and summary.md")
    rep.set_defaults(func=cmd_report)

    tr = sub.add_parser("train", help="IL, then DPO or PPO (see `webshop-rl train --help`)", add_help=False)
    tr.add_argument("train_args", nargs=argparse.REMAINDER, help="the driver's flags (webshop-rl train --help)")
    tr.set_defaults(func=cmd_train)

    add_serve_parser(sub)
    add_data_parser(sub, add_catalog_args, catalog_from_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a user error (a bad catalog, demonstration or checkpoint file,
    a value out of range) prints one line naming what to fix and returns 2."""
    argv = sys.argv[1:] if argv is None else argv

    def run() -> int:
        if argv[:1] == ["train"]:  # the driver has its own parser (flags such as --help pass through)
            from cluster.train import main as train_main

            return train_main(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)

    return run_reporting_user_errors(argv[0] if argv else "", run)


if __name__ == "__main__":
    sys.exit(main())
