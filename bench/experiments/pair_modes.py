"""Experiment 3: DPO preference-pair mining modes, expert vs correct vs self vs mix.

    python bench/experiments/pair_modes.py [--il-checkpoint DIR] [--budget 30m] [--seeds 0 1 2]
                                           [--samples-per-goal 4] [--out runs/exp/pair_modes]
    python bench/experiments/pair_modes.py --smoke --budget 5s --seeds 0 --out /tmp/exp3   # plumbing check

`expert`: the oracle expert's trajectory is `chosen`, the policy's `rejected`;
`correct`: the expert finishes the policy's own episode from its first mistake;
`self`: best vs worst of `--samples-per-goal` policy samples of one goal; `mix`: both
(`rollout_workers/worker.py`). All modes use the same samples per goal, so they see
goals at the same rate, and start from the same IL checkpoint with the same budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, ledger_and_il, run_once, train_command, write_results  # noqa: E402

GROUPS = ("expert", "correct", "self", "mix")


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.splitlines()[0], "runs/exp/pair_modes")
    p.add_argument("--il-checkpoint", help="the IL checkpoint every run starts from (default: train one)")
    p.add_argument("--samples-per-goal", type=int, default=4, help="policy samples per goal (self needs >= 2)")
    args = p.parse_args(argv)
    ledger, il = ledger_and_il(args)
    if il is None:
        return 1
    failed = 0
    for seed in args.seeds:
        for mode in GROUPS:
            name = f"dpo-{mode}-seed{seed}"
            sets = [f"worker.pair_mode={mode}", f"worker.samples_per_goal={args.samples_per_goal}"]
            cmd = train_command(args, args.out / "runs" / name, "dpo", seed, "--il-checkpoint", il, sets=sets)
            failed += run_once(args, ledger, name, cmd, {"group": mode, "algo": "dpo", "seed": seed,
                                                           "budget": args.budget, "il_checkpoint": il}) is None
    if args.dry_run:
        return 0
    notes = [f"DPO for {args.budget} of wall-clock per run from `{il}`, {args.samples_per_goal} samples per goal."]
    write_results(args.out, "DPO pair-mining modes", ledger.rows(), GROUPS, notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
