"""The human-like demonstrator: seeded, exploratory, near-human success, usable as IL data."""

import pyarrow.parquet as pq
import pytest

from cluster.cli import main as cli
from envs import Catalog, WebShopEnv
from envs.agents import AGENTS, HumanLikeAgent, RandomAgent, make_agent, shopper_query
from envs.generate import GeneratorConfig, write_catalog
from envs.rollout import run_episode, summarize
from envs.search import SearchIndex

SUB_PAGES = {"click[description]", "click[features]", "click[reviews]"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = write_catalog(GeneratorConfig(size=400, seed=3), tmp_path_factory.mktemp("cat"))
    cat = Catalog.from_dir(d)
    return cat, WebShopEnv(catalog=cat, search_index=SearchIndex(cat))


def episodes(env, agent, goal_ids):
    return [run_episode(env, agent, g, seed=g) for g in goal_ids]


def test_registered_and_seeded(small):
    assert AGENTS["human-like"] is HumanLikeAgent
    assert isinstance(make_agent("human-like", seed=3), HumanLikeAgent)
    assert isinstance(make_agent("random", seed=3), RandomAgent)
    cat, env = small
    ids = list(cat.goal_ids("test"))[:40]
    a = episodes(env, make_agent("human-like", seed=5), ids)
    b = episodes(env, make_agent("human-like", seed=5), ids)
    c = episodes(env, make_agent("human-like", seed=6), ids)
    assert [r.actions for r in a] == [r.actions for r in b]
    assert [r.actions for r in a] != [r.actions for r in c]


def test_success_near_human_average_and_exploratory(small):
    cat, env = small
    ids = list(cat.goal_ids("test"))[:200]
    results = episodes(env, HumanLikeAgent(seed=0), ids)
    s = summarize(results)
    assert 0.35 <= s["success_rate"] <= 0.65  # WebShop's human average is about 50%
    assert s["bought_rate"] == 1.0  # it finishes within the step limit
    sub = sum(any(a in SUB_PAGES for a in r.actions) for r in results) / len(results)
    assert 0.05 <= sub <= 0.6  # reads sub-pages sometimes, not always
    # opens a product, then goes back to the results before buying something else
    back = sum(any(x.startswith("click[b") and y == "click[< prev]" for x, y in zip(r.actions, r.actions[1:]))
               for r in results)
    assert back >= 10
    # first queries are paraphrased (not the keyword form of the instruction) in many episodes
    paraphrased = sum(r.actions[0] != f"search[{shopper_query(cat.goals[r.goal_id].instruction_text)}]"
                      for r in results)
    assert paraphrased >= 50
    # some purchases miss an option: skipped or wrong values
    assert any(r.reward_info.get("r_option") not in (None, 1.0) for r in results)


def test_generate_writes_human_like_demonstrations(tmp_path, capsys):
    from cluster.imitation import load_demo_steps

    out = tmp_path / "human_like.parquet"
    assert cli(["generate", "--policy", "human-like", "--episodes", "6", "--out", str(out),
                "--catalog-size", "150", "--catalog-seed", "4"]) == 0
    assert "6 human-like trajectories" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.num_rows == 6 and set(table.column("source").to_pylist()) == {"demo"}
    assert len(load_demo_steps(out)) > 6  # IL reads them as demonstrations
