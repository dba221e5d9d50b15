"""The option note on item pages: what the instruction asks, what the page offers."""

import pytest

from cluster.serve.core import act_state
from envs import Catalog, WebShopEnv
from envs.generate import GeneratorConfig, write_catalog
from envs.search import SearchIndex
from policies.candidates import (asked_options, item_note, option_note, offers, page_options, page_pricing,
                                        policy_state, price_note, state_text)
from rollout_workers.pairs import lacks_wanted_option, over_budget

STORE = {
    "color": ("chestnut brown", "natural black", "purple", "clear"),
    "size": ("6", "7", "9", "9 wide", "11"),
    "item package quantity": ("pack of 6",),
}
SHOES = ("look for non slip running shoes with natural black sole, in a size 7 and in purple, "
         "and price lower than 70.00 dollars")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    cat = Catalog.from_dir(write_catalog(GeneratorConfig(size=200, seed=7), tmp_path_factory.mktemp("c")))
    return cat, SearchIndex(cat)


def test_asked_options_takes_the_last_mention_of_a_group():
    # "natural black" (a feature of the sole) comes before the asked colour
    assert asked_options(SHOES, ["color", "size"], STORE) == {"color": "purple", "size": "7"}
    # groups the page does not have are not read
    assert asked_options(SHOES, ["size"], STORE) == {"size": "7"}


def test_a_longer_value_claims_its_words_first():
    text = "baked potato chips, pack of 6, and price lower than 50.00 dollars"
    assert asked_options(text, ["size", "item package quantity"], STORE) == {"item package quantity": "pack of 6"}
    # whole phrases only: "70.00" holds no size 7, "size 11" no size "1"
    assert asked_options("price lower than 70.00 dollars", ["size"], STORE) == {}


def test_offers_uses_the_rewards_match():
    assert offers(["Medium Brown", "auburn"], "chestnut brown")  # both are "brown" to the reward
    assert not offers(["9 wide", "11"], "7")
    assert offers(["9", "11"], "9")


def test_option_note_says_what_the_page_lacks():
    page = {"Color": ["purple", "pink"], "Size": ["9", "9 wide", "11"]}
    assert option_note(SHOES, page, STORE) == "color purple offered. size 7 not offered."
    assert option_note("a mug, and price lower than 20.00 dollars", page, STORE) is None
    assert state_text("PAGE", "size 7 not offered.", ["purple"]) == \
        "size 7 not offered. You have clicked purple. [SEP] PAGE"
    assert state_text("PAGE", None, []) == "PAGE"


def test_catalog_option_values_gathers_every_products_values(gen):
    cat, _ = gen
    values = cat.option_values
    for p in cat.products[:50]:
        for group, vals in p.options.items():
            assert {v.lower() for v in vals} <= set(values[group.lower()])
    assert all(list(v) == sorted(v) for v in values.values())


def _item_page(cat, idx, goal_id, product):
    env = WebShopEnv(catalog=cat, search_index=idx)
    env.reset(seed=0, options={"goal_id": goal_id})
    env.step(f"search[{product.title.lower()}]")
    obs, _, _, _, info = env.step(f"click[{product.asin.lower()}]")
    assert env.session.page == "item" and env.session.asin == product.asin
    return env, obs, info


def test_state_on_item_pages_matches_the_reward_and_serve(gen):
    cat, idx = gen
    pages, noted = {True: 0, False: 0}, 0
    for goal in [cat.goals[i] for i in cat.goal_ids("test")][:40]:
        target = cat.by_asin[goal.asin]
        same_type = [p for p in cat.products if p.query == target.query]
        lacking = [p for p in same_type
                   if any(not offers([v for vs in p.options.values() for v in vs], w) for w in goal.goal_options)]
        for product in [target, *lacking[:1]]:
            env, obs, info = _item_page(cat, idx, goal.goal_id, product)
            state = policy_state(env, obs)
            head = state[: -len(obs)]
            assert state.endswith(obs)
            # Serve reads the page's options back from its text and actions: the same state
            assert page_options(obs, info["available_actions"], cat.option_values.keys()) == \
                {g: list(v) for g, v in product.options.items()}
            assert act_state(cat, obs, goal.instruction_text, info["available_actions"]) == state
            lacks = lacks_wanted_option(env)
            assert lacks == (product is not target)
            pages[lacks] += 1
            noted += lacks and "not offered." in head
            if product.options:  # after choosing an option, both lead with the note, then the choice
                value = next(iter(product.options.values()))[0]
                obs, _, _, _, info = env.step(f"click[{value.lower()}]")
                state = policy_state(env, obs)
                assert state == act_state(cat, obs, goal.instruction_text, info["available_actions"], [value])
                assert f"You have clicked {value}. [SEP] " in state
    assert pages[True] > 5 and pages[False] > 20
    assert noted >= 0.8 * pages[True]  # the note's reading of the instruction can miss (a few %)


def test_the_note_finds_the_pages_that_lack_an_asked_option(gen):
    cat, _ = gen
    lacking = noted = target_flagged = targets = 0
    for goal in [cat.goals[i] for i in cat.goal_ids("test")]:
        target = cat.by_asin[goal.asin]
        targets += 1
        target_flagged += "not offered" in (option_note(goal.instruction_text, target.options, cat.option_values) or "")
        for p in [p for p in cat.products if p.query == target.query][:10]:
            if any(not offers([v for vs in p.options.values() for v in vs], w) for w in goal.goal_options):
                lacking += 1
                noted += "not offered" in (option_note(goal.instruction_text, p.options, cat.option_values) or "")
    assert lacking > 50
    assert noted / lacking >= 0.95
    assert target_flagged / targets <= 0.10


def test_price_note_marks_only_pages_wholly_over_the_instructions_budget():
    # SHOES asks "price lower than 70.00 dollars"
    assert price_note(SHOES, [84.95]) == "price over budget."
    assert price_note(SHOES, [70.0]) is None  # at the limit is within it
    assert price_note(SHOES, [60.0, 80.0]) is None  # a range that straddles the limit: not marked
    assert price_note(SHOES, [71.0, 90.0]) == "price over budget."
    assert price_note("red shoes, size 7", [500.0]) is None  # no price clause, no note
    page = {"color": ["purple", "clear"], "size": ["6", "9"]}
    assert item_note(SHOES, page, STORE, [84.95]) == "color purple offered. size 7 not offered. price over budget."
    assert item_note(SHOES, page, STORE, [50.0]) == "color purple offered. size 7 not offered."
    assert item_note(SHOES, {}, STORE, [84.95]) == "price over budget."
    assert item_note(SHOES, {}, STORE, None) is None and item_note(SHOES, {}, STORE, [50.0]) is None


def test_serve_reads_the_price_back_from_the_page():
    page = "Instruction: [SEP] x [SEP] < Prev [SEP] t [SEP] Price: $84.95 [SEP] Rating: N.A. [SEP] Buy Now"
    assert page_pricing(page) == [84.95]
    assert page_pricing("t [SEP] Price: $1,084.95 to $1200.0 [SEP] Buy Now") == [1084.95, 1200.0]
    assert page_pricing("t [SEP] Price: $84.95 [SEP] Features") is None  # not a product page
    assert page_pricing("t [SEP] Price: unknown [SEP] Buy Now") is None


def test_over_budget_pages_lead_with_the_price_note_in_the_worker_and_in_serve(gen):
    cat, idx = gen
    seen = 0
    for goal in [cat.goals[i] for i in cat.goal_ids("test")][:200]:
        kind = cat.by_asin[goal.asin].query
        over = [p for p in cat.products if p.query == kind and min(p.pricing) > goal.price_upper]
        for product in over[:1]:
            env, obs, info = _item_page(cat, idx, goal.goal_id, product)
            state = policy_state(env, obs)
            assert "price over budget. " in state[: -len(obs)]
            assert act_state(cat, obs, goal.instruction_text, info["available_actions"]) == state
            assert over_budget(env)
            seen += 1
    assert seen >= 10
