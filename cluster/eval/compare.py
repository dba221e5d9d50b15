"""Online A/B comparison of policies by Thompson sampling (pure: no env, no model).

Each arm (a checkpoint) has a Beta posterior on its success probability, starting
from Beta(1, 1): after `s` successes in `n` episodes it is Beta(1 + s, 1 + n - s).
Scores in [0, 1] get the same conjugate treatment as fractional successes:
Beta(1 + sum(score), 1 + sum(1 - score)) - a Beta posterior on the mean score that
is exact for 0/1 scores and a standard approximation in between.

Every round `ThompsonAB.choose` draws one sample from each arm's posterior and
returns the arm with the highest draw (Thompson, 1933); the caller runs the next
episode on it and reports the outcome with `update`. P(arm is best) is estimated by
Monte Carlo: draw `mc_samples` values per arm and count how often each arm holds the
maximum. The comparison stops when some arm's P(best) >= `threshold` or at a budget.

`allocation="top-two"` is top-two Thompson sampling (Russo, 2016): with probability
1/2 the arm of the first draw, else the best arm of a re-draw that differs from it,
which spends more episodes on the runner-up and so identifies the best arm faster.

The episode runner (`run_thompson`) takes a callable `play(arm) -> score`, so the same
loop drives checkpoints (`webshop-rl compare`) and simulated arms (tests, benches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy import stats

METRICS = ("success", "score")
ALLOCATIONS = ("thompson", "top-two", "equal")
SUCCESS_EPS = 1e-9  # WebShop's success is reward == 1; floats may land a hair below


@dataclass
class ArmStats:
    """What has been seen of one arm."""

    name: str
    episodes: int = 0
    successes: int = 0
    score_sum: float = 0.0  # sum of scores in [0, 1]

    def beta(self, metric: str, prior: tuple[float, float] = (1.0, 1.0)) -> tuple[float, float]:
        """(alpha, beta) of the arm's posterior on `metric`."""
        if metric == "success":
            return prior[0] + self.successes, prior[1] + self.episodes - self.successes
        if metric == "score":
            return prior[0] + self.score_sum, prior[1] + self.episodes - self.score_sum
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def beta_interval(a: float, b: float, mass: float = 0.95) -> tuple[float, float]:
    """Equal-tailed credible interval of Beta(a, b): its (1 - mass) / 2 and
    (1 + mass) / 2 quantiles."""
    lo, hi = stats.beta.interval(mass, a, b)
    return float(lo), float(hi)


class ThompsonAB:
    """Beta posteriors over arms, Thompson allocation and the P(best) stopping rule.

    Args:
        arms: arm names, in order (arm i is index i everywhere).
        metric: "success" (Beta-Bernoulli) or "score" (fractional Beta) drives
            allocation and stopping; both posteriors are always tracked.
        threshold: stop when some arm's P(best) reaches this.
        mc_samples: posterior draws per arm for the P(best) estimate.
        allocation: "thompson", "top-two" (see module doc) or "equal" (round robin,
            the fixed equal split, for comparison).
        seed: the RNG of the draws (allocation and Monte Carlo).
    """

    def __init__(self, arms: Sequence[str], metric: str = "success", threshold: float = 0.95,
                 mc_samples: int = 10000, allocation: str = "thompson", seed: int | None = 0,
                 prior: tuple[float, float] = (1.0, 1.0)):
        if len(arms) < 2:
            raise ValueError(f"a comparison needs at least two arms, got {len(arms)}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
        self.arms = [ArmStats(str(a)) for a in arms]
        self.metric, self.threshold, self.mc_samples = metric, threshold, mc_samples
        self.allocation, self.prior = allocation, prior
        self.rng = np.random.default_rng(seed)
        self.rounds = 0

    # -- posteriors -----------------------------------------------------------------
    def params(self, metric: str | None = None) -> np.ndarray:
        """(K, 2) posterior (alpha, beta) per arm."""
        return np.array([a.beta(metric or self.metric, self.prior) for a in self.arms])

    def draw(self, num_samples: int = 1, metric: str | None = None) -> np.ndarray:
        """(num_samples, K) posterior draws."""
        p = self.params(metric)
        return self.rng.beta(p[:, 0], p[:, 1], size=(num_samples, len(self.arms)))

    def prob_best(self, metric: str | None = None, num_samples: int | None = None) -> np.ndarray:
        """(K,) Monte Carlo estimate of P(arm has the highest mean); ties split evenly."""
        draws = self.draw(num_samples or self.mc_samples, metric)  # (S, K)
        top = draws.max(axis=1, keepdims=True)
        is_top = draws == top
        return (is_top / is_top.sum(axis=1, keepdims=True)).mean(axis=0)

    def should_stop(self, prob_best: np.ndarray | None = None) -> bool:
        pb = self.prob_best() if prob_best is None else prob_best
        return bool(pb.max() >= self.threshold)

    # -- allocation -----------------------------------------------------------------
    def choose(self) -> int:
        """The arm that plays the next episode."""
        if self.allocation == "equal":
            return self.rounds % len(self.arms)
        first = int(np.argmax(self.draw(1)[0]))
        if self.allocation == "thompson" or self.rng.random() < 0.5:
            return first
        for _ in range(100):  # top-two: re-draw until another arm wins
            other = int(np.argmax(self.draw(1)[0]))
            if other != first:
                return other
        draw = self.draw(1)[0]  # the leader is all but certain: best of the others in one draw
        draw[first] = -np.inf
        return int(np.argmax(draw))

    def update(self, arm: int, score: float) -> None:
        """Record one episode of `arm` that scored `score` in [0, 1]."""
        if not 0.0 <= score <= 1.0 + SUCCESS_EPS:
            raise ValueError(f"score must lie in [0, 1], got {score}")
        a = self.arms[arm]
        a.episodes += 1
        a.successes += int(score >= 1.0 - SUCCESS_EPS)
        a.score_sum += min(float(score), 1.0)
        self.rounds += 1

    # -- reporting ------------------------------------------------------------------
    def table(self, prob_best: np.ndarray | None = None) -> list[dict]:
        """One row per arm: episodes, successes, posterior means and 95% credible
        intervals (success and score, both as fractions), P(best) on `metric`."""
        pb = self.prob_best() if prob_best is None else prob_best
        rows = []
        for i, arm in enumerate(self.arms):
            sa, sb = arm.beta("success", self.prior)
            ca, cb = arm.beta("score", self.prior)
            rows.append({
                "arm": arm.name, "episodes": arm.episodes, "successes": arm.successes,
                "success_mean": sa / (sa + sb), "success_ci95": beta_interval(sa, sb),
                "score_mean": ca / (ca + cb), "score_ci95": beta_interval(ca, cb),
                "prob_best": float(pb[i]),
            })
        return rows


@dataclass
class ThompsonRun:
    """What a comparison did, round by round (for the table and the plot)."""

    arms_played: list[int] = field(default_factory=list)  # (R,) arm of each round
    scores: list[float] = field(default_factory=list)  # (R,) its episode's score
    prob_best: list[list[float]] = field(default_factory=list)  # (R, K) after each round
    stopped: bool = False  # the threshold was reached (else the budget ran out)

    @property
    def episodes(self) -> int:
        return len(self.arms_played)


def run_thompson(ab: ThompsonAB, play: Callable[[int], float], budget: int, min_rounds: int = 0,
                 on_round: Callable[[int, int, float, np.ndarray], None] | None = None) -> ThompsonRun:
    """Allocate up to `budget` episodes; stop once P(best) >= threshold (checked after
    `min_rounds` rounds; the equal split checks only after whole cycles over the arms).

    Args:
        play: runs one episode on arm i and returns its score in [0, 1].
        on_round: called as (round, arm, score, prob_best) after each round.
    """
    run = ThompsonRun()
    k = len(ab.arms)
    for r in range(budget):
        arm = ab.choose()
        score = float(play(arm))
        ab.update(arm, score)
        pb = ab.prob_best()
        run.arms_played.append(arm)
        run.scores.append(score)
        run.prob_best.append(pb.tolist())
        if on_round:
            on_round(r, arm, score, pb)
        whole_cycle = ab.allocation != "equal" or (r + 1) % k == 0
        if r + 1 >= min_rounds and whole_cycle and ab.should_stop(pb):
            run.stopped = True
            break
    return run


def format_table(rows: list[dict], metric: str) -> str:
    """The posterior table as markdown (percentages)."""
    lines = ["| arm | episodes | successes | success (posterior mean, 95% CrI) | "
             "score x100 (posterior mean, 95% CrI) | P(best " + metric + ") |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        s_lo, s_hi = r["success_ci95"]
        c_lo, c_hi = r["score_ci95"]
        lines.append(f"| {r['arm']} | {r['episodes']} | {r['successes']} | "
                     f"{100 * r['success_mean']:.1f}% [{100 * s_lo:.1f}, {100 * s_hi:.1f}] | "
                     f"{100 * r['score_mean']:.1f} [{100 * c_lo:.1f}, {100 * c_hi:.1f}] | "
                     f"{r['prob_best']:.3f} |")
    return "\n".join(lines)


def plot_comparison(ab: ThompsonAB, run: ThompsonRun, path: str) -> str:
    """A PNG: posteriors of each arm (success), P(best) and episodes per arm over rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    x = np.linspace(0.001, 0.999, 999)  # the open interval: a density may be finite and nonzero at 0
    for i, arm in enumerate(ab.arms):
        a, b = arm.beta(ab.metric, ab.prior)
        axes[0].plot(x, stats.beta.pdf(x, a, b), label=f"{arm.name} (n={arm.episodes})")
    axes[0].set(title=f"posterior of {ab.metric}", xlabel=ab.metric, ylabel="density")
    rounds = np.arange(1, run.episodes + 1)
    pb = np.array(run.prob_best) if run.prob_best else np.zeros((0, len(ab.arms)))
    played = np.array(run.arms_played, dtype=int)
    for i, arm in enumerate(ab.arms):
        if len(rounds):
            axes[1].plot(rounds, pb[:, i], label=arm.name)
            axes[2].plot(rounds, np.cumsum(played == i), label=arm.name)
    axes[1].axhline(ab.threshold, color="grey", linestyle="--", linewidth=1)
    axes[1].set(title="P(best) after each episode", xlabel="episode", ylabel="P(best)", ylim=(0, 1.02))
    axes[2].set(title=f"allocation ({ab.allocation})", xlabel="episode", ylabel="episodes on arm")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
