"""Shared pieces of the learner tests: a tiny random BERT policy, two-step episodes
(search, then click a result) and a `Learner` built from keyword changes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from learner.config import DPOConfig, LearnerConfig, OptimConfig, PPOConfig
from learner.learner import Learner
from policies.policy import Policy, PolicyConfig
from rollout_workers.schema import Trajectory

SEARCH = "WebShop [SEP] Instruction: [SEP] i need a red shirt, price lower than 30.00 dollars [SEP] Search"
RESULTS = "Instruction: [SEP] i need a red shirt [SEP] Back to Search [SEP] B01 red shirt [SEP] B02 blue bag"
SEARCH_ACTIONS = ["search[red shirt]", "search[blue bag]"]
RESULT_ACTIONS = ["click[b01]", "click[b02]", "click[next >]"]
TINY = PolicyConfig(model="tiny")
FROZEN = PolicyConfig(model="tiny", trainable_top_layers=1, freeze_action_side=True)
WHOLE_TRAJECTORY_DPO = dict(scope="trajectory", sft_coef=0.0, beta=0.1, anchor_states=0, kl_coef=0.0,
                            pairs_per_update=4, max_version_lag=4)
"""The tests' DPO unless a test says otherwise: the seed's whole-trajectory DPO, no
NLL term, no anchor (the shipped defaults are tested through the presets)."""


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


def make_learner(policy_config: PolicyConfig = TINY, algo: str = "dpo", **changes) -> Learner:
    """A learner with lr 1e-3; each keyword goes to the config section that has the field."""
    algo_cls = DPOConfig if algo == "dpo" else PPOConfig
    base = {"lr": 1e-3, **(WHOLE_TRAJECTORY_DPO if algo == "dpo" else {})}
    sections = {"algorithm": (algo_cls, {}), "optim": (OptimConfig, {}), "config": (LearnerConfig, {})}
    for key, value in {**base, **changes}.items():
        owners = [kw for cls, kw in sections.values() if key in {f.name for f in dataclasses.fields(cls)}]
        assert len(owners) == 1, f"no single config section has {key!r}"
        owners[0][key] = value
    built = {name: cls(**kw) for name, (cls, kw) in sections.items()}
    return Learner(Policy(policy_config), Policy(policy_config), **built)


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
