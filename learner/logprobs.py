"""Log-probs of given actions from a `Policy`, evaluated in bounded chunks.

The learner scores steps of many trajectories at once: `StepBatch` flattens them in
trajectory order and `evaluate_chunks` runs `Policy.evaluate` over any subset of them
`chunk_size` steps at a time, so one forward pass never holds more activations than
that. Gradients flow when the caller has them enabled (the trained policy); the
reference is called under `torch.no_grad()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from policies.policy import EvalOutput, Policy
from rollout_workers.schema import Trajectory


@dataclass(frozen=True)
class StepBatch:
    """The steps of N trajectories, flattened in trajectory order (S = sum(lengths))."""

    states: list[str]  # (S,)
    candidates: list[list[str]]  # (S, K_t)
    actions: list[int]  # (S,)
    lengths: list[int]  # (N,) steps per trajectory

    @classmethod
    def of(cls, trajs: Sequence[Trajectory]) -> "StepBatch":
        return cls([s for t in trajs for s in t.states], [c for t in trajs for c in t.candidates],
                   [a for t in trajs for a in t.chosen], [t.num_steps for t in trajs])

    @classmethod
    def single_steps(cls, states: Sequence[str], candidates: Sequence[list[str]],
                     actions: Sequence[int]) -> "StepBatch":
        """One-step entries (decisions, anchor states): every length is 1."""
        return cls(list(states), [list(c) for c in candidates], list(actions), [1] * len(states))

    @property
    def num_steps(self) -> int:
        return len(self.actions)


def evaluate_chunks(policy: Policy, steps: StepBatch, index: Sequence[int],
                    chunk_size: int) -> Iterator[tuple[list[int], EvalOutput]]:
    """`policy.evaluate` over the steps `index`, `chunk_size` at a time: (chunk, output) pairs."""
    for start in range(0, len(index), chunk_size):
        chunk = list(index[start:start + chunk_size])
        yield chunk, policy.evaluate([steps.states[i] for i in chunk], [steps.candidates[i] for i in chunk],
                                     [steps.actions[i] for i in chunk])


def steps_logp(policy: Policy, trajs: Sequence[Trajectory], wanted: Sequence[Sequence[int]],
               chunk_size: int) -> list[Tensor]:
    """Log-probs of the chosen actions at the steps `wanted[i]` of trajectory i,
    evaluated together; one (len(wanted[i]),) tensor each (on the policy's device)."""
    steps = StepBatch.of(trajs)
    offsets = np.cumsum([0, *steps.lengths])
    index = [int(offsets[i]) + t for i, ts in enumerate(wanted) for t in ts]
    if not index:
        return [torch.zeros(0, device=policy.device) for _ in trajs]
    logp = torch.cat([out.logp for _, out in evaluate_chunks(policy, steps, index, chunk_size)])  # (len(index),)
    return list(logp.split([len(ts) for ts in wanted]))


def sequence_logp(policy: Policy, trajs: Sequence[Trajectory], chunk_size: int) -> Tensor:
    """Summed log-prob of each trajectory's chosen actions, (N,) float32 on the policy's
    device (0 for a trajectory without steps). The chunks' graphs live until backward."""
    if not trajs:
        return torch.zeros(0, device=policy.device)
    every_step = [range(t.num_steps) for t in trajs]
    return torch.stack([part.sum() for part in steps_logp(policy, trajs, every_step, chunk_size)])  # (N,)


def decision_logps(policy: Policy, steps: StepBatch, rejected: Sequence[int],
                   chunk_size: int) -> tuple[Tensor, Tensor]:
    """Log-probs of `steps.actions` and of `rejected` (other actions at the same states),
    each (P,), from one evaluation of each state."""
    good, bad = [], []
    for chunk, out in evaluate_chunks(policy, steps, range(steps.num_steps), chunk_size):
        index = torch.tensor([rejected[i] for i in chunk], device=out.logp_all.device)
        good.append(out.logp)
        bad.append(out.logp_all.gather(1, index[:, None]).squeeze(1))
    return torch.cat(good), torch.cat(bad)
