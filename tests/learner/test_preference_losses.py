"""learner.preference_losses against hand-computed numbers and autograd.gradcheck in
float64, and the registry's uniform keyword signature."""

import inspect
import math

import pytest
import torch

from learner.preference_losses import (
    PREFERENCE_LOSSES,
    dpo_loss,
    dpo_loss_label_smoothing,
    ipo_loss,
)


def t64(values):
    return torch.tensor(values, dtype=torch.float64)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------- preference losses
# Two pairs, beta = 0.1:
#   pair 0: pi_w=-1, pi_l=-2, ref_w=ref_l=-1.5 -> log-ratios +0.5, -0.5; h = 1;  beta*h = 0.1
#   pair 1: pi_w=-3, pi_l=-1, ref_w=ref_l=-2   -> log-ratios -1,  +1;   h = -2; beta*h = -0.2
PAIRS = dict(
    policy_chosen_logp=t64([-1.0, -3.0]),
    policy_rejected_logp=t64([-2.0, -1.0]),
    ref_chosen_logp=t64([-1.5, -2.0]),
    ref_rejected_logp=t64([-1.5, -2.0]),
)
BETA = 0.1


def test_dpo_loss_hand_numbers():
    loss, metrics = dpo_loss(**PAIRS, beta=BETA)
    # -log sigmoid(0.1) = log(1 + e^-0.1) = 0.6443967; -log sigmoid(-0.2) = log(1 + e^0.2) = 0.7981389
    expected = (math.log(1 + math.exp(-0.1)) + math.log(1 + math.exp(0.2))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert loss.item() == pytest.approx((0.6443966600735709 + 0.7981388693815918) / 2)
    # implicit rewards beta * log-ratio: chosen (0.05, -0.1), rejected (-0.05, 0.1)
    assert metrics["chosen_reward"].item() == pytest.approx((0.05 - 0.1) / 2)
    assert metrics["rejected_reward"].item() == pytest.approx((-0.05 + 0.1) / 2)
    # margins 0.1 and -0.2
    assert metrics["reward_margin"].item() == pytest.approx((0.1 - 0.2) / 2)
    assert metrics["reward_accuracy"].item() == 0.5
    assert not any(m.requires_grad for m in metrics.values())


def test_dpo_loss_gradient_matches_closed_form():
    # d/d pi_w of -log sigmoid(beta*h) = -beta * sigmoid(-beta*h), divided by B = 2
    policy_chosen = PAIRS["policy_chosen_logp"].clone().requires_grad_()
    loss, _ = dpo_loss(**{**PAIRS, "policy_chosen_logp": policy_chosen}, beta=BETA)
    loss.backward()
    expected = [-BETA * sigmoid(-0.1) / 2, -BETA * sigmoid(0.2) / 2]
    assert policy_chosen.grad.tolist() == pytest.approx(expected, rel=1e-12)


def test_cdpo_hand_numbers_and_reduction_to_dpo():
    loss, _ = dpo_loss_label_smoothing(**PAIRS, beta=BETA, label_smoothing=0.1)
    # pair 0: 0.9 * log(1 + e^-0.1) + 0.1 * log(1 + e^0.1) = 0.6543967
    # pair 1: 0.9 * log(1 + e^0.2) + 0.1 * log(1 + e^-0.2)
    pair0 = 0.9 * math.log(1 + math.exp(-0.1)) + 0.1 * math.log(1 + math.exp(0.1))
    pair1 = 0.9 * math.log(1 + math.exp(0.2)) + 0.1 * math.log(1 + math.exp(-0.2))
    assert pair0 == pytest.approx(0.6543966600735709)
    assert loss.item() == pytest.approx((pair0 + pair1) / 2, rel=1e-12)
    plain, _ = dpo_loss(**PAIRS, beta=BETA)
    smoothed0, _ = dpo_loss_label_smoothing(**PAIRS, beta=BETA, label_smoothing=0.0)
    assert smoothed0.item() == pytest.approx(plain.item(), rel=1e-12)


@pytest.mark.parametrize("eps", [-0.1, 0.5, 1.0])
def test_cdpo_rejects_bad_label_smoothing(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss_label_smoothing(**PAIRS, beta=BETA, label_smoothing=eps)


def test_ipo_loss_hand_numbers():
    loss, metrics = ipo_loss(**PAIRS, beta=BETA)
    # target 1 / (2 * 0.1) = 5: (1 - 5)^2 = 16, (-2 - 5)^2 = 49, mean 32.5
    assert loss.item() == pytest.approx(32.5, rel=1e-12)
    assert metrics["reward_accuracy"].item() == 0.5


def test_ipo_loss_is_minimised_at_target_gap():
    # h = 1 / (2 beta) = 5: chosen log-ratio 2.5, rejected -2.5
    policy_chosen = t64([2.5]).requires_grad_()
    loss, _ = ipo_loss(policy_chosen, t64([-2.5]), t64([0.0]), t64([0.0]), beta=BETA)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert policy_chosen.grad.item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "loss_fn, coefs",
    [
        (dpo_loss, dict(beta=0.5)),
        (dpo_loss_label_smoothing, dict(beta=0.5, label_smoothing=0.2)),
        (ipo_loss, dict(beta=0.5)),
    ],
)
def test_preference_losses_gradcheck(loss_fn, coefs):
    gen = torch.Generator().manual_seed(0)
    policy_chosen, policy_rejected, ref_chosen, ref_rejected = (
        torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(4)
    )
    policy_chosen.requires_grad_()
    policy_rejected.requires_grad_()

    def loss_of(chosen, rejected):
        return loss_fn(chosen, rejected, ref_chosen, ref_rejected, **coefs)[0]

    assert torch.autograd.gradcheck(loss_of, (policy_chosen, policy_rejected))


def test_preference_loss_rejects_bad_inputs():
    with pytest.raises(ValueError, match="shape mismatch"):
        dpo_loss(t64([0.0, 1.0]), t64([0.0]), t64([0.0]), t64([0.0]), beta=0.1)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        dpo_loss(*(torch.zeros(2, 3) for _ in range(4)), beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        ipo_loss(**PAIRS, beta=0.0)


def test_registry_has_uniform_keyword_signature():
    assert set(PREFERENCE_LOSSES) == {"sigmoid", "cdpo", "ipo"}
    signatures = {name: inspect.signature(fn) for name, fn in PREFERENCE_LOSSES.items()}
    first = signatures["sigmoid"]
    assert all(sig == first for sig in signatures.values())
    assert list(first.parameters) == [*PAIRS, "beta", "label_smoothing"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in first.parameters.values())
    assert first.parameters["label_smoothing"].default == 0.0


def test_registry_entries_match_the_functions():
    for name, direct in [
        ("sigmoid", dpo_loss(**PAIRS, beta=BETA)),
        ("cdpo", dpo_loss_label_smoothing(**PAIRS, beta=BETA, label_smoothing=0.1)),
        ("ipo", ipo_loss(**PAIRS, beta=BETA)),
    ]:
        # every entry takes the same keywords; label_smoothing is 0.1 only where it applies
        loss, metrics = PREFERENCE_LOSSES[name](**PAIRS, beta=BETA, label_smoothing=0.1 if name == "cdpo" else 0.0)
        assert loss.item() == direct[0].item()
        assert metrics.keys() == direct[1].keys()
        with pytest.raises(TypeError):
            PREFERENCE_LOSSES[name](*PAIRS.values(), beta=BETA)  # keyword-only


@pytest.mark.parametrize("name", ["sigmoid", "ipo"])
def test_registry_refuses_label_smoothing_it_would_ignore(name):
    with pytest.raises(ValueError, match="cdpo"):
        PREFERENCE_LOSSES[name](**PAIRS, beta=BETA, label_smoothing=0.1)
