"""The Arrow buffer: trajectories and preference pairs, in memory and on disk.

Workers append record batches (schema in `rollout_workers.schema`); each append is
written as a Parquet segment (temp file, fsync, atomic rename) before it is
acknowledged, so a restart of the buffer, the driver or the job loses nothing that
was acknowledged. In memory the buffer keeps the newest `capacity` rows of each
kind and evicts the oldest first; the segments stay on disk as the run's data,
readable with `pyarrow.parquet.read_table(run_dir / "buffer" / "trajectories")`
or `ray.data.read_parquet(...)`. Appends are idempotent by id (a retried call after
an actor restart adds nothing twice), and an id repeated inside one batch is
written once.

On start the buffer reloads the segments `seg-<number>.parquet` in number order;
other files in the folder are ignored, and a segment that cannot be read (torn,
damaged, another schema, rows that fail `check_trajectory_table`) is moved to
`quarantine/<kind>/` beside the segment folders with a warning, so the rest loads.
What was acknowledged is what `ledger.jsonl` says (`rollout_workers.ledger`): a segment
the ledger does not name is set aside the same way.

A run's checkpoint generation keeps `checkpoint_state()`; a resumed run passes it back
as `committed`, and rows acknowledged after it wait, *pending*, until the replay of
their goals appends the same ids again (ids follow the goal slot:
`rollout_workers.worker.trajectory_id`): nothing acknowledged is lost, nothing is
stored twice, and the learner samples what it would have sampled.

This is a plain class; `cluster.actors` makes it a Ray actor (num_cpus=0: it mostly
waits).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from policies.atomic import fsync_dir
from policies.config import check_at_least
from rollout_workers.ledger import LEDGER_FILE, Ledger
from rollout_workers.schema import PAIR_SCHEMA, TRAJECTORY_SCHEMA, batch_to_trajectories, check_trajectory_table

KINDS = {"trajectories": (TRAJECTORY_SCHEMA, "traj_id"), "pairs": (PAIR_SCHEMA, "pair_id")}
SEGMENT_NAME = re.compile(r"seg-(\d+)\.parquet")
"""A segment file's name; its number orders the segments."""
QUARANTINE = "quarantine"
"""Folder (beside the segment folders) that damaged segments are moved to."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BufferConfig:
    """Sizes of the in-memory part of the buffer."""

    capacity_trajectories: int = 20_000
    """Newest trajectories kept in memory for sampling."""
    capacity_pairs: int = 10_000
    """Newest pairs kept in memory for sampling."""

    def __post_init__(self):
        check_at_least("buffer", self, 1, "capacity_trajectories", "capacity_pairs")


class _Store:
    """One kind of row: newest-first eviction in memory, Parquet segments on disk.

    `committed` (from a run's checkpoint generation: segment high-water mark and the ids
    still pending then) splits what is on disk: rows of segments below the mark are in
    memory as they were at the checkpoint; the others are *pending*: acknowledged, kept
    on disk, but out of the sampling until an append brings the same id again (the
    replay of their goals after a resume), when the stored row joins the memory at that
    point. None: every acknowledged row is in memory.
    """

    def __init__(self, directory: Path, schema: pa.Schema, id_field: str, capacity: int, ledger: Ledger,
                 committed: tuple[int, Collection[str]] | None = None):
        self.dir, self.schema, self.id_field, self.capacity = directory, schema, id_field, capacity
        self.ledger, self.kind = ledger, directory.name
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True)
            fsync_dir(self.dir.parent)
        self.batches: list[pa.RecordBatch] = []
        self.ids: set[str] = set()  # every id on disk, in memory or pending
        self.pending: dict[str, tuple[int, int]] = {}  # id -> (index in pending_tables, row)
        self.pending_tables: list[pa.Table] = []
        self.rows = 0
        self.acknowledged = 0
        self.next_segment = 0
        self._table: pa.Table | None = None
        self._reload(committed)

    def _reload(self, committed: tuple[int, Collection[str]] | None) -> None:
        """Load what the ledger acknowledged, newest segment first, reading files only until
        the memory is full and every pending row is held: older segments count by their
        ledger lines (ids, rows) unread, so a restart costs the memory's size, not the run's."""
        named = sorted((int(m.group(1)), p) for p in self.dir.iterdir() if (m := SEGMENT_NAME.fullmatch(p.name)))
        known = self.ledger.segments(self.kind)
        adopt_all = not self.ledger.existed  # a buffer from before the ledger: what is there was acknowledged
        mark, still_pending = committed if committed is not None else (None, ())
        still_pending = set(still_pending)
        pending_segments = {s for s, ids in known.items() if still_pending.intersection(ids)}
        visible: list[pa.Table] = []  # newest first
        present: set[str] = set()
        for number, path in reversed(named):
            if not path.is_file():
                continue
            if path.name not in known and not adopt_all:
                self._quarantine(path, "never acknowledged (no line in the ledger): written by an append "
                                       "that did not answer")
                continue
            late_segment = mark is not None and (number >= mark or path.name in pending_segments)
            full = sum(t.num_rows for t in visible) >= self.capacity
            if full and not late_segment and not adopt_all:  # counted from the ledger, left unread
                present.add(path.name)
                self.ids.update(known[path.name])
                self.acknowledged += len(known[path.name])
                continue
            try:
                table = self._read_segment(path)
            except (pa.ArrowException, OSError, ValueError) as e:
                self._quarantine(path, e)
                continue
            present.add(path.name)
            ids = table.column(self.id_field).to_pylist()
            if adopt_all:
                self.ledger.record(self.kind, path.name, ids)
            self.ids.update(ids)
            self.acknowledged += table.num_rows
            if not late_segment:
                visible.append(table)
                continue
            late = np.array([number >= mark or i in still_pending for i in ids], dtype=bool)
            visible.append(table.filter(pa.array(~late)))
            self._hold(table.filter(pa.array(late)))
        for table in reversed(visible):
            self._keep(table.to_batches())
        if named:  # numbers of quarantined segments (and of anything else so named) are not reused
            self.next_segment = named[-1][0] + 1
        lost = sorted(set(known) - present)
        if lost:
            log.warning("buffer: %d acknowledged %s segment(s) are missing or were set aside: %s",
                        len(lost), self.kind, ", ".join(lost[:5]))

    def _hold(self, table: pa.Table) -> None:
        """Keep acknowledged rows out of memory until their ids are appended again."""
        if table.num_rows:
            k = len(self.pending_tables)
            self.pending_tables.append(table)
            self.pending.update((i, (k, row)) for row, i in enumerate(table.column(self.id_field).to_pylist()))

    def _read_segment(self, path: Path) -> pa.Table:
        """A segment's rows; columns a segment lacks read as null where the schema allows."""
        present = set(pq.read_schema(path).names)
        missing = [f.name for f in self.schema if not f.nullable and f.name not in present]
        if missing:
            raise ValueError(f"required columns {missing} missing")
        table = pq.read_table(path, schema=self.schema)
        if table.column(self.id_field).null_count:
            raise ValueError(f"null {self.id_field}")
        if self.schema.equals(TRAJECTORY_SCHEMA, check_metadata=False):
            check_trajectory_table(table, path)
        return table

    def _quarantine(self, path: Path, reason: Exception | str) -> None:
        """Move a segment that cannot be loaded out of the way, keeping it for a person."""
        target_dir = self.dir.parent / QUARANTINE / self.dir.name
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target, n = target_dir / f"{path.stem}.{n}{path.suffix}", n + 1
        path.rename(target)
        fsync_dir(self.dir)
        fsync_dir(target_dir)
        log.warning("buffer: segment %s cannot be loaded (%s); moved to %s", path, reason, target)

    def _keep(self, batches: list[pa.RecordBatch]) -> None:
        for b in batches:
            if b.num_rows:
                self.batches.append(b)
                self.rows += b.num_rows
        while self.batches and self.rows - self.batches[0].num_rows >= self.capacity:
            self.rows -= self.batches.pop(0).num_rows
        if self.rows > self.capacity:  # trim inside the oldest batch
            drop = self.rows - self.capacity
            self.batches[0] = self.batches[0].slice(drop)
            self.rows -= drop
        self._table = None

    def append(self, batch: pa.RecordBatch | pa.Table) -> int:
        """Store the rows whose ids are new (on disk and in the ledger before returning),
        bring pending rows with these ids into memory; returns how many rows joined the
        memory. Ids seen before (in memory, or earlier in this batch) are skipped."""
        if not batch.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"{self.dir.name}: batch schema differs from the buffer's:\n{batch.schema}")
        if self.schema.equals(TRAJECTORY_SCHEMA, check_metadata=False):  # what would not load again
            check_trajectory_table(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch,
                                   f"{self.dir.name} batch")
        in_batch: set[str] = set()
        fresh = np.zeros(batch.num_rows, dtype=bool)
        adopted: list[tuple[int, int]] = []
        for row, i in enumerate(batch.column(self.id_field).to_pylist()):
            if i in self.pending:  # acknowledged before a resume: the stored row, not this replay
                adopted.append(self.pending.pop(i))
            fresh[row] = i not in self.ids and i not in in_batch  # the first of its id in this batch
            in_batch.add(i)
        if adopted:
            self._keep([t for k, row in adopted for t in self.pending_tables[k].slice(row, 1).to_batches()])
        if not fresh.any():
            return len(adopted)
        if not fresh.all():
            batch = batch.filter(pa.array(fresh))
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        path = self.dir / f"seg-{self.next_segment:08d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")  # hidden: readers of the folder skip it
        with open(tmp, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(path)
        fsync_dir(self.dir)  # the rename itself survives a power cut before acknowledging
        ids = table.column(self.id_field).to_pylist()
        self.ledger.record(self.kind, path.name, ids)  # the acknowledgement
        self.next_segment += 1
        self.ids.update(ids)
        self.acknowledged += table.num_rows
        self._keep(table.to_batches())
        return table.num_rows + len(adopted)

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            self._table = pa.Table.from_batches(self.batches, schema=self.schema)
        return self._table


def nothing_committed(seed: int) -> dict:
    """The `committed` state of a run that has no checkpoint generation yet: every row on
    disk pending, the RNG as `seed` makes it."""
    return {"segments": {kind: 0 for kind in KINDS}, "pending": {kind: [] for kind in KINDS},
            "rng": np.random.default_rng(seed).bit_generator.state}


class ArrowBuffer:
    """Trajectories and pairs for the learner.

    Args:
        directory: where Parquet segments live (created; existing segments reloaded).
        config: in-memory capacities.
        seed: seed of the sampling generator.
        committed: `checkpoint_state()` as a run's checkpoint generation saved it: the
            buffer starts as it was then (rows above it pending, its RNG state); None:
            every acknowledged row in memory, a fresh RNG from `seed`.
    """

    def __init__(self, directory: str | Path, config: BufferConfig = BufferConfig(), seed: int = 0,
                 committed: dict | None = None):
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(root / LEDGER_FILE)
        capacity = {"trajectories": config.capacity_trajectories, "pairs": config.capacity_pairs}
        self.stores = {}
        for kind, (schema, id_field) in KINDS.items():
            mark = None if committed is None else (committed["segments"][kind], committed["pending"][kind])
            self.stores[kind] = _Store(root / kind, schema, id_field, capacity[kind], self.ledger, mark)
        self.rng = np.random.default_rng(seed)
        if committed is not None:
            self.rng.bit_generator.state = committed["rng"]

    def checkpoint_state(self) -> dict:
        """What a run's checkpoint generation keeps of the buffer (JSON-able): per kind the
        segment high-water mark and the ids pending then, and the sampling RNG."""
        return {"segments": {k: s.next_segment for k, s in self.stores.items()},
                "pending": {k: sorted(s.pending) for k, s in self.stores.items()},
                "rng": self.rng.bit_generator.state}

    def close(self) -> None:
        self.ledger.close()

    def add_trajectories(self, batch: pa.RecordBatch | pa.Table) -> int:
        """Append; returns how many rows joined the memory (new ones, and pending ones
        appended again). On disk and in the ledger before it returns."""
        return self.stores["trajectories"].append(batch)

    def add_pairs(self, batch: pa.RecordBatch | pa.Table) -> int:
        return self.stores["pairs"].append(batch)

    def sample(
        self, kind: str, n: int, min_version: int | None = None, recency: float = 0.0
    ) -> pa.Table:
        """Up to `n` rows without replacement.

        Args:
            kind: "trajectories" or "pairs".
            min_version: keep rows whose policy version (both halves, for pairs) is at
                least this.
            recency: 0 samples uniformly; r > 0 weights row i (0 = oldest) by
                exp(r * i / rows), favouring fresh data.
        """
        table = self.stores[kind].table
        # Indices of the eligible rows and one-row slices of them, not a filtered copy nor
        # `take` (both cross every chunk of the table: ~0.1 s per update at 500 pairs).
        eligible = np.arange(table.num_rows)
        if min_version is not None and table.num_rows:
            eligible = np.flatnonzero(self._version_mask(kind, table, min_version).to_numpy(zero_copy_only=False))
        rows = len(eligible)
        if rows == 0:
            return table.slice(0, 0)
        k = min(n, rows)
        if recency > 0:
            w = np.exp(recency * np.arange(rows) / rows)
            idx = self.rng.choice(rows, size=k, replace=False, p=w / w.sum())
        else:
            idx = self.rng.choice(rows, size=k, replace=False)
        return pa.concat_tables([table.slice(int(i), 1) for i in eligible[np.sort(idx)]]).combine_chunks()

    @staticmethod
    def _version_mask(kind: str, table: pa.Table, min_version: int) -> pa.Array:
        if kind == "trajectories":
            return pc.greater_equal(table.column("policy_version"), min_version)
        chosen = pc.struct_field(table.column("chosen"), "policy_version")
        rejected = pc.struct_field(table.column("rejected"), "policy_version")
        return pc.and_(pc.greater_equal(chosen, min_version), pc.greater_equal(rejected, min_version))

    def newest(self, kind: str, n: int) -> pa.Table:
        """The newest `n` rows in arrival order."""
        table = self.stores[kind].table
        return table.slice(max(0, table.num_rows - n))

    # ------------------------------------------------ what the learner asks for
    def sample_pairs(self, n: int, min_version: int) -> pa.Table:
        """Up to `n` pairs drawn uniformly without replacement (in arrival order) among
        those whose halves both have policy version >= `min_version` (DPO)."""
        return self.sample("pairs", n, min_version=min_version)

    def newest_policy_states(self, num_rows: int) -> list[tuple[str, list[str]]]:
        """(state, candidates) of every step of the policy trajectories among the newest
        `num_rows` trajectory rows, in arrival and step order (DPO's anchor states)."""
        table = self.newest("trajectories", num_rows)
        table = table.filter(pc.equal(table.column("source"), "policy"))
        return [(s, c) for t in batch_to_trajectories(table) for s, c in zip(t.states, t.candidates)]

    def fresh_policy_trajectories(self, n: int, min_version: int, exclude_ids: Collection[str] = ()) -> pa.Table:
        """The newest `n` policy trajectories of version >= `min_version` whose ids are
        not in `exclude_ids`, in arrival order (PPO). Only the newest 4n + 64 rows are
        looked at (older ones are stale or used anyway), so fewer than `n` may come back."""
        table = self.newest("trajectories", 4 * n + 64)
        fresh = pc.and_(pc.equal(table.column("source"), "policy"),
                        pc.greater_equal(table.column("policy_version"), min_version))
        table = table.filter(fresh)
        excluded = set(exclude_ids)
        unused = np.array([i not in excluded for i in table.column("traj_id").to_pylist()], dtype=bool)
        table = table.filter(pa.array(unused))
        return table.slice(max(0, table.num_rows - n))

    def stats(self) -> dict[str, int]:
        """In-memory, pending and acknowledged (on-disk) row counts per kind."""
        out = {}
        for kind, store in self.stores.items():
            out[f"{kind}_in_memory"] = store.rows
            out[f"{kind}_pending"] = len(store.pending)
            out[f"{kind}_acknowledged"] = store.acknowledged
        return out
