"""learner.state on disk: the tensors file and learner.json are one generation; a
mismatch or a damaged file is refused naming the file; a save killed anywhere leaves
the old state or the new one, whole."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from learner.state import JSON_FILE, load_state, save_state
from tests.kill_points import kill_points, kill_save_at


def _state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"num_updates": seed, "weights": {"w": torch.randn(4, 3, generator=g)},
            "opt": [{"exp_avg": torch.randn(3, generator=g), "step": 1.5 * seed}]}


def _equal(a: dict, b: dict) -> bool:
    return (a["num_updates"] == b["num_updates"] and torch.equal(a["weights"]["w"], b["weights"]["w"])
            and torch.equal(a["opt"][0]["exp_avg"], b["opt"][0]["exp_avg"]) and a["opt"][0]["step"] == b["opt"][0]["step"])


def test_round_trip_and_one_tensors_file(tmp_path):
    save_state(_state(1), tmp_path)
    save_state(_state(2), tmp_path)
    assert _equal(load_state(tmp_path), _state(2))
    generation = json.loads((tmp_path / JSON_FILE).read_text())["generation"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"learner-{generation}.safetensors", JSON_FILE]


def test_generation_mismatch_is_refused_naming_the_file(tmp_path):
    save_state(_state(1), tmp_path / "a")
    save_state(_state(2), tmp_path / "b")
    meta_a = json.loads((tmp_path / "a" / JSON_FILE).read_text())
    tensors_b = next((tmp_path / "b").glob("*.safetensors"))
    shutil.copy(tensors_b, tmp_path / "a" / meta_a["tensors"])
    with pytest.raises(ValueError, match=rf"{meta_a['tensors']}: generation '[0-9a-f]{{32}}', but learner.json"):
        load_state(tmp_path / "a")


def test_damaged_or_missing_tensors_are_named(tmp_path):
    save_state(_state(1), tmp_path)
    tensors = next(tmp_path.glob("*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"{tensors.name}: not a readable safetensors file"):
        load_state(tmp_path)
    tensors.unlink()
    with pytest.raises(FileNotFoundError, match=f"{tensors.name}: missing"):
        load_state(tmp_path)


def test_kill_at_any_point_leaves_the_old_or_the_new_state(tmp_path):
    target, outcomes = tmp_path / "run" / "learner", set()

    def fresh():
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        save_state(_state(1), target)

    fresh()
    points = kill_points(lambda: save_state(_state(2), target), tmp_path, at_least=8)
    for k in points:
        fresh()
        kill_save_at(lambda: save_state(_state(2), target), k, tmp_path)
        loaded = load_state(target)
        assert _equal(loaded, _state(loaded["num_updates"])) and loaded["num_updates"] in (1, 2), k
        outcomes.add(loaded["num_updates"])
        save_state(_state(3), target)  # the next save removes what the kill left
        assert len(list(target.glob("*.safetensors"))) == 1 and _equal(load_state(target), _state(3))
    assert outcomes == {1, 2}
