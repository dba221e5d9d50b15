"""What crosses between the `Learner` and its algorithms (learner.dpo, learner.ppo):
the batch of one update, already selected from the buffer, and what the update reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from rollout_workers.schema import Trajectory, batch_to_trajectories, row_to_trajectory


@dataclass(frozen=True)
class DPOBatch:
    """One DPO update's data."""

    pairs: list[tuple[Trajectory, Trajectory]]  # (P,) (chosen, rejected)
    anchors: list[tuple[str, list[str]]] = field(default_factory=list)  # (A,) (state, candidates)

    @classmethod
    def from_table(cls, pairs: pa.Table, anchors: list[tuple[str, list[str]]] | None = None) -> "DPOBatch":
        """From a pairs table (`rollout_workers.schema.PAIR_SCHEMA`)."""
        rows = pairs.to_pylist()
        return cls([(row_to_trajectory(r["chosen"]), row_to_trajectory(r["rejected"])) for r in rows],
                   list(anchors or []))


@dataclass(frozen=True)
class PPOBatch:
    """One PPO update's data."""

    trajectories: list[Trajectory]  # (N,)

    @classmethod
    def from_table(cls, trajectories: pa.Table) -> "PPOBatch":
        """From a trajectories table (`rollout_workers.schema.TRAJECTORY_SCHEMA`)."""
        return cls(batch_to_trajectories(trajectories))


@dataclass(frozen=True)
class UpdateResult:
    """What one algorithm update reports; the learner adds LR, staleness and timing."""

    losses: dict[str, float]
    """The loss and its terms and metrics ("loss" first)."""
    grad_norm: float
    """Gradient norm before clipping (PPO: mean over its optimizer steps)."""
    stats: dict[str, float]
    """What the update trained on (pairs / trajectories, steps, ...) and statistics of its targets."""
    trajectories: list[Trajectory]
    """The trajectories it trained on, for the staleness metrics."""
