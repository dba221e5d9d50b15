"""The learner: DPO or PPO updates of a `Policy` from buffer samples, and weight publishing.

A plain class (a thin Ray actor wrapper lives in `cluster`), so the whole loop also
runs in one process. One call of `update` / `update_dpo` / `update_ppo` is one
*update*: it advances the LR schedule by one and calls `policy.mark_updated()`
exactly once, so `version` counts updates however many optimizer steps PPO takes
inside one (DPO takes one). Workers only ever see versions that `publish` returns.

DPO (Rafailov et al. 2023) works on summed log-probs of whole trajectories (all
actions of an episode) against a frozen reference; the reference's per-step
log-probs are computed once per trajectory and cached by `traj_id`. Where the
policy's frozen parts (lower layers, action side) are the reference's own weights,
the reference reads the policy's cached encodings of them (`share_frozen_caches`),
so on the states the policy has just encoded it runs only its top layer and head.

PPO is *decoupled* PPO (Hilton et al. 2021, "Batch size-invariance for policy
optimization", Sec. 3): behaviour log-probs may come from an older version or from
the workers' lossy int8 copy, so the update first re-evaluates every step with the
current weights (`logp_prox`, no grad), clips the ratio pi / pi_prox, and weights
each step's advantage by the behaviour correction pi_prox / pi_behaviour, truncated
at `is_clip` as in V-trace (Espeholt et al. 2018) to bound its variance.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor

from learner import losses
from learner.state import capture_rng, load_state, restore_rng, save_state
from policies.policy import EvalOutput, Policy
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import Trajectory, batch_to_trajectories, row_to_trajectory

DPO_SCOPES = ("trajectory", "divergence", "step")
ALGOS = ("dpo", "ppo")
LR_DECAYS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LearnerConfig:
    """Optimisation, DPO and PPO settings of the learner."""

    algo: str = "dpo"
    """"dpo" (preference pairs vs a frozen reference) or "ppo" (policy trajectories)."""
    lr: float = 1e-5
    """Peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm before every optimizer step."""
    warmup_updates: int = 0
    """LR rises linearly over the first updates: update k (0-based) uses lr * (k + 1) / warmup."""
    lr_decay: str = "constant"
    """After warmup: "constant", or "linear" / "cosine" decay to final_lr_ratio * lr at total_updates."""
    total_updates: int = 0
    """Length of the schedule in updates (required > warmup_updates for linear / cosine)."""
    final_lr_ratio: float = 0.0
    """LR at and after total_updates, as a fraction of lr."""
    seed: int = 0
    """Seed of the learner's own generator (PPO minibatch order)."""
    max_steps_per_forward: int = 64
    """Steps per `evaluate` call; bounds the activations of one forward pass."""
    max_version_lag: int = 4
    """Staleness S: `update` samples only data whose policy version >= version - S."""
    ref_cache_size: int = 100_000
    """Trajectories whose reference log-probs are kept (least recently used evicted)."""
    state_cache_size: int = 2048
    """States whose frozen lower-layer outputs the trained policy keeps (`Policy.set_state_cache`;
    ~100 KB each for 128 MiniLM tokens in bf16): pairs sampled again and PPO epochs then
    run only the trainable top. No effect when every layer trains."""
    share_frozen_caches: bool = True
    """The reference reads the policy's cached encodings of the frozen parts (lower layers,
    action side) when those are the same weights (`Policy.share_frozen_caches`), so it runs
    only the trainable top on states the policy has just encoded. Off only to measure it."""
    # ----------------------------------------------------------------------- DPO
    beta: float = 0.1
    """DPO beta: strength of the implicit KL penalty towards the reference."""
    preference_loss: str = "sigmoid"
    """Entry of `losses.PREFERENCE_LOSSES`: "sigmoid" (DPO), "cdpo", "ipo"."""
    label_smoothing: float = 0.0
    """cDPO's label-flip probability (only the "cdpo" loss accepts a non-zero value)."""
    pairs_per_update: int = 4
    """Preference pairs per DPO update (one optimizer step)."""
    sft_coef: float = 0.0
    """Weight of an NLL term on the chosen trajectories (mean per-step NLL); 0 = off."""
    dpo_scope: str = "trajectory"
    """What the preference compares: "trajectory" (log-probs summed over every step,
    as in the seed) or "divergence" (only the step where the pair parts: the same
    state, two different actions - e.g. the policy's mistake against the expert's
    correction; a pair that never parts from a shared state falls back to whole
    trajectories) or "step" (the same single decision, scored from one evaluation of
    the shared state for both actions, the reference likewise, with the NLL term on the
    chosen action there only: one state per pair instead of every step of both
    trajectories; pairs that never part from a shared state are left out of the
    update)."""
    anchor_states: int = 0
    """DPO with dpo_scope="step": states per update drawn from the newest policy
    trajectories, where the exact KL(pi || reference) over all candidates is added with
    weight kl_coef. Step pairs move only the two actions they compare, and the
    probability they free flows to other actions elsewhere too (e.g. "< prev" from
    every product page); the anchor holds the policy where the reference had it
    except where pairs say otherwise. 0 = off."""
    # ----------------------------------------------------------------------- PPO
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_coef: float = 0.2
    """PPO clip epsilon of the ratio pi / pi_prox."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    kl_coef: float = 0.0
    """PPO: weight of the k3 KL(pi || reference) penalty on the taken actions; DPO: weight
    of the exact KL at the `anchor_states`. > 0 needs a reference policy."""
    ppo_epochs: int = 4
    """Passes over the update's steps."""
    minibatch_size: int = 64
    """Steps per optimizer step (split into forward chunks of max_steps_per_forward)."""
    trajectories_per_update: int = 16
    """Newest unused policy trajectories one PPO update consumes."""
    is_clip: float = 2.0
    """Truncation of the behaviour weight pi_prox / pi_behaviour (inf = none)."""
    normalize_advantages: bool = True
    """Standardise advantages over all steps of the update (before the behaviour weight)."""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"LearnerConfig.algo must be one of {ALGOS}, got {self.algo!r}")
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"LearnerConfig.lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        if self.lr_decay != "constant" and self.total_updates <= self.warmup_updates:
            raise ValueError(f"lr_decay={self.lr_decay!r} needs total_updates > warmup_updates "
                             f"({self.total_updates} <= {self.warmup_updates})")
        if self.preference_loss not in losses.PREFERENCE_LOSSES:
            raise ValueError(f"unknown preference_loss {self.preference_loss!r}; "
                             f"choose one of {sorted(losses.PREFERENCE_LOSSES)}")
        for name in ("lr", "max_grad_norm", "beta", "clip_coef", "is_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LearnerConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_steps_per_forward", "pairs_per_update", "ppo_epochs", "minibatch_size",
                     "trajectories_per_update", "ref_cache_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"LearnerConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.dpo_scope not in DPO_SCOPES:
            raise ValueError(f"LearnerConfig.dpo_scope must be one of {DPO_SCOPES}, got {self.dpo_scope!r}")
        if self.max_version_lag < 0 or self.warmup_updates < 0 or self.anchor_states < 0:
            raise ValueError("LearnerConfig.max_version_lag, warmup_updates and anchor_states must be >= 0")
        if self.anchor_states and (self.dpo_scope != "step" or self.kl_coef <= 0):
            raise ValueError("LearnerConfig.anchor_states needs dpo_scope='step' and kl_coef > 0 "
                             f"(got dpo_scope={self.dpo_scope!r}, kl_coef={self.kl_coef})")


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


def lr_multiplier(update: int, warmup_updates: int, total_updates: int, decay: str,
                  final_lr_ratio: float = 0.0) -> float:
    """LR of 0-based `update` as a fraction of the peak: linear warmup, then decay.

    Warmup: (update + 1) / warmup_updates. Then progress p = (update - warmup) /
    (total - warmup), clipped to [0, 1]; "linear": 1 - p, "cosine": (1 + cos(pi p)) / 2,
    both mapped onto [final_lr_ratio, 1]; "constant": 1.
    """
    if update < warmup_updates:
        return (update + 1) / warmup_updates
    if decay == "constant":
        return 1.0
    progress = min(1.0, (update - warmup_updates) / max(1, total_updates - warmup_updates))
    shape = 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_lr_ratio + (1.0 - final_lr_ratio) * shape


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

    @property
    def num_steps(self) -> int:
        return len(self.actions)


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


def _as_trajectories(data: pa.Table | Sequence[Trajectory]) -> list[Trajectory]:
    return batch_to_trajectories(data) if isinstance(data, pa.Table) else list(data)


def _as_pairs(data: pa.Table | Sequence[tuple[Trajectory, Trajectory]]) -> list[tuple[Trajectory, Trajectory]]:
    if isinstance(data, pa.Table):
        return [(row_to_trajectory(r["chosen"]), row_to_trajectory(r["rejected"])) for r in data.to_pylist()]
    return list(data)


class Learner:
    """DPO / PPO updates of `policy` (see module doc); `reference` is frozen and never stepped."""

    def __init__(self, policy: Policy, reference: Policy | None = None, config: LearnerConfig = LearnerConfig()):
        if reference is policy:
            raise ValueError("the reference must be a separate Policy (a frozen copy), not the trained one")
        if reference is None and (config.algo == "dpo" or config.kl_coef > 0):
            raise ValueError(f"algo={config.algo!r} with kl_coef={config.kl_coef} needs a reference policy")
        if reference is not None and reference.config.dropout > 0:
            raise ValueError("the reference policy must be deterministic: build it with dropout=0")
        params = policy.trainable_parameters()
        if not params:
            raise ValueError("the policy has no trainable parameters")
        self.policy, self.reference, self.config = policy, reference, config
        self.device = policy.device
        policy.set_state_cache(config.state_cache_size)
        self._share_caches()
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        # A plain function (not a bound method) so LambdaLR's state dict stays JSON-able.
        schedule = lambda k: lr_multiplier(k, config.warmup_updates, config.total_updates,  # noqa: E731
                                           config.lr_decay, config.final_lr_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.num_updates = 0
        self._ref_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._consumed: dict[str, int] = {}  # PPO: traj_id -> policy_version of used trajectories
        # Lower layers or the action side frozen: workers already hold those tensors.
        self._trainable_only = policy.config.trainable_top_layers is not None or policy.config.freeze_action_side

    def _share_caches(self) -> None:
        """Let the reference read the policy's encodings of frozen parts (lower layers,
        action side) where those are the same weights: the reference then runs only
        the trainable top of the model on the states the policy has just seen."""
        self.shares_frozen_caches = (self.config.share_frozen_caches and self.reference is not None
                                     and self.reference.share_frozen_caches(self.policy))

    @property
    def version(self) -> int:
        return self.policy.version

    @property
    def lr(self) -> float:
        """The LR the next optimizer step uses."""
        return self.optimizer.param_groups[0]["lr"]

    # ------------------------------------------------------------ log-probs
    def _evaluate(
        self, policy: Policy, steps: StepBatch, index: Sequence[int]
    ) -> Iterator[tuple[list[int], EvalOutput]]:
        """`policy.evaluate` over the steps `index`, max_steps_per_forward at a time."""
        size = self.config.max_steps_per_forward
        for start in range(0, len(index), size):
            chunk = list(index[start:start + size])
            yield chunk, policy.evaluate([steps.states[i] for i in chunk], [steps.candidates[i] for i in chunk],
                                         [steps.actions[i] for i in chunk])

    def steps_logp(self, trajs: Sequence[Trajectory], wanted: Sequence[Sequence[int]]) -> list[Tensor]:
        """Log-probs (with grad) of the chosen actions at the steps `wanted[i]` of
        trajectory i, evaluated together; returns one (len(wanted[i]),) tensor each."""
        steps = StepBatch.of(trajs)
        offsets = np.cumsum([0, *steps.lengths])
        index = [int(offsets[i]) + t for i, ts in enumerate(wanted) for t in ts]
        if not index:
            return [torch.zeros(0, device=self.device) for _ in trajs]
        logp = torch.cat([out.logp for _, out in self._evaluate(self.policy, steps, index)])  # (len(index),)
        return list(logp.split([len(ts) for ts in wanted]))

    def sequence_logp(self, trajs: Sequence[Trajectory]) -> Tensor:
        """Summed log-prob of each trajectory's chosen actions under the policy, with grad.

        All steps of all trajectories are flattened to S steps, evaluated in chunks,
        and summed back per trajectory. The chunks' graphs live until backward.
        Returns: (N,) float32 on the policy's device (0 for a trajectory without steps).
        """
        if not trajs:
            return torch.zeros(0, device=self.device)
        every_step = [range(t.num_steps) for t in trajs]
        return torch.stack([part.sum() for part in self.steps_logp(trajs, every_step)])  # (N,)

    def reference_logp(self, trajs: Sequence[Trajectory]) -> list[list[float]]:
        """Per-step reference log-probs of the taken actions, (N, T_i) as lists.

        A trajectory's own `ref_logp` wins; otherwise each distinct `traj_id` is
        evaluated once (no grad) and kept in a bounded LRU cache for later updates.
        """
        if self.reference is None:
            raise ValueError("this learner has no reference policy")
        found: dict[str, list[float]] = {}
        missing: list[Trajectory] = []
        for traj in trajs:
            if traj.traj_id in found:
                continue
            if traj.ref_logp is not None:
                found[traj.traj_id] = list(traj.ref_logp)
            elif traj.traj_id in self._ref_cache:
                self._ref_cache.move_to_end(traj.traj_id)
                found[traj.traj_id] = self._ref_cache[traj.traj_id]
            else:
                found[traj.traj_id] = []
                missing.append(traj)
        steps = StepBatch.of(missing)
        if steps.num_steps:
            with torch.no_grad():
                logp = torch.cat([out.logp for _, out in self._evaluate(self.reference, steps, range(steps.num_steps))])
            for traj, part in zip(missing, logp.float().cpu().split(steps.lengths)):
                found[traj.traj_id] = part.tolist()
        for traj in missing:
            self._ref_cache[traj.traj_id] = found[traj.traj_id]
        self._trim_ref_cache()
        return [found[t.traj_id] for t in trajs]

    def _trim_ref_cache(self) -> None:
        """Evict the least recently used reference entries past ref_cache_size."""
        while len(self._ref_cache) > self.config.ref_cache_size:
            self._ref_cache.popitem(last=False)

    # -------------------------------------------------------------- updates
    def _optimizer_step(self) -> float:
        grad_norm = torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def _finish_update(self) -> None:
        self.scheduler.step()
        self.num_updates += 1
        self.policy.mark_updated()

    def _data_metrics(self, trajs: Sequence[Trajectory]) -> dict[str, float]:
        oldest = min(t.policy_version for t in trajs)
        return {"data_version_min": float(oldest), "version_lag_max": float(self.version - oldest)}

    def update_dpo(self, pairs: pa.Table | Sequence[tuple[Trajectory, Trajectory]],
                   anchors: Sequence[tuple[str, list[str]]] = ()) -> dict[str, float]:
        """One DPO optimizer step on (chosen, rejected) pairs (a pairs table or tuples);
        `anchors` ((state, candidates) pairs) are where dpo_scope="step" adds the
        anchor KL (see `LearnerConfig.anchor_states`)."""
        start = time.perf_counter()
        cfg = self.config
        pairs = _as_pairs(pairs)
        if not pairs:
            raise ValueError("update_dpo got no pairs")
        if cfg.dpo_scope == "step":
            return self._update_dpo_step(pairs, start, anchors)
        if anchors:
            raise ValueError("update_dpo: anchors are used only with dpo_scope='step'")
        num_pairs = len(pairs)
        chosen = [c for c, _ in pairs]
        trajs = chosen + [r for _, r in pairs]  # (2P,): chosen first, then rejected
        lr = self.lr
        ref_steps = self.reference_logp(trajs)  # (2P, T_i) lists
        parts = ([divergence_step(c, r) for c, r in pairs] if cfg.dpo_scope == "divergence"
                 else [None] * num_pairs)  # (P,)
        # per trajectory, the steps the preference compares: the one where its pair parts, else all
        compared = [list(range(t.num_steps)) if d is None else [d] for t, d in zip(trajs, parts * 2)]
        # the chosen side's other steps are evaluated as well only for the NLL term
        evaluated = ([list(range(c.num_steps)) for c in chosen] if cfg.sft_coef > 0 else compared[:num_pairs])
        evaluated = evaluated + compared[num_pairs:]
        step_logp = self.steps_logp(trajs, evaluated)  # (2P,) tensors of (len(evaluated[i]),)
        logp = torch.stack([lp[[ev.index(t) for t in cmp]].sum()
                            for lp, ev, cmp in zip(step_logp, evaluated, compared)])  # (2P,)
        ref = torch.tensor([math.fsum(r[t] for t in cmp) for r, cmp in zip(ref_steps, compared)],
                           device=self.device)  # (2P,)
        loss, metrics = losses.PREFERENCE_LOSSES[cfg.preference_loss](
            policy_chosen_logp=logp[:num_pairs], policy_rejected_logp=logp[num_pairs:],
            ref_chosen_logp=ref[:num_pairs], ref_rejected_logp=ref[num_pairs:],
            beta=cfg.beta, label_smoothing=cfg.label_smoothing)
        metrics = {"preference_loss": loss.detach(), **metrics}
        if cfg.dpo_scope == "divergence":
            metrics["divergent_pairs"] = torch.tensor(sum(d is not None for d in parts) / num_pairs)
        if cfg.sft_coef > 0:
            lengths = torch.tensor([max(1, c.num_steps) for c in chosen], device=self.device)  # (P,)
            chosen_sum = torch.stack([step_logp[i].sum() for i in range(num_pairs)])  # (P,) every step
            sft = -(chosen_sum / lengths).mean()
            loss = loss + cfg.sft_coef * sft
            metrics["sft_loss"] = sft.detach()
        loss.backward()
        grad_norm = self._optimizer_step()
        data = self._data_metrics(trajs)  # lag relative to the version that trained on it
        self._finish_update()
        metrics["logp_margin"] = (logp[:num_pairs] - logp[num_pairs:]).detach().mean()
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in metrics.items()},
                "grad_norm": grad_norm, "lr": lr, "pairs": float(num_pairs),
                "steps": float(sum(t.num_steps for t in trajs)), **data,
                "version": float(self.version), "seconds": time.perf_counter() - start}

    def _decision_logps(self, policy: Policy, steps: StepBatch, rejected: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Log-probs of `steps.actions` and of `rejected` (other actions at the same
        states), each (P,), from one evaluation of each state (with grad if enabled)."""
        good, bad = [], []
        for chunk, out in self._evaluate(policy, steps, range(steps.num_steps)):
            index = torch.tensor([rejected[i] for i in chunk], device=out.logp_all.device)
            good.append(out.logp)
            bad.append(out.logp_all.gather(1, index[:, None]).squeeze(1))
        return torch.cat(good), torch.cat(bad)

    def _update_dpo_step(self, pairs: list[tuple[Trajectory, Trajectory]], start: float,
                         anchors: Sequence[tuple[str, list[str]]] = ()) -> dict[str, float]:
        """DPO with dpo_scope="step": each pair is the one decision where it parts."""
        cfg = self.config
        found = [(c, r, decision_pair(c, r)) for c, r in pairs]
        kept = [(c, r, d) for c, r, d in found if d is not None]  # (P,)
        if not kept:
            raise ValueError(f"update_dpo (dpo_scope='step'): none of the {len(pairs)} pairs parts "
                             "from a shared state, so there is no decision to compare")
        lr = self.lr
        steps = StepBatch([c.states[t] for c, _, (t, _) in kept], [c.candidates[t] for c, _, (t, _) in kept],
                          [c.chosen[t] for c, _, (t, _) in kept], [1] * len(kept))
        rejected = [k for _, _, (_, k) in kept]  # (P,)
        keys = [f"{c.traj_id}>{r.traj_id}" for c, r, _ in kept]
        missing = [i for i, key in enumerate(keys) if key not in self._ref_cache]
        if missing:
            sub = StepBatch([steps.states[i] for i in missing], [steps.candidates[i] for i in missing],
                            [steps.actions[i] for i in missing], [1] * len(missing))
            with torch.no_grad():
                ref_good, ref_bad = self._decision_logps(self.reference, sub, [rejected[i] for i in missing])
            for i, g, b in zip(missing, ref_good.float().tolist(), ref_bad.float().tolist()):
                self._ref_cache[keys[i]] = [g, b]
        ref = torch.tensor([self._ref_cache[k] for k in keys], device=self.device)  # (P, 2)
        for key in keys:
            self._ref_cache.move_to_end(key)
        self._trim_ref_cache()
        good, bad = self._decision_logps(self.policy, steps, rejected)  # (P,) each
        loss, metrics = losses.PREFERENCE_LOSSES[cfg.preference_loss](
            policy_chosen_logp=good, policy_rejected_logp=bad, ref_chosen_logp=ref[:, 0],
            ref_rejected_logp=ref[:, 1], beta=cfg.beta, label_smoothing=cfg.label_smoothing)
        metrics = {"preference_loss": loss.detach(), **metrics,
                   "divergent_pairs": torch.tensor(len(kept) / len(pairs))}
        if cfg.sft_coef > 0:
            sft = -good.mean()
            loss = loss + cfg.sft_coef * sft
            metrics["sft_loss"] = sft.detach()
        if anchors and cfg.kl_coef > 0:
            kl = self._anchor_kl(anchors)
            loss = loss + cfg.kl_coef * kl
            metrics["anchor_kl"] = kl.detach()
        loss.backward()
        grad_norm = self._optimizer_step()
        data = self._data_metrics([t for c, r, _ in kept for t in (c, r)])
        self._finish_update()
        metrics["logp_margin"] = (good - bad).detach().mean()
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in metrics.items()},
                "grad_norm": grad_norm, "lr": lr, "pairs": float(len(kept)), "steps": float(len(kept)),
                **data, "version": float(self.version), "seconds": time.perf_counter() - start}

    def _anchor_kl(self, anchors: Sequence[tuple[str, list[str]]]) -> Tensor:
        """Exact KL(pi || reference) over the candidates of each anchor state, averaged."""
        steps = StepBatch([s for s, _ in anchors], [list(c) for _, c in anchors], [0] * len(anchors),
                          [1] * len(anchors))
        parts = []
        for chunk, out in self._evaluate(self.policy, steps, range(steps.num_steps)):
            with torch.no_grad():
                ref = self.reference.evaluate([steps.states[i] for i in chunk],
                                              [steps.candidates[i] for i in chunk], [0] * len(chunk)).logp_all
            mask = torch.zeros_like(out.logp_all, dtype=torch.bool)  # (C, K) the real candidates
            for row, i in enumerate(chunk):
                mask[row, :len(steps.candidates[i])] = True
            parts.append(losses.categorical_kl(out.logp_all, ref.to(out.logp_all.device), mask) * len(chunk))
        return torch.stack(parts).sum() / steps.num_steps

    def _anchor_sample(self, buffer: ArrowBuffer) -> list[tuple[str, list[str]]]:
        """`anchor_states` states of the newest policy trajectories, drawn by the learner's generator."""
        table = buffer.newest("trajectories", 64)
        table = table.filter(pc.equal(table.column("source"), "policy"))
        steps = [(s, c) for t in batch_to_trajectories(table) for s, c in zip(t.states, t.candidates)]
        if not steps:
            return []
        pick = torch.randperm(len(steps), generator=self.generator)[: self.config.anchor_states].tolist()
        return [steps[i] for i in pick]

    def _ppo_targets(self, trajs: list[Trajectory], steps: StepBatch) -> "PPOTargets":
        """Everything fixed during one PPO update, from one no-grad pass of the current policy."""
        cfg, device = self.config, self.device
        with torch.no_grad():
            outs = [out for _, out in self._evaluate(self.policy, steps, range(steps.num_steps))]
        logp_prox = torch.cat([o.logp for o in outs]).detach()  # (S,)
        logp_behaviour = torch.tensor([x for t in trajs for x in t.logp], device=device)  # (S,)
        values_prox = torch.cat([o.value for o in outs])  # (S,) only for trajectories without values
        advantages, returns = trajectory_advantages(trajs, cfg.gamma, cfg.gae_lambda, values_prox)
        advantages, returns = advantages.to(device), returns.to(device)  # (S,) each
        weights = behaviour_weights(logp_prox, logp_behaviour, cfg.is_clip)  # (S,)
        normalized = advantages
        if cfg.normalize_advantages and steps.num_steps > 1:
            normalized = (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)
        ref = None
        if cfg.kl_coef > 0:
            ref = torch.tensor([x for r in self.reference_logp(trajs) for x in r], device=device)  # (S,)
        return PPOTargets(logp_prox, normalized * weights, returns, ref, advantages, weights)

    def update_ppo(self, trajectories: pa.Table | Sequence[Trajectory]) -> dict[str, float]:
        """Decoupled PPO on these trajectories: ppo_epochs epochs of minibatches over steps."""
        start = time.perf_counter()
        cfg = self.config
        trajs = [t for t in _as_trajectories(trajectories) if t.num_steps > 0]
        if not trajs:
            raise ValueError("update_ppo got no trajectory with steps")
        steps = StepBatch.of(trajs)
        num_steps = steps.num_steps
        targets = self._ppo_targets(trajs, steps)
        lr, grad_norms, totals = self.lr, [], {}
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(num_steps, generator=self.generator).tolist()
            for mb_start in range(0, num_steps, cfg.minibatch_size):
                minibatch = order[mb_start:mb_start + cfg.minibatch_size]
                for chunk, out in self._evaluate(self.policy, steps, minibatch):
                    loss, parts = self._ppo_loss(out, targets.take(torch.tensor(chunk, device=self.device)))
                    # Chunk losses are means; weighting by the chunk's share gives the minibatch mean.
                    (loss * (len(chunk) / len(minibatch))).backward()
                    for k, v in parts.items():
                        totals[k] = totals.get(k, 0.0) + v * len(chunk)
                grad_norms.append(self._optimizer_step())
        data = self._data_metrics(trajs)
        self._finish_update()
        seen = num_steps * cfg.ppo_epochs
        weights = targets.behaviour_weights
        return {**{k: float(v) / seen for k, v in totals.items()}, "grad_norm": float(np.mean(grad_norms)),
                "lr": lr, "advantage_mean": float(targets.raw_advantages.mean()),
                "return_mean": float(targets.returns.mean()), "is_weight_mean": float(weights.mean()),
                "is_clip_fraction": float((weights >= cfg.is_clip).float().mean()),
                "trajectories": float(len(trajs)), "steps": float(num_steps),
                "optimizer_steps": float(len(grad_norms)), **data,
                "version": float(self.version), "seconds": time.perf_counter() - start}

    def _ppo_loss(self, out: EvalOutput, targets: "PPOTargets") -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of one chunk of C steps (`out` and `targets` hold (C,) tensors); metrics detached."""
        cfg = self.config
        policy_loss, parts = losses.ppo_clip_loss(out.logp, targets.logp_prox, targets.advantages, cfg.clip_coef)
        v_loss = losses.value_loss(out.value, targets.returns)
        entropy = losses.entropy_bonus(out.entropy)
        loss = policy_loss + cfg.value_coef * v_loss - cfg.entropy_coef * entropy
        parts = {"policy_loss": policy_loss.detach(), "value_loss": v_loss.detach(),
                 "entropy": entropy.detach(), **parts}
        if targets.ref_logp is not None:
            kl = losses.kl_to_reference(out.logp, targets.ref_logp)
            loss = loss + cfg.kl_coef * kl
            parts["kl_ref"] = kl.detach()
        parts["loss"] = loss.detach()
        return loss, parts

    def update(self, buffer: ArrowBuffer) -> dict[str, float] | None:
        """Sample what `algo` needs from the buffer and update; None when there is not enough.

        Only data whose policy version (both halves, for pairs) is >= version - S is
        used. DPO samples pairs_per_update pairs uniformly (pairs are reused across
        updates, as DPO trains for epochs); PPO takes the newest trajectories_per_update
        source="policy" trajectories it has not used before (each is used for one update).
        """
        min_version = max(0, self.version - self.config.max_version_lag)
        if self.config.algo == "dpo":
            table = buffer.sample("pairs", self.config.pairs_per_update, min_version=min_version)
            if table.num_rows < self.config.pairs_per_update:
                return None
            return self.update_dpo(table, self._anchor_sample(buffer) if self.config.anchor_states else ())
        self._consumed = {k: v for k, v in self._consumed.items() if v >= min_version}
        # only the newest few updates' worth: old rows are stale or used anyway
        table = buffer.newest("trajectories", 4 * self.config.trajectories_per_update + 64)
        fresh = pc.and_(pc.equal(table.column("source"), "policy"),
                        pc.greater_equal(table.column("policy_version"), min_version))
        table = table.filter(fresh)
        unused = np.array([i not in self._consumed for i in table.column("traj_id").to_pylist()], dtype=bool)
        table = table.filter(pa.array(unused))
        n = self.config.trajectories_per_update
        if table.num_rows < n:
            return None
        trajs = batch_to_trajectories(table.slice(table.num_rows - n))
        metrics = self.update_ppo(trajs)
        self._consumed.update({t.traj_id: t.policy_version for t in trajs})
        return metrics

    # ---------------------------------------------------- weights and state
    def publish(self) -> tuple[int, dict[str, np.ndarray]]:
        """`(version, weights)` for the workers: only the trainable tensors when part of
        the model is frozen (the workers hold the same frozen part), else all."""
        return self.policy.version, self.policy.get_weights(trainable_only=self._trainable_only)

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (a copy: later updates do not change it)."""
        return {
            "weights": {k: v.detach().clone() for k, v in self.policy.model.state_dict().items()},
            "opt": copy.deepcopy(self.optimizer.state_dict()["state"]),
            "opt_param_groups": copy.deepcopy(self.optimizer.state_dict()["param_groups"]),
            "scheduler": self.scheduler.state_dict(),
            "version": self.version,
            "num_updates": self.num_updates,
            "rng": capture_rng(self.generator, self.device),
            "consumed": dict(self._consumed),
            "ref_cache": self._ref_cache_state(),
            "config": dataclasses.asdict(self.config),
        }

    def _ref_cache_state(self) -> dict[str, Any]:
        # Saved so a resumed learner reuses the exact cached floats: recomputed ones
        # can differ in the last bit, as they depend on the batch they were evaluated in.
        ids = list(self._ref_cache)
        values = [x for i in ids for x in self._ref_cache[i]]
        return {"ids": ids, "lengths": [len(self._ref_cache[i]) for i in ids],
                "logp": torch.tensor(values, dtype=torch.float32)}  # (sum of lengths,)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` (also its JSON round-trip); sets the process's global RNGs too."""
        weights = {k: v.detach().cpu().numpy() for k, v in state["weights"].items()}
        self.policy.set_weights(weights, version=int(state["version"]))
        self._share_caches()  # set_weights gave the policy caches of its own
        groups = copy.deepcopy(state["opt_param_groups"])
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        opt_state = {int(i): dict(entry) for i, entry in state["opt"].items()}
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        self.scheduler.load_state_dict(dict(state["scheduler"]))
        self.num_updates = int(state["num_updates"])
        self._consumed = {k: int(v) for k, v in state["consumed"].items()}
        cache = state["ref_cache"]
        parts = cache["logp"].split([int(n) for n in cache["lengths"]])
        self._ref_cache = OrderedDict((i, part.tolist()) for i, part in zip(cache["ids"], parts))
        restore_rng(state["rng"], self.generator, self.device)

    def save(self, directory: str | Path) -> Path:
        """Write the state as safetensors + JSON (see learner.state); never pickle."""
        return save_state(self.state_dict(), directory)

    def load(self, directory: str | Path) -> None:
        """Restore what `save` wrote."""
        self.load_state_dict(load_state(directory))
