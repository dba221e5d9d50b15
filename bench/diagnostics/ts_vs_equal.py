"""Episodes needed to pick the better of two policies: Thompson sampling vs an equal split.

    python bench/diagnostics/ts_vs_equal.py [--p 0.30 0.40] [--trials 300] [--ckpt A B --episodes 500]

Two simulated arms with success probabilities `--p` (default 0.30 vs 0.40, a 10-point
gap; `--ckpt A B` measures the two checkpoints' greedy test-split success rates first
and uses those). Each trial runs, on fresh Bernoulli outcomes:

- `thompson`: `webshop-rl compare`'s loop (Beta(1, 1) posteriors, Thompson allocation,
  stop when P(best) >= 0.95 by Monte Carlo, checked after every episode);
- `top-two`: the same with top-two Thompson allocation;
- `equal`: A, B, A, B, ... with the same posteriors and the same stopping rule,
  checked after every pair of episodes (the same decision rule, equal allocation);
- `fixed test`: the classical alternative, a two-proportion z-test at alpha = 0.05
  (two-sided) with 80% power, whose sample size is fixed in advance by
  n = (z_{a/2} sqrt(2 pbar qbar) + z_b sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2 per arm.

Reported: median [25th-75th percentile] episodes to the decision, the share of
trials that decided within `--max-episodes`, and the share that picked the truly
better arm. Sequential stopping with peeking is less strict than a fixed-size test at
alpha = 0.05, so the correct-decision rates are printed next to the counts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cluster.eval.compare import ThompsonAB, run_thompson  # noqa: E402

Z_975, Z_80 = 1.959964, 0.841621


def fixed_sample_size(p1: float, p2: float, z_alpha: float = Z_975, z_beta: float = Z_80) -> int:
    """Episodes per arm of a two-sided two-proportion z-test (alpha 0.05, power 0.8)."""
    pbar = (p1 + p2) / 2
    num = z_alpha * math.sqrt(2 * pbar * (1 - pbar)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num ** 2 / (p1 - p2) ** 2)


def fixed_test_power(p: list[float], n: int, trials: int, rng: np.random.Generator) -> float:
    """Share of simulated fixed-size tests that reject in favour of the better arm."""
    s = rng.binomial(n, p, size=(trials, 2)) / n  # (trials, 2)
    pooled = s.mean(axis=1)
    se = np.sqrt(2 * pooled * (1 - pooled) / n)
    z = (s[:, 1] - s[:, 0]) / np.where(se > 0, se, np.inf)
    better = int(np.argmax(p))
    return float(np.mean(z > Z_975) if better == 1 else np.mean(z < -Z_975))


def simulate(p: list[float], allocation: str, trials: int, max_episodes: int, seed: int,
             mc_samples: int) -> dict:
    rng = np.random.default_rng(seed)
    episodes, decided, correct = [], 0, 0
    for t in range(trials):
        ab = ThompsonAB(["A", "B"], allocation=allocation, mc_samples=mc_samples, seed=int(rng.integers(2**31)))
        outcomes = np.random.default_rng(int(rng.integers(2**31)))
        run = run_thompson(ab, lambda arm: float(outcomes.random() < p[arm]), budget=max_episodes)
        episodes.append(run.episodes)
        if run.stopped:
            decided += 1
            correct += int(np.argmax(run.prob_best[-1]) == int(np.argmax(p)))
    e = np.array(episodes)
    return {"allocation": allocation, "median": float(np.median(e)), "p25": float(np.percentile(e, 25)),
            "p75": float(np.percentile(e, 75)), "mean": float(e.mean()), "decided": decided / trials,
            "correct": correct / trials, "trials": trials}


def measured_rates(ckpts: list[str], episodes: int) -> list[float]:
    from cluster.eval.evaluate import evaluate_policy
    from envs.generate import default_catalog
    from policies.checkpoint import load_checkpoint

    catalog = default_catalog()
    ids = list(catalog.goal_ids("test"))[:episodes]
    rates = []
    for c in ckpts:
        m = evaluate_policy(load_checkpoint(c), catalog, ids)
        print(f"{c}: test success {100 * m['success_rate']:.1f}% ({episodes} goals)")
        rates.append(m["success_rate"])
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=float, nargs=2, default=[0.30, 0.40], help="success rates of arms A and B")
    ap.add_argument("--ckpt", nargs=2, help="two checkpoints: use their measured test success rates")
    ap.add_argument("--episodes", type=int, default=500, help="test goals per checkpoint for --ckpt")
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--max-episodes", type=int, default=3000, help="budget of one sequential trial")
    ap.add_argument("--mc-samples", type=int, default=2000, help="posterior draws per P(best) estimate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    p = measured_rates(args.ckpt, args.episodes) if args.ckpt else list(args.p)
    if p[0] == p[1]:
        raise SystemExit(f"the arms have equal success rates {p}: there is no better arm to find")
    print(f"arms: A p={p[0]:.3f}, B p={p[1]:.3f}; {args.trials} trials, budget {args.max_episodes} episodes, "
          f"stop at P(best) >= 0.95 ({args.mc_samples} posterior draws)")
    results = []
    for alloc in ("thompson", "top-two", "equal"):
        t0 = time.perf_counter()
        r = simulate(p, alloc, args.trials, args.max_episodes, args.seed, args.mc_samples)
        r["seconds"] = time.perf_counter() - t0
        results.append(r)
    n_fixed = fixed_sample_size(*p)
    power = fixed_test_power(p, n_fixed, 20000, np.random.default_rng(args.seed))
    print("\n| method | episodes to decision: median [25th-75th] | mean | decided | picked the better arm |")
    print("|---|---|---|---|---|")
    names = {"thompson": "Thompson sampling", "top-two": "top-two Thompson", "equal": "equal split (same rule)"}
    for r in results:
        print(f"| {names[r['allocation']]} | {r['median']:.0f} [{r['p25']:.0f}-{r['p75']:.0f}] | {r['mean']:.0f} | "
              f"{100 * r['decided']:.0f}% | {100 * r['correct']:.0f}% |")
    print(f"| fixed two-proportion test (alpha 0.05, power 0.8) | {2 * n_fixed} ({n_fixed} per arm) | "
          f"{2 * n_fixed} | 100% | {100 * power:.0f}% (simulated power) |")
    ts, eq = results[0]["median"], results[2]["median"]
    print(f"\nThompson / equal split (median episodes): {ts:.0f} / {eq:.0f} = {ts / eq:.2f}")
    print(f"Thompson / fixed-size test: {ts:.0f} / {2 * n_fixed} = {ts / (2 * n_fixed):.2f}")
    if args.json:
        args.json.write_text(json.dumps({"p": p, "sequential": results, "fixed_test_episodes": 2 * n_fixed,
                                         "fixed_test_power": power}, indent=2))


if __name__ == "__main__":
    main()
