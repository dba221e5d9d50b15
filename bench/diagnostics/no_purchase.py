"""What the episodes that end without a purchase do, and what the failed purchases lack.

    python bench/diagnostics/no_purchase.py --checkpoint DIR [DIR ...] [--episodes 500] [--split test]

Plays each checkpoint greedily on the split's first goals (the default generated
catalog, 15 steps) with the run's own evaluation code (`cluster.eval.evaluate.play_goals`),
and sorts the episodes that ran out of steps without buying by what they did:

- `repeat`: some action left the state text as it was (`first_noop_step`), e.g. a
  click on an option already chosen. A greedy policy that does it once does it again
  until the step limit: its state has not changed.
- `alternate`: the last four actions are two clicks on one page, back and forth
  (e.g. two values of one option).
- `browse`: the rest, mostly going back and forth between products.

Prints, per checkpoint, success, score, the purchase rate and the three counts; then,
for the purchases that scored below 1, how many missed each reward component
(`type`, `attributes`, `options`, `price`; one purchase can miss several) and how
many bought on a page the price note marked over budget (`candidates.price_note`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from cluster.eval.evaluate import play_goals, summarize_trajectories  # noqa: E402
from envs.generate import load_catalog  # noqa: E402
from policies.checkpoint import load_checkpoint  # noqa: E402
from policies.candidates import OVER_BUDGET_NOTE  # noqa: E402
from rollout_workers.schema import Trajectory  # noqa: E402
from rollout_workers.pairs import first_noop_step  # noqa: E402

KINDS = ("repeat", "alternate", "browse")
MISSES = ("type", "attributes", "options", "price")


def kind(traj: Trajectory) -> str:
    """`repeat`, `alternate` or `browse` for an episode that did not buy (module doc)."""
    if first_noop_step(traj.states) is not None:
        return "repeat"
    last = [traj.candidates[t][c] for t, c in enumerate(traj.chosen)][-4:]
    if len(last) == 4 and len(set(last)) == 2 and last[0] == last[2] and last[1] == last[3] \
            and not any(a.startswith("click[item - ") or a == "click[< prev]" for a in last):
        return "alternate"
    return "browse"


def misses(traj: Trajectory) -> list[str]:
    """The reward components a purchase that scored below 1 fell short on."""
    info = traj.reward_info or {}
    short = {"type": info.get("r_type", 1.0) < 1.0, "attributes": info.get("r_att", 1.0) < 1.0,
             "options": info.get("r_option") is not None and info["r_option"] < 1.0,
             "price": info.get("r_price") is False}
    return [m for m in MISSES if short[m]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", nargs="+", required=True)
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    catalog = load_catalog()
    goal_ids = list(catalog.goal_ids(args.split))[: args.episodes]
    for path in args.checkpoint:
        t0 = time.perf_counter()
        trajs = play_goals(load_checkpoint(path), catalog, goal_ids).trajectories
        s = summarize_trajectories(trajs)
        unbought = [t for t in trajs if not t.terminated]
        kinds = Counter(kind(t) for t in unbought)
        print(f"{path}: success {100 * s['success_rate']:.1f}%  score {s['score']:.1f}  "
              f"bought {100 * s['bought_rate']:.1f}%  "
              f"no purchase {len(unbought)}/{len(trajs)}: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS)
              + f"  ({time.perf_counter() - t0:.0f}s)", flush=True)
        failed = [t for t in trajs if t.terminated and t.score < 1.0]
        missed = Counter(m for t in failed for m in misses(t))
        marked = sum(OVER_BUDGET_NOTE in t.states[-1].split(" [SEP] ")[0] for t in failed)
        print(f"  purchases below 1: {len(failed)}; missing " + ", ".join(f"{m} {missed[m]}" for m in MISSES)
              + f"; bought where the price note said over budget {marked}", flush=True)


if __name__ == "__main__":
    main()
