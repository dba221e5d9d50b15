"""Preference losses for DPO and its variants, and their registry `PREFERENCE_LOSSES`.

Pure functions under the conventions of `learner.losses` (tensors and float
coefficients in, a loss and detached 0-d metrics out); checked against hand numbers
in tests/learner/test_preference_losses.py.
"""

from __future__ import annotations

from typing import Protocol

import torch.nn.functional as F
from torch import Tensor

from learner.losses import Metrics, _check_positive, _check_same_shape


# ---------------------------------------------------------------- preference losses
# Inputs are summed log-probs of whole trajectories (all actions of an episode),
# one entry per preference pair: (B,) each.


def _log_ratios(
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    ref_chosen_logp: Tensor,
    ref_rejected_logp: Tensor,
    beta: float,
) -> tuple[Tensor, Tensor]:
    _check_same_shape(
        policy_chosen_logp=policy_chosen_logp,
        policy_rejected_logp=policy_rejected_logp,
        ref_chosen_logp=ref_chosen_logp,
        ref_rejected_logp=ref_rejected_logp,
    )
    if policy_chosen_logp.dim() != 1:
        raise ValueError(f"preference losses take (B,) log-probs, got shape {tuple(policy_chosen_logp.shape)}")
    _check_positive("beta", beta)
    chosen_log_ratio = policy_chosen_logp - ref_chosen_logp.detach()  # (B,)
    rejected_log_ratio = policy_rejected_logp - ref_rejected_logp.detach()  # (B,)
    return chosen_log_ratio, rejected_log_ratio


def _preference_metrics(chosen_log_ratio: Tensor, rejected_log_ratio: Tensor, beta: float) -> Metrics:
    """Implicit rewards r = beta * log(pi / pi_ref) (Rafailov et al. 2023, Eq. 5), batch means."""
    chosen_reward = beta * chosen_log_ratio.detach()  # (B,)
    rejected_reward = beta * rejected_log_ratio.detach()  # (B,)
    margin = chosen_reward - rejected_reward  # (B,)
    return {
        "chosen_reward": chosen_reward.mean(),
        "rejected_reward": rejected_reward.mean(),
        "reward_margin": margin.mean(),
        "reward_accuracy": (margin > 0).to(margin.dtype).mean(),
    }


def dpo_loss(
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    ref_chosen_logp: Tensor,
    ref_rejected_logp: Tensor,
    beta: float,
) -> tuple[Tensor, Metrics]:
    """Sigmoid DPO loss (Rafailov et al. 2023, Eq. 7).

        h    = [log pi(y_w) - log pi_ref(y_w)] - [log pi(y_l) - log pi_ref(y_l)]
        loss = mean_B( -log sigmoid(beta * h) )

    Args:
        policy_chosen_logp, policy_rejected_logp: (B,) summed trajectory log-probs
            under the policy being trained.
        ref_chosen_logp, ref_rejected_logp: (B,) the same under the frozen
            reference (detached here).
        beta: > 0, strength of the implicit KL penalty towards the reference.

    Returns:
        (loss, metrics): scalar loss; metrics ``chosen_reward``, ``rejected_reward``,
        ``reward_margin`` (batch means of beta * log-ratio) and ``reward_accuracy``
        (fraction of pairs with margin > 0).
    """
    chosen, rejected = _log_ratios(policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp, beta)
    logits = beta * (chosen - rejected)  # (B,)
    loss = -F.logsigmoid(logits).mean()
    return loss, _preference_metrics(chosen, rejected, beta)


def dpo_loss_label_smoothing(
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    ref_chosen_logp: Tensor,
    ref_rejected_logp: Tensor,
    beta: float,
    label_smoothing: float,
) -> tuple[Tensor, Metrics]:
    """Conservative DPO, cDPO (Mitchell 2023, "A note on DPO with noisy preferences").

    Each label is assumed flipped with probability eps = ``label_smoothing``:

        loss = mean_B( (1 - eps) * -log sigmoid(beta * h) + eps * -log sigmoid(-beta * h) )

    with h as in :func:`dpo_loss` (Rafailov et al. 2023, Eq. 7); eps = 0 is plain DPO.
    Unlike DPO the loss has a finite minimiser, beta * h = log((1 - eps) / eps), so
    the log-ratio gap stops growing. Requires 0 <= eps < 0.5. Arguments and metrics
    as in :func:`dpo_loss`.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
    chosen, rejected = _log_ratios(policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp, beta)
    logits = beta * (chosen - rejected)  # (B,)
    losses = -(1.0 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)  # (B,)
    return losses.mean(), _preference_metrics(chosen, rejected, beta)


def ipo_loss(
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    ref_chosen_logp: Tensor,
    ref_rejected_logp: Tensor,
    beta: float,
) -> tuple[Tensor, Metrics]:
    """IPO loss (Azar et al. 2023, Eq. 17), with the paper's tau written as beta.

        loss = mean_B( (h - 1 / (2 * beta))^2 )

    with h as in :func:`dpo_loss`. The squared loss regresses the log-ratio gap to a
    fixed target instead of pushing it to infinity, so it does not overfit
    deterministic preferences. h is a gap of *summed* trajectory log-probs here, so
    beta is on the scale of whole trajectories. Arguments and metrics as in
    :func:`dpo_loss`.
    """
    chosen, rejected = _log_ratios(policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp, beta)
    h = chosen - rejected  # (B,)
    loss = (h - 1.0 / (2.0 * beta)).square().mean()
    return loss, _preference_metrics(chosen, rejected, beta)


class PreferenceLoss(Protocol):
    """The uniform signature of :data:`PREFERENCE_LOSSES` entries: keyword-only.

    ``label_smoothing`` is accepted by every entry so a learner can pass its whole
    preference section unchanged; entries that do not use it raise ValueError when
    it is non-zero instead of silently ignoring it.
    """

    def __call__(
        self,
        *,
        policy_chosen_logp: Tensor,  # (B,)
        policy_rejected_logp: Tensor,  # (B,)
        ref_chosen_logp: Tensor,  # (B,)
        ref_rejected_logp: Tensor,  # (B,)
        beta: float,
        label_smoothing: float = 0.0,
    ) -> tuple[Tensor, Metrics]: ...


def _registry_entry(name: str, loss_fn, uses_label_smoothing: bool) -> PreferenceLoss:
    def entry(
        *,
        policy_chosen_logp: Tensor,
        policy_rejected_logp: Tensor,
        ref_chosen_logp: Tensor,
        ref_rejected_logp: Tensor,
        beta: float,
        label_smoothing: float = 0.0,
    ) -> tuple[Tensor, Metrics]:
        logps = (policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp)
        if uses_label_smoothing:
            return loss_fn(*logps, beta=beta, label_smoothing=label_smoothing)
        if label_smoothing != 0.0:
            raise ValueError(
                f"label_smoothing={label_smoothing!r} does not apply to the {name!r} preference loss; "
                "use 'cdpo' for label-smoothed DPO or set label_smoothing to 0"
            )
        return loss_fn(*logps, beta=beta)

    entry.__name__ = entry.__qualname__ = f"{name}_preference_loss"
    entry.__doc__ = f"Registry entry {name!r}: keyword-only {loss_fn.__name__} (see PreferenceLoss)."
    return entry


PREFERENCE_LOSSES: dict[str, PreferenceLoss] = {
    "sigmoid": _registry_entry("sigmoid", dpo_loss, uses_label_smoothing=False),
    "cdpo": _registry_entry("cdpo", dpo_loss_label_smoothing, uses_label_smoothing=True),
    "ipo": _registry_entry("ipo", ipo_loss, uses_label_smoothing=False),
}
