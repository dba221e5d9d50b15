"""Shared fixtures of the policy tests: tiny random-BERT policies (fast on a CPU)."""

from __future__ import annotations

import pytest
import torch

from policies.policy import Policy, PolicyConfig

STATES = [
    "WebShop [SEP] Instruction: [SEP] i need a red shirt, and price lower than 30.00 dollars [SEP] Search",
    "Instruction: [SEP] blue bag [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next >",
    "Instruction: [SEP] green tea pack of 6 [SEP] Back to Search [SEP] < Prev [SEP] Buy Now",
]
CANDIDATES = [
    ["search[red shirt]", "search[i need a red shirt]"],
    ["click[back to search]", "click[next >]", "click[b0abc]", "click[b0def]", "click[buy now]"],
    ["click[back to search]", "click[< prev]", "click[buy now]"],
]


@pytest.fixture
def batch() -> tuple[list[str], list[list[str]]]:
    """Three envs' states and candidate lists (2, 5 and 3 candidates)."""
    return list(STATES), [list(c) for c in CANDIDATES]


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny models: threading costs more than it gives


@pytest.fixture
def full_policy() -> Policy:
    """Every layer trains; actions use the shared encoder."""
    return Policy(PolicyConfig(model="tiny"))


@pytest.fixture
def cpu_policy() -> Policy:
    """The CPU preset's design on the tiny model: top layer trains, action side frozen."""
    return Policy(PolicyConfig(model="tiny", max_state_tokens=128, trainable_top_layers=1, freeze_action_side=True))
