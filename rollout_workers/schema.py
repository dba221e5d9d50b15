"""The Arrow schema of trajectories and preference pairs: the one definition of a
trajectory on the wire (worker -> buffer -> learner) and on disk (Parquet).

A trajectory is one row. Per-step fields are lists of equal length T (the number
of actions taken); `candidates` is a list of T lists (K_t candidate action
strings each). `logp` holds the behaviour policy's log-probability of each
chosen action (0 for model-free sources such as the expert), `ref_logp` the
frozen reference model's, filled in once per trajectory where DPO needs it.
A pair row embeds its two trajectories, so a sampled pair is self-contained.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Collection, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SOURCES = ("policy", "expert", "demo", "human")
PAIR_MODES = ("expert", "self", "correct")

REWARD_INFO = pa.struct([
    ("r_type", pa.float32()),
    ("r_att", pa.float32()),
    ("r_option", pa.float32()),  # null when the goal asks for no option
    ("r_price", pa.float32()),
])

TRAJECTORY_FIELDS = [
    pa.field("traj_id", pa.string(), nullable=False),
    pa.field("goal_id", pa.int32(), nullable=False),
    pa.field("seed", pa.int64()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("policy_version", pa.int64(), nullable=False),
    pa.field("worker_id", pa.int32()),
    pa.field("instruction", pa.string()),
    pa.field("states", pa.list_(pa.string()), nullable=False),  # (T,)
    pa.field("candidates", pa.list_(pa.list_(pa.string())), nullable=False),  # (T, K_t)
    pa.field("chosen", pa.list_(pa.int32()), nullable=False),  # (T,)
    pa.field("logp", pa.list_(pa.float32()), nullable=False),  # (T,) behaviour
    pa.field("values", pa.list_(pa.float32())),  # (T,) V(s_t), PPO
    pa.field("ref_logp", pa.list_(pa.float32())),  # (T,) reference model, or null
    pa.field("rewards", pa.list_(pa.float32()), nullable=False),  # (T,)
    pa.field("terminated", pa.bool_(), nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
    pa.field("score", pa.float32(), nullable=False),  # final WebShop reward
    pa.field("reward_info", REWARD_INFO),
    pa.field("il_mask", pa.list_(pa.bool_())),  # (T,) demonstrator's own choice, or null = every step
]
TRAJECTORY_SCHEMA = pa.schema(TRAJECTORY_FIELDS, metadata={"webshop_rl": "trajectory/v1"})
TRAJECTORY_STRUCT = pa.struct(TRAJECTORY_FIELDS)

PAIR_SCHEMA = pa.schema([
    pa.field("pair_id", pa.string(), nullable=False),
    pa.field("goal_id", pa.int32(), nullable=False),
    pa.field("mode", pa.string(), nullable=False),  # expert | self
    pa.field("chosen", TRAJECTORY_STRUCT, nullable=False),
    pa.field("rejected", TRAJECTORY_STRUCT, nullable=False),
], metadata={"webshop_rl": "pair/v1"})


@dataclass
class Trajectory:
    """One finished episode, as the worker records it (see module doc for fields)."""

    goal_id: int
    source: str
    states: list[str] = field(default_factory=list)
    candidates: list[list[str]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    values: list[float] | None = None
    ref_logp: list[float] | None = None
    rewards: list[float] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    score: float = 0.0
    reward_info: dict | None = None
    seed: int | None = None
    policy_version: int = 0
    worker_id: int | None = None
    instruction: str | None = None
    il_mask: list[bool] | None = None
    """Per step, whether the action is the demonstrator's own choice (imitation learns
    from it); False marks a disturbance it was made to take (DART). None: every step."""
    traj_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Trajectory.source must be one of {SOURCES}, got {self.source!r}")

    @property
    def num_steps(self) -> int:
        return len(self.chosen)

    def validate(self) -> None:
        """Raise ValueError naming the field whose length disagrees with T."""
        T = len(self.chosen)
        for name in ("states", "candidates", "logp", "rewards", "values", "ref_logp", "il_mask"):
            v = getattr(self, name)
            if v is not None and len(v) != T:
                raise ValueError(f"trajectory {self.traj_id}: field '{name}' has {len(v)} steps, chosen has {T}")
        for t, (c, k) in enumerate(zip(self.chosen, self.candidates)):
            if not 0 <= c < len(k):
                raise ValueError(f"trajectory {self.traj_id}: field 'chosen'[{t}]={c} outside {len(k)} candidates")

    def to_row(self) -> dict:
        self.validate()
        row = asdict(self)
        info = self.reward_info or None
        row["reward_info"] = None if info is None else {k: _num(info.get(k)) for k in REWARD_INFO.names}
        return row


def _num(v) -> float | None:
    return None if v is None else float(v)


def trajectories_to_batch(trajs: Sequence[Trajectory]) -> pa.RecordBatch:
    """Trajectories -> one RecordBatch of TRAJECTORY_SCHEMA."""
    return pa.RecordBatch.from_pylist([t.to_row() for t in trajs], schema=TRAJECTORY_SCHEMA)


def row_to_trajectory(row: dict) -> Trajectory:
    names = {f.name for f in fields(Trajectory)}
    return Trajectory(**{k: v for k, v in row.items() if k in names})


def batch_to_trajectories(batch: pa.RecordBatch | pa.Table) -> list[Trajectory]:
    return [row_to_trajectory(r) for r in batch.to_pylist()]


def pair_id(chosen: Trajectory, rejected: Trajectory, mode: str) -> str:
    """A pair's id, from its halves' ids: a pair mined again from a replayed episode
    keeps its id (the buffer stores it once)."""
    return f"{mode}:{chosen.traj_id}>{rejected.traj_id}"


def pairs_to_batch(pairs: Iterable[tuple[Trajectory, Trajectory, str]]) -> pa.RecordBatch:
    """(chosen, rejected, mode) triples -> one RecordBatch of PAIR_SCHEMA."""
    rows = []
    for chosen, rejected, mode in pairs:
        if mode not in PAIR_MODES:
            raise ValueError(f"pair mode must be one of {PAIR_MODES}, got {mode!r}")
        if chosen.goal_id != rejected.goal_id:
            raise ValueError(f"pair halves are for goals {chosen.goal_id} and {rejected.goal_id}")
        rows.append({"pair_id": pair_id(chosen, rejected, mode), "goal_id": chosen.goal_id, "mode": mode,
                     "chosen": chosen.to_row(), "rejected": rejected.to_row()})
    return pa.RecordBatch.from_pylist(rows, schema=PAIR_SCHEMA)


# ------------------------------------------------------------ checking stored rows
STEP_FIELDS = ("states", "candidates", "logp", "rewards", "values", "ref_logp", "il_mask")
"""Per-step list fields whose length must equal `chosen`'s (null allowed where nullable)."""


class TrajectoryFormatError(ValueError):
    """Stored trajectory rows that cannot be used; names the file, the row and the field."""

    def __init__(self, path: str | Path, row: int | str, field_name: str, problem: str):
        self.path, self.row, self.field_name = str(path), row, field_name
        super().__init__(f"{path}: row {row}: field '{field_name}': {problem}")


def _first(mask) -> int | None:
    """Index of the first True in a boolean (Chunked)Array (nulls count as True)."""
    bad = np.asarray(pc.fill_null(mask, True).to_numpy(zero_copy_only=False), dtype=bool)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def check_trajectory_table(table: pa.Table, path: str | Path, present: Collection[str] | None = None) -> None:
    """Raise TrajectoryFormatError for the first row of `table` (TRAJECTORY_SCHEMA) that
    misses a required field, has a per-step list whose length differs from `chosen`'s,
    or chooses outside its candidates. `present`: the column names the file itself
    held (a missing required column is reported instead of read as nulls)."""
    for f in TRAJECTORY_SCHEMA:
        if present is not None and f.name not in present and not f.nullable:
            raise TrajectoryFormatError(path, "<schema>", f.name, "missing from the file's columns")
        if not f.nullable and (row := _first(pc.is_null(table.column(f.name)))) is not None:
            raise TrajectoryFormatError(path, row, f.name, "null")
    ids = table.column("traj_id")
    num_steps = pc.list_value_length(table.column("chosen"))
    for name in STEP_FIELDS:
        lengths = pc.list_value_length(table.column(name))
        row = _first(pc.and_kleene(pc.is_valid(lengths), pc.not_equal(lengths, num_steps)))
        if row is not None:
            raise TrajectoryFormatError(path, f"{row} ({ids[row]})", name,
                                        f"{lengths[row]} steps, 'chosen' has {num_steps[row]}")
    chosen = pc.list_flatten(table.column("chosen"))
    num_cands = pc.list_value_length(pc.list_flatten(table.column("candidates")))
    step = _first(pc.or_kleene(pc.less(chosen, 0), pc.greater_equal(chosen, num_cands)))
    if step is not None:
        ends = np.cumsum(num_steps.to_numpy(zero_copy_only=False))
        row = int(np.searchsorted(ends, step, side="right"))
        t = step - (int(ends[row - 1]) if row else 0)
        raise TrajectoryFormatError(path, f"{row} ({ids[row]})", f"chosen[{t}]",
                                    f"{chosen[step]} outside its {num_cands[step]} candidates")
