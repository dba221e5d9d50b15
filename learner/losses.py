"""Loss functions and advantage estimators for the learner.

Every function here is pure: tensors and float coefficients in, tensors out. No
config objects, no logging, no device moves, so each one can be checked against
the paper's equation in isolation (tests/learner/test_losses.py). The preference
losses (DPO and its variants) live in `learner.preference_losses` under the same
conventions; this module holds the shared helpers, GAE and the PPO terms.

Conventions:

* ``mask`` marks valid (non-padded) entries and has the same shape as the tensor
  it masks; bool or 0/1. Padded entries may hold anything, ``-inf`` log-probs and
  NaN included: they are overwritten with zeros *before* any non-linear op, so they
  neither reach the mean nor turn into NaN gradients (``inf * 0``) in backward.
* Quantities that are targets or constants of a loss (``logp_old``, advantages,
  returns, ``values_old``, reference log-probs) are detached inside, so a caller
  cannot leak gradient into them by accident.
* Metrics are detached 0-d tensors, not Python floats: computing a loss never
  forces a device sync; the learner calls ``.item()`` when it logs.
"""

from __future__ import annotations

import torch
from torch import Tensor

Metrics = dict[str, Tensor]


# --------------------------------------------------------------------------- helpers


def _check_same_shape(**tensors: Tensor | None) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items() if t is not None}
    if len(set(shapes.values())) > 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{n}={s}" for n, s in shapes.items()))


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _zero_padding(mask: Tensor | None, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Replace padded entries with 0 so that later exp/square/clamp stay finite."""
    if mask is None:
        return tensors
    valid = mask.bool()
    return tuple(torch.where(valid, t, torch.zeros_like(t)) for t in tensors)


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is true (all entries if ``mask`` is None).

    Padded entries are dropped with ``torch.where`` (``nan * 0`` would be NaN). An
    all-false mask gives 0, not NaN, so an empty batch cannot poison the weights.
    """
    if mask is None:
        return x.mean()
    _check_same_shape(x=x, mask=mask)
    valid = mask.bool()
    total = torch.where(valid, x, torch.zeros_like(x)).sum()
    return total / valid.sum().clamp(min=1).to(x.dtype)


# ----------------------------------------------------------------------------- GAE


def _check_gae_layout(valid: Tensor, next_valid: Tensor, ended: Tensor) -> None:
    holes = next_valid & ~valid  # (B, T): a padded step followed by a valid one
    if holes.any():
        b, t = (int(i) for i in holes.nonzero()[0])
        raise ValueError(
            f"mask row {b} has padding at step {t} before valid step {t + 1}; "
            "valid steps must be a prefix"
        )
    early = ended & next_valid  # (B, T): an episode end followed by more valid steps
    if early.any():
        b, t = (int(i) for i in early.nonzero()[0])
        raise ValueError(
            f"row {b} is terminated/truncated at step {t} but has valid steps after it; "
            "gae expects one trajectory per row, ending at its last valid step"
        )


def gae(
    rewards: Tensor,
    values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    bootstrap_value: Tensor,
    gamma: float,
    lam: float,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, Eq. 16) for padded trajectories.

        A_t     = sum_{l >= 0} (gamma * lam)^l * delta_{t+l}   (summed to the trajectory's end)
        delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)

    Layout: one trajectory per row of a (B, T) batch, its valid steps a prefix of the
    row given by ``mask`` (a single trajectory is B = 1). V(s_{t+1}) is, with
    Gymnasium's ``terminated`` / ``truncated`` kept apart:

    * inside the trajectory: ``values[b, t + 1]``;
    * at the last valid step, if ``terminated``: 0 -- the episode really ended;
    * at the last valid step, if ``truncated`` (time limit), or if neither flag is set
      (a rollout fragment cut mid-episode): ``bootstrap_value[b]``, V of the
      observation after the last action. Treating a time limit as termination would
      teach the value head that running out of steps is worth 0.

    ``terminated`` wins when both flags are set. Flags at padded steps are ignored.

    Args:
        rewards: (B, T) reward r_t received after the action at step t.
        values: (B, T) V(s_t) from the value head at acting or learning time.
        terminated, truncated: (B, T) bool, Gymnasium's step flags.
        bootstrap_value: (B,) V of each row's final observation; read only for rows
            ending truncated or unfinished.
        gamma: discount in [0, 1]; lam: GAE lambda in [0, 1] (0: TD(0) error,
            1: Monte-Carlo return minus V).
        mask: (B, T) bool of valid steps; None means every step is valid.

    Returns:
        (advantages, returns): (B, T) each, zero at padded steps, without grad.
        ``returns = advantages + values`` are the lambda-returns used as value targets.

    Raises:
        ValueError: on mismatched shapes, a mask that is not a prefix, or a
        terminated/truncated flag before a row's last valid step.
    """
    _check_same_shape(rewards=rewards, values=values, terminated=terminated, truncated=truncated, mask=mask)
    if rewards.dim() != 2 or tuple(bootstrap_value.shape) != (rewards.shape[0],):
        raise ValueError(
            f"gae takes (B, T) rewards and (B,) bootstrap_value, got {tuple(rewards.shape)} "
            f"and {tuple(bootstrap_value.shape)}"
        )
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must be in [0, 1], got gamma={gamma!r}, lam={lam!r}")
    rewards, values, bootstrap_value = rewards.detach(), values.detach(), bootstrap_value.detach()
    valid = torch.ones_like(rewards, dtype=torch.bool) if mask is None else mask.bool()  # (B, T)
    next_valid = torch.zeros_like(valid)  # (B, T): is step t + 1 part of the same trajectory
    next_valid[:, :-1] = valid[:, 1:]
    terminated = terminated.bool() & valid  # (B, T)
    _check_gae_layout(valid, next_valid, ended=terminated | (truncated.bool() & valid))

    num_steps = rewards.shape[1]
    zeros = torch.zeros_like(bootstrap_value)  # (B,)
    # V(s_{t+1}) when the trajectory ends at t: 0 if terminated, else the bootstrap.
    end_value = torch.where(terminated, zeros[:, None], bootstrap_value[:, None])  # (B, T)
    advantages = torch.zeros_like(rewards)  # (B, T)
    next_advantage = zeros  # (B,) A_{t+1}; stays 0 past a row's end
    for t in reversed(range(num_steps)):
        value_after = values[:, t + 1] if t + 1 < num_steps else zeros  # (B,)
        next_value = torch.where(next_valid[:, t], value_after, end_value[:, t])  # (B,)
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        # where, not multiply: padded rewards/values may be NaN.
        next_advantage = torch.where(valid[:, t], delta + gamma * lam * next_advantage, zeros)
        advantages[:, t] = next_advantage
    returns = torch.where(valid, advantages + values, torch.zeros_like(values))  # (B, T)
    return advantages, returns


# ------------------------------------------------------------------------ PPO terms


def ppo_clip_loss(
    logp: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    clip_coef: float,
    mask: Tensor | None = None,
) -> tuple[Tensor, Metrics]:
    """Clipped surrogate policy loss (Schulman et al. 2017, Eq. 7), negated for minimisation.

        ratio = exp(logp - logp_old)
        loss  = -mean( min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) )

    Where the ratio has left [1 - eps, 1 + eps] in the direction the advantage
    favours, the clipped term is the minimum and the gradient is 0.

    Args:
        logp: (B, T) or any shape, log-probs of the taken actions under the current policy.
        logp_old: same shape, behaviour log-probs recorded at acting time (detached).
        advantages: same shape (detached; normalise before calling if wanted).
        clip_coef: eps > 0.
        mask: same shape, valid entries.

    Returns:
        (loss, metrics): ``clip_fraction`` (share of entries with |ratio - 1| > eps)
        and ``approx_kl`` (mean of (ratio - 1) - log ratio, the k3 estimate of
        KL(pi_old || pi); Schulman 2020, "Approximating KL divergence").
    """
    _check_same_shape(logp=logp, logp_old=logp_old, advantages=advantages, mask=mask)
    _check_positive("clip_coef", clip_coef)
    logp, logp_old, advantages = _zero_padding(mask, logp, logp_old.detach(), advantages.detach())
    log_ratio = logp - logp_old  # (B, T)
    ratio = log_ratio.exp()  # (B, T)
    surrogate = ratio * advantages  # (B, T)
    clipped_surrogate = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages  # (B, T)
    loss = -masked_mean(torch.minimum(surrogate, clipped_surrogate), mask)
    with torch.no_grad():
        metrics = {
            "clip_fraction": masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), mask),
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),
        }
    return loss, metrics


def value_loss(
    values: Tensor,
    returns: Tensor,
    values_old: Tensor | None = None,
    clip_coef: float | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Value-head regression loss, 0.5 * mean((V - R)^2), optionally clipped.

    With ``values_old`` and ``clip_coef`` given, the PPO2 clipped form (OpenAI
    Baselines; the PPO paper has no equation for it):

        V_clip = V_old + clip(V - V_old, -eps, eps)
        loss   = 0.5 * mean( max((V - R)^2, (V_clip - R)^2) )

    It is optional because Andrychowicz et al. (2021) find value clipping does not help.

    Args:
        values: (B, T) or any shape, current value predictions.
        returns: same shape, targets (detached), e.g. from :func:`gae`.
        values_old: same shape, predictions at acting time (detached); with clip_coef.
        clip_coef: eps > 0; with values_old.
        mask: same shape, valid entries.
    """
    _check_same_shape(values=values, returns=returns, values_old=values_old, mask=mask)
    if (values_old is None) != (clip_coef is None):
        raise ValueError("pass both values_old and clip_coef for a clipped value loss, or neither")
    values, returns = _zero_padding(mask, values, returns.detach())
    squared_error = (values - returns).square()  # (B, T)
    if values_old is not None:
        _check_positive("clip_coef", clip_coef)
        (values_old,) = _zero_padding(mask, values_old.detach())
        values_clipped = values_old + (values - values_old).clamp(-clip_coef, clip_coef)  # (B, T)
        squared_error = torch.maximum(squared_error, (values_clipped - returns).square())
    return 0.5 * masked_mean(squared_error, mask)


def entropy_bonus(entropy: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean policy entropy over valid entries (Schulman et al. 2017, Eq. 9, the S term).

    Returned positive; the total loss subtracts ``entropy_coef * entropy_bonus(...)``.

    Args:
        entropy: (B, T) or any shape, entropy of the action distribution at each step.
        mask: same shape, valid entries.
    """
    return masked_mean(entropy, mask)


def kl_to_reference(logp: Tensor, ref_logp: Tensor, mask: Tensor | None = None) -> Tensor:
    """k3 estimate of KL(pi || pi_ref) from actions sampled by the policy (Schulman 2020,
    "Approximating KL divergence").

        x  = ref_logp - logp = log(pi_ref / pi)
        k3 = exp(x) - x - 1

    Unbiased for KL(pi || pi_ref) when the actions come from pi, lower variance than
    -x, and never negative because exp(x) >= 1 + x; computed as expm1(x) - x, which
    keeps that true in floating point for small x. Zero exactly when logp == ref_logp.

    Args:
        logp: (B, T) or any shape, log-probs of the taken actions under the policy.
        ref_logp: same shape, under the frozen reference (detached).
        mask: same shape, valid entries.
    """
    _check_same_shape(logp=logp, ref_logp=ref_logp, mask=mask)
    logp, ref_logp = _zero_padding(mask, logp, ref_logp.detach())
    log_ratio = ref_logp - logp  # (B, T)
    k3 = torch.expm1(log_ratio) - log_ratio  # (B, T)
    return masked_mean(k3, mask)


def categorical_kl(logp_all: Tensor, ref_logp_all: Tensor, mask: Tensor) -> Tensor:
    """Exact KL(pi || pi_ref) over each state's candidates, averaged over states:
    mean_b sum_k pi(k|b) (log pi(k|b) - log pi_ref(k|b)).

    Args:
        logp_all: (B, K) log-probs of every candidate slot under the policy.
        ref_logp_all: (B, K) the same under the frozen reference (detached).
        mask: (B, K) bool, real candidates; padded slots count nothing.
    """
    _check_same_shape(logp_all=logp_all, ref_logp_all=ref_logp_all, mask=mask)
    logp, ref = _zero_padding(mask, logp_all, ref_logp_all.detach())  # padded slots -> 0
    terms = torch.where(mask, logp.exp() * (logp - ref), torch.zeros_like(logp))  # (B, K)
    return terms.sum(dim=-1).mean()
