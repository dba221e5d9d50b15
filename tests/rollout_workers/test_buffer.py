from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rollout_workers.buffer import ArrowBuffer, BufferConfig
from rollout_workers.schema import TRAJECTORY_SCHEMA, Trajectory, batch_to_trajectories, pairs_to_batch, trajectories_to_batch


def traj(goal, version=0, score=0.5, steps=2, source="policy"):
    return Trajectory(
        goal_id=goal, source=source, states=[f"s{i}" for i in range(steps)],
        candidates=[["a", "b", "c"]] * steps, chosen=[1] * steps, logp=[-1.25] * steps,  # exact in float32 (the schema stores float32)
        rewards=[0.0] * (steps - 1) + [score], terminated=True, score=score, policy_version=version,
        reward_info={"r_type": 1.0, "r_att": 0.5, "r_option": None, "r_price": 1.0},
    )


def test_round_trip_through_arrow():
    t = traj(3, steps=3)
    back = batch_to_trajectories(trajectories_to_batch([t]))[0]
    assert back == t


def test_validation_names_the_field():
    t = traj(1)
    t.logp = [0.0]
    with pytest.raises(ValueError, match="field 'logp' has 1 steps, chosen has 2"):
        trajectories_to_batch([t])
    t = traj(1)
    t.chosen = [0, 3]
    with pytest.raises(ValueError, match=r"'chosen'\[1\]=3 outside 3 candidates"):
        t.validate()
    with pytest.raises(ValueError, match="source must be one of"):
        Trajectory(goal_id=0, source="robot")


def test_append_is_durable_idempotent_and_evicts_oldest(tmp_path):
    buf = ArrowBuffer(tmp_path, BufferConfig(capacity_trajectories=5))
    batches = [trajectories_to_batch([traj(g, version=g) for g in range(i * 3, i * 3 + 3)]) for i in range(3)]
    assert [buf.add_trajectories(b) for b in batches] == [3, 3, 3]
    assert buf.add_trajectories(batches[1]) == 0  # a retried append adds nothing
    stats = buf.stats()
    assert stats["trajectories_in_memory"] == 5 and stats["trajectories_acknowledged"] == 9
    assert buf.newest("trajectories", 10).column("goal_id").to_pylist() == [4, 5, 6, 7, 8]
    # everything acknowledged is on disk, readable with plain pyarrow
    on_disk = pq.read_table(tmp_path / "trajectories")
    assert sorted(on_disk.column("goal_id").to_pylist()) == list(range(9))
    # a restarted buffer has the same state
    again = ArrowBuffer(tmp_path, BufferConfig(capacity_trajectories=5))
    assert again.stats() == stats
    assert again.newest("trajectories", 10).column("goal_id").to_pylist() == [4, 5, 6, 7, 8]
    assert again.add_trajectories(batches[0]) == 0


def test_sampling_by_version_and_size(tmp_path):
    buf = ArrowBuffer(tmp_path, seed=1)
    buf.add_trajectories(trajectories_to_batch([traj(g, version=g % 4) for g in range(40)]))
    s = buf.sample("trajectories", 8, min_version=2)
    assert s.num_rows == 8 and min(s.column("policy_version").to_pylist()) >= 2
    assert len(set(s.column("traj_id").to_pylist())) == 8
    assert buf.sample("trajectories", 100).num_rows == 40
    # strong recency favours the newest rows
    recent = buf.sample("trajectories", 5, recency=50.0).column("goal_id").to_pylist()
    assert min(recent) >= 20


def test_pairs(tmp_path):
    buf = ArrowBuffer(tmp_path)
    pairs = [(traj(g, version=v, score=1.0, source="expert"), traj(g, version=v, score=0.2), "expert")
             for g, v in [(1, 0), (2, 3), (3, 5)]]
    assert buf.add_pairs(pairs_to_batch(pairs)) == 3
    s = buf.sample("pairs", 10, min_version=3)
    assert sorted(s.column("goal_id").to_pylist()) == [2, 3]
    with pytest.raises(ValueError, match="pair halves are for goals 1 and 2"):
        pairs_to_batch([(traj(1), traj(2), "self")])
    with pytest.raises(ValueError, match="schema differs"):
        buf.add_pairs(trajectories_to_batch([traj(1)]))


# ------------------------------------------------------- what the learner asks for


def test_sample_pairs_draws_what_sample_draws_and_keeps_both_halves_fresh(tmp_path):
    halves = [(0, 0), (4, 3), (4, 5), (6, 6), (7, 2), (5, 5)]  # (chosen, rejected) versions
    pairs = [(traj(g, version=c, score=1.0, source="expert"), traj(g, version=r, score=0.2), "correct")
             for g, (c, r) in enumerate(halves)]
    named, generic = ArrowBuffer(tmp_path / "a", seed=3), ArrowBuffer(tmp_path / "b", seed=3)
    for buf in (named, generic):
        buf.add_pairs(pairs_to_batch(pairs))
    got = named.sample_pairs(2, min_version=4)
    assert got.column("goal_id").to_pylist() == generic.sample("pairs", 2, min_version=4).column("goal_id").to_pylist()
    assert set(got.column("goal_id").to_pylist()) <= {2, 3, 5}  # both halves >= 4
    assert sorted(named.sample_pairs(10, min_version=4).column("goal_id").to_pylist()) == [2, 3, 5]


def test_newest_policy_states_are_every_step_of_the_newest_policy_rows(tmp_path):
    buf = ArrowBuffer(tmp_path)
    rows = [traj(0, steps=1), traj(1, steps=2, source="expert"), traj(2, steps=2), traj(3, steps=3)]
    for i, t in enumerate(rows):
        t.states = [f"g{t.goal_id}s{k}" for k in range(t.num_steps)]
        t.candidates = [["a", f"b{i}"]] * t.num_steps
        t.chosen = [0] * t.num_steps
    buf.add_trajectories(trajectories_to_batch(rows))
    # the newest 3 rows: goal 1 (expert, left out), goals 2 and 3, in arrival and step order
    assert buf.newest_policy_states(3) == [("g2s0", ["a", "b2"]), ("g2s1", ["a", "b2"]),
                                           ("g3s0", ["a", "b3"]), ("g3s1", ["a", "b3"]), ("g3s2", ["a", "b3"])]
    assert buf.newest_policy_states(1) == [("g3s0", ["a", "b3"]), ("g3s1", ["a", "b3"]), ("g3s2", ["a", "b3"])]
    assert ArrowBuffer(tmp_path / "empty").newest_policy_states(64) == []


def test_fresh_policy_trajectories_are_the_newest_unused_ones(tmp_path):
    buf = ArrowBuffer(tmp_path)
    rows = [traj(0, version=5), traj(1, version=1), traj(2, version=4, source="expert"), traj(3, version=3),
            traj(4, version=4), traj(5, version=6)]
    buf.add_trajectories(trajectories_to_batch(rows))
    ids = [t.traj_id for t in rows]
    goals = lambda table: table.column("goal_id").to_pylist()  # noqa: E731
    assert goals(buf.fresh_policy_trajectories(2, min_version=3)) == [4, 5]  # newest two, arrival order
    assert goals(buf.fresh_policy_trajectories(10, min_version=3)) == [0, 3, 4, 5]  # fewer than asked
    assert goals(buf.fresh_policy_trajectories(3, min_version=3, exclude_ids=[ids[5], ids[3]])) == [0, 4]
    assert goals(buf.fresh_policy_trajectories(1, min_version=7)) == []
    # only the newest 4n + 64 rows are looked at: past 68 used rows, goals 0-5 are out of reach
    newer = [traj(100 + g, version=6) for g in range(70)]
    buf.add_trajectories(trajectories_to_batch(newer))
    assert goals(buf.fresh_policy_trajectories(1, min_version=0)) == [169]
    assert goals(buf.fresh_policy_trajectories(1, min_version=0, exclude_ids={t.traj_id for t in newer})) == []
    assert goals(buf.fresh_policy_trajectories(2, min_version=0, exclude_ids={t.traj_id for t in newer})) == [4, 5]


# ------------------------------------------------------- damaged and stray files on disk


def test_damaged_segments_are_quarantined_and_the_rest_loads(tmp_path, caplog):
    buf = ArrowBuffer(tmp_path)
    batches = [trajectories_to_batch([traj(g) for g in range(i * 2, i * 2 + 2)]) for i in range(4)]
    assert sum(buf.add_trajectories(b) for b in batches) == 8
    buf.add_pairs(pairs_to_batch([(traj(7, score=1.0, source="expert"), traj(7), "expert")]))
    buf.close()
    folder = tmp_path / "trajectories"
    seg = [folder / f"seg-{i:08d}.parquet" for i in range(8)]
    good = seg[0].read_bytes()
    seg[1].write_bytes(seg[1].read_bytes()[:-40])  # acknowledged, then torn on disk
    seg[2].write_bytes((tmp_path / "pairs" / "seg-00000000.parquet").read_bytes())  # another schema
    row = traj(90).to_row()
    row["chosen"] = [1, 5]
    pq.write_table(pa.Table.from_pylist([row], schema=TRAJECTORY_SCHEMA), seg[3])  # a row that cannot be used
    seg[5].write_bytes(good)  # a segment no append acknowledged
    for stray in ("seg-old.parquet", "notes.txt", ".seg-00000009.parquet.tmp", "seg-00000001.parquet.bak"):
        (folder / stray).write_text("stray")
    seg[7].mkdir()  # a folder with a segment's name
    with caplog.at_level("WARNING", logger="rollout_workers.buffer"):
        again = ArrowBuffer(tmp_path)
    assert again.stats()["trajectories_acknowledged"] == 2
    assert sorted(again.newest("trajectories", 10).column("goal_id").to_pylist()) == [0, 1]
    quarantine = tmp_path / "quarantine" / "trajectories"
    assert sorted(p.name for p in quarantine.iterdir()) == [p.name for p in (seg[1], seg[2], seg[3], seg[5])]
    assert not seg[1].exists() and (folder / "notes.txt").exists()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 5 and all("cannot be loaded" in w and "moved to" in w for w in warned[:4])
    about = {i: next(w for w in warned[:4] if f"seg-{i:08d}.parquet cannot" in w) for i in (1, 2, 3, 5)}
    assert "field 'chosen[1]': 5 outside its 3 candidates" in about[3]
    assert "required columns ['traj_id'" in about[2]
    assert "never acknowledged (no line in the ledger)" in about[5]
    assert warned[4].endswith("3 acknowledged trajectories segment(s) are missing or were set aside: "
                              "seg-00000001.parquet, seg-00000002.parquet, seg-00000003.parquet")
    # new segments continue after the highest number seen; a restart only repeats the loss
    assert again.add_trajectories(trajectories_to_batch([traj(50)])) == 1
    assert seg[7].with_name("seg-00000008.parquet").exists()
    again.close()
    caplog.clear()
    with caplog.at_level("WARNING", logger="rollout_workers.buffer"):
        assert ArrowBuffer(tmp_path).stats()["trajectories_acknowledged"] == 3
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["buffer"] and "missing" in caplog.text


def test_ids_repeated_inside_one_batch_are_written_once(tmp_path):
    buf = ArrowBuffer(tmp_path)
    a, b = traj(1), traj(2)
    twin = traj(3)
    twin.traj_id = a.traj_id
    assert buf.add_trajectories(trajectories_to_batch([a, b, twin, b])) == 2
    on_disk = pq.read_table(tmp_path / "trajectories")
    assert on_disk.column("goal_id").to_pylist() == [1, 2]  # the first of each id is kept
    assert ArrowBuffer(tmp_path).stats()["trajectories_acknowledged"] == 2


def test_the_folder_is_fsynced_after_each_rename(tmp_path, monkeypatch):
    import rollout_workers.buffer as buffer_mod

    calls = []
    real = buffer_mod.fsync_dir
    monkeypatch.setattr(buffer_mod, "fsync_dir",
                        lambda d: (calls.append((Path(d), sorted(p.name for p in Path(d).iterdir()))), real(d)))
    buf = ArrowBuffer(tmp_path)
    calls.clear()
    buf.add_trajectories(trajectories_to_batch([traj(1)]))
    buf.add_trajectories(trajectories_to_batch([traj(2)]))
    folder = tmp_path / "trajectories"
    assert calls == [(folder, ["seg-00000000.parquet"]), (folder, ["seg-00000000.parquet", "seg-00000001.parquet"])]


def test_rows_that_would_not_load_again_are_refused(tmp_path):
    from rollout_workers.schema import TrajectoryFormatError

    row = traj(4).to_row()
    row["logp"] = [0.0]
    buf = ArrowBuffer(tmp_path)
    with pytest.raises(TrajectoryFormatError, match=r"trajectories batch: row 0 \(.*\): field 'logp': 1 steps, 'chosen' has 2"):
        buf.add_trajectories(pa.RecordBatch.from_pylist([row], schema=TRAJECTORY_SCHEMA))
    assert buf.stats()["trajectories_acknowledged"] == 0 and not list((tmp_path / "trajectories").iterdir())
