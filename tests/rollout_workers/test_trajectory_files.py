"""Reading trajectory Parquet files: every malformed row is one error naming file, row, field."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rollout_workers.recording import read_trajectory_table, write_trajectories
from rollout_workers.schema import TRAJECTORY_SCHEMA, Trajectory, TrajectoryFormatError, trajectories_to_batch


def traj(goal, steps=2):
    return Trajectory(goal_id=goal, source="expert", states=[f"s{i}" for i in range(steps)],
                      candidates=[["a", "b", "c"]] * steps, chosen=[1] * steps, logp=[0.0] * steps,
                      rewards=[0.0] * steps, terminated=True, score=1.0, traj_id=f"t{goal}")


def write_rows(path, trajs, **edit):
    """Write `trajs` with columns replaced by `edit` (bypassing Trajectory.validate)."""
    table = pa.Table.from_batches([trajectories_to_batch(trajs)])
    for name, values in edit.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))
    pq.write_table(table, path)
    return path


def test_good_file_round_trips(tmp_path):
    path = write_trajectories([traj(0), traj(1, steps=3)], tmp_path / "ok.parquet")
    table = read_trajectory_table(path)
    assert table.column("goal_id").to_pylist() == [0, 1]
    assert table.schema.equals(TRAJECTORY_SCHEMA, check_metadata=False)


def test_chosen_outside_candidates_names_row_and_step(tmp_path):
    path = write_rows(tmp_path / "c.parquet", [traj(0), traj(1)], chosen=[[1, 1], [7, 9]])
    with pytest.raises(TrajectoryFormatError, match=r"c\.parquet: row 1 \(t1\): field 'chosen\[0\]': 7 outside its 3"):
        read_trajectory_table(path)
    path = write_rows(tmp_path / "n.parquet", [traj(0)], chosen=[[1, -1]])
    with pytest.raises(TrajectoryFormatError, match=r"row 0 \(t0\): field 'chosen\[1\]': -1 outside"):
        read_trajectory_table(path)


@pytest.mark.parametrize("name,value", [("states", ["s0"]), ("candidates", [["a"]]), ("logp", [0.0, 0.0, 0.0]),
                                        ("rewards", [1.0]), ("il_mask", [True])])
def test_step_length_mismatch_is_not_cut(tmp_path, name, value):
    path = write_rows(tmp_path / "m.parquet", [traj(0), traj(1)], **{name: [getattr(traj(0), name) or [True] * 2, value]})
    with pytest.raises(TrajectoryFormatError) as e:
        read_trajectory_table(path)
    assert str(e.value) == f"{path}: row 1 (t1): field '{name}': {len(value)} steps, 'chosen' has 2"
    assert (e.value.row, e.value.field_name) == ("1 (t1)", name)


def test_wrong_schema_and_garbage(tmp_path):
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"goal_id": [1], "chosen": [[0]]}), path)
    with pytest.raises(TrajectoryFormatError, match=r"w\.parquet: row <schema>: field 'traj_id': missing from"):
        read_trajectory_table(path)
    pq.write_table(pa.table({"traj_id": ["x"], "goal_id": ["not a number"]}), path)
    with pytest.raises(TrajectoryFormatError, match=r"w\.parquet: row <file>: field '<schema>': not trajectory Parquet"):
        read_trajectory_table(path)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(TrajectoryFormatError, match="not trajectory Parquet"):
        read_trajectory_table(path)
    with pytest.raises(FileNotFoundError, match="no such trajectory file"):
        read_trajectory_table(tmp_path / "absent.parquet")


def test_demo_steps_use_the_checked_reader(tmp_path):
    from cluster.imitation import load_demo_steps

    good = write_trajectories([traj(0)], tmp_path / "g.parquet")
    assert [s.chosen for s in load_demo_steps(good)] == [1, 1]
    bad = write_rows(tmp_path / "b.parquet", [traj(0)], chosen=[[1, 3]])
    with pytest.raises(TrajectoryFormatError, match="field 'chosen\\[1\\]': 3 outside its 3 candidates"):
        load_demo_steps(bad)
