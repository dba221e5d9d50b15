import json
from dataclasses import replace

import pytest

from cluster.cli import main as cli
from envs import Catalog, WebShopEnv
from envs import vocab
from envs.agents import make_agent, shopper_query, strip_price_clause
from cluster.config import CatalogConfig
from cluster.components import catalog_from_section
from envs.generate import GeneratorConfig, fresh_train_goals, generate, write_catalog
from envs.rollout import run_episode, summarize
from envs.search import SearchIndex


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = write_catalog(GeneratorConfig(size=400, seed=3), tmp_path_factory.mktemp("cat"))
    cat = Catalog.from_dir(d)
    return d, cat, SearchIndex(cat)


def test_generation_is_deterministic_and_seeded():
    a = generate(GeneratorConfig(size=50, seed=1))
    b = generate(GeneratorConfig(size=50, seed=1))
    c = generate(GeneratorConfig(size=50, seed=2))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["items_shuffle.json"] != c["items_shuffle.json"]


def test_generated_catalog_is_webshop_format(small):
    d, cat, _ = small
    assert len(cat) == 400 and len(cat.goals) == 1200
    assert {p.category for p in cat.products} == set(vocab.CATEGORIES)
    for g in cat.goals[:200]:
        product = cat.by_asin[g.asin]
        assert set(g.attributes) <= set(product.attributes)
        values = {v for vs in product.options.values() for v in vs}
        assert set(g.goal_options) <= values
        assert product.price < g.price_upper
        assert g.instruction_text == g.instruction_text.lower()
    # near-duplicates: every product type has many products
    by_query = {}
    for p in cat.products:
        by_query.setdefault(p.query, []).append(p)
    sizes = sorted(len(v) for v in by_query.values())
    assert sizes[len(sizes) // 2] >= 4  # a typical type has several near-duplicates


def test_expert_rule_random_on_generated(small):
    _, cat, idx = small
    env = WebShopEnv(catalog=cat, search_index=idx)
    ids = list(cat.goal_ids("test"))
    expert = summarize([run_episode(env, make_agent("expert"), g) for g in ids])
    rule = summarize([run_episode(env, make_agent("rule"), g) for g in ids])
    rand = summarize([run_episode(env, make_agent("random", seed=0), g) for g in ids])
    assert expert["success_rate"] >= 0.95
    assert rule["mean_r_option"] == 0.0 and rule["mean_steps"] == 3.0
    assert rand["score"] < rule["score"] < expert["score"]


def test_query_helpers():
    ins = "i am looking for sulfate free shampoo for damaged hair, and price lower than 40.00 dollars"
    assert strip_price_clause(ins) == "i am looking for sulfate free shampoo for damaged hair"
    assert shopper_query(ins) == "sulfate free shampoo for damaged hair"


def test_cli_build_rollout_play(tmp_path, capsys):
    out = tmp_path / "cat"
    assert cli(["catalog", "build", "--size", "120", "--seed", "5", "--out", str(out)]) == 0
    assert (out / "items_shuffle.json").exists() and (out / "items_human_ins.json").exists()
    capsys.readouterr()
    assert cli(["rollout", "--policy", "expert", "--catalog", str(out), "--episodes", "10", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 10 and summary["success_rate"] == 1.0 and summary["mean_r_option"] in (1.0, None)
    assert cli(["play", "--catalog", str(out), "--goal-id", "0", "--json",
                "--actions", "search[anything at all]", "click[back to search]"]) == 0
    played = json.loads(capsys.readouterr().out)
    assert played["goal_id"] == 0 and len(played["steps"]) == 3
    assert played["steps"][1]["action"] == "search[anything at all]"
    assert played["steps"][2]["available_actions"] == ["search[...]"] and played["done"] is False
    assert cli(["play", "--catalog", str(out), "--goal-id", "0", "--actions", "search[anything at all]",
                "click[no such button]"]) == 0
    text = capsys.readouterr().out
    assert "> search[anything at all]\n> click[no such button]   (not available on that page: nothing happened)" in text
    assert "[SEP] Back to Search [SEP]" in text and text.endswith("reward: 0.000 (episode not finished)\n")


def test_play_interactive_reads_actions_from_the_prompt(tmp_path, monkeypatch, capsys, fixture_catalog):
    from tests.conftest import FIXTURES

    answers = iter(["search[sulfate free shampoo]", "click[b09qkp7xql]", "click[buy now]"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    goal = next(g.goal_id for g in fixture_catalog.goals if g.asin == "B09QKP7XQL")
    assert cli(["play", "--catalog", str(FIXTURES), "--goal-id", str(goal)]) == 0
    out = capsys.readouterr().out
    assert "WebShop [SEP] Instruction: [SEP] i need a sulfate free shampoo" in out
    assert "actions: search[...]" in out and "reward: 1.000" in out


def test_expert_pick_first_opens_the_first_hit_that_fits(small):
    from policies.search_queries import search_queries
    from rollout_workers.recording import record_episode
    from envs.agents import ExpertAgent

    _, cat, idx = small
    env = WebShopEnv(catalog=cat, search_index=idx)
    goal_agent, first_agent = ExpertAgent(search_queries), ExpertAgent(search_queries, pick="first")
    moved = 0
    for i, g in enumerate(list(cat.goal_ids("train"))[:60]):
        by_goal = record_episode(env, goal_agent, g, seed=i)
        assert goal_agent.target == cat.goals[g].asin
        by_first = record_episode(env, first_agent, g, seed=i)
        assert by_first.score == 1.0 == by_goal.score  # a product that fits earns the full reward
        hits = idx.search(first_agent.query)
        goal_rank, rank = hits.index(cat.goals[g].asin), hits.index(first_agent.target)
        assert rank <= goal_rank
        assert all(first_agent._best_score(cat.by_asin[a]) < 1.0 for a in hits[:rank])  # none earlier fits
        if rank < goal_rank:
            moved += 1
            assert by_first.num_steps <= by_goal.num_steps  # never pages further than the goal expert
    assert moved >= 5, "the 400-product catalog has goals with an earlier product that fits"
    with pytest.raises(ValueError, match="pick must be one of"):
        ExpertAgent(pick="best")


def test_fresh_train_goals_extend_only_the_train_split(small, tmp_path):
    d, base, idx = small
    cat = Catalog.from_dir(d)
    before = {s: list(cat.goal_ids(s)) for s in ("test", "eval", "train")}
    goals = fresh_train_goals(cat, 300, seed=3)
    assert goals == fresh_train_goals(Catalog.from_dir(d), 300, seed=3)  # a function of the seed
    assert [g.instruction_text for g in goals] != [g.instruction_text for g in fresh_train_goals(cat, 300, seed=4)]
    cat.add_train_goals(goals)
    assert list(cat.goal_ids("test")) == before["test"] and list(cat.goal_ids("eval")) == before["eval"]
    assert list(cat.goal_ids("train")) == before["train"] + list(range(1200, 1500))
    assert [g.goal_id for g in cat.goals[1200:]] == list(range(1200, 1500))
    old_texts = {g.instruction_text for g in base.goals}
    texts = [g.instruction_text for g in cat.goals[1200:]]
    assert len(set(texts)) == 300 and not old_texts & set(texts)
    for g in cat.goals[1200:]:
        product = cat.by_asin[g.asin]
        assert set(g.attributes) <= set(product.attributes) and g.attributes
        assert set(g.goal_options) <= {v for vs in product.options.values() for v in vs}
        assert product.price < g.price_upper and g.query == product.query
        assert g.instruction_text.endswith(f"price lower than {g.price_upper:.2f} dollars")
    # the oracle expert solves them as it solves the catalog's own goals
    env = WebShopEnv(catalog=cat, search_index=idx)
    fresh = summarize([run_episode(env, make_agent("expert"), g) for g in range(1200, 1300)])
    assert fresh["success_rate"] >= 0.95


def test_fresh_train_goals_need_the_generators_product_types(fixture_catalog):
    with pytest.raises(ValueError, match=r"product \w+: query .* is not one of the generator's product types"):
        fresh_train_goals(fixture_catalog, 5)


def test_catalog_section_adds_fresh_train_goals(small):
    d, base, _ = small
    cat = catalog_from_section(CatalogConfig(dir=str(d), train_goals=50, seed=3))
    assert len(cat.goals) == 1250 and cat.goal_ids("train") == range(600, 1250)
    assert [g.instruction_text for g in cat.goals[:1200]] == [g.instruction_text for g in base.goals]
    assert cat.goals[1200:] == [replace(g, goal_id=1200 + i) for i, g in enumerate(fresh_train_goals(base, 50, 3))]


def test_a_real_webshop_catalog_keeps_its_own_goals(fixture_catalog):
    from tests.conftest import FIXTURES

    cat = catalog_from_section(CatalogConfig(dir=str(FIXTURES), train_goals=50))
    assert [g.instruction_text for g in cat.goals] == [g.instruction_text for g in fixture_catalog.goals]
    assert cat.splits == fixture_catalog.splits


def test_cli_plays_the_fresh_train_goals(tmp_path, capsys):
    out = write_catalog(GeneratorConfig(size=120, seed=5), tmp_path / "cat")
    common = ["rollout", "--policy", "expert", "--catalog", str(out), "--episodes", "1000", "--json"]
    assert cli([*common, "--split", "train"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 180  # 360 goals: 60 test, 120 eval, 180 train
    assert cli([*common, "--split", "train", "--train-goals", "25"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 205
    assert cli([*common, "--split", "test", "--train-goals", "25"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 60
