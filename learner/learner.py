"""The learner: DPO or PPO updates of a `Policy`, and weight publishing.

A plain class (a thin Ray actor shell lives in `cluster`), so the whole loop also runs
in one process. `update(buffer)` asks the buffer for one update's data through its
named methods and calls `train(batch)`; `train` runs one *update* of the algorithm
(`learner.dpo` or `learner.ppo`, chosen by the type of the config section given),
advances the LR schedule by one and calls `policy.mark_updated()` exactly once, so
`version` counts updates however many optimizer steps PPO takes inside one (DPO takes
one). Workers only ever see versions that `publish` returns.

A learner can be one rank of a data-parallel group (`join`, `learner.group`): rank 0
selects each update's batch as one learner would and every rank trains on its share
of it, their gradients summed before the one optimizer step they all take; every rank
then holds the same weights, and rank 0 publishes and saves them.

Where the policy's frozen parts (lower layers, action side) are the reference's own
weights, the reference reads the policy's cached encodings of them
(`Policy.share_frozen_caches`), so on the states the policy has just encoded it runs
only its top layer and head.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import get_scheduler

from learner.batches import DPOBatch, PPOBatch
from learner.config import DPOConfig, LearnerConfig, OptimConfig, PPOConfig
from learner.dpo import DPO, Models
from learner.group import SOLO, Group
from learner.ppo import PPO
from learner.reference import Reference
from learner.state import capture_rng, load_state, restore_rng, save_state
from policies.policy import Policy
from rollout_workers.schema import Trajectory


class Learner:
    """DPO / PPO updates of `policy` (see module doc); `reference` is frozen and never stepped.

    Args:
        policy: the policy to train.
        reference: a separate frozen copy (the IL checkpoint); DPO and PPO with kl_coef > 0 need it.
        algorithm: `DPOConfig` or `PPOConfig`: which algorithm runs, with its settings.
        optim: AdamW and the LR schedule.
        config: forward-pass and cache sizes.
        seed: seed of the learner's generator (anchor-state draws, PPO minibatch order).
    """

    def __init__(self, policy: Policy, reference: Policy | None = None,
                 algorithm: DPOConfig | PPOConfig = DPOConfig(), optim: OptimConfig = OptimConfig(),
                 config: LearnerConfig = LearnerConfig(), seed: int = 0):
        if reference is policy:
            raise ValueError("the reference must be a separate Policy (a frozen copy), not the trained one")
        if not isinstance(algorithm, (DPOConfig, PPOConfig)):
            raise TypeError(f"algorithm must be a DPOConfig or a PPOConfig, got {type(algorithm).__name__}")
        if reference is None and (isinstance(algorithm, DPOConfig) or algorithm.kl_coef > 0):
            raise ValueError(f"{type(algorithm).__name__} with kl_coef={algorithm.kl_coef} needs a reference policy")
        params = policy.trainable_parameters()
        if not params:
            raise ValueError("the policy has no trainable parameters")
        self.policy, self.config, self.optim_config = policy, config, optim
        self.reference = None if reference is None else Reference(reference, config.ref_cache_size,
                                                                 config.max_steps_per_forward)
        self.device = policy.device
        policy.set_state_cache(config.state_cache_size)
        self._share_caches()
        self.optimizer = torch.optim.AdamW(params, lr=algorithm.lr, weight_decay=optim.weight_decay)
        self.scheduler = get_scheduler(optim.lr_schedule, self.optimizer, num_warmup_steps=optim.warmup_updates,
                                       num_training_steps=optim.total_updates)
        self.generator = torch.Generator().manual_seed(seed)
        self.num_updates = 0
        self.group: Group = SOLO
        if isinstance(algorithm, DPOConfig):
            self.algorithm = DPO(algorithm, Models(policy, self.reference, config.max_steps_per_forward),
                                 self.generator)
        else:
            self.algorithm = PPO(algorithm, policy, self.reference, config.max_steps_per_forward, self.generator)
        # Lower layers or the action side frozen: workers already hold those tensors.
        self._trainable_only = policy.config.trainable_top_layers is not None or policy.config.freeze_action_side

    def _share_caches(self) -> None:
        """Let the reference read the policy's encodings of frozen parts where those are
        the same weights: it then runs only the trainable top on states the policy has seen."""
        self.shares_frozen_caches = (self.reference is not None
                                     and self.reference.policy.share_frozen_caches(self.policy))

    @property
    def version(self) -> int:
        return self.policy.version

    @property
    def lr(self) -> float:
        """The LR the next optimizer step uses."""
        return self.optimizer.param_groups[0]["lr"]

    # -------------------------------------------------------------- updates
    def join(self, group: Group) -> None:
        """Train as one rank of `group` from now on. Every rank must hold the same state
        (built from the same checkpoint); the ranks take rank 0's version numbering."""
        self.group = group
        self.policy.version = group.broadcast(self.policy.version)

    def update(self, buffer) -> dict[str, float] | None:
        """Select one update's data from the buffer and train on it; None when there is
        not enough. Only data whose policy version is >= version - max_version_lag is used.
        In a group rank 0 selects (the other ranks' `buffer` is not read) and every rank
        gets the batch."""
        batch = self.select(buffer) if self.group.rank == 0 else None
        batch = self.group.broadcast(batch)
        return None if batch is None else self.train(batch)

    def select(self, buffer, ahead: int = 0) -> DPOBatch | PPOBatch | None:
        """One update's data from the buffer, for the version the learner will have after
        `ahead` more updates (`learner.prefetch` selects with ahead=1); None when there is not enough."""
        min_version = max(0, self.version + ahead - self.algorithm.config.max_version_lag)
        return self.algorithm.select(buffer, min_version)

    def train(self, batch: DPOBatch | PPOBatch) -> dict[str, float]:
        """One update on an already-selected batch (in a group: the whole batch, on every
        rank); returns its metrics as floats, over the whole batch."""
        expected = DPOBatch if isinstance(self.algorithm, DPO) else PPOBatch
        if not isinstance(batch, expected):
            raise TypeError(f"this learner runs {type(self.algorithm).__name__}: train() takes a "
                            f"{expected.__name__}, got {type(batch).__name__}")
        start = time.perf_counter()
        lr = self.lr
        result = self.algorithm.train(batch, self._optimizer_step, self.group)
        data = self._data_metrics(result.trajectories)  # lag relative to the version that trained on it
        self._finish_update()
        return {**result.losses, "grad_norm": result.grad_norm, "lr": lr, **result.stats, **data,
                "version": float(self.version), "seconds": time.perf_counter() - start}

    def _optimizer_step(self) -> float:
        params = self.optimizer.param_groups[0]["params"]
        self.group.sum_grads(params)  # clipped after the sum: the norm is the whole batch's
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.optim_config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def _finish_update(self) -> None:
        self.scheduler.step()
        self.num_updates += 1
        self.policy.mark_updated()

    def _data_metrics(self, trajs: Sequence[Trajectory]) -> dict[str, float]:
        mine = min((t.policy_version for t in trajs), default=None)  # None: a rank with nothing compared
        oldest = min(v for v in self.group.gather(mine) if v is not None)
        return {"data_version_min": float(oldest), "version_lag_max": float(self.version - oldest)}

    # ---------------------------------------------------- weights and state
    def continue_versions_after(self, published: int) -> None:
        """Number the next published weights above `published` (the highest version ever
        published in this run): after a restore from an earlier generation on Ray, the
        weights differ from those that carried these numbers before."""
        if published >= self.policy.version:
            self.policy.version = published + 1

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
            "algorithm": self.algorithm.state_dict(),
            # The exact cached floats: recomputed ones can differ in the last bit.
            "ref_cache": None if self.reference is None else self.reference.cache.state_dict(),
            "config": {"learner": dataclasses.asdict(self.config), "optim": dataclasses.asdict(self.optim_config),
                       type(self.algorithm).__name__.lower(): dataclasses.asdict(self.algorithm.config)},
        }

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
        self.algorithm.load_state_dict(state["algorithm"])
        if self.reference is not None and state["ref_cache"] is not None:
            self.reference.cache.load_state_dict(state["ref_cache"])
        restore_rng(state["rng"], self.generator, self.device)

    def save(self, directory: str | Path, generation: str | None = None) -> Path:
        """Write the state as safetensors + JSON (see learner.state); never pickle.
        `generation`: the id to carry (a run's checkpoint generation); None: a fresh one."""
        return save_state(self.state_dict(), directory, generation)

    def snapshot(self, directory: str | Path, generation: str) -> tuple[int, int, dict[str, np.ndarray]]:
        """`save` as `generation`, and `(version, num_updates, published weights)` of that
        same state (a run's checkpoint generation needs the three to agree)."""
        self.save(directory, generation)
        version, weights = self.publish()
        return version, self.num_updates, weights

    def load(self, directory: str | Path) -> None:
        """Restore what `save` wrote."""
        self.load_state_dict(load_state(directory))
