"""The frozen reference policy and its log-prob cache.

The reference never changes, so each log-prob it gives is computed once and kept:
`ReferenceCache` maps one key type, (traj_id, step, action index), to a float, the
log-prob of that action at that step's state. A whole-trajectory comparison asks for
every step's chosen action; a decision (DPO "step" scope) asks for two actions at
one step of the chosen trajectory (the pair shares that state, so the rejected
action is its index among the chosen trajectory's candidates). Entries are grouped
by trajectory, and the LRU evicts whole trajectories, so `max_trajectories` bounds
the memory however many steps each one has.

Cached floats are saved with the learner state: recomputed ones can differ in the
last bit, as they depend on the batch they were evaluated in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import Tensor

from learner.logprobs import StepBatch, decision_logps, evaluate_chunks
from policies.policy import Policy
from rollout_workers.schema import Trajectory

StepAction = tuple[int, int]  # (step, action index) inside one trajectory


class ReferenceCache:
    """Reference log-probs keyed by (traj_id, step, action index), LRU over trajectories."""

    def __init__(self, max_trajectories: int):
        self.max_trajectories = max_trajectories
        self._entries: OrderedDict[str, dict[StepAction, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, traj_id: str, step: int, action: int) -> float | None:
        entry = self._entries.get(traj_id)
        return None if entry is None else entry.get((step, action))

    def has(self, traj_id: str, keys: Sequence[StepAction]) -> bool:
        entry = self._entries.get(traj_id)
        return entry is not None and all(k in entry for k in keys)

    def put(self, traj_id: str, values: dict[StepAction, float]) -> None:
        """Add log-probs of one trajectory (it becomes the most recently used)."""
        if traj_id in self._entries:
            self._entries[traj_id].update(values)
            self._entries.move_to_end(traj_id)
        else:
            self._entries[traj_id] = dict(values)

    def touch(self, traj_id: str) -> None:
        """Mark a trajectory as just used."""
        self._entries.move_to_end(traj_id)

    def trim(self) -> None:
        """Evict the least recently used trajectories past `max_trajectories`."""
        while len(self._entries) > self.max_trajectories:
            self._entries.popitem(last=False)

    def state_dict(self) -> dict[str, Any]:
        ids = list(self._entries)
        items = [(k, v) for i in ids for k, v in self._entries[i].items()]
        return {"ids": ids, "counts": [len(self._entries[i]) for i in ids],
                "steps": torch.tensor([k[0] for k, _ in items], dtype=torch.int64),  # (E,)
                "actions": torch.tensor([k[1] for k, _ in items], dtype=torch.int64),  # (E,)
                "logp": torch.tensor([v for _, v in items], dtype=torch.float32)}  # (E,)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        counts = [int(n) for n in state["counts"]]
        keys = list(zip(state["steps"].tolist(), state["actions"].tolist()))
        values = state["logp"].tolist()
        self._entries = OrderedDict()
        start = 0
        for traj_id, n in zip(state["ids"], counts):
            self._entries[traj_id] = dict(zip(keys[start:start + n], values[start:start + n]))
            start += n


class Reference:
    """The frozen reference `policy` (never stepped) with its cache; `chunk_size` bounds a forward pass."""

    def __init__(self, policy: Policy, cache_size: int, chunk_size: int):
        if policy.config.dropout > 0:
            raise ValueError("the reference policy must be deterministic: build it with dropout=0")
        self.policy, self.chunk_size = policy, chunk_size
        self.cache = ReferenceCache(cache_size)

    def trajectory_logp(self, trajs: Sequence[Trajectory]) -> list[list[float]]:
        """Per-step reference log-probs of the taken actions, (N, T_i) as lists.

        A trajectory's own `ref_logp` wins; otherwise each distinct `traj_id` whose steps
        are not all cached is evaluated once (no grad), all of them together.
        """
        found: dict[str, list[float]] = {}
        missing: list[Trajectory] = []
        for traj in trajs:
            if traj.traj_id in found:
                continue
            keys = list(enumerate(traj.chosen))
            if traj.ref_logp is not None:
                found[traj.traj_id] = list(traj.ref_logp)
            elif self.cache.has(traj.traj_id, keys):
                self.cache.touch(traj.traj_id)
                found[traj.traj_id] = [self.cache.get(traj.traj_id, t, a) for t, a in keys]
            else:
                found[traj.traj_id] = []
                missing.append(traj)
        steps = StepBatch.of(missing)
        if steps.num_steps:
            with torch.no_grad():
                outs = evaluate_chunks(self.policy, steps, range(steps.num_steps), self.chunk_size)
                logp = torch.cat([out.logp for _, out in outs])  # (S,)
            for traj, part in zip(missing, logp.float().cpu().split(steps.lengths)):
                found[traj.traj_id] = part.tolist()
        for traj in missing:
            self.cache.put(traj.traj_id, dict(zip(enumerate(traj.chosen), found[traj.traj_id])))
        self.cache.trim()
        return [found[t.traj_id] for t in trajs]

    def decision_logp(self, trajs: Sequence[Trajectory], steps: Sequence[int], rejected: Sequence[int],
                      device: torch.device) -> Tensor:
        """Reference log-probs at step `steps[i]` of `trajs[i]` of its chosen action and of
        the action `rejected[i]` (an index among the same candidates): (P, 2) on `device`.

        Decisions not cached are evaluated together (no grad), one evaluation per state.
        """
        keys = [((t, traj.chosen[t]), (t, k)) for traj, t, k in zip(trajs, steps, rejected)]
        missing = [i for i, (traj, pair) in enumerate(zip(trajs, keys)) if not self.cache.has(traj.traj_id, pair)]
        if missing:
            sub = StepBatch.single_steps([trajs[i].states[steps[i]] for i in missing],
                                         [trajs[i].candidates[steps[i]] for i in missing],
                                         [trajs[i].chosen[steps[i]] for i in missing])
            with torch.no_grad():
                good, bad = decision_logps(self.policy, sub, [rejected[i] for i in missing], self.chunk_size)
            for i, g, b in zip(missing, good.float().tolist(), bad.float().tolist()):
                chosen_key, rejected_key = keys[i]
                self.cache.put(trajs[i].traj_id, {chosen_key: g, rejected_key: b})
        ref = torch.tensor([[self.cache.get(traj.traj_id, *c), self.cache.get(traj.traj_id, *r)]
                            for traj, (c, r) in zip(trajs, keys)], device=device)  # (P, 2)
        for traj in trajs:
            self.cache.touch(traj.traj_id)
        self.cache.trim()
        return ref
