"""Experiment 2: IL (optionally then DPO) on 100 generated expert trajectories vs 1,200
human-like demonstrations.

    python bench/experiments/data_efficiency.py [--expert-demos 100] [--human-demos 1200] [--seeds 0 1 2]
                                                [--with-dpo --budget 30m] [--out runs/exp/data_efficiency]
    python bench/experiments/data_efficiency.py --smoke --seeds 0 --expert-demos 10 --human-demos 30 \\
                                                --with-dpo --budget 5s --out /tmp/exp2   # plumbing check

The seed's claim: 100 generated preferred trajectories match 1,200 human ones.
WebShop's human trajectories cannot be downloaded here, so the human side is the
`human-like` demonstrator (`envs/agents.py`: paraphrased searches, sub-page visits,
wrong products and options; about 50% success): a stand-in, not human data. With
WebShop's real IL file, pass it as `--human-file il_trajs_finalized_images.jsonl`.

Per seed: `webshop-rl generate` writes both demo sets (train split; the human-like
set depends on the seed), `webshop-rl train --algo il --demos F` trains on each (all
trajectories, failed ones included, as human data comes), and with `--with-dpo` a
DPO run of `--budget` continues from each IL checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (REPO, Ledger, base_parser, catalog_flags, run_once, train_command,  # noqa: E402
                    write_results)


def demos(args, policy: str, episodes: int, seed: int) -> Path:
    """A demonstration file, generated once (written aside, then renamed: complete or absent)."""
    path = args.out / "demos" / f"{policy}{episodes}-seed{seed}.parquet"
    if path.exists() or args.dry_run:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.parquet")
    cmd = [sys.executable, "-m", "cluster.cli", "generate", "--policy", policy, "--episodes", str(episodes),
           "--seed", str(seed), "--out", str(tmp), *catalog_flags(args)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    print("[generate]", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, env=env)
    tmp.rename(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0], "runs/exp/data_efficiency")
    p.add_argument("--expert-demos", type=int, default=100)
    p.add_argument("--human-demos", type=int, default=1200)
    p.add_argument("--human-file", type=Path, help="real human demonstrations instead of human-like ones")
    p.add_argument("--il-epochs", type=int, help="IL passes over the demonstrations (default: the preset's)")
    p.add_argument("--with-dpo", action="store_true", help="DPO for --budget after each IL run")
    args = p.parse_args(argv)
    ledger = Ledger(args.out / "ledger.jsonl")
    il_sets = [f"il.epochs={args.il_epochs}"] if args.il_epochs else []
    human_arm = "human" if args.human_file else "human-like"
    arms = [(f"expert{args.expert_demos}", "expert", args.expert_demos),
            (f"{human_arm}{args.human_demos}", "human-like", args.human_demos)]
    groups = [f"IL {a[0]}" for a in arms] + ([f"IL+DPO {a[0]}" for a in arms] if args.with_dpo else [])
    failed = 0
    for seed in args.seeds:
        for arm, policy, n in arms:
            demo_file = args.human_file if (policy == "human-like" and args.human_file) else demos(args, policy, n, seed)
            name = f"il-{arm}-seed{seed}"
            cmd = train_command(args, args.out / "runs" / name, "il", seed, "--demos", str(demo_file), sets=il_sets)
            row = run_once(args, ledger, name, cmd, {"group": f"IL {arm}", "algo": "il", "seed": seed,
                                                     "demos": str(demo_file)})
            failed += row is None and not args.dry_run
            if not args.with_dpo or row is None:
                continue
            ckpt = str(Path(row["run_dir"]) / "il" / "checkpoint")
            name = f"dpo-{arm}-seed{seed}"
            cmd = train_command(args, args.out / "runs" / name, "dpo", seed, "--il-checkpoint", ckpt)
            failed += run_once(args, ledger, name, cmd, {"group": f"IL+DPO {arm}", "algo": "dpo", "seed": seed,
                                                         "budget": args.budget, "il_checkpoint": ckpt}) is None
    if args.dry_run:
        return 0
    notes = [f"IL on {args.expert_demos} expert vs {args.human_demos} {human_arm} demonstrations "
             "(train split); IL arms are evaluated by the IL run itself on the test split."]
    if args.with_dpo:
        notes.append(f"IL+DPO: DPO for {args.budget} of wall-clock from each seed's IL checkpoint.")
    write_results(args.out, "Data efficiency: expert vs human-like demonstrations", ledger.rows(), groups, notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
