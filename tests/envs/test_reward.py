import pytest

from envs.normalize import fuzz_process, normalize_color, token_set_score
from envs.reward import option_matches, purchase_reward, type_reward

CAT_A = "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"
CAT_B = "Beauty & Personal Care › Hair Care › Styling Products"
CAT_C = "Home & Kitchen › Furniture"


@pytest.mark.parametrize(
    "pq, pc, pn, gq, gc, gn, expected",
    [
        # same query: 1.0 whatever the titles say (title score 1/2 >= 0.1)
        ("shampoo", CAT_C, ["x", "oil"], "shampoo", CAT_C, ["oil", "shampoo"], (1.0, True, True, 0.5)),
        # no query match, 2 shared category levels -> match, title 1/3
        ("a", CAT_A, ["hair"], "b", CAT_B, ["hair", "gel", "jar"], (1.0, False, True, 1 / 3)),
        # nothing matches and title 1/5 = 0.2 (not > 0.2) -> 0.5
        ("a", CAT_A, ["hair"], "b", CAT_C, ["hair", "b", "c", "d", "e"], (0.5, False, False, 0.2)),
        # title 1/11 < 0.1 -> 0.1
        ("a", CAT_A, ["k0"], "b", CAT_C, [f"k{i}" for i in range(11)], (0.1, False, False, 1 / 11)),
        # no shared noun -> 0.0 even with a query match
        ("q", CAT_A, ["x"], "q", CAT_A, ["y"], (0.0, True, True, 0.0)),
        # goal title without nouns -> title score 0.2
        ("a", CAT_A, ["x"], "b", CAT_C, [], (0.5, False, False, 0.2)),
        # repeats in the goal's nouns count in the denominator: |{hair}| / 4 > 0.2
        ("a", CAT_A, ["hair"], "b", CAT_C, ["hair", "hair", "oil", "oil"], (1.0, False, False, 0.25)),
        # ... and 1/6 < 0.2 with a repeated noun: 0.5
        ("a", CAT_A, ["hair"], "b", CAT_C, ["hair", "hair", "oil", "oil", "x", "y"], (0.5, False, False, 1 / 6)),
    ],
)
def test_type_reward_steps(pq, pc, pn, gq, gc, gn, expected):
    tm = type_reward(pq, pc, pn, gq, gc, gn)
    assert (tm.r_type, tm.query_match, tm.category_match) == expected[:3]
    assert tm.title_score == pytest.approx(expected[3])


def test_fuzzy_like_thefuzz_processing():
    # thefuzz lower-cases and strips punctuation; raw rapidfuzz would not
    assert token_set_score("Sulfate-Free", "sulfate free") == 100
    assert fuzz_process("Café, NOIR!") == "caf  noir"
    # token-set: one side's tokens inside the other's -> 100
    assert token_set_score("12 count (pack of 2)", "pack of 2") == 100
    assert token_set_score("red", "blue") < 50


def test_color_normalisation_quirks():
    assert normalize_color("navy blue | white") == "blue"  # list order decides
    assert normalize_color("dark navy") == "dark"
    assert normalize_color("7.5 wide") == "7.5 wide"
    assert option_matches(["navy blue | white"], ["white"]) == 0
    assert option_matches(["navy blue | white"], ["royal blue"]) == 1  # both -> "blue"
    assert option_matches(["light blue"], ["baby blue"]) == 1  # both -> "blue"


def test_purchase_reward_by_hand(fixture_catalog):
    cat = fixture_catalog
    shoes = cat.by_asin["B07ZJHQ3YT"]
    goal = next(g for g in cat.goals if g.asin == "B07ZJHQ3YT")
    # attrs: arch support (in attribute list), rubber sole (in list); option 7.5 wide; price ok
    info = purchase_reward(shoes, goal, shoes.price, {"size": "7.5 wide"})
    assert info.total == 1.0 and info.num_attr_matches == 2 and info.num_option_matches == 1
    assert (info.w_att, info.w_option, info.w_price) == (0.5, 0.25, 0.25)
    # wrong size, over budget: (2 + 0 + 0) / 4
    info = purchase_reward(shoes, goal, goal.price_upper + 1, {"size": "8"})
    assert info.total == 0.5 and info.r_option == 0.0 and info.r_price is False
    # a conditioner for the shampoo goal: same category levels (3 shared), title nouns
    shampoo_goal = next(g for g in cat.goals if g.asin == "B09QKP7XQL")
    cond = cat.by_asin["B08XYZ1234"]
    info = purchase_reward(cond, shampoo_goal, cond.price, {})
    # goal nouns: sulfate free argan oil shampoo damaged hair fl oz -> nouns list
    gn = list(shampoo_goal.title_nouns)
    shared = set(cond.title_nouns) & set(gn)
    assert info.title_score == pytest.approx(len(shared) / len(gn))
    assert info.category_match and not info.query_match and info.r_type == 1.0
    # attrs: "sulfate free" not in cond (fuzzy vs paraben free < 86; not in texts),
    # "damaged hair" in its description -> 1; price 100 > 50 -> 0 => 1/3
    assert info.num_attr_matches == 1 and info.r_price is False
    assert info.total == pytest.approx(1 / 3)


def test_attribute_substring_fallback(fixture_catalog):
    table = fixture_catalog.by_asin["B07DEADBEE"]
    goal = next(g for g in fixture_catalog.goals if g.asin == "B07DEADBEE")
    # goal attrs are in the attribute list; a made-up one only in the bullets
    from dataclasses import replace

    g2 = replace(goal, attributes=("legs",), goal_options=())
    info = purchase_reward(table, g2, table.price, {})
    assert info.num_attr_matches == 1  # "legs" only appears in "Solid wood legs"
