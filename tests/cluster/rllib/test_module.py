"""`WebShopRLModule`: the project's scorer inside RLlib, checkpoints in both directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from cluster.rllib.env import FixedShapeWebShopEnv
from policies.checkpoint import load_checkpoint, save_checkpoint
from policies.policy import Policy, PolicyConfig
from cluster.rllib.module import (
    WebShopRLModule,
    export_project_checkpoint,
    load_project_checkpoint,
    policy_weights,
)

# The CPU preset's design on the tiny model: top layer trains, frozen cached action side.
CPU_TINY = {"model": "tiny", "max_state_tokens": 64, "max_action_tokens": 24, "trainable_top_layers": 1,
            "freeze_action_side": True}
ENV = {"tokenizer": "tiny", "max_steps": 6, "max_candidates": 16, "max_state_tokens": 64, "max_action_tokens": 24}


@pytest.fixture(scope="module")
def steps(fixture_catalog):
    """Observations, state texts and candidate lists of a few random env steps."""
    env = FixedShapeWebShopEnv(ENV, catalog=fixture_catalog)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    out = []
    while len(out) < 10:
        out.append((obs, env.state_text, info["candidates"]))
        obs, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        if terminated or truncated:
            out.append((obs, env.state_text, info["candidates"]))  # a final observation: nothing offered
            obs, info = env.reset()
    return env, out


def _module(env, model_config) -> WebShopRLModule:
    return WebShopRLModule(observation_space=env.observation_space, action_space=env.action_space,
                           model_config=model_config)


def _batch(rows) -> dict:
    return {Columns.OBS: {k: torch.as_tensor(np.stack([r[0][k] for r in rows])) for k in rows[0][0]}}


def _with_candidates(rows):
    return [r for r in rows if r[2]]


def test_logits_match_the_project_policy_and_masked_slots_are_min(steps):
    env, rows = steps
    module = _module(env, {"policy": CPU_TINY})
    policy = Policy(PolicyConfig(**CPU_TINY))  # same seed: same weights
    out = module.forward_inference(_batch(rows))
    logits = out[Columns.ACTION_DIST_INPUTS]  # (B, K)
    assert logits.shape == (len(rows), 16) and logits.dtype == torch.float32
    mask = torch.as_tensor(np.stack([r[0]["action_mask"] for r in rows])).bool()
    assert (logits[~mask] == torch.finfo(torch.float32).min).all()
    live = _with_candidates(rows)
    ours = policy.evaluate([r[1] for r in live], [r[2] for r in live], [0] * len(live))
    theirs = torch.log_softmax(module.forward_inference(_batch(live))[Columns.ACTION_DIST_INPUTS], -1)
    for i, (_, _, cands) in enumerate(live):
        torch.testing.assert_close(theirs[i, : len(cands)], ours.logp_all[i, : len(cands)], atol=1e-5, rtol=0)
    torch.testing.assert_close(module.compute_values(_batch(live)), ours.value.detach(), atol=1e-5, rtol=0)


def test_train_forward_gives_embeddings_for_the_value_and_gradients_to_trainable_weights(steps):
    env, rows = steps
    module = _module(env, {"policy": CPU_TINY})
    batch = _batch(_with_candidates(rows))
    out = module.forward_train(batch)
    values = module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])  # (B,)
    torch.testing.assert_close(values, module.compute_values(batch), atol=1e-5, rtol=0)
    logp = torch.log_softmax(out[Columns.ACTION_DIST_INPUTS], -1)[:, 0]
    (logp.sum() + values.sum()).backward()
    grads = {n: p.grad for n, p in module.named_parameters()}
    assert grads["scorer.head.out.weight"] is not None and grads["scorer.value_head.0.weight"] is not None
    assert grads["scorer.encoder.encoder.layer.1.output.dense.weight"] is not None  # the top layer trains
    assert grads["scorer.encoder.encoder.layer.0.output.dense.weight"] is None  # frozen
    assert all(g is None for n, g in grads.items() if n.startswith("scorer.action_encoder."))


def test_project_checkpoint_initialises_the_module(steps, tmp_path):
    env, _ = steps
    policy = Policy(PolicyConfig(**{**CPU_TINY, "seed": 5}))
    save_checkpoint(policy, tmp_path / "ckpt")
    expected = {f"scorer.{k}": v for k, v in policy.model.state_dict().items()}
    built_from_it = _module(env, {"checkpoint": str(tmp_path / "ckpt")})
    loaded_later = _module(env, {"policy": CPU_TINY})
    load_project_checkpoint(loaded_later, tmp_path / "ckpt")
    for module in (built_from_it, loaded_later):
        state = module.state_dict()
        assert set(state) == set(expected)
        assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_module_checkpoint_round_trip_and_same_logits(steps, tmp_path):
    env, rows = steps
    module = _module(env, {"policy": CPU_TINY})
    with torch.no_grad():  # weights no fresh model has, so the round trip proves something
        for p in module.parameters():
            p.add_(0.01 * torch.randn_like(p))
    export_project_checkpoint(module, tmp_path / "exported")
    policy = load_checkpoint(tmp_path / "exported")
    assert policy.config == module.policy_config
    assert all(torch.equal(v, module.scorer.state_dict()[k]) for k, v in policy.model.state_dict().items())
    live = _with_candidates(rows)
    ours = policy.evaluate([r[1] for r in live], [r[2] for r in live], [0] * len(live))
    theirs = torch.log_softmax(module.forward_inference(_batch(live))[Columns.ACTION_DIST_INPUTS], -1)
    for i, (_, _, cands) in enumerate(live):
        torch.testing.assert_close(theirs[i, : len(cands)], ours.logp_all[i, : len(cands)], atol=1e-5, rtol=0)
    # and back: the exported checkpoint into a fresh module gives the same weights
    again = _module(env, {"checkpoint": str(tmp_path / "exported")})
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in again.state_dict().items())


def test_rllib_weights_load_into_a_policy(steps):
    env, _ = steps
    module = _module(env, {"policy": CPU_TINY})
    policy = Policy(PolicyConfig(**{**CPU_TINY, "seed": 9}))
    policy.set_weights(policy_weights(module.get_state()), version=3)  # numpy, as get_weights gives it
    assert policy.version == 3
    assert all(torch.equal(v, module.scorer.state_dict()[k]) for k, v in policy.model.state_dict().items())
    with pytest.raises(KeyError, match="prefix"):
        policy_weights({"encoder.x": np.zeros(1)})
