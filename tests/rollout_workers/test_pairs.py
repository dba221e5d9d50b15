"""The correction cuts as pure functions of a hand-built replay, and how they combine."""

import pytest

from envs.agents import BuyHereAgent
from rollout_workers.pairs import (CUTS, Replay, StepView, budget_cut, evidence_cut, first_cut, leave_cut, noop_cut,
                                   plan_cuts)
from rollout_workers.schema import Trajectory
from rollout_workers.worker import WorkerConfig

BUY, PREV = "click[buy now]", "click[< prev]"


def episode(views: list[StepView], terminated: bool, states: list[str] | None = None) -> Replay:
    n = len(views)
    traj = Trajectory(goal_id=0, source="policy", states=states or [f"s{t}" for t in range(n)],
                      candidates=[["a", "b"]] * n, chosen=[0] * n, logp=[0.0] * n, rewards=[0.0] * n,
                      terminated=terminated, truncated=not terminated)
    return Replay(traj, views)


def item(action: str, lacks: bool = False, over: bool = False, expert: str | None = None) -> StepView:
    return StepView(action, "item", lacks, over, expert)


SEARCH = StepView("search[red shoes]", "search", expert_action="search[red shoes]")
OPEN_A = StepView("click[a1]", "results", expert_action="click[a1]")
OPEN_B = StepView("click[b2]", "results", expert_action="click[a1]")


def test_purchase_cuts_read_the_page_of_the_purchase():
    lacks = episode([SEARCH, OPEN_A, item(BUY, lacks=True)], terminated=True)
    over = episode([SEARCH, OPEN_A, item(BUY, over=True)], terminated=True)
    fine = episode([SEARCH, OPEN_A, item(BUY)], terminated=True)
    assert (evidence_cut(lacks), budget_cut(lacks)) == ([2], [])
    assert (evidence_cut(over), budget_cut(over)) == ([], [2])
    assert evidence_cut(fine) == budget_cut(fine) == []
    # the same pages in an episode that ran out of steps: no purchase, no purchase cut
    truncated = episode([SEARCH, OPEN_A, item("click[red]", lacks=True, over=True)], terminated=False)
    assert evidence_cut(truncated) == budget_cut(truncated) == []
    # a missing option seen before the last step is no purchase cut
    assert evidence_cut(episode([SEARCH, OPEN_A, item(PREV, lacks=True), OPEN_A, item(BUY)], True)) == []


def test_first_noop_and_leave_cuts():
    assert first_cut(episode([SEARCH, OPEN_B, item(BUY, expert=BUY)], True)) == [1]
    assert first_cut(episode([SEARCH, OPEN_A, item(BUY, expert="click[red]")], True)) == [2]
    assert first_cut(episode([SEARCH, OPEN_A, item(BUY, expert=BUY)], True)) == [2]  # never: the last step
    assert noop_cut(episode([SEARCH, OPEN_A, item("click[red]"), item("click[red]")], False,
                            states=["s", "r", "i", "i"])) == [2]
    assert noop_cut(episode([SEARCH, OPEN_A, item(BUY)], True, states=["s", "r", "i"])) == []
    # leaving a page that shows nothing wrong in an episode that never bought
    left = [SEARCH, OPEN_A, item(PREV, lacks=True), OPEN_A, item(PREV, over=True), OPEN_A, item(PREV), OPEN_A]
    assert leave_cut(episode(left, terminated=False)) == [6]
    assert leave_cut(episode(left[:6] + [item(BUY)], terminated=True)) == []  # it bought
    assert leave_cut(episode([SEARCH, OPEN_A, item("click[back to search]")], terminated=False)) == [2]


def test_cuts_join_in_step_order_with_the_leave_cut_last():
    expert = CUTS["evidence"].agent
    views = [SEARCH, OPEN_A, item("click[red]"), item("click[red]"), item(PREV), OPEN_A,
             item(BUY, lacks=True, over=True)]
    bought = episode(views, terminated=True, states=["s", "r", "i", "i", "j", "r", "k"])
    shipped = [CUTS[name] for name in WorkerConfig().correction_cuts]
    # evidence and budget name the same purchase: one correction there, after the noop
    assert plan_cuts(shipped, bought) == [(2, expert), (6, expert)]
    assert plan_cuts([CUTS["budget"], CUTS["noop"]], bought) == plan_cuts(shipped[::-1], bought)
    # the leave cut (step 2) comes after the expert's noop cut (step 4)
    browsed = episode([SEARCH, OPEN_A, item(PREV), OPEN_A, item("click[red]"), item("click[red]")],
                      terminated=False, states=["s", "r", "i", "r", "j", "j"])
    assert plan_cuts(shipped, browsed) == [(4, expert), (2, BuyHereAgent)]

def test_the_default_cuts_are_the_shipped_ones():
    cfg = WorkerConfig()
    assert cfg.pair_mode == "correct" and cfg.correction_cuts == ("evidence", "noop", "budget", "leave")
    assert set(CUTS) == {"first", "evidence", "budget", "noop", "leave"}
    with pytest.raises(ValueError, match="correction_cuts must be a list of"):
        WorkerConfig(correction_cuts=("evidence", "last"))
