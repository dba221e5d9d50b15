"""The fixed-shape (array) view of WebShop: spaces, mask, candidates, determinism, check_env."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.env import WebShopEnv
from cluster.rllib.env import (
    GYM_ID,
    RAY_ENV_NAME,
    FixedShapeConfig,
    FixedShapeWebShopEnv,
    cap_candidates,
    load_tokenizer,
    register_with_ray,
)
from policies.candidates import Candidates, build_candidates, policy_state
from tests.conftest import FIXTURES

CONFIG = {"tokenizer": "tiny", "max_steps": 6, "max_candidates": 16, "max_state_tokens": 64,
          "max_action_tokens": 24}


@pytest.fixture
def env(fixture_catalog):
    return FixedShapeWebShopEnv(CONFIG, catalog=fixture_catalog)


def _valid(obs) -> np.ndarray:
    return np.flatnonzero(obs["action_mask"])


def test_spaces_shapes_dtypes_and_mask(env):
    obs, info = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(16)
    assert env.observation_space.contains(obs)
    assert obs["state_ids"].shape == (64,) and obs["state_ids"].dtype == np.int64
    assert obs["action_ids"].shape == (16, 24) and obs["action_ids"].dtype == np.int64
    assert obs["action_mask"].shape == (16,) and obs["action_mask"].dtype == np.int8
    n = len(info["candidates"])
    assert 0 < n <= 16 and obs["action_mask"].tolist() == [1] * n + [0] * (16 - n)
    pad = env.pad_id
    assert (obs["action_ids"][n:] == pad).all() and (obs["action_ids"][:n, 0] != pad).all()


def test_observation_is_the_workers_state_and_candidates_tokenized(env, fixture_catalog):
    """The same texts our rollout workers score (checked against a text env stepped
    alongside), tokenized as Policy tokenizes them."""
    tok = load_tokenizer("tiny")
    text_env = WebShopEnv(fixture_catalog, max_steps=6)
    obs, info = env.reset(seed=1)
    text, text_info = text_env.reset(seed=1)
    for _ in range(4):
        cands = build_candidates(text_env, text_info["available_actions"])
        assert info["candidates"] == cands.texts
        ids = tok([policy_state(text_env, text)], truncation=True, max_length=64)["input_ids"][0]
        assert obs["state_ids"][: len(ids)].tolist() == ids and (obs["state_ids"][len(ids):] == env.pad_id).all()
        for row, cand in enumerate(cands.texts):
            ids = tok([cand], truncation=True, max_length=24)["input_ids"][0]
            assert obs["action_ids"][row, : len(ids)].tolist() == ids
        choice = int(_valid(obs)[-1])
        obs, _, terminated, truncated, info = env.step(choice)
        text, _, _, _, text_info = text_env.step(cands.actions[choice])
        if terminated or truncated:
            break


def test_step_runs_the_chosen_candidates_env_action(env):
    obs, info = env.reset(seed=2)
    assert info["page"] == "search"
    first = info["candidates"][0]  # a search query
    obs, reward, terminated, truncated, info = env.step(0)
    assert info["valid"] and info["page"] == "results" and not terminated
    assert env.env.session.keywords == first[len("search["):-1].lower().strip()


def test_masked_action_is_a_no_op_step(fixture_catalog):
    env = FixedShapeWebShopEnv({**CONFIG, "invalid_action_penalty": 0.05}, catalog=fixture_catalog)
    obs, info = env.reset(seed=3)
    masked = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    obs2, reward, terminated, truncated, info2 = env.step(masked)
    assert not info2["valid"] and reward == pytest.approx(-0.05) and not terminated
    assert info2["page"] == info["page"] and info2["steps"] == 1
    for key in obs:
        np.testing.assert_array_equal(obs2[key], obs[key])
    for _ in range(5):  # invalid steps still count towards max_steps
        *_, terminated, truncated, _ = env.step(masked)
    assert truncated and not terminated


def test_reset_and_steps_are_deterministic_under_a_seed(fixture_catalog):
    def rollout(seed):
        env = FixedShapeWebShopEnv(CONFIG, catalog=fixture_catalog)
        obs, info = env.reset(seed=seed)
        out = [obs["state_ids"].copy()]
        rng = np.random.default_rng(0)
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(int(rng.choice(_valid(obs))))
            out += [obs["state_ids"].copy(), obs["action_ids"].copy(), reward]
            if terminated or truncated:
                obs, info = env.reset()
        return out, info["goal_id"]

    (a, goal_a), (b, goal_b) = rollout(7), rollout(7)
    assert goal_a == goal_b and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_gymnasium_check_env_passes(env):
    check_env(env, skip_render_check=True)  # random actions, masked ones included
    made = gym.make(GYM_ID, config=CONFIG, catalog=env.env.catalog)
    obs, _ = made.reset(seed=0)
    assert made.observation_space.contains(obs)


def test_more_candidates_than_slots_keep_the_last():
    cands = Candidates([f"t{i}" for i in range(10)], [f"a{i}" for i in range(10)])
    kept, dropped = cap_candidates(cands, 4)
    assert kept.texts == ["t0", "t1", "t2", "t9"] and kept.actions == ["a0", "a1", "a2", "a9"] and dropped == 6
    assert cap_candidates(cands, 10) == (cands, 0)


def test_config_errors_and_ray_registration():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['max_candidate'\]"):
        FixedShapeConfig.from_dict({"max_candidate": 3})
    from ray.tune.registry import ENV_CREATOR, _global_registry

    assert register_with_ray() == RAY_ENV_NAME
    creator = _global_registry.get(ENV_CREATOR, RAY_ENV_NAME)
    env = creator({**CONFIG, "catalog_dir": str(FIXTURES)})
    assert isinstance(env, FixedShapeWebShopEnv) and env.action_space.n == 16


def test_the_env_config_adds_fresh_train_goals_to_a_generated_catalog():
    cfg = {**CONFIG, "catalog_size": 60, "catalog_seed": 2}
    base = FixedShapeWebShopEnv(cfg).env.catalog
    env = FixedShapeWebShopEnv({**cfg, "catalog_train_goals": 40})
    cat = env.env.catalog
    assert len(cat.goal_ids("train")) == len(base.goal_ids("train")) + 40
    assert cat.goal_ids("test") == base.goal_ids("test") and cat.goal_ids("eval") == base.goal_ids("eval")
    obs, info = env.reset(seed=0, options={"goal_id": len(base.goals) + 39})
    assert info["goal_id"] == len(base.goals) + 39
