"""Evaluation: summaries of finished episodes, and the progress display, which must not
change what is played."""

import re

import pytest

from cluster.eval.evaluate import evaluate_policy, play_goals
from envs.generate import default_catalog
from policies.policy import Policy, PolicyConfig


@pytest.fixture(scope="module")
def setup():
    import torch

    torch.manual_seed(0)
    catalog = default_catalog(150, 4)
    return Policy(PolicyConfig(model="tiny")), catalog, list(catalog.goal_ids("eval"))[:10]


def played(batch):
    return [(t.goal_id, t.seed, t.chosen, t.logp, t.rewards, t.score) for t in batch.trajectories]


def test_progress_does_not_change_what_is_played(setup, capsys):
    policy, catalog, ids = setup
    quiet = play_goals(policy, catalog, ids, num_envs=3, greedy=False, max_steps=4, seed=5)
    assert capsys.readouterr().out == ""
    shown = play_goals(policy, catalog, ids, num_envs=3, greedy=False, max_steps=4, seed=5, progress="test eval")
    assert played(shown) == played(quiet)  # same goals, env seeds, sampled actions and log-probs
    assert shown.env_steps == quiet.env_steps
    assert sorted(t.goal_id for t in shown.trajectories) == sorted(ids)


def test_evaluate_policy_reports_progress_per_episode(setup, capsys):
    policy, catalog, ids = setup
    quiet = evaluate_policy(policy, catalog, ids, num_envs=4, greedy=False, max_steps=4, seed=2)
    out = evaluate_policy(policy, catalog, ids, num_envs=4, greedy=False, max_steps=4, seed=2, progress="final test eval")
    for d in (quiet, out):
        d.pop("seconds")
    assert out == quiet
    lines = capsys.readouterr().out.splitlines()  # not a terminal: a plain line per tenth
    assert len(lines) == 10
    assert [int(re.search(r"\((\d+)/10 episode\)", line).group(1)) for line in lines] == list(range(1, 11))
    assert lines[-1].startswith("final test eval: 100% (10/10 episode) elapsed ")
    assert lines[-1].endswith(f"success={100 * out['success_rate']:.1f}% score={out['score']:.1f}")
