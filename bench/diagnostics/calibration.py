"""Calibration of the generated catalog against WebShop's published baselines.

    python bench/diagnostics/calibration.py [--sizes 1000 10000] [--seeds 0 1 2] [--episodes 500]

For each catalog size and seed: rule, random and expert on the test split
(success %, score x100, reward components), next to WebShop's rule baseline
(9.6% / 45.6; target within +-5 points) and the expert target (>= 95% success).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from envs import WebShopEnv  # noqa: E402
from envs.agents import make_agent  # noqa: E402
from envs.generate import default_catalog  # noqa: E402
from envs.rollout import run_episode, summarize  # noqa: E402

WEBSHOP_RULE = (9.6, 45.6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=500)
    args = ap.parse_args()
    print(f"{'size':>7} {'seed':>4} {'agent':>7} {'success%':>9} {'score':>6} {'r_type':>6} {'r_att':>6} "
          f"{'r_opt':>6} {'r_price':>7} {'steps':>5}")
    for size in args.sizes:
        per_agent: dict[str, list[tuple[float, float]]] = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            catalog = default_catalog(size, seed)
            env = WebShopEnv(catalog=catalog)
            for name in ("rule", "random", "expert"):
                ids = list(catalog.goal_ids("test"))[: args.episodes]
                s = summarize([run_episode(env, make_agent(name, seed=g), g, seed=g) for g in ids])
                per_agent.setdefault(name, []).append((100 * s["success_rate"], s["score"]))
                comp = [s[f"mean_{c}"] for c in ("r_type", "r_att", "r_option", "r_price")]
                comp_s = " ".join(f"{c:6.3f}" if c is not None else "   n/a" for c in comp)
                print(f"{size:>7} {seed:>4} {name:>7} {100 * s['success_rate']:9.1f} {s['score']:6.1f} {comp_s} "
                      f"{s['mean_steps']:5.1f}")
            print(f"        (catalog + index + episodes: {time.perf_counter() - t0:.1f}s)")
        for name, vals in per_agent.items():
            succ = [v[0] for v in vals]
            score = [v[1] for v in vals]
            print(f"{size:>7}  all {name:>7} success {statistics.median(succ):.1f}% [{min(succ):.1f}-{max(succ):.1f}]"
                  f"  score {statistics.median(score):.1f} [{min(score):.1f}-{max(score):.1f}]  (median [min-max] over seeds)")
        rule = per_agent["rule"]
        d_succ = statistics.median(v[0] for v in rule) - WEBSHOP_RULE[0]
        d_score = statistics.median(v[1] for v in rule) - WEBSHOP_RULE[1]
        print(f"{size:>7}  rule vs WebShop (9.6% / 45.6): {d_succ:+.1f} points success, {d_score:+.1f} score")


if __name__ == "__main__":
    main()
