"""The buffer across a resume: the ledger, the committed high-water mark, pending rows."""

import json

import pyarrow.parquet as pq

from rollout_workers.buffer import ArrowBuffer
from rollout_workers.ledger import LEDGER_FILE, read_ledger
from rollout_workers.schema import pairs_to_batch, trajectories_to_batch
from tests.rollout_workers.test_buffer import traj


def named(goal, tid, **kw):
    t = traj(goal, **kw)
    t.traj_id = tid
    return t


def test_the_ledger_names_every_acknowledged_row_once(tmp_path):
    buf = ArrowBuffer(tmp_path)
    buf.add_trajectories(trajectories_to_batch([named(1, "a"), named(2, "b")]))
    buf.add_trajectories(trajectories_to_batch([named(2, "b"), named(3, "c")]))  # b again: not written again
    buf.add_pairs(pairs_to_batch([(named(4, "x", score=1.0, source="expert"), named(4, "y"), "expert")]))
    lines = [json.loads(line) for line in (tmp_path / LEDGER_FILE).read_text().splitlines()]
    assert [(e["kind"], e["segment"], e["ids"]) for e in lines] == [
        ("trajectories", "seg-00000000.parquet", ["a", "b"]), ("trajectories", "seg-00000001.parquet", ["c"]),
        ("pairs", "seg-00000000.parquet", ["expert:x>y"])]
    on_disk = pq.read_table(tmp_path / "trajectories").column("traj_id").to_pylist()
    assert read_ledger(tmp_path) == {"trajectories": on_disk, "pairs": ["expert:x>y"]}


def test_a_torn_ledger_line_is_cut_and_its_segment_set_aside(tmp_path, caplog):
    """A kill between the segment's rename and its ledger line (or inside the line):
    the segment was never acknowledged; the buffer sets it aside and stays whole."""
    buf = ArrowBuffer(tmp_path)
    buf.add_trajectories(trajectories_to_batch([named(1, "a")]))
    buf.add_trajectories(trajectories_to_batch([named(2, "b")]))
    buf.close()
    ledger = tmp_path / LEDGER_FILE
    text = ledger.read_text()
    ledger.write_text(text[: text.index("\n") + 1] + text[text.index("\n") + 1:][:25])  # second line torn
    with caplog.at_level("WARNING"):
        again = ArrowBuffer(tmp_path)
    assert again.stats()["trajectories_acknowledged"] == 1
    assert ledger.read_text() == text[: text.index("\n") + 1]  # the torn tail is gone
    assert (tmp_path / "quarantine" / "trajectories" / "seg-00000001.parquet").exists()
    assert "torn line" in caplog.text and "never acknowledged" in caplog.text
    assert again.add_trajectories(trajectories_to_batch([named(2, "b")])) == 1  # the replay stores it again
    assert read_ledger(tmp_path)["trajectories"] == ["a", "b"]


def test_rows_above_the_committed_mark_wait_for_their_replay(tmp_path):
    """Checkpoint after two batches; two more batches; a resume from the checkpoint sees
    only the first two in memory, samples as the buffer did at the checkpoint, and takes
    the later rows back (the stored ones, not the replay's) when their ids come again."""
    buf = ArrowBuffer(tmp_path, seed=3)
    buf.add_trajectories(trajectories_to_batch([named(1, "a"), named(2, "b")]))
    buf.add_trajectories(trajectories_to_batch([named(3, "c")]))
    buf.sample("trajectories", 2)  # the RNG moves before the checkpoint
    committed = json.loads(json.dumps(buf.checkpoint_state()))
    assert committed["segments"] == {"trajectories": 2, "pairs": 0}
    expected_draw = buf.sample("trajectories", 2).column("traj_id").to_pylist()
    buf.add_trajectories(trajectories_to_batch([named(4, "d", version=1), named(5, "e", version=1)]))
    buf.add_trajectories(trajectories_to_batch([named(6, "f", version=1)]))
    buf.close()

    resumed = ArrowBuffer(tmp_path, seed=99, committed=committed)
    assert resumed.stats() == {"trajectories_in_memory": 3, "trajectories_pending": 3,
                               "trajectories_acknowledged": 6, "pairs_in_memory": 0, "pairs_pending": 0,
                               "pairs_acknowledged": 0}
    assert resumed.sample("trajectories", 2).column("traj_id").to_pylist() == expected_draw
    replay = named(4, "d", version=7, score=0.0)  # a replay on other weights: the stored row wins
    assert resumed.add_trajectories(trajectories_to_batch([replay, named(5, "e", version=7)])) == 2
    newest = resumed.newest("trajectories", 2)
    assert newest.column("traj_id").to_pylist() == ["d", "e"] and newest.column("policy_version").to_pylist() == [1, 1]
    # a checkpoint taken now keeps "f" pending; a second resume from it agrees
    second = json.loads(json.dumps(resumed.checkpoint_state()))
    assert second["pending"]["trajectories"] == ["f"] and second["segments"]["trajectories"] == 4
    resumed.close()
    again = ArrowBuffer(tmp_path, committed=second)
    assert again.stats()["trajectories_pending"] == 1 and again.stats()["trajectories_in_memory"] == 5
    assert sorted(again.newest("trajectories", 10).column("traj_id").to_pylist()) == ["a", "b", "c", "d", "e"]
    assert len(list((tmp_path / "trajectories").glob("seg-*.parquet"))) == 4  # nothing written twice


def test_a_buffer_written_before_the_ledger_is_adopted_whole(tmp_path):
    buf = ArrowBuffer(tmp_path)
    buf.add_trajectories(trajectories_to_batch([named(1, "a"), named(2, "b")]))
    buf.close()
    (tmp_path / LEDGER_FILE).unlink()
    assert ArrowBuffer(tmp_path).stats()["trajectories_acknowledged"] == 2
    assert read_ledger(tmp_path) == {"trajectories": ["a", "b"]}


def test_a_restart_reads_only_the_segments_its_memory_and_pending_rows_need(tmp_path, monkeypatch):
    """Capacity 3, six one-row segments, committed after four: a restart reads the
    three newest visible segments and the two pending ones, counts the oldest from the
    ledger, and ends as a full read would (memory, pending, ids, acknowledged)."""
    import rollout_workers.buffer as buffer_mod
    from rollout_workers.buffer import BufferConfig

    config = BufferConfig(capacity_trajectories=3)
    buf = ArrowBuffer(tmp_path, config)
    for i in range(4):
        buf.add_trajectories(trajectories_to_batch([named(i, f"t{i}")]))
    committed = json.loads(json.dumps(buf.checkpoint_state()))
    for i in (4, 5):
        buf.add_trajectories(trajectories_to_batch([named(i, f"t{i}")]))
    buf.close()
    read = []
    real = buffer_mod._Store._read_segment
    monkeypatch.setattr(buffer_mod._Store, "_read_segment", lambda self, p: (read.append(p.name), real(self, p))[1])
    again = ArrowBuffer(tmp_path, config, committed=committed)
    assert [n for n in read if "seg-" in n] == [f"seg-{i:08d}.parquet" for i in (5, 4, 3, 2, 1)]
    assert again.newest("trajectories", 10).column("traj_id").to_pylist() == ["t1", "t2", "t3"]
    assert again.stats()["trajectories_pending"] == 2 and again.stats()["trajectories_acknowledged"] == 6
    assert again.add_trajectories(trajectories_to_batch([named(0, "t0")])) == 0  # known without being read
