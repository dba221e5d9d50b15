"""Experiment 1: DPO vs PPO from the same IL checkpoint at equal wall-clock.

    python bench/experiments/dpo_vs_ppo.py [--il-checkpoint DIR] [--budget 30m] [--seeds 0 1 2]
                                           [--out runs/exp/dpo_vs_ppo] [--set section.key=value ...]
    python bench/experiments/dpo_vs_ppo.py --smoke --budget 5s --seeds 0 --out /tmp/exp1   # plumbing check

The seed's claim: under a short training budget DPO beats PPO (the seed: DPO ~19%
success after 30-60 min, PPO ~15% after 2 h). Every run starts from one IL checkpoint
(`--il-checkpoint`, else one IL run recorded as `il-seed0`), trains for `--budget` of
RL wall-clock with the driver's preset (cpu.yaml unless `--config`), and is evaluated
on the test split. Seeds run in the order seed 0 DPO, seed 0 PPO, seed 1 DPO, ...,
so a set stopped part-way stays balanced. Re-running skips what the ledger holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, ledger_and_il, paired_difference, run_once, train_command, write_results  # noqa: E402

GROUPS = ("dpo", "ppo")


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0], "runs/exp/dpo_vs_ppo")
    p.add_argument("--il-checkpoint", help="the IL checkpoint every run starts from (default: train one)")
    args = p.parse_args(argv)
    ledger, il = ledger_and_il(args)
    if il is None:
        return 1
    failed = 0
    for seed in args.seeds:
        for algo in GROUPS:
            name = f"{algo}-seed{seed}"
            cmd = train_command(args, args.out / "runs" / name, algo, seed, "--il-checkpoint", il)
            failed += run_once(args, ledger, name, cmd, {"group": algo, "algo": algo, "seed": seed,
                                                           "budget": args.budget, "il_checkpoint": il}) is None
    if args.dry_run:
        return 0
    rows = ledger.rows()
    notes = [f"Every run: RL for {args.budget} of wall-clock from the IL checkpoint `{il}`."]
    diff = paired_difference(rows, "dpo", "ppo")
    if diff:
        mean, half, n = diff
        notes.append(f"DPO - PPO test success, paired by seed ({n} seeds): {100 * mean:+.1f}"
                     + (f" ± {100 * half:.1f} points (95% t-interval)." if half is not None else " points."))
    write_results(args.out, "DPO vs PPO at equal wall-clock", rows, GROUPS, notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
