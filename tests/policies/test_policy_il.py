"""Imitation learning on a toy problem; WebShop's human IL file format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from policies.il import (
    ILConfig,
    ILFormatError,
    ILStep,
    choice_accuracy,
    read_webshop_il,
    read_webshop_search_demos,
    reduce_candidates,
    train_il,
)
from policies.policy import Policy, PolicyConfig

FIXTURE = Path(__file__).parent / "fixtures" / "il_trajs_finalized_images.jsonl"
COLORS = ["red", "blue", "green", "black", "white", "pink", "gray", "yellow", "purple", "orange", "brown"]
NOUNS = ["shirt", "shoes", "bag", "hat", "dress", "pants", "jacket", "lamp", "table", "chair"]


def toy_steps(n: int, seed: int) -> list[ILStep]:
    """Choose the candidate whose color the instruction names, among 4 colors."""
    rng = random.Random(seed)
    steps = []
    for _ in range(n):
        colors = rng.sample(COLORS, 4)
        target = rng.randrange(4)
        state = f"instruction: [SEP] i need a {colors[target]} {rng.choice(NOUNS)} [SEP] size large"
        steps.append(ILStep(state, tuple(f"click[{c}]" for c in colors), target))
    return steps


def test_il_learns_a_toy_problem():
    policy = Policy(PolicyConfig(model="tiny", seed=0))
    train, held_out = toy_steps(256, seed=0), toy_steps(64, seed=1)
    assert choice_accuracy(policy, held_out) < 0.5
    history = train_il(policy, train, ILConfig(num_epochs=4, batch_size=16, lr=3e-3), eval_steps=held_out)
    assert [m.epoch for m in history] == [0, 1, 2, 3]
    assert history[-1].loss < history[0].loss
    assert history[-1].eval_accuracy >= 0.9, history
    assert policy.version == 4 * 16  # one version per optimizer step


def test_reader_on_the_fixture():
    steps = list(read_webshop_il(FIXTURE))
    assert len(steps) == 4 + 3  # search steps (index -1) skipped
    first = steps[0]
    assert first.candidates[first.chosen] == "click[item - acme long sleeve cotton shirt for men]"
    assert first.state.startswith("Amazon Shopping Game\nInstruction:")
    assert [s.candidates[s.chosen] for s in steps[1:4]] == ["click[navy blue]", "click[large]", "click[buy now]"]
    demos = list(read_webshop_search_demos(FIXTURE))
    assert [d.query for d in demos] == ["long sleeve cotton shirt navy blue", "gluten free green tea"]


def test_reduce_candidates_keeps_the_choice():
    step = ILStep("s", tuple(f"click[{i}]" for i in range(30)), 25)
    small = reduce_candidates(step, 12, random.Random(0))
    assert len(small.candidates) == 12 and small.candidates[small.chosen] == "click[25]"
    assert small.candidates[:6] == step.candidates[:6]
    assert all(len(s.candidates) <= 8 for s in read_webshop_il(FIXTURE, max_candidates=8))


def _write_with_bad_second_line(tmp_path: Path, mutate) -> Path:
    lines = FIXTURE.read_text().splitlines()
    record = json.loads(lines[1])
    mutate(record)
    path = tmp_path / "bad.jsonl"
    path.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r["action_idxs"].__setitem__(2, 9), "action_idxs[2]"),
        (lambda r: r["action_idxs"].__setitem__(1, "1"), "action_idxs[1]"),
        (lambda r: r.pop("available_actions"), "available_actions"),
        (lambda r: r["states"].pop(), "available_actions"),
        (lambda r: r["available_actions"].__setitem__(1, "click[x]"), "available_actions[1]"),
    ],
)
def test_bad_record_names_file_line_and_field(tmp_path, mutate, field):
    path = _write_with_bad_second_line(tmp_path, mutate)
    with pytest.raises(ILFormatError) as err:
        list(read_webshop_il(path))
    assert (err.value.line, err.value.field_name) == (2, field)
    assert str(path) in str(err.value) and "line 2" in str(err.value) and f"'{field}'" in str(err.value)


def test_invalid_json_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(FIXTURE.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(ILFormatError, match="line 2: field '<json>'"):
        list(read_webshop_il(path))
