"""Thompson-sampling A/B: posterior parameters, P(best), stopping and allocation,
checked against hand-computed numbers and simulated Bernoulli arms."""

import math

import numpy as np
import pytest

from cluster.eval.compare import ThompsonAB, beta_interval, format_table, plot_comparison, run_thompson


def exact_prob_b_beats_a(aa, ba, ab, bb):
    """P(X_B > X_A) for X_A ~ Beta(aa, ba), X_B ~ Beta(ab, bb), integer ab (Evan Miller's sum)."""
    def lbeta(x, y):
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
    return sum(math.exp(lbeta(aa + i, bb + ba) - math.log(bb + i) - lbeta(1 + i, bb) - lbeta(aa, ba))
               for i in range(int(ab)))


def test_posterior_parameters_by_hand():
    ab = ThompsonAB(["a", "b"])
    for s in (1.0, 0.0, 1.0):
        ab.update(0, s)
    for s in (0.5, 1.0):
        ab.update(1, s)
    np.testing.assert_allclose(ab.params("success"), [[3, 2], [2, 2]])
    np.testing.assert_allclose(ab.params("score"), [[3, 2], [2.5, 1.5]])
    rows = ab.table()
    assert rows[0]["episodes"] == 3 and rows[0]["successes"] == 2
    assert rows[0]["success_mean"] == pytest.approx(3 / 5)
    assert rows[1]["score_mean"] == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError, match="score must lie in"):
        ab.update(0, 1.5)


def beta_cdf_by_binomial(x, a, b):
    """I_x(a, b) for integers a, b >= 1: P(Binomial(a + b - 1, x) >= a)."""
    n = a + b - 1
    return sum(math.comb(n, j) * x ** j * (1 - x) ** (n - j) for j in range(a, n + 1))


def quantile_by_bisection(cdf, p):
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def test_credible_interval_by_hand():
    assert beta_interval(1, 1) == pytest.approx((0.025, 0.975), abs=1e-12)
    # Beta(2, 1) has CDF x^2; Beta(3, 1) (2 of 2 successes) x^3; Beta(1, 2) (0 of 1) 1 - (1 - x)^2
    assert beta_interval(2, 1) == pytest.approx((math.sqrt(0.025), math.sqrt(0.975)), abs=1e-9)
    assert beta_interval(3, 1) == pytest.approx((0.025 ** (1 / 3), 0.975 ** (1 / 3)), abs=1e-9)
    assert beta_interval(1, 2) == pytest.approx((1 - math.sqrt(0.975), 1 - math.sqrt(0.025)), abs=1e-9)
    assert beta_interval(1, 2, mass=0.5) == pytest.approx((1 - math.sqrt(0.75), 1 - math.sqrt(0.25)), abs=1e-9)
    # 3 successes in 10 episodes: Beta(4, 8), its CDF as a binomial tail, inverted by bisection
    cdf = lambda x: beta_cdf_by_binomial(x, 4, 8)  # noqa: E731
    expected = (quantile_by_bisection(cdf, 0.025), quantile_by_bisection(cdf, 0.975))
    assert beta_interval(4, 8) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx((0.1093, 0.6097), abs=1e-4)


def test_table_intervals_are_the_posteriors():
    ab = ThompsonAB(["a", "b"])
    for s in (1.0, 0.0, 0.0):
        ab.update(0, s)
    row = ab.table(prob_best=np.array([0.5, 0.5]))[0]
    assert row["success_ci95"] == pytest.approx(beta_interval(2, 3))  # Beta(1 + 1, 1 + 3 - 1)
    assert row["score_ci95"] == pytest.approx(beta_interval(2, 3))


def test_draws_use_the_seeded_generator_in_order():
    """Allocation and P(best) draw from one numpy Generator, arm by arm, in a fixed order."""
    ab = ThompsonAB(["a", "b", "c"], seed=11, mc_samples=7)
    ab.update(0, 1.0)
    ab.update(2, 0.25)
    rng = np.random.default_rng(11)
    alpha, beta = np.array([2.0, 1.0, 1.0]), np.array([1.0, 1.0, 2.0])
    assert ab.choose() == int(np.argmax(rng.beta(alpha, beta, size=(1, 3))[0]))
    draws = rng.beta(alpha, beta, size=(7, 3))
    expected = (draws == draws.max(axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_array_equal(ab.prob_best(), expected)


@pytest.mark.parametrize("post", [((1, 1), (2, 1)), ((11, 21), (16, 16)), ((4, 30), (6, 28))])
def test_prob_best_matches_exact_two_arm_formula(post):
    (aa, ba), (ab_, bb) = post
    ab = ThompsonAB(["a", "b"], mc_samples=200_000, seed=1)
    ab.arms[0].successes, ab.arms[0].episodes = aa - 1, aa + ba - 2
    ab.arms[1].successes, ab.arms[1].episodes = ab_ - 1, ab_ + bb - 2
    pb = ab.prob_best()
    exact = exact_prob_b_beats_a(aa, ba, ab_, bb)
    assert pb[1] == pytest.approx(exact, abs=0.005)
    assert pb.sum() == pytest.approx(1.0)
    if post[0] == (1, 1):
        assert exact == pytest.approx(2 / 3)


def test_stopping_rule_with_seeded_rng():
    clear = ThompsonAB(["a", "b"], seed=0)
    clear.arms[0].episodes, clear.arms[0].successes = 20, 2  # Beta(3, 19)
    clear.arms[1].episodes, clear.arms[1].successes = 20, 12  # Beta(13, 9)
    assert clear.should_stop()  # exact P(b best) > 0.9999
    close = ThompsonAB(["a", "b"], seed=0)
    close.arms[0].episodes, close.arms[0].successes = 10, 5
    close.arms[1].episodes, close.arms[1].successes = 10, 6
    pb = close.prob_best()
    assert not close.should_stop(pb)
    assert pb[1] == pytest.approx(exact_prob_b_beats_a(6, 6, 7, 5), abs=0.02)


def simulated(ps, seed):
    rng = np.random.default_rng(seed)
    return lambda arm: float(rng.random() < ps[arm])


def test_allocation_concentrates_on_the_better_arm():
    ab = ThompsonAB(["worse", "better"], threshold=1.01, seed=3, mc_samples=500)  # never stops
    run = run_thompson(ab, simulated([0.2, 0.6], seed=4), budget=300)
    assert run.episodes == 300 and not run.stopped
    share = np.mean(np.array(run.arms_played) == 1)
    assert share > 0.8
    assert run.prob_best[-1][1] > 0.9


def test_top_two_spends_more_on_the_runner_up_than_thompson():
    shares = {}
    for alloc in ("thompson", "top-two"):
        ab = ThompsonAB(["worse", "better"], threshold=1.01, seed=3, mc_samples=200, allocation=alloc)
        run = run_thompson(ab, simulated([0.2, 0.6], seed=4), budget=300)
        shares[alloc] = np.mean(np.array(run.arms_played) == 0)
    assert shares["top-two"] > shares["thompson"]
    assert 0.35 < shares["top-two"] < 0.65


def test_run_stops_at_threshold_and_is_deterministic():
    runs = []
    for _ in range(2):
        ab = ThompsonAB(["a", "b"], seed=5, mc_samples=2000)
        runs.append((ab, run_thompson(ab, simulated([0.1, 0.9], seed=6), budget=200)))
    (ab, run), (_, again) = runs
    assert run.stopped and run.episodes < 40
    assert run.arms_played == again.arms_played
    assert max(run.prob_best[-1]) >= 0.95 and np.argmax(run.prob_best[-1]) == 1
    assert "| b |" in format_table(ab.table(), "success")


def test_equal_split_checks_only_after_whole_cycles():
    ab = ThompsonAB(["a", "b", "c"], allocation="equal", seed=0, mc_samples=2000)
    run = run_thompson(ab, simulated([0.0, 0.0, 1.0], seed=0), budget=300)
    assert run.stopped and run.episodes % 3 == 0
    assert run.arms_played[:6] == [0, 1, 2, 0, 1, 2]


def test_plot_writes_a_png(tmp_path):
    ab = ThompsonAB(["a", "b"], seed=0, mc_samples=500)
    run = run_thompson(ab, simulated([0.3, 0.7], seed=1), budget=30)
    path = plot_comparison(ab, run, str(tmp_path / "cmp.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_needs_two_arms_and_known_options():
    with pytest.raises(ValueError, match="at least two arms"):
        ThompsonAB(["a"])
    with pytest.raises(ValueError, match="allocation must be"):
        ThompsonAB(["a", "b"], allocation="ucb")
