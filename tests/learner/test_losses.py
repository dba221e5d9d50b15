"""learner.losses against hand-computed numbers, slow loops written like the papers'
equations, and autograd.gradcheck in float64 (the preference losses:
test_preference_losses.py)."""

import math
import random

import pytest
import torch

from learner.losses import (
    entropy_bonus,
    gae,
    kl_to_reference,
    masked_mean,
    ppo_clip_loss,
    value_loss,
)

NAN = float("nan")


def t64(values):
    return torch.tensor(values, dtype=torch.float64)


# ------------------------------------------------------------------------ masked_mean


def test_masked_mean_hand_numbers_and_nan_padding():
    x = t64([[1.0, 2.0, NAN], [4.0, float("inf"), 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    # (1 + 2 + 4 + 6) / 4
    assert masked_mean(x, mask).item() == pytest.approx(13 / 4)
    assert masked_mean(t64([1.0, 2.0, 6.0])).item() == pytest.approx(3.0)


def test_masked_mean_all_false_mask_is_zero_not_nan():
    x = t64([1.0, 2.0]).requires_grad_()
    out = masked_mean(x, torch.zeros(2, dtype=torch.bool))
    out.backward()
    assert out.item() == 0.0
    assert torch.equal(x.grad, torch.zeros(2, dtype=torch.float64))


def test_masked_mean_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        masked_mean(torch.zeros(2, 3), torch.ones(3, 2, dtype=torch.bool))


# ----------------------------------------------------------------------------- GAE


def gae_reference(rewards, values, value_after_end, gamma, lam):
    """Schulman et al. 2016, Eq. 16 as written, for one trajectory of Python floats:
    A_t = sum_l (gamma lam)^l delta_{t+l}, delta_t = r_t + gamma V(s_{t+1}) - V(s_t)."""
    num_steps = len(rewards)
    next_values = values[1:] + [value_after_end]
    deltas = [rewards[t] + gamma * next_values[t] - values[t] for t in range(num_steps)]
    advantages = [sum((gamma * lam) ** l * deltas[t + l] for l in range(num_steps - t)) for t in range(num_steps)]
    return advantages, [a + v for a, v in zip(advantages, values)]


def pad_trajectories(trajectories, num_steps):
    """Pack (rewards, values, ending, bootstrap) into (B, T) tensors with NaN padding and
    garbage flags at padded steps, which gae must ignore."""
    rows = len(trajectories)
    rewards = torch.full((rows, num_steps), NAN, dtype=torch.float64)
    values = torch.full((rows, num_steps), NAN, dtype=torch.float64)
    terminated = torch.ones(rows, num_steps, dtype=torch.bool)
    truncated = torch.ones(rows, num_steps, dtype=torch.bool)
    mask = torch.zeros(rows, num_steps, dtype=torch.bool)
    bootstrap = torch.zeros(rows, dtype=torch.float64)
    for b, (rew, val, ending, boot) in enumerate(trajectories):
        length = len(rew)
        rewards[b, :length] = t64(rew)
        values[b, :length] = t64(val)
        mask[b, :length] = True
        terminated[b, :length] = False
        truncated[b, :length] = False
        terminated[b, length - 1] = ending in ("terminated", "both")
        truncated[b, length - 1] = ending in ("truncated", "both")
        bootstrap[b] = boot
    return rewards, values, terminated, truncated, bootstrap, mask


def test_gae_hand_numbers_terminated_truncated_padded():
    # gamma = 0.9, lam = 0.8, gamma * lam = 0.72, r = (0, 0, 1), V = (0.5, 0.6, 0.7)
    # row 0, terminated: V(s_3) = 0
    #   delta = (0 + .9*.6 - .5, 0 + .9*.7 - .6, 1 + 0 - .7) = (0.04, 0.03, 0.3)
    #   A_2 = 0.3; A_1 = 0.03 + 0.72*0.3 = 0.246; A_0 = 0.04 + 0.72*0.246 = 0.21712
    # row 1, truncated with V(s_3) = 0.4: delta_2 = 1 + .9*.4 - .7 = 0.66
    #   A_2 = 0.66; A_1 = 0.03 + 0.72*0.66 = 0.5052; A_0 = 0.04 + 0.72*0.5052 = 0.403744
    # row 2, terminated after 2 steps, r = (0, 1), V = (0.5, 0.6), step 2 padding (NaN):
    #   delta = (0.04, 1 - 0.6 = 0.4); A_1 = 0.4; A_0 = 0.04 + 0.72*0.4 = 0.328
    rewards, values, terminated, truncated, bootstrap, mask = pad_trajectories(
        [
            ([0.0, 0.0, 1.0], [0.5, 0.6, 0.7], "terminated", 123.0),  # bootstrap unused
            ([0.0, 0.0, 1.0], [0.5, 0.6, 0.7], "truncated", 0.4),
            ([0.0, 1.0], [0.5, 0.6], "terminated", NAN),  # unused, may be NaN
        ],
        num_steps=3,
    )
    advantages, returns = gae(rewards, values, terminated, truncated, bootstrap, gamma=0.9, lam=0.8, mask=mask)
    expected = [[0.21712, 0.246, 0.3], [0.403744, 0.5052, 0.66], [0.328, 0.4, 0.0]]
    assert advantages.tolist() == [pytest.approx(row, abs=1e-12) for row in expected]
    expected_returns = [[0.71712, 0.846, 1.0], [0.903744, 1.1052, 1.36], [0.828, 1.0, 0.0]]
    assert returns.tolist() == [pytest.approx(row, abs=1e-12) for row in expected_returns]


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.7)])
def test_gae_matches_paper_loop_on_random_batch(gamma, lam):
    rng = random.Random(f"{gamma}-{lam}")
    num_steps = 9
    trajectories = []
    for ending in ["terminated", "truncated", "both", "neither"] * 3:
        length = rng.randint(1, num_steps)
        rew = [rng.uniform(-1, 1) for _ in range(length)]
        val = [rng.uniform(-1, 1) for _ in range(length)]
        trajectories.append((rew, val, ending, rng.uniform(-1, 1)))
    rewards, values, terminated, truncated, bootstrap, mask = pad_trajectories(trajectories, num_steps)

    advantages, returns = gae(rewards, values, terminated, truncated, bootstrap, gamma, lam, mask=mask)

    for b, (rew, val, ending, boot) in enumerate(trajectories):
        # terminated (also when truncated at the same step): no future; otherwise bootstrap
        value_after_end = 0.0 if ending in ("terminated", "both") else boot
        ref_adv, ref_ret = gae_reference(rew, val, value_after_end, gamma, lam)
        length = len(rew)
        assert advantages[b, :length].tolist() == pytest.approx(ref_adv, abs=1e-12)
        assert returns[b, :length].tolist() == pytest.approx(ref_ret, abs=1e-12)
        assert advantages[b, length:].eq(0).all() and returns[b, length:].eq(0).all()


def test_gae_lambda_one_gives_monte_carlo_returns():
    # lam = 1: returns are discounted reward sums, plus gamma^L * bootstrap when truncated
    rew = [0.1, -0.2, 0.3, 1.0]
    rewards = t64([rew, rew])
    values = t64([[0.3, 0.1, -0.4, 0.2]] * 2)
    terminated = torch.tensor([[False, False, False, True], [False] * 4])
    truncated = torch.tensor([[False] * 4, [False, False, False, True]])
    _, returns = gae(rewards, values, terminated, truncated, t64([9.0, 2.0]), gamma=0.9, lam=1.0)
    discounted = sum(0.9**i * r for i, r in enumerate(rew))
    assert returns[0, 0].item() == pytest.approx(discounted, abs=1e-12)
    assert returns[1, 0].item() == pytest.approx(discounted + 0.9**4 * 2.0, abs=1e-12)


def test_gae_all_ones_mask_equals_no_mask_and_outputs_carry_no_grad():
    gen = torch.Generator().manual_seed(1)
    rewards = torch.randn(3, 5, generator=gen)
    values = torch.randn(3, 5, generator=gen).requires_grad_()
    terminated = torch.zeros(3, 5, dtype=torch.bool)
    terminated[0, -1] = True
    truncated = torch.zeros(3, 5, dtype=torch.bool)
    truncated[1, -1] = True
    args = (rewards, values, terminated, truncated, torch.randn(3, generator=gen), 0.99, 0.95)
    unmasked = gae(*args)
    masked = gae(*args, mask=torch.ones(3, 5, dtype=torch.bool))
    assert all(torch.equal(u, m) for u, m in zip(unmasked, masked))
    assert not any(out.requires_grad for out in unmasked)


def test_gae_rejects_bad_layouts():
    ones = torch.ones(1, 3)
    no_flags = torch.zeros(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="prefix"):
        gae(ones, ones, no_flags, no_flags, torch.zeros(1), 0.9, 0.9, mask=torch.tensor([[True, False, True]]))
    early_end = torch.tensor([[False, True, False]])
    with pytest.raises(ValueError, match="one trajectory per row"):
        gae(ones, ones, early_end, no_flags, torch.zeros(1), 0.9, 0.9)
    with pytest.raises(ValueError, match="bootstrap_value"):
        gae(ones, ones, no_flags, no_flags, torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        gae(ones, ones, no_flags, no_flags, torch.zeros(1), 1.5, 0.9)


# ------------------------------------------------------------------------ PPO terms


def ppo_reference(logp, logp_old, advantages, clip_coef, mask):
    """Schulman et al. 2017, Eq. 7 element by element over valid entries."""
    terms = []
    for lp, lpo, adv, valid in zip(logp, logp_old, advantages, mask):
        if valid:
            ratio = math.exp(lp - lpo)
            clipped = min(max(ratio, 1 - clip_coef), 1 + clip_coef)
            terms.append(min(ratio * adv, clipped * adv))
    return -sum(terms) / len(terms)


def test_ppo_clip_loss_hand_numbers():
    # clip 0.2, A = 2 for both:
    #   ratio 1.5: min(1.5*2, 1.2*2) = 2.4 (clipped)
    #   ratio 0.5: min(0.5*2, 0.8*2) = 1.0 (unclipped: pessimistic bound)
    #   loss = -(2.4 + 1.0) / 2 = -1.7; both |ratio - 1| > 0.2 -> clip fraction 1
    #   approx KL = mean((r - 1) - log r) = ((0.5 - log 1.5) + (-0.5 - log 0.5)) / 2
    logp = t64([math.log(1.5), math.log(0.5)])
    loss, metrics = ppo_clip_loss(logp, t64([0.0, 0.0]), t64([2.0, 2.0]), clip_coef=0.2)
    assert loss.item() == pytest.approx(-1.7, rel=1e-12)
    assert metrics["clip_fraction"].item() == 1.0
    kl = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2
    assert metrics["approx_kl"].item() == pytest.approx(kl, rel=1e-12)
    assert metrics["approx_kl"].item() == pytest.approx((0.09453489189183562 + 0.1931471805599453) / 2)


def test_ppo_clip_loss_matches_reference_loop_with_mask():
    gen = torch.Generator().manual_seed(2)
    logp = 0.5 * torch.randn(4, 6, generator=gen, dtype=torch.float64)
    logp_old = 0.5 * torch.randn(4, 6, generator=gen, dtype=torch.float64)
    advantages = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    mask = torch.rand(4, 6, generator=gen) > 0.3
    loss, metrics = ppo_clip_loss(logp, logp_old, advantages, 0.2, mask=mask)
    flat = [x.flatten().tolist() for x in (logp, logp_old, advantages, mask)]
    assert loss.item() == pytest.approx(ppo_reference(*flat[:3], 0.2, flat[3]), rel=1e-12)
    ratio = (logp - logp_old).exp()[mask]
    assert metrics["clip_fraction"].item() == pytest.approx(((ratio - 1).abs() > 0.2).double().mean().item())


@pytest.mark.parametrize(
    "ratio, advantage, gradient_is_zero",
    [
        (1.5, 1.0, True),  # A > 0, ratio above 1 + eps: clipped, no push further up
        (0.5, -1.0, True),  # A < 0, ratio below 1 - eps: clipped, no push further down
        (0.5, 1.0, False),  # A > 0, ratio below the clip: the unclipped term still pulls up
        (1.5, -1.0, False),  # A < 0, ratio above the clip: the unclipped term still pulls down
        (1.1, 1.0, False),  # inside the clip range
    ],
)
def test_ppo_clip_gradient(ratio, advantage, gradient_is_zero):
    logp = t64([math.log(ratio)]).requires_grad_()
    loss, _ = ppo_clip_loss(logp, t64([0.0]), t64([advantage]), clip_coef=0.2)
    loss.backward()
    if gradient_is_zero:
        assert logp.grad.item() == 0.0
    else:
        # d/d logp of -ratio * A = -ratio * A
        assert logp.grad.item() == pytest.approx(-ratio * advantage, rel=1e-12)


def test_ppo_clip_loss_gradcheck_away_from_kinks():
    # log-ratios at +-0.05 (inside eps = 0.2) and +-0.5 (outside), never near log(1 +- 0.2)
    log_ratio = t64([[0.05, -0.05, 0.5, -0.5], [0.5, -0.5, 0.05, -0.05]])
    logp_old = t64([[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.2, -2.2, -0.7]])
    advantages = t64([[1.0, -2.0, 0.5, -0.3], [-1.5, 0.7, 2.0, 1.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    logp = (logp_old + log_ratio).requires_grad_()

    def loss_of(lp):
        return ppo_clip_loss(lp, logp_old, advantages, 0.2, mask=mask)[0]

    assert torch.autograd.gradcheck(loss_of, (logp,))


def test_ppo_clip_loss_survives_minus_inf_padding():
    logp = t64([[-0.5, float("-inf")]]).requires_grad_()
    mask = torch.tensor([[True, False]])
    loss, metrics = ppo_clip_loss(logp, t64([[-0.4, NAN]]), t64([[1.0, NAN]]), 0.2, mask=mask)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(m) for m in metrics.values())
    assert logp.grad.tolist() == [[pytest.approx(-math.exp(-0.1)), 0.0]]


def test_value_loss_hand_numbers():
    # V = (1, 2), R = (1.5, 1): 0.5 * mean(0.25, 1) = 0.3125
    values, returns = t64([1.0, 2.0]), t64([1.5, 1.0])
    assert value_loss(values, returns).item() == pytest.approx(0.3125, rel=1e-12)
    # clipped, V_old = (0.8, 2.5), eps = 0.1: V_clip = (0.9, 2.4)
    #   clipped errors (0.9 - 1.5)^2 = 0.36, (2.4 - 1)^2 = 1.96; max with (0.25, 1) -> (0.36, 1.96)
    #   0.5 * mean = 0.58
    clipped = value_loss(values, returns, values_old=t64([0.8, 2.5]), clip_coef=0.1)
    assert clipped.item() == pytest.approx(0.58, rel=1e-12)


def test_value_loss_requires_both_clip_arguments():
    with pytest.raises(ValueError, match="both"):
        value_loss(t64([1.0]), t64([1.0]), values_old=t64([1.0]))
    with pytest.raises(ValueError, match="both"):
        value_loss(t64([1.0]), t64([1.0]), clip_coef=0.2)


@pytest.mark.parametrize("clipped", [False, True])
def test_value_loss_gradcheck(clipped):
    values_old = t64([[0.0, 1.0, -1.0], [0.5, 0.2, 2.0]])
    # V - V_old in {+-0.05, +-0.5}: away from the clip at 0.2
    values = (values_old + t64([[0.05, 0.5, -0.5], [-0.05, 0.5, -0.5]])).requires_grad_()
    returns = t64([[1.0, -1.0, 0.3], [0.1, 2.0, -2.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    kwargs = dict(values_old=values_old, clip_coef=0.2) if clipped else {}
    assert torch.autograd.gradcheck(lambda v: value_loss(v, returns, mask=mask, **kwargs), (values,))


def test_entropy_bonus_masked_mean():
    entropy = t64([[1.0, 2.0], [3.0, NAN]])
    assert entropy_bonus(entropy, torch.tensor([[True, True], [True, False]])).item() == pytest.approx(2.0)


def test_kl_to_reference_k3():
    logp = t64([[-0.3, -1.2, -2.0]]).requires_grad_()
    kl = kl_to_reference(logp, logp.detach().clone())
    kl.backward()
    assert kl.item() == 0.0
    assert logp.grad.abs().max().item() == 0.0  # k3 is flat at its minimum
    # hand: logp = 0, ref = log 2 -> x = log 2: 2 - log 2 - 1 = 0.3068528
    assert kl_to_reference(t64([0.0]), t64([math.log(2.0)])).item() == pytest.approx(0.3068528194400546)
    # small log-ratios x: k3 = x^2 / 2 + O(x^3), strictly positive
    gen = torch.Generator().manual_seed(3)
    logp = torch.randn(1000, generator=gen, dtype=torch.float64)
    for scale in (1e-6, 1e-3):
        ref_logp = logp + scale * torch.randn(1000, generator=gen, dtype=torch.float64)
        x = ref_logp - logp
        k3 = kl_to_reference(logp, ref_logp)
        assert k3.item() > 0
        assert k3.item() == pytest.approx((0.5 * x**2).mean().item(), rel=1e-2)


def test_kl_to_reference_each_term_non_negative_in_float32():
    # exp(x) - x - 1 rounds to -6e-8 for some |x| < 1e-3 in float32; expm1(x) - x does not
    x = torch.logspace(-9, -3, 400)
    log_ratios = torch.cat([x, -x])  # float32
    per_entry = [kl_to_reference(torch.zeros(1), log_ratios[i : i + 1]).item() for i in range(len(log_ratios))]
    assert min(per_entry) >= 0.0


def test_kl_to_reference_survives_minus_inf_padding():
    logp = torch.tensor([[-0.5, float("-inf")]], requires_grad=True)
    kl = kl_to_reference(logp, torch.tensor([[-0.7, float("-inf")]]), mask=torch.tensor([[True, False]]))
    kl.backward()
    assert torch.isfinite(kl) and torch.isfinite(logp.grad).all()


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b, c, m: ppo_clip_loss(a, b, c, 0.2, mask=m)[0],
        lambda a, b, c, m: ppo_clip_loss(a, b, c, 0.2, mask=m)[1]["approx_kl"],
        lambda a, b, c, m: value_loss(a, b, mask=m),
        lambda a, b, c, m: value_loss(a, b, values_old=c, clip_coef=0.1, mask=m),
        lambda a, b, c, m: entropy_bonus(a, mask=m),
        lambda a, b, c, m: kl_to_reference(a, b, mask=m),
        lambda a, b, c, m: masked_mean(a, m),
    ],
)
def test_all_ones_mask_equals_unmasked(fn):
    gen = torch.Generator().manual_seed(5)
    a, b, c = (0.3 * torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    unmasked = fn(a, b, c, None)
    masked = fn(a, b, c, torch.ones(3, 4, dtype=torch.bool))
    assert masked.item() == pytest.approx(unmasked.item(), rel=1e-12)


def test_categorical_kl_exact_by_hand_and_padding_counts_nothing():
    from learner import losses

    neg = torch.finfo(torch.float32).min
    logp = torch.log(torch.tensor([[0.5, 0.5, 1.0], [0.2, 0.8, 1.0]]))
    ref = torch.log(torch.tensor([[0.25, 0.75, 1.0], [0.2, 0.8, 1.0]]))
    logp[:, 2], ref[:, 2] = neg, neg  # a padded slot
    mask = torch.tensor([[True, True, False], [True, True, False]])
    # state 0: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.143841; state 1: identical, 0
    expected = (0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75)) / 2
    assert losses.categorical_kl(logp, ref, mask).item() == pytest.approx(expected, rel=1e-5)
    assert losses.categorical_kl(ref, ref, mask).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        losses.categorical_kl(logp, ref[:1], mask)
