"""Decoupled PPO (Hilton et al. 2021, "Batch size-invariance for policy optimization", Sec. 3).

Behaviour log-probs may come from an older version of the weights (workers act with
the last ones they received), so an update first re-evaluates every step with the
current weights (`logp_prox`, no grad), clips the ratio pi / pi_prox, and weights each step's
advantage by the behaviour correction pi_prox / pi_behaviour, truncated at `is_clip`
as in V-trace (Espeholt et al. 2018) to bound its variance. One update runs
`ppo_epochs` passes of minibatches over its steps (several optimizer steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from learner import losses
from learner.batches import PPOBatch, UpdateResult
from learner.config import PPOConfig
from learner.group import SOLO, Group, sum_values
from learner.logprobs import StepBatch, evaluate_chunks
from learner.reference import Reference
from policies.policy import EvalOutput, Policy
from rollout_workers.schema import Trajectory


def behaviour_weights(logp_prox: Tensor, logp_behaviour: Tensor, is_clip: float) -> Tensor:
    """Decoupled PPO's behaviour correction, truncated: min(pi_prox / pi_behaviour, is_clip).

    Args: logp_prox, logp_behaviour: (S,) log-probs of the taken actions. Returns (S,), no grad.
    """
    return torch.exp(logp_prox.detach() - logp_behaviour.detach()).clamp(max=is_clip)


def trajectory_advantages(
    trajs: Sequence[Trajectory], gamma: float, lam: float, fallback_values: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """GAE of each trajectory from its stored rewards, values and end flags.

    The final observation is not recorded, so a truncated (or unfinished) episode is
    bootstrapped with the stored value of its LAST state, V(s_T) ~ V(s_{T-1}): an
    approximation that is exact when the last action does not change the state's
    worth. Terminated episodes bootstrap with 0. Trajectories without `values`
    (e.g. expert sources) use `fallback_values`, (S,) in flattened step order.

    Returns: (advantages, returns), each (S,) on the CPU, steps flattened in trajectory order.
    """
    lengths = [t.num_steps for t in trajs]
    if min(lengths, default=0) < 1:
        raise ValueError("trajectory_advantages needs trajectories with at least one step")
    fallback = fallback_values.detach().cpu().split(lengths) if fallback_values is not None else None
    shape = (len(trajs), max(lengths))
    rewards, values = torch.zeros(shape), torch.zeros(shape)  # (B, T)
    mask, terminated, truncated = (torch.zeros(shape, dtype=torch.bool) for _ in range(3))  # (B, T)
    for b, (traj, n) in enumerate(zip(trajs, lengths)):
        if traj.values is None and fallback is None:
            raise ValueError(f"trajectory {traj.traj_id} has no stored values and no fallback was given")
        rewards[b, :n] = torch.tensor(traj.rewards, dtype=torch.float32)
        values[b, :n] = torch.tensor(traj.values, dtype=torch.float32) if traj.values is not None else fallback[b]
        mask[b, :n] = True
        terminated[b, n - 1], truncated[b, n - 1] = traj.terminated, traj.truncated
    last = torch.tensor(lengths) - 1  # (B,)
    bootstrap = values[torch.arange(len(trajs)), last]  # (B,)
    advantages, returns = losses.gae(rewards, values, terminated, truncated, bootstrap, gamma, lam, mask)
    return advantages[mask], returns[mask]  # (S,) each


@dataclass(frozen=True)
class PPOTargets:
    """Per-step constants of one PPO update, in StepBatch order (S steps)."""

    logp_prox: Tensor  # (S,) current policy at the start of the update, no grad
    advantages: Tensor  # (S,) normalised advantages times the behaviour weight: what the loss uses
    returns: Tensor  # (S,) lambda-returns, value targets
    ref_logp: Tensor | None  # (S,) reference log-probs, when kl_coef > 0
    raw_advantages: Tensor  # (S,) GAE before normalisation (metrics)
    behaviour_weights: Tensor  # (S,) min(pi_prox / pi_behaviour, is_clip) (metrics)

    def take(self, index: Tensor) -> "PPOTargets":
        # Not dataclasses.astuple: it deep-copies every tensor.
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return PPOTargets(*(None if t is None else t[index] for t in values))


def ppo_loss(config: PPOConfig, out: EvalOutput, targets: PPOTargets) -> tuple[Tensor, dict[str, Tensor]]:
    """Loss of one chunk of C steps (`out` and `targets` hold (C,) tensors); metrics detached."""
    policy_loss, parts = losses.ppo_clip_loss(out.logp, targets.logp_prox, targets.advantages, config.clip_coef)
    v_loss = losses.value_loss(out.value, targets.returns)
    entropy = losses.entropy_bonus(out.entropy)
    loss = policy_loss + config.value_coef * v_loss - config.entropy_coef * entropy
    parts = {"policy_loss": policy_loss.detach(), "value_loss": v_loss.detach(),
             "entropy": entropy.detach(), **parts}
    if targets.ref_logp is not None:
        kl = losses.kl_to_reference(out.logp, targets.ref_logp)
        loss = loss + config.kl_coef * kl
        parts["kl_ref"] = kl.detach()
    parts["loss"] = loss.detach()
    return loss, parts


class PPO:
    """Selects fresh policy trajectories from the buffer and runs one PPO update on them."""

    def __init__(self, config: PPOConfig, policy: Policy, reference: Reference | None, chunk_size: int,
                 generator: torch.Generator):
        self.config, self.policy, self.reference = config, policy, reference
        self.chunk_size, self.generator = chunk_size, generator
        self.consumed: dict[str, int] = {}  # traj_id -> policy_version of trajectories already used

    def select(self, buffer, min_version: int) -> PPOBatch | None:
        """The newest trajectories_per_update policy trajectories of version >= min_version
        not used before (each is used for one update); None while there are fewer."""
        self.consumed = {k: v for k, v in self.consumed.items() if v >= min_version}
        n = self.config.trajectories_per_update
        table = buffer.fresh_policy_trajectories(n, min_version, sorted(self.consumed))
        if table.num_rows < n:
            return None
        batch = PPOBatch.from_table(table)
        # marked here, not after training: a batch selected ahead (learner.prefetch) skips them too
        self.consumed.update({t.traj_id: t.policy_version for t in batch.trajectories})
        return batch

    def targets(self, trajs: list[Trajectory], steps: StepBatch, group: Group = SOLO) -> PPOTargets:
        """Everything fixed during one update, from one no-grad pass of the current policy.

        In a learner group each rank evaluates its share of the trajectories; every step's
        row is filled by one rank (zeros on the others) and summed over the ranks, so each
        rank holds all the targets and normalises the advantages over all of them."""
        cfg, device = self.config, self.policy.device
        lo, hi = group.bounds(len(trajs))
        first, last = sum(steps.lengths[:lo]), sum(steps.lengths[:hi])  # this rank's steps
        rows = torch.zeros(5, steps.num_steps, device=device)  # (5, S) logp_prox, advantage, return, weight, ref
        if hi > lo:
            mine = trajs[lo:hi]
            with torch.no_grad():
                outs = [out for _, out in evaluate_chunks(self.policy, steps, range(first, last), self.chunk_size)]
            logp_prox = torch.cat([o.logp for o in outs])  # (S_r,)
            logp_behaviour = torch.tensor([x for t in mine for x in t.logp], device=device)  # (S_r,)
            values_prox = torch.cat([o.value for o in outs])  # (S_r,) only for trajectories without values
            advantages, returns = trajectory_advantages(mine, cfg.gamma, cfg.gae_lambda, values_prox)
            rows[:4, first:last] = torch.stack([logp_prox, advantages.to(device), returns.to(device),
                                                behaviour_weights(logp_prox, logp_behaviour, cfg.is_clip)])
            if cfg.kl_coef > 0:
                rows[4, first:last] = torch.tensor([x for r in self.reference.trajectory_logp(mine) for x in r],
                                                   device=device)
        logp_prox, advantages, returns, weights, ref = group.sum_tensor(rows).unbind(0)  # (S,) each
        normalized = advantages
        if cfg.normalize_advantages and steps.num_steps > 1:
            normalized = (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)
        return PPOTargets(logp_prox, normalized * weights, returns, ref if cfg.kl_coef > 0 else None, advantages,
                          weights)

    def train(self, batch: PPOBatch, optimizer_step: Callable[[], float], group: Group = SOLO) -> UpdateResult:
        """ppo_epochs epochs of minibatches over the batch's steps (`select` marked them used).

        In a learner group every rank draws the same minibatch order and runs its share of
        each minibatch, its loss weighted by that share of the whole minibatch."""
        cfg, device = self.config, self.policy.device
        trajs = [t for t in batch.trajectories if t.num_steps > 0]
        if not trajs:
            raise ValueError("a PPO update needs a trajectory with steps")
        steps = StepBatch.of(trajs)
        num_steps = steps.num_steps
        targets = self.targets(trajs, steps, group)
        grad_norms, totals = [], {}
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(num_steps, generator=self.generator).tolist()
            for mb_start in range(0, num_steps, cfg.minibatch_size):
                minibatch = order[mb_start:mb_start + cfg.minibatch_size]
                for chunk, out in evaluate_chunks(self.policy, steps, group.shard(minibatch), self.chunk_size):
                    loss, parts = ppo_loss(cfg, out, targets.take(torch.tensor(chunk, device=device)))
                    # Chunk losses are means; weighting by the chunk's share gives the minibatch mean.
                    (loss * (len(chunk) / len(minibatch))).backward()
                    for k, v in parts.items():
                        totals[k] = totals.get(k, 0.0) + v * len(chunk)
                grad_norms.append(optimizer_step())
        seen = num_steps * cfg.ppo_epochs
        totals = sum_values(group, {k: float(v) for k, v in totals.items()})
        weights = targets.behaviour_weights
        stats = {"advantage_mean": float(targets.raw_advantages.mean()),
                  "return_mean": float(targets.returns.mean()), "is_weight_mean": float(weights.mean()),
                  "is_clip_fraction": float((weights >= cfg.is_clip).float().mean()),
                  "trajectories": float(len(trajs)), "steps": float(num_steps),
                  "optimizer_steps": float(len(grad_norms))}
        return UpdateResult({k: v / seen for k, v in totals.items()}, float(np.mean(grad_norms)), stats, trajs)

    def state_dict(self) -> dict:
        return {"consumed": dict(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        self.consumed = {k: int(v) for k, v in state["consumed"].items()}
