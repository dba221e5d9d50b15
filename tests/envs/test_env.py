import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import WebShopEnv
from envs.search import SearchIndex

INSTR_SHOES = ("i am looking for easy spirit traveltime529 mule shoes with arch support, "
               "rubber soles and in size 7.5 wide, and price lower than 100.00 dollars")


@pytest.fixture
def env(fixture_catalog):
    return WebShopEnv(catalog=fixture_catalog, search_index=SearchIndex(fixture_catalog))


def shoes_goal(env):
    return next(g.goal_id for g in env.catalog.goals if g.asin == "B07ZJHQ3YT")


def test_pages_text_and_actions(env):
    obs, info = env.reset(options={"goal_id": shoes_goal(env)})
    assert obs == f"WebShop [SEP] Instruction: [SEP] {INSTR_SHOES} [SEP] Search"
    assert info["available_actions"] == ["search[...]"] and info["page"] == "search"

    obs, r, term, trunc, info = env.step("search[Mule Shoes]")
    head = f"Instruction: [SEP] {INSTR_SHOES} [SEP] Back to Search [SEP] "
    assert obs == head + ("Page 1 (Total results: 1) [SEP] Next > [SEP] B07ZJHQ3YT [SEP] "
                          "Easy Spirit Traveltime529 Mule Shoes, Taupe Leather [SEP] $45.99 to $69.99")
    assert info["available_actions"] == ["click[back to search]", "click[next >]", "click[b07zjhq3yt]"]
    assert (r, term, trunc) == (0.0, False, False)

    obs, *_, info = env.step("click[B07ZJHQ3YT]")  # click names are case-insensitive
    assert obs == head + ("< Prev [SEP] color [SEP] taupe [SEP] navy blue | white [SEP] size [SEP] "
                          "7.5 wide [SEP] 8 [SEP] 8.5 [SEP] Easy Spirit Traveltime529 Mule Shoes, Taupe Leather "
                          "[SEP] Price: $45.99 to $69.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features "
                          "[SEP] Reviews [SEP] Buy Now")
    assert info["available_actions"] == [
        "click[back to search]", "click[< prev]", "click[taupe]", "click[navy blue | white]",
        "click[7.5 wide]", "click[8]", "click[8.5]", "click[description]", "click[features]",
        "click[reviews]", "click[buy now]"]

    obs, *_ = env.step("click[features]")
    assert obs == head + "< Prev [SEP] Rubber sole [SEP] Arch support insole for all day comfort [SEP] Leather upper"
    obs, *_, info = env.step("click[< prev]")
    assert info["page"] == "item"
    env.step("click[8]")
    obs, *_, info = env.step("click[7.5 wide]")  # a later click in the same group replaces
    assert info["options"] == {"size": "7.5 wide"}
    obs, r, term, trunc, info = env.step("click[buy now]")
    assert term and not trunc and r == 1.0
    assert obs == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    assert info["reward_info"]["num_option_matches"] == 1 and info["available_actions"] == []
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("click[back to search]")


def test_reviews_prev_from_item_and_back_to_search(env):
    env.reset(options={"goal_id": 0})
    env.step("search[sulfate free shampoo]")
    obs, *_, info = env.step("click[b09qkp7xql]")
    obs, *_ = env.step("click[reviews]")
    assert obs.endswith('< Prev [SEP] "Love it" [SEP] 5 [SEP] My hair feels soft. [SEP] "Okay" [SEP] 3 [SEP] Smells nice.')
    env.step("click[< prev]")
    obs, *_, info = env.step("click[< prev]")  # item -> its results page
    assert info["page"] == "results" and "Page 1 (Total results:" in obs
    obs, *_, info = env.step("click[back to search]")
    assert info["page"] == "search" and info["available_actions"] == ["search[...]"]


def test_paging(fixture_catalog):
    env = WebShopEnv(catalog=fixture_catalog, search_index=SearchIndex(fixture_catalog))
    env.reset(options={"goal_id": 0})
    env.step("search[hair]")
    obs, *_, info = env.step("click[next >]")
    assert "Page 2 (Total results: 2)" in obs and "click[< prev]" in info["available_actions"]
    obs, *_, info = env.step("click[< prev]")
    assert "Page 1" in obs and "click[< prev]" not in info["available_actions"]


def test_invalid_actions_are_noops_and_truncation(env):
    obs0, _ = env.reset(options={"goal_id": 1}, seed=0)
    env.max_steps = 3
    for bad in ["click[buy now]", "jump"]:
        obs, r, term, trunc, info = env.step(bad)
        assert obs == obs0 and r == 0.0 and not term and not trunc and info["valid"] is False
    obs, r, term, trunc, info = env.step("search[]")  # empty search is invalid too
    assert obs == obs0 and info["valid"] is False and trunc and not term


def test_search_only_where_the_bar_is(env):
    env.reset(options={"goal_id": 0})
    obs, *_, info = env.step("search[shampoo]")
    obs2, *_, info2 = env.step("search[coffee table]")
    assert obs2 == obs and info2["valid"] is False


def test_reset_validates(env):
    with pytest.raises(ValueError, match="goal_id 99 out of range"):
        env.reset(options={"goal_id": 99})
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        env.reset(options={"split": "dev"})
    with pytest.raises(ValueError, match="observation_mode"):
        WebShopEnv(catalog=env.catalog, observation_mode="html")


def test_determinism_under_seed(env):
    def episode(seed):
        obs, info = env.reset(seed=seed, options={"split": "train"})
        trace = [obs]
        rng = __import__("random").Random(seed)
        for _ in range(8):
            acts = info["available_actions"]
            a = rng.choice(acts)
            a = "search[hair]" if a == "search[...]" else a
            obs, r, term, trunc, info = env.step(a)
            trace.append((obs, r))
            if term or trunc:
                break
        return trace

    assert episode(5) == episode(5)
    goals = {env.reset(seed=s)[1]["goal_id"] for s in range(20)}
    assert goals <= set(env.catalog.goal_ids("train")) and len(goals) > 1


def test_text_rich_marks_buttons(fixture_catalog):
    env = WebShopEnv(catalog=fixture_catalog, observation_mode="text_rich",
                     search_index=SearchIndex(fixture_catalog))
    env.reset(options={"goal_id": shoes_goal(env)})
    env.step("search[mule shoes]")
    env.step("click[b07zjhq3yt]")
    obs, *_ = env.step("click[8]")
    assert obs.startswith("You have clicked 8.\n")
    assert "  [clicked button] 8 [clicked button_]" in obs and "  [button] 8.5 [button_]" in obs
    assert "[button] Buy Now [button_]" in obs


def test_gymnasium_registration_and_check_env(fixture_catalog):
    assert envs.ENV_ID in gym.registry
    env = gym.make(envs.ENV_ID, catalog=fixture_catalog, disable_env_checker=True)
    check_env(env.unwrapped, skip_render_check=True)
