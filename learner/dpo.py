"""DPO (Rafailov et al. 2023) on preference pairs against the frozen reference.

What a pair compares is its *scope*, an entry of `SCOPES`: a function from the pairs
to the policy's and the reference's log-probs of the chosen and rejected sides (and
the chosen side's NLL for the SFT term). The preference loss itself is an entry of
`PREFERENCE_LOSSES`. A new variant is a new function in a registry.

With the "step" scope, `anchor_kl` adds the exact KL(pi || reference) over all
candidates of a few recent policy states: step pairs move only the two actions they
compare, and the anchor keeps the probability they free where the reference had it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from learner import losses
from learner.batches import DPOBatch, UpdateResult
from learner.config import DPOConfig
from learner.group import SOLO, Group, sum_values
from learner.logprobs import StepBatch, decision_logps, evaluate_chunks, steps_logp
from learner.preference_losses import PREFERENCE_LOSSES
from learner.reference import Reference
from policies.policy import Policy
from rollout_workers.schema import Trajectory

ANCHOR_POOL_TRAJECTORIES = 64
"""Anchor states are drawn from the steps of the newest this many buffer rows that are
policy trajectories."""

Pair = tuple[Trajectory, Trajectory]


def divergence_step(chosen: Trajectory, rejected: Trajectory) -> int | None:
    """The first step at which two trajectories, in the same state, take different
    actions; None if a state differs first or one ends before they part."""
    for t in range(min(chosen.num_steps, rejected.num_steps)):
        if chosen.states[t] != rejected.states[t]:
            return None
        if chosen.candidates[t][chosen.chosen[t]] != rejected.candidates[t][rejected.chosen[t]]:
            return t
    return None


def decision_pair(chosen: Trajectory, rejected: Trajectory) -> tuple[int, int] | None:
    """Where a pair parts as one decision: (step, the rejected action's index among the
    chosen trajectory's candidates at that step), or None if the pair never parts from
    a shared state with the same candidates (see `divergence_step`)."""
    t = divergence_step(chosen, rejected)
    if t is None or chosen.candidates[t] != rejected.candidates[t]:
        return None
    return t, rejected.chosen[t]


@dataclass(frozen=True)
class Comparison:
    """What a scope compares for the P pairs it keeps; policy tensors carry grad."""

    policy_chosen: Tensor  # (P,)
    policy_rejected: Tensor  # (P,)
    ref_chosen: Tensor  # (P,)
    ref_rejected: Tensor  # (P,)
    chosen_nll: Tensor | None  # () the SFT term, when asked for
    metrics: dict[str, Tensor]  # scope-specific means over the pairs given, detached
    trajectories: list[Trajectory]  # the kept pairs' trajectories
    num_steps: int  # steps the comparison covers


@dataclass(frozen=True)
class Models:
    """The trained policy, the reference and the forward-pass bound a scope uses."""

    policy: Policy
    reference: Reference
    chunk_size: int


def compare_trajectories(pairs: Sequence[Pair], models: Models, with_nll: bool) -> Comparison:
    """Scope "trajectory": log-probs summed over every step of each trajectory (as in the
    seed); the NLL is the chosen trajectories' mean per-step log-prob."""
    p = len(pairs)
    trajs = [c for c, _ in pairs] + [r for _, r in pairs]  # (2P,) chosen first
    ref_steps = models.reference.trajectory_logp(trajs)  # (2P, T_i) lists
    step_logp = steps_logp(models.policy, trajs, [range(t.num_steps) for t in trajs], models.chunk_size)
    logp = torch.stack([lp.sum() for lp in step_logp])  # (2P,)
    device = models.policy.device
    ref = torch.tensor([math.fsum(r) for r in ref_steps], device=device)  # (2P,)
    nll = None
    if with_nll:
        lengths = torch.tensor([max(1, c.num_steps) for c in trajs[:p]], device=device)  # (P,)
        nll = -(logp[:p] / lengths).mean()
    return Comparison(logp[:p], logp[p:], ref[:p], ref[p:], nll, {}, trajs, sum(t.num_steps for t in trajs))


def compare_decisions(pairs: Sequence[Pair], models: Models, with_nll: bool) -> Comparison:
    """Scope "step": the one decision where a pair parts, both actions scored from one
    evaluation of the shared state (the reference likewise); the NLL is the chosen
    action's there. Pairs that never part from a shared state are left out."""
    found = [(c, r, decision_pair(c, r)) for c, r in pairs]
    kept = [(c, r, d) for c, r, d in found if d is not None]  # (P,)
    metrics = {"divergent_pairs": torch.tensor(len(kept) / len(pairs))}
    if not kept:  # (the update fails when no rank of the learner group kept a pair)
        empty = torch.zeros(0, device=models.policy.device)
        return Comparison(empty, empty, empty, empty, None, metrics, [], 0)
    chosen = [c for c, _, _ in kept]
    at = [t for _, _, (t, _) in kept]  # (P,)
    rejected = [k for _, _, (_, k) in kept]  # (P,)
    ref = models.reference.decision_logp(chosen, at, rejected, models.policy.device)  # (P, 2)
    steps = StepBatch.single_steps([c.states[t] for c, t in zip(chosen, at)],
                                   [c.candidates[t] for c, t in zip(chosen, at)],
                                   [c.chosen[t] for c, t in zip(chosen, at)])
    good, bad = decision_logps(models.policy, steps, rejected, models.chunk_size)  # (P,) each
    nll = -good.mean() if with_nll else None
    return Comparison(good, bad, ref[:, 0], ref[:, 1], nll, metrics, [t for c, r, _ in kept for t in (c, r)],
                      len(kept))


SCOPES: dict[str, Callable[[Sequence[Pair], Models, bool], Comparison]] = {
    "trajectory": compare_trajectories,
    "step": compare_decisions,
}


def anchor_kl(policy: Policy, reference: Policy, anchors: Sequence[tuple[str, list[str]]],
              chunk_size: int) -> Tensor:
    """Exact KL(pi || reference) over the candidates of each anchor state, averaged; grad through pi."""
    steps = StepBatch.single_steps([s for s, _ in anchors], [c for _, c in anchors], [0] * len(anchors))
    parts = []
    for chunk, out in evaluate_chunks(policy, steps, range(steps.num_steps), chunk_size):
        with torch.no_grad():
            ref = reference.evaluate([steps.states[i] for i in chunk], [steps.candidates[i] for i in chunk],
                                     [0] * len(chunk)).logp_all
        mask = torch.zeros_like(out.logp_all, dtype=torch.bool)  # (C, K) the real candidates
        for row, i in enumerate(chunk):
            mask[row, :len(steps.candidates[i])] = True
        parts.append(losses.categorical_kl(out.logp_all, ref.to(out.logp_all.device), mask) * len(chunk))
    return torch.stack(parts).sum() / steps.num_steps


class DPO:
    """Selects DPO batches from the buffer and runs one update on them."""

    def __init__(self, config: DPOConfig, models: Models, generator: torch.Generator):
        self.config, self.models, self.generator = config, models, generator

    def select(self, buffer, min_version: int) -> DPOBatch | None:
        """pairs_per_update pairs drawn uniformly (both halves of version >= min_version)
        and, with anchor_states, that many states of the newest policy trajectories drawn
        by the learner's generator; None while the buffer has too few pairs."""
        cfg = self.config
        table = buffer.sample_pairs(cfg.pairs_per_update, min_version)
        if table.num_rows < cfg.pairs_per_update:
            return None
        return DPOBatch.from_table(table, self._anchors(buffer) if cfg.anchor_states else [])

    def _anchors(self, buffer) -> list[tuple[str, list[str]]]:
        states = buffer.newest_policy_states(ANCHOR_POOL_TRAJECTORIES)
        if not states:
            return []
        pick = torch.randperm(len(states), generator=self.generator)[: self.config.anchor_states].tolist()
        return [states[i] for i in pick]

    def train(self, batch: DPOBatch, optimizer_step: Callable[[], float], group: Group = SOLO) -> UpdateResult:
        """One optimizer step on the batch's pairs (and anchor states).

        In a learner group each rank compares its share of the pairs and anchors, and
        weights its loss terms (means over its share) by its share of the whole batch's
        compared pairs and anchors: the ranks' gradients then sum to one learner's."""
        cfg, models = self.config, self.models
        if not batch.pairs:
            raise ValueError("a DPO update needs at least one pair")
        if batch.anchors and cfg.scope != "step":
            raise ValueError("anchors are used only with scope='step'")
        pairs, anchors = group.shard(batch.pairs), group.shard(batch.anchors)
        cmp = SCOPES[cfg.scope](pairs, models, cfg.sft_coef > 0) if pairs else None
        kept = 0 if cmp is None else len(cmp.policy_chosen)
        num_kept, num_steps = (sum(c) for c in zip(*group.gather((kept, 0 if cmp is None else cmp.num_steps))))
        if not num_kept:
            raise ValueError(f"a DPO update (scope={cfg.scope!r}): none of the {len(batch.pairs)} pairs parts "
                             "from a shared state, so there is no decision to compare")
        share = kept / num_kept  # this rank's part of the compared pairs
        loss = torch.zeros((), device=models.policy.device)
        terms: dict[str, tuple[Tensor, float]] = {}  # metric -> (this rank's mean, its share of the whole)
        if kept:
            preference, metrics = PREFERENCE_LOSSES[cfg.preference_loss](
                policy_chosen_logp=cmp.policy_chosen, policy_rejected_logp=cmp.policy_rejected,
                ref_chosen_logp=cmp.ref_chosen, ref_rejected_logp=cmp.ref_rejected,
                beta=cfg.beta, label_smoothing=cfg.label_smoothing)
            means = {"preference_loss": preference.detach(), **metrics,
                     "logp_margin": (cmp.policy_chosen - cmp.policy_rejected).detach().mean()}
            if cfg.sft_coef > 0:
                preference = preference + cfg.sft_coef * cmp.chosen_nll
                means["sft_loss"] = cmp.chosen_nll.detach()
            terms = {k: (v, share) for k, v in means.items()}
            loss = preference * share
        if cmp is not None:
            terms.update({k: (v, len(pairs) / len(batch.pairs)) for k, v in cmp.metrics.items()})
        if anchors and cfg.kl_coef > 0:
            share = len(anchors) / len(batch.anchors)
            kl = anchor_kl(models.policy, models.reference.policy, anchors, models.chunk_size)
            loss = loss + cfg.kl_coef * kl * share
            terms["anchor_kl"] = (kl.detach(), share)
        if loss.requires_grad:  # a rank with nothing to compare adds no gradient
            loss.backward()
        grad_norm = optimizer_step()
        values = sum_values(group, {"loss": float(loss.detach()), **{k: float(v) * s for k, (v, s) in terms.items()}})
        return UpdateResult(values, grad_norm, {"pairs": float(num_kept), "steps": float(num_steps)},
                            [] if cmp is None else cmp.trajectories)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
