"""WebShop's human demonstrations replayed into the policy's own representation.

The fixture holds 8 trajectories in WebShop's `il_trajs_finalized_images.jsonl` format,
written by hand for the catalog in tests/envs/fixtures (goals: 0 granola = test split,
1 shoes = eval, 2 table and 3 shampoo = train):
1. table: a query the policy is offered, the product, an option, buy (4 steps);
2. shampoo, another price clause: own query, wrong product, back, the product, its
   Description, back, buy (7 steps);
3. shampoo: a query variant, the product, back, the product again, buy (5 steps);
4. table: own query, next page, then a product that is not on that page (cut: 2 kept);
5. table: a query variant, the product, then Attributes, which the env does not show (cut: 2 kept);
6. shoes (eval split), 7. granola (test split), 8. green tea (no such goal): skipped.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.imitation import ILSection, demo_steps, load_demo_steps, trajectory_steps
from envs import Catalog
from policies.il import ILStep
from rollout_workers.human_demos import DemoReplayError, replay_human_demos
from rollout_workers.recording import read_trajectory_table
from rollout_workers.worker import RolloutWorker, WorkerConfig
from tests.conftest import FIXTURES

DEMOS = Path(__file__).parent / "fixtures" / "il_trajs_fixture_catalog.jsonl"


@pytest.fixture(scope="module")
def replayed(fixture_catalog):
    return replay_human_demos(DEMOS, fixture_catalog)


def test_report_says_what_replays_and_what_not(replayed):
    trajs, report = replayed
    assert (report.num_records, report.num_replayed, report.num_cut, report.num_skipped) == (8, 3, 2, 3)
    assert dict(report.reasons) == {
        "a product not among this search's results on that page": 1,
        "click[attributes] where the item page does not show it": 1,
        "goal in the eval split": 1, "goal in the test split": 1, "instruction not among the catalog's goals": 1}
    assert [t.goal_id for t in trajs] == [2, 3, 3, 2, 2]
    assert [t.num_steps for t in trajs] == [4, 7, 5, 2, 2]
    assert (report.num_steps, report.num_imitated) == (20, 17)
    assert dict(report.not_imitated) == {"a search with the person's own query": 2, "a product reopened": 1}
    assert [t.il_mask for t in trajs] == [[True] * 4, [False] + [True] * 6, [True, True, True, False, True],
                                          [False, True], [True, True]]
    assert [t.terminated for t in trajs] == [True, True, True, False, False]
    assert [t.truncated for t in trajs] == [False, False, False, True, True]
    assert report.num_bought == 3 and report.num_price_clause_differs == 1
    assert all(t.source == "human" for t in trajs)


def test_steps_are_recorded_in_the_policy_representation(replayed, fixture_catalog):
    trajs, _ = replayed
    shampoo = trajs[1]
    # the catalog goal's instruction (price clause 50.00), not the file's (40.00)
    assert shampoo.instruction == fixture_catalog.goals[3].instruction_text
    assert "lower than 50.00 dollars" in shampoo.states[0] and "40.00" not in shampoo.states[0]
    # the person's own query is appended after the policy's query variants
    assert shampoo.candidates[0][-1] == "search[argan oil shampoo]" and shampoo.chosen[0] == 3
    # a product click is its item candidate (title, price, budget note), not an asin
    assert shampoo.candidates[1][shampoo.chosen[1]] == \
        "click[item - moisturizing argan oil conditioner for dry hair - $100.0 - over budget]"
    # the product page state is led by the price note, as the workers' is
    assert shampoo.states[2].startswith("price over budget. [SEP] Instruction:")
    # reopening a product: appended as one more candidate, not imitated
    reopen = trajs[2]
    assert reopen.candidates[3][reopen.chosen[3]].startswith("click[item - sulfate free argan oil shampoo")
    assert not any(c.startswith("click[item - sulfate free") for c in reopen.candidates[3][:-1])


@dataclass
class _Out:
    index: int
    logp: float = 0.0
    value: float = 0.0


class ScriptedPolicy:
    """Picks, at step t, the first candidate text containing `script[t]`."""

    version = 0

    def __init__(self, script: list[str]):
        self.script, self.t = script, 0

    def act(self, states, candidates, greedy=False, generator=None):
        want = self.script[self.t]
        self.t += 1
        return [_Out(next(i for i, c in enumerate(candidates[0]) if want in c))]


def test_first_il_step_equals_what_a_rollout_worker_builds(replayed, fixture_catalog):
    trajs, _ = replayed
    policy = ScriptedPolicy(["search[solid wood table walnut color living room]",
                             "item - mid century modern coffee table", "click[walnut]", "click[buy now]"])
    worker = RolloutWorker(0, fixture_catalog, policy, WorkerConfig(num_envs=1, pair_mode="none"), goal_ids=[2])
    played = worker.sample(1).trajectories[0]
    human = trajs[0]
    assert played.states == human.states
    assert played.candidates == human.candidates
    assert played.chosen == human.chosen and played.score == human.score == 1.0
    first = trajectory_steps(trajs)[0]
    assert first == ILStep(played.states[0], tuple(played.candidates[0]), played.chosen[0])


def test_demos_flag_trains_on_the_replayed_trajectories(replayed, fixture_catalog, tmp_path):
    trajs, _ = replayed
    lines = []
    steps = load_demo_steps(DEMOS, fixture_catalog, log=lines.append)
    assert steps == trajectory_steps(trajs) and len(steps) == 17
    assert lines[0].startswith("human trajectories: 8 in the file; 3 replayed to their end")
    assert demo_steps(ILSection(demos=str(DEMOS)), fixture_catalog, tmp_path, seed=0) == steps
    table = read_trajectory_table(tmp_path / "demos.parquet")
    assert table.num_rows == 5 and set(table.column("source").to_pylist()) == {"human"}


def test_a_catalog_without_the_human_goals_replays_nothing():
    synthetic = Catalog.from_files(FIXTURES / "items_shuffle_fixture.json", FIXTURES / "items_ins_v2_fixture.json")
    with pytest.raises(DemoReplayError, match="8 instruction not among the catalog's goals"):
        replay_human_demos(DEMOS, synthetic)
