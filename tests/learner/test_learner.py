"""The Learner on a tiny random BERT policy: DPO and decoupled PPO updates move the
policy the right way, reference log-probs are computed once, staleness is enforced,
the LR schedule matches hand numbers, and a checkpoint resumes bit-exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learner.learner import (
    Learner,
    LearnerConfig,
    behaviour_weights,
    divergence_step,
    lr_multiplier,
    trajectory_advantages,
)
from policies.policy import Policy, PolicyConfig
from rollout_workers.buffer import ArrowBuffer
from rollout_workers.schema import Trajectory, pairs_to_batch, trajectories_to_batch

SEARCH = "WebShop [SEP] Instruction: [SEP] i need a red shirt, price lower than 30.00 dollars [SEP] Search"
RESULTS = "Instruction: [SEP] i need a red shirt [SEP] Back to Search [SEP] B01 red shirt [SEP] B02 blue bag"
SEARCH_ACTIONS = ["search[red shirt]", "search[blue bag]"]
RESULT_ACTIONS = ["click[b01]", "click[b02]", "click[next >]"]
TINY = PolicyConfig(model="tiny")
FROZEN = PolicyConfig(model="tiny", trainable_top_layers=1, freeze_action_side=True)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny models: threading costs more than it gives


def episode(click: int, version: int = 0, source: str = "policy", search: int = 0, **fields) -> Trajectory:
    """Search, then click a result; reward 1 for the red shirt (b01), else 0."""
    fields = {"logp": [0.0, 0.0], "values": [0.0, 0.0], "rewards": [0.0, float(click == 0)],
              "terminated": True, **fields}
    return Trajectory(goal_id=0, source=source, states=[SEARCH, RESULTS],
                      candidates=[SEARCH_ACTIONS, RESULT_ACTIONS], chosen=[search, click],
                      policy_version=version, score=fields["rewards"][-1], **fields)


def make_learner(policy_config: PolicyConfig = TINY, **changes) -> Learner:
    config = LearnerConfig(**{"lr": 1e-3, **changes})
    return Learner(Policy(policy_config), Policy(policy_config), config)


def click_probs(policy: Policy) -> list[float]:
    with torch.no_grad():
        return policy.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0].exp().tolist()


def with_behaviour(policy: Policy, trajs: list[Trajectory]) -> list[Trajectory]:
    """Fill logp / values the way a worker acting with `policy` would."""
    for t in trajs:
        with torch.no_grad():
            out = policy.evaluate(t.states, t.candidates, t.chosen)
        t.logp, t.values = out.logp.tolist(), out.value.tolist()
    return trajs


# ------------------------------------------------------------------- pure helpers


def test_lr_multiplier_hand_values():
    linear = [lr_multiplier(k, 2, 6, "linear") for k in range(8)]
    assert linear == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    cosine = [lr_multiplier(k, 2, 6, "cosine") for k in (2, 3, 4, 5, 6)]
    quarter = math.cos(math.pi / 4)
    assert cosine == pytest.approx([1.0, 0.5 * (1 + quarter), 0.5, 0.5 * (1 - quarter), 0.0])
    assert lr_multiplier(4, 2, 6, "linear", final_lr_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert [lr_multiplier(k, 4, 0, "constant") for k in (0, 3, 100)] == [0.25, 1.0, 1.0]


def test_learner_steps_the_schedule_once_per_update():
    learner = make_learner(warmup_updates=2, lr_decay="linear", total_updates=4)
    pairs = [(episode(0), episode(1))]
    lrs = [learner.update_dpo(pairs)["lr"] for _ in range(4)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4])
    assert learner.lr == 0.0 and learner.num_updates == 4


def test_behaviour_weights_are_truncated_at_is_clip():
    logp_prox = torch.tensor([-1.0, -2.0, -0.5, -3.0])
    logp_behaviour = torch.tensor([-1.0, -1.0, -2.0, -10.0])
    weights = behaviour_weights(logp_prox, logp_behaviour, is_clip=2.0)
    torch.testing.assert_close(weights, torch.tensor([1.0, math.exp(-1.0), 2.0, 2.0]))
    assert behaviour_weights(logp_prox, logp_behaviour, is_clip=float("inf"))[3] == pytest.approx(math.exp(7.0))


def test_trajectory_advantages_bootstrap_truncated_with_last_value():
    gamma, lam = 0.9, 0.8
    ended = episode(1, rewards=[0.0, 0.0], values=[0.5, 2.0], terminated=True)
    cut = episode(1, rewards=[0.0, 0.0], values=[0.5, 2.0], terminated=False, truncated=True)
    adv, ret = trajectory_advantages([ended, cut], gamma, lam)
    # terminated: delta_1 = 0 - 2 = -2; delta_0 = 0 + 0.9 * 2 - 0.5 = 1.3; A_0 = 1.3 + 0.72 * -2
    # truncated: V(s_2) ~ V(s_1) = 2, so delta_1 = 0.9 * 2 - 2 = -0.2; A_0 = 1.3 + 0.72 * -0.2
    torch.testing.assert_close(adv, torch.tensor([1.3 - 1.44, -2.0, 1.3 - 0.144, -0.2]))
    torch.testing.assert_close(ret, adv + torch.tensor([0.5, 2.0, 0.5, 2.0]))
    fallback, _ = trajectory_advantages([episode(0, values=None)], gamma, lam, torch.tensor([0.5, 2.0]))
    assert fallback[1].item() == pytest.approx(1.0 - 2.0)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="algo"):
        LearnerConfig(algo="a2c")
    with pytest.raises(ValueError, match="total_updates"):
        LearnerConfig(lr_decay="cosine")
    with pytest.raises(ValueError, match="preference_loss"):
        LearnerConfig(preference_loss="hinge")
    with pytest.raises(ValueError, match="needs a reference"):
        Learner(Policy(TINY), None, LearnerConfig(algo="dpo"))


# ------------------------------------------------------------------- log-probs


def test_sequence_logp_matches_a_slow_loop_values_and_gradients():
    learner = make_learner(max_steps_per_forward=3)  # chunks cut across trajectories
    trajs = [episode(0), episode(2, search=1), episode(1), episode(0, search=1)]
    fast = learner.sequence_logp(trajs)  # (4,)
    assert fast.shape == (4,)
    fast.sum().backward()
    fast_grads = [None if p.grad is None else p.grad.clone() for p in learner.policy.trainable_parameters()]
    assert sum(g is not None for g in fast_grads) > 1
    learner.optimizer.zero_grad(set_to_none=True)
    slow = torch.stack([learner.policy.evaluate(t.states, t.candidates, t.chosen).logp.sum() for t in trajs])
    slow.sum().backward()
    torch.testing.assert_close(fast.detach(), slow.detach(), atol=1e-5, rtol=0)
    for fg, p in zip(fast_grads, learner.policy.trainable_parameters()):
        if fg is None:  # e.g. the value head: no path to the log-probs
            assert p.grad is None
        else:
            torch.testing.assert_close(fg, p.grad, atol=1e-5, rtol=1e-4)


def test_reference_logp_is_computed_once_per_trajectory():
    learner = make_learner()
    evaluated = []  # steps per reference evaluate call
    evaluate = learner.reference.evaluate
    learner.reference.evaluate = lambda s, c, a: evaluated.append(len(a)) or evaluate(s, c, a)
    shared = episode(1)
    preset = episode(2, ref_logp=[-0.5, -1.5])
    pairs = [(episode(0), shared), (episode(0, search=1), shared), (episode(0), preset)]
    first = learner.reference_logp([t for pair in pairs for t in pair])
    assert sum(evaluated) == 2 * 4  # 4 distinct trajectories without ref_logp, 2 steps each
    assert first[-1] == [-0.5, -1.5]
    for _ in range(3):
        learner.update_dpo(pairs)
    assert sum(evaluated) == 8  # updates reuse the cache
    with torch.no_grad():
        direct = learner.reference.evaluate(shared.states, shared.candidates, shared.chosen).logp.tolist()
    assert learner.reference_logp([shared]) == [pytest.approx(direct, abs=1e-6)]


# ------------------------------------------------------------------------- DPO


def test_dpo_updates_raise_the_chosen_minus_rejected_margin():
    learner = make_learner()
    pairs = [(episode(0), episode(1)), (episode(0), episode(2)), (episode(0, search=1), episode(1, search=1))]
    chosen, rejected = [c for c, _ in pairs], [r for _, r in pairs]

    def margin() -> float:
        with torch.no_grad():
            return (learner.sequence_logp(chosen) - learner.sequence_logp(rejected)).mean().item()

    margins, metrics = [margin()], []
    for _ in range(4):
        metrics.append(learner.update_dpo(pairs))
        margins.append(margin())
    assert all(b > a for a, b in zip(margins, margins[1:])), margins
    assert margins[-1] > margins[0] + 0.05
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference at first
    assert metrics[-1]["reward_margin"] > 0 and metrics[-1]["reward_accuracy"] == 1.0
    assert [m["version"] for m in metrics] == [1.0, 2.0, 3.0, 4.0] and learner.version == 4
    assert all(isinstance(v, float) for v in metrics[-1].values())


def test_divergence_step_is_the_first_different_action_from_the_same_state():
    assert divergence_step(episode(0), episode(1)) == 1  # same search, different click
    assert divergence_step(episode(0), episode(0, search=1)) == 0
    assert divergence_step(episode(0), episode(0)) is None  # never part
    other_start = episode(1)
    other_start.states = [RESULTS, RESULTS]
    assert divergence_step(episode(0), other_start) is None  # a state differs before any action does


def test_divergence_scope_compares_only_the_step_where_the_pair_parts():
    beta = 0.5
    learner = make_learner(dpo_scope="divergence", beta=beta)
    pair = (episode(0), episode(2, search=1))  # part at the search step; later steps differ too
    learner.update_dpo([pair])  # move the policy off the reference
    with torch.no_grad():
        now = learner.policy.evaluate([SEARCH, SEARCH], [SEARCH_ACTIONS, SEARCH_ACTIONS], [0, 1]).logp
        ref = learner.reference.evaluate([SEARCH, SEARCH], [SEARCH_ACTIONS, SEARCH_ACTIONS], [0, 1]).logp
    margin = (now[0] - ref[0]) - (now[1] - ref[1])
    expected = -torch.nn.functional.logsigmoid(beta * margin).item()  # the clicks play no part
    whole = make_learner(dpo_scope="trajectory", beta=beta)  # same weights, whole-trajectory sums
    whole.policy.model.load_state_dict(learner.policy.model.state_dict())
    metrics = learner.update_dpo([pair])
    assert metrics["preference_loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["divergent_pairs"] == 1.0
    assert whole.update_dpo([pair])["preference_loss"] != pytest.approx(expected, rel=1e-3)
    with pytest.raises(ValueError, match="dpo_scope"):
        LearnerConfig(dpo_scope="steps")


def test_step_scope_scores_both_actions_from_one_state_evaluation():
    beta = 0.5
    step = make_learner(dpo_scope="step", beta=beta, sft_coef=1.0)
    step.update_dpo([(episode(0), episode(1))])  # move the policy off the reference
    pair = (episode(0), episode(2))  # same search, then b01 (chosen) vs next > (rejected)
    with torch.no_grad():
        now = step.policy.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0]
        ref = step.reference.evaluate([RESULTS], [RESULT_ACTIONS], [0]).logp_all[0]
    margin = float((now[0] - ref[0]) - (now[2] - ref[2]))
    divergence = make_learner(dpo_scope="divergence", beta=beta)  # same weights, separate evaluations
    divergence.policy.model.load_state_dict(step.policy.model.state_dict())
    metrics = step.update_dpo([pair])
    assert metrics["preference_loss"] == pytest.approx(-math.log(1 / (1 + math.exp(-beta * margin))), rel=1e-5)
    assert metrics["preference_loss"] == pytest.approx(divergence.update_dpo([pair])["preference_loss"], rel=1e-5)
    assert metrics["sft_loss"] == pytest.approx(-float(now[0]), rel=1e-5)  # the chosen action at that state only
    assert metrics["steps"] == 1.0 and metrics["divergent_pairs"] == 1.0
    assert step._ref_cache[f"{pair[0].traj_id}>{pair[1].traj_id}"] == pytest.approx([float(ref[0]), float(ref[2])])


def test_step_scope_moves_the_decision_and_leaves_out_pairs_that_never_part():
    learner = make_learner(dpo_scope="step", beta=1.0)
    before = click_probs(learner.policy)
    for _ in range(20):
        metrics = learner.update_dpo([(episode(0), episode(1)), (episode(0), episode(0))])
    after = click_probs(learner.policy)
    assert after[0] > before[0] + 0.05 and after[1] < before[1]
    assert metrics["divergent_pairs"] == 0.5 and metrics["pairs"] == 1.0
    with pytest.raises(ValueError, match="none of the 1 pairs parts"):
        learner.update_dpo([(episode(0), episode(0))])


def test_step_scope_anchor_kl_holds_other_states_to_the_reference(tmp_path):
    learner = make_learner(dpo_scope="step", beta=1.0, kl_coef=2.0, anchor_states=2, pairs_per_update=1)
    buffer = ArrowBuffer(tmp_path)
    buffer.add_trajectories(trajectories_to_batch([episode(0)]))  # anchors: its 2 states
    buffer.add_pairs(pairs_to_batch([(episode(0), episode(1), "expert")]))
    first = learner.update(buffer)
    assert first["anchor_kl"] == 0.0  # the policy still equals the reference
    second = learner.update(buffer)
    assert second["anchor_kl"] > 0
    assert second["loss"] == pytest.approx(second["preference_loss"] + 2.0 * second["anchor_kl"], rel=1e-5)
    anchors = [(SEARCH, SEARCH_ACTIONS), (RESULTS, RESULT_ACTIONS)]
    with torch.no_grad():
        p = [learner.policy.evaluate([s], [c], [0]).logp_all[0].exp() for s, c in anchors]
        q = [learner.reference.evaluate([s], [c], [0]).logp_all[0].exp() for s, c in anchors]
    by_hand = sum(float((pi * (pi.log() - qi.log())).sum()) for pi, qi in zip(p, q)) / 2
    assert learner._anchor_kl(anchors).item() == pytest.approx(by_hand, rel=1e-3)  # probs vs log-probs: ~1e-4
    with pytest.raises(ValueError, match="anchor_states needs dpo_scope='step' and kl_coef > 0"):
        LearnerConfig(anchor_states=4, dpo_scope="trajectory", kl_coef=1.0)
    with pytest.raises(ValueError, match="anchors are used only"):
        make_learner().update_dpo([(episode(0), episode(1))], anchors)


def test_reference_shares_the_policy_encodings_of_frozen_parts_also_after_resume(tmp_path):
    learner = make_learner(FROZEN, dpo_scope="step", kl_coef=1.0, anchor_states=2, pairs_per_update=1)
    assert learner.shares_frozen_caches and make_learner().shares_frozen_caches is False
    assert learner.reference._state_cache is learner.policy._state_cache
    anchors = [(SEARCH, SEARCH_ACTIONS), (RESULTS, RESULT_ACTIONS)]
    learner.update_dpo([(episode(0), episode(1))], anchors)
    cache = learner.policy._state_cache
    assert cache.misses == 2 and cache.hits > 0  # two states, each through the lower layers once
    learner.save(tmp_path / "ckpt")
    resumed = make_learner(FROZEN, dpo_scope="step", kl_coef=1.0, anchor_states=2, pairs_per_update=1)
    resumed.load(tmp_path / "ckpt")  # set_weights gave the policy new caches; shared again
    assert resumed.shares_frozen_caches
    assert resumed.reference._state_cache is resumed.policy._state_cache
    assert resumed.reference._caches["fp32"] is resumed.policy._caches["fp32"]


def test_dpo_sft_term_adds_chosen_nll():
    learner = make_learner(sft_coef=0.5)
    metrics = learner.update_dpo([(episode(0), episode(1))])
    assert metrics["sft_loss"] > 0
    assert metrics["loss"] == pytest.approx(metrics["preference_loss"] + 0.5 * metrics["sft_loss"], rel=1e-6)


# ------------------------------------------------------------------------- PPO


def test_ppo_moves_probability_toward_the_advantaged_action():
    learner = make_learner(algo="ppo", kl_coef=0.0, ppo_epochs=2, minibatch_size=8, entropy_coef=0.0)
    trajs = with_behaviour(learner.policy, [episode(0) for _ in range(4)] + [episode(1) for _ in range(4)])
    before = click_probs(learner.policy)
    for _ in range(3):
        metrics = learner.update_ppo(trajs)
    after = click_probs(learner.policy)
    assert after[0] > before[0] + 0.02 and after[1] < before[1]
    assert metrics["optimizer_steps"] == 4.0 and learner.version == 3


def test_ppo_behaviour_weights_reach_the_loss():
    learner = make_learner(algo="ppo", is_clip=1.5, ppo_epochs=1)
    trajs = with_behaviour(learner.policy, [episode(0), episode(1)])
    for t in trajs:
        t.logp = [x - 5.0 for x in t.logp]  # behaviour far less likely than the current policy
    metrics = learner.update_ppo(trajs)
    assert metrics["is_clip_fraction"] == 1.0 and metrics["is_weight_mean"] == pytest.approx(1.5)


def test_ppo_minibatch_is_the_same_however_it_is_chunked():
    """Per-chunk backward weighted by the chunk's share equals one backward of the minibatch."""
    grads, metrics = [], []
    for chunk in (2, 64):
        learner = make_learner(algo="ppo", ppo_epochs=1, minibatch_size=6, max_steps_per_forward=chunk, kl_coef=0.1)
        step = learner._optimizer_step
        learner._optimizer_step = lambda: grads.append(
            [p.grad.clone() for p in learner.policy.trainable_parameters() if p.grad is not None]) or step()
        trajs = with_behaviour(learner.policy, [episode(0), episode(1), episode(2, search=1)])
        metrics.append(learner.update_ppo(trajs))
    assert len(grads) == 2 and len(grads[0]) == len(grads[1]) > 1
    for fine, whole in zip(*grads):
        torch.testing.assert_close(fine, whole, atol=1e-6, rtol=1e-4)
    for key in ("loss", "policy_loss", "value_loss", "entropy", "kl_ref"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-5, abs=1e-7), key


# ------------------------------------------------------------------ buffer / staleness


def test_dpo_update_ignores_pairs_older_than_the_staleness_window(tmp_path):
    buffer = ArrowBuffer(tmp_path)
    learner = make_learner(pairs_per_update=2, max_version_lag=1)
    learner.policy.version = 6  # learner at version 6, S = 1: pairs need version >= 5
    buffer.add_pairs(pairs_to_batch([(episode(0, version=0), episode(1, version=0), "expert")] * 3))
    buffer.add_pairs(pairs_to_batch([(episode(0, version=5), episode(1, version=4), "expert")]))  # one half stale
    assert learner.update(buffer) is None
    buffer.add_pairs(pairs_to_batch([(episode(0, version=5), episode(1, version=6), "self")] * 2))
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


# ------------------------------------------------------------------ publish / resume


def test_publish_sends_only_trainable_weights_when_layers_are_frozen():
    full = make_learner()
    version, weights = full.publish()
    assert version == 0 and set(weights) == set(full.policy.model.state_dict())  # frozen pooler included
    frozen = make_learner(FROZEN)
    frozen.update_dpo([(episode(0), episode(1))])
    version, weights = frozen.publish()
    trainable = {n for n, p in frozen.policy.model.named_parameters() if p.requires_grad}
    assert version == 1 and set(weights) == trainable
    assert len(weights) < len(frozen.policy.model.state_dict())


@pytest.mark.parametrize("policy_config", [TINY, FROZEN], ids=["full", "frozen"])
@pytest.mark.parametrize("algo", ["dpo", "ppo"])
def test_resume_from_disk_is_bit_identical(tmp_path, algo, policy_config):
    config = dict(algo=algo, ppo_epochs=2, minibatch_size=3, max_steps_per_forward=2, kl_coef=0.1,
                  warmup_updates=1, lr_decay="cosine", total_updates=10)
    first = [episode(0), episode(1), episode(2, search=1), episode(0, search=1)]
    second = [episode(1, search=1), first[0], first[1], episode(2)]  # overlaps: cached ref log-probs

    def run(learner: Learner, trajs: list[Trajectory]) -> dict[str, float]:
        if algo == "dpo":
            return learner.update_dpo(list(zip(trajs[::2], trajs[1::2])))
        return learner.update_ppo(with_behaviour(Policy(policy_config), trajs))

    continued = make_learner(policy_config, **config)
    run(continued, first)
    continued.save(tmp_path / "ckpt")
    expected = run(continued, second)
    expected_draws = (torch.rand(3), np.random.rand(3))

    resumed = make_learner(policy_config, **config)
    resumed.load(tmp_path / "ckpt")
    assert resumed.version == 1 and resumed.num_updates == 1
    got = run(resumed, second)
    draws = (torch.rand(3), np.random.rand(3))

    expected.pop("seconds"), got.pop("seconds")
    assert got == expected
    for name, value in continued.policy.get_weights().items():
        assert np.array_equal(value, resumed.policy.get_weights()[name]), name
    assert torch.equal(expected_draws[0], draws[0]) and np.array_equal(expected_draws[1], draws[1])
    assert continued.lr == resumed.lr
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["learner.json", "learner.safetensors"]
    for path in (tmp_path / "ckpt").iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"
