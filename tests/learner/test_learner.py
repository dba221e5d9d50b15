"""The Learner: the LR schedule against hand numbers, config errors, data selection
through the buffer's named methods (staleness enforced), publishing, and a
checkpoint that resumes bit-exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from learner.batches import DPOBatch, PPOBatch
from learner.config import DPOConfig, LearnerConfig, OptimConfig, PPOConfig
from learner.learner import Learner
from policies.policy import Policy
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import Trajectory, pairs_to_batch, trajectories_to_batch
from tests.learner.conftest import FROZEN, TINY, episode, make_learner, with_behaviour

# ------------------------------------------------------------------- schedule and config


def test_the_schedule_steps_once_per_update_from_a_warm_up_that_starts_at_zero():
    learner = make_learner(warmup_updates=2, lr_schedule="linear", total_updates=4)
    pairs = [(episode(0), episode(1))]
    lrs = [learner.train(DPOBatch(pairs))["lr"] for _ in range(4)]
    assert lrs == pytest.approx([0.0, 5e-4, 1e-3, 5e-4])  # update k of the warm-up: lr * k / warmup
    assert learner.lr == 0.0 and learner.num_updates == 4


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1.0] * 7),
    ("constant_with_warmup", [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]),
    ("cosine", [0.0, 0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(math.pi / 4)), 0.0]),
])
def test_lr_schedules_hand_values(schedule, expected):
    warmup = 0 if schedule == "constant" else 2
    learner = make_learner(algo="ppo", lr_schedule=schedule, warmup_updates=warmup, total_updates=6)
    lrs = []
    for _ in expected:
        lrs.append(learner.lr / 1e-3)
        learner.optimizer.step()  # no gradients: changes nothing, keeps the step order torch expects
        learner._finish_update()
    assert lrs == pytest.approx(expected)


def test_config_validation_names_the_section_and_field():
    with pytest.raises(ValueError, match="optim.lr_schedule='cosine' needs total_updates"):
        OptimConfig(lr_schedule="cosine")
    with pytest.raises(ValueError, match="optim.lr_schedule must be one of"):
        OptimConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="optim.warmup_updates needs lr_schedule"):
        OptimConfig(warmup_updates=2)
    with pytest.raises(ValueError, match="dpo.preference_loss: unknown 'hinge'"):
        DPOConfig(preference_loss="hinge")
    with pytest.raises(ValueError, match="ppo.minibatch_size must be >= 1"):
        PPOConfig(minibatch_size=0)
    with pytest.raises(ValueError, match="learner.max_steps_per_forward must be >= 1"):
        LearnerConfig(max_steps_per_forward=0)
    with pytest.raises(ValueError, match="DPOConfig with kl_coef=2.0 needs a reference"):
        Learner(Policy(TINY), None, DPOConfig())
    policy = Policy(TINY)
    with pytest.raises(ValueError, match="a separate Policy"):
        Learner(policy, policy)
    with pytest.raises(TypeError, match="train\\(\\) takes a DPOBatch, got PPOBatch"):
        make_learner().train(PPOBatch([episode(0)]))


def test_defaults_are_the_shipped_recipe():
    assert DPOConfig() == DPOConfig(lr=3e-5, max_version_lag=50, pairs_per_update=8, beta=0.5, sft_coef=2.0,
                                    scope="step", anchor_states=16, kl_coef=2.0, preference_loss="sigmoid")
    assert (PPOConfig().lr, PPOConfig().max_version_lag, PPOConfig().kl_coef) == (5e-5, 4, 0.0)
    assert OptimConfig().lr_schedule == "constant" and OptimConfig().warmup_updates == 0


# ------------------------------------------------------------------ buffer / staleness


def test_dpo_update_ignores_pairs_older_than_the_staleness_window(tmp_path):
    buffer = ArrowBuffer(tmp_path)
    learner = make_learner(pairs_per_update=2, max_version_lag=1)
    learner.policy.version = 6  # learner at version 6, S = 1: pairs need version >= 5
    buffer.add_pairs(pairs_to_batch([(episode(0, version=0), episode(1, version=0), "expert") for _ in range(3)]))
    buffer.add_pairs(pairs_to_batch([(episode(0, version=5), episode(1, version=4), "expert")]))  # one half stale
    assert learner.update(buffer) is None
    buffer.add_pairs(pairs_to_batch([(episode(0, version=5), episode(1, version=6), "self") for _ in range(2)]))
    metrics = learner.update(buffer)
    assert metrics is not None and metrics["data_version_min"] == 5.0 and metrics["pairs"] == 2.0
    assert metrics["version_lag_max"] == 1.0
    assert learner.version == 7


def test_ppo_update_takes_fresh_unused_policy_trajectories(tmp_path):
    buffer = ArrowBuffer(tmp_path)
    learner = make_learner(algo="ppo", trajectories_per_update=2, max_version_lag=2, ppo_epochs=1)
    learner.policy.version = 4  # min version 2
    old, expert = episode(0, version=1), episode(0, version=4, source="expert")
    fresh = [episode(1, version=3), episode(0, version=4)]
    buffer.add_trajectories(trajectories_to_batch([old, fresh[0], expert]))
    assert learner.update(buffer) is None  # one usable trajectory
    buffer.add_trajectories(trajectories_to_batch([fresh[1]]))
    metrics = learner.update(buffer)
    assert metrics["trajectories"] == 2.0 and metrics["data_version_min"] == 3.0
    assert learner.update(buffer) is None  # both were used
    assert learner.algorithm.consumed == {fresh[0].traj_id: 3, fresh[1].traj_id: 4}


# ------------------------------------------------------------------ publish / resume


def test_publish_sends_only_trainable_weights_when_layers_are_frozen():
    full = make_learner()
    version, weights = full.publish()
    assert version == 0 and set(weights) == set(full.policy.model.state_dict())  # frozen pooler included
    frozen = make_learner(FROZEN)
    frozen.train(DPOBatch([(episode(0), episode(1))]))
    version, weights = frozen.publish()
    trainable = {n for n, p in frozen.policy.model.named_parameters() if p.requires_grad}
    assert version == 1 and set(weights) == trainable
    assert len(weights) < len(frozen.policy.model.state_dict())


@pytest.mark.parametrize("policy_config", [TINY, FROZEN], ids=["full", "frozen"])
@pytest.mark.parametrize("algo, scope", [("dpo", "trajectory"), ("dpo", "step"), ("ppo", None)])
def test_resume_from_disk_is_bit_identical(tmp_path, algo, scope, policy_config):
    config = dict(max_steps_per_forward=2, kl_coef=0.1, warmup_updates=2, lr_schedule="cosine", total_updates=10)
    config.update(dict(scope=scope) if algo == "dpo" else dict(ppo_epochs=2, minibatch_size=3))
    first = [episode(0), episode(1), episode(2, search=1), episode(0, search=1)]
    second = [episode(1, search=1), first[0], first[1], episode(2)]  # overlaps: cached ref log-probs

    def run(learner: Learner, trajs: list[Trajectory]) -> dict[str, float]:
        if algo == "dpo":
            return learner.train(DPOBatch(list(zip(trajs[::2], trajs[1::2]))))
        return learner.train(PPOBatch(with_behaviour(Policy(policy_config), trajs)))

    continued = make_learner(policy_config, algo, **config)
    run(continued, first)
    run(continued, first)  # the warm-up's first update has lr 0
    continued.save(tmp_path / "ckpt")
    expected = run(continued, second)
    expected_draws = (torch.rand(3), np.random.rand(3))

    resumed = make_learner(policy_config, algo, **config)
    resumed.load(tmp_path / "ckpt")
    assert resumed.version == 2 and resumed.num_updates == 2
    got = run(resumed, second)
    draws = (torch.rand(3), np.random.rand(3))

    expected.pop("seconds"), got.pop("seconds")
    assert got == expected
    for name, value in continued.policy.get_weights().items():
        assert np.array_equal(value, resumed.policy.get_weights()[name]), name
    assert torch.equal(expected_draws[0], draws[0]) and np.array_equal(expected_draws[1], draws[1])
    assert continued.lr == resumed.lr
    assert continued.reference.cache.state_dict()["ids"] == resumed.reference.cache.state_dict()["ids"]
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    generation = json.loads((tmp_path / "ckpt" / "learner.json").read_text())["generation"]
    assert files == [f"learner-{generation}.safetensors", "learner.json"]
    for path in (tmp_path / "ckpt").iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"
