"""How much a policy could gain by checking what a product page shows before buying.

    python bench/diagnostics/visible_check.py --checkpoint IL_DIR [--episodes 500] [--split test]

Plays the checkpoint greedily on the split's first goals twice, on the default
generated catalog:

- `plain`: the policy's own choices;
- `check`: the same policy, with one rule laid over it that uses only what the
  pages show: where the policy would buy a product whose page offers no value for an
  option the instruction asks for, it goes back (`< prev`) instead, and on a results
  page it opens the best-scored product it has not opened yet (while fewer than 12
  steps are taken, so that the episode can still end in a purchase).

The gap between the two is the room a learned "look before you buy" behaviour has on
top of the policy: the part of its failures that the pages it already visits would
have prevented. Prints success, score, mean steps, and how many purchases lacked an
asked-for option, for both runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from envs.env import WebShopEnv  # noqa: E402
from envs.generate import load_catalog  # noqa: E402
from policies.checkpoint import load_checkpoint  # noqa: E402
from policies.candidates import build_candidates, policy_state  # noqa: E402
from rollout_workers.pairs import lacks_wanted_option  # noqa: E402

BUY, BACK = "click[buy now]", "click[< prev]"
CHECK_UNTIL_STEP = 12


def checked_index(env: WebShopEnv, cands, probs: np.ndarray, index: int, steps: int) -> int:
    """The rule of `check` mode over the policy's greedy `index` (see module doc)."""
    if env.session.page == "results":  # products already opened are no longer candidates
        products = (int(i) for i in np.argsort(-probs) if cands.texts[i].startswith("click[item - "))
        return next(products, index)
    if cands.actions[index] == BUY and steps < CHECK_UNTIL_STEP and lacks_wanted_option(env):
        back = cands.index_of_action(BACK)
        return index if back is None else back
    return index


def play(policy, catalog, goal_ids: list[int], check: bool, num_envs: int = 16) -> dict:
    envs = [WebShopEnv(catalog=catalog, max_steps=15, split="test") for _ in range(num_envs)]
    scores, lengths, lacking = [], [], 0
    for start in range(0, len(goal_ids), num_envs):
        live = []
        for env, goal in zip(envs, goal_ids[start:start + num_envs]):
            obs, info = env.reset(seed=0, options={"goal_id": goal})
            live.append({"env": env, "obs": obs, "info": info, "steps": 0})
        while live:
            cands = [build_candidates(s["env"], s["info"]["available_actions"]) for s in live]
            with torch.no_grad():
                outs = policy.act([policy_state(s["env"], s["obs"]) for s in live], [c.texts for c in cands],
                                  greedy=True)
            still = []
            for s, c, out in zip(live, cands, outs):
                env, index = s["env"], out.index
                if check:
                    index = checked_index(env, c, np.asarray(out.probs), index, s["steps"])
                if c.actions[index] == BUY and lacks_wanted_option(env):
                    lacking += 1
                s["obs"], reward, terminated, truncated, s["info"] = env.step(c.actions[index])
                s["steps"] += 1
                if terminated or truncated:
                    scores.append(float(reward) if terminated else 0.0)
                    lengths.append(s["steps"])
                else:
                    still.append(s)
            live = still
    sc = np.asarray(scores)
    success = float((sc == 1.0).mean())
    return {"success": success, "ci95": 1.96 * (success * (1 - success) / len(sc)) ** 0.5,
            "score": 100 * float(sc.mean()), "steps": float(np.mean(lengths)), "bought_lacking": lacking,
            "episodes": len(sc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    catalog = load_catalog()
    policy = load_checkpoint(args.checkpoint)
    goal_ids = list(catalog.goal_ids(args.split))[: args.episodes]
    rows = {}
    for mode in ("plain", "check"):
        t0 = time.perf_counter()
        rows[mode] = r = play(policy, catalog, goal_ids, check=mode == "check")
        print(f"{mode:5s}: success {100 * r['success']:.1f}% ± {100 * r['ci95']:.1f}  score {r['score']:.1f}  "
              f"steps {r['steps']:.2f}  purchases lacking an asked-for option {r['bought_lacking']}/"
              f"{r['episodes']}  ({time.perf_counter() - t0:.0f}s)", flush=True)
    gain = 100 * (rows["check"]["success"] - rows["plain"]["success"])
    print(f"check - plain: {gain:+.1f} points of success, {rows['check']['score'] - rows['plain']['score']:+.1f} score")


if __name__ == "__main__":
    main()
