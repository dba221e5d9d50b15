"""Checkpoints: bit-exact round trips; pickle files refused; one generation per save,
torn or mixed parts refused naming the file; a save killed anywhere leaves a whole one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from policies.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    UnsafeCheckpointError,
    check_generation,
    is_committed,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from policies.policy import Policy, PolicyConfig
from tests.kill_points import kill_points, kill_save_at


def _perturb(policy: Policy) -> None:
    """Make the weights differ from any fresh init, as after training."""
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    policy.mark_updated()


@pytest.fixture
def short_policy() -> Policy:
    """The tiny encoder cut to its first layer (`encoder_layers`), which trains."""
    return Policy(PolicyConfig(model="tiny", encoder_layers=1, trainable_top_layers=1, freeze_action_side=True))


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy", "short_policy"])
def test_round_trip_is_bit_exact(name, request, tmp_path, batch):
    policy = request.getfixturevalue(name)
    _perturb(policy)
    meta = CheckpointMetadata(version=7, steps=120, metrics={"success": 0.25}, train_config={"algo": "il"})
    save_checkpoint(policy, tmp_path / "ckpt", meta)
    assert {"model.safetensors", "config.json", "metadata.json"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == policy.config and loaded.version == 7
    assert loaded.model.num_layers == policy.model.num_layers == (1 if name == "short_policy" else 2)
    before, after = policy.model.state_dict(), loaded.model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    states, candidates = batch
    a = policy.act(states, candidates, greedy=True)
    b = loaded.act(states, candidates, greedy=True)
    assert [o.probs for o in a] == [o.probs for o in b] and [o.value for o in a] == [o.value for o in b]
    assert read_metadata(tmp_path / "ckpt") == meta


def test_config_json_holds_policy_and_encoder_configs(full_policy, tmp_path):
    save_checkpoint(full_policy, tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["policy"]["model"] == "tiny" and raw["encoder"]["hidden_size"] == 32


@pytest.mark.parametrize("filename", ["pytorch_model.bin", "weights.pt", "state.pkl"])
def test_pickle_file_in_directory_is_refused(full_policy, tmp_path, filename):
    save_checkpoint(full_policy, tmp_path)
    torch.save({"x": torch.zeros(1)}, tmp_path / filename)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(tmp_path)
    assert filename in str(err.value) and "pickle" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_pickle_file_path_is_refused(tmp_path):
    path = tmp_path / "policy.pt"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(UnsafeCheckpointError, match="policy.pt"):
        load_checkpoint(path)


def test_a_directory_that_is_no_checkpoint_is_named_without_walking_its_tree(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    torch.save({"x": torch.zeros(1)}, tmp_path / "deep" / "er" / "other.pt")  # never read by a load
    with pytest.raises(CheckpointError, match=r"config\.json: missing \(not a policy checkpoint directory\?\)"):
        load_checkpoint(tmp_path)


def test_missing_files_are_named(full_policy, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")
    save_checkpoint(full_policy, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_shared_checkpoint_loads_into_frozen_action_side(full_policy, tmp_path, batch):
    """An IL checkpoint (shared encoder) becomes the CPU preset's start: the frozen
    action side is a copy of the trained encoder, so scores are unchanged."""
    _perturb(full_policy)
    save_checkpoint(full_policy, tmp_path)
    cpu = load_checkpoint(tmp_path, trainable_top_layers=1, freeze_action_side=True)
    states, candidates = batch
    a = full_policy.act(states, candidates, greedy=True)
    b = cpu.act(states, candidates, greedy=True)
    np.testing.assert_allclose([o.probs for o in a][1], [o.probs for o in b][1], atol=1e-6)


def _same_weights(a: Policy, b: Policy) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_is_one_generation_and_tokenizer_precedes_metadata(full_policy, tmp_path, monkeypatch):
    written = []
    real = type(tmp_path).write_text
    monkeypatch.setattr(type(tmp_path), "write_text", lambda p, *a, **k: (written.append(p.name), real(p, *a, **k))[1])
    save_checkpoint(full_policy, tmp_path / "ckpt")
    assert written[-1] == "metadata.json"
    assert check_generation(tmp_path / "ckpt") == json.loads((tmp_path / "ckpt" / "metadata.json").read_text())["generation"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no staging or parked directory left


def test_parts_of_different_generations_are_refused_naming_the_file(full_policy, tmp_path):
    save_checkpoint(full_policy, tmp_path / "a")
    save_checkpoint(full_policy, tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"a/model.safetensors: generation '[0-9a-f]{32}', but .*metadata.json"):
        load_checkpoint(tmp_path / "a")
    assert not is_committed(tmp_path / "a") and not is_committed(tmp_path / "b")  # b lost its weights


def test_truncated_weights_raise_naming_the_file(full_policy, tmp_path):
    save_checkpoint(full_policy, tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
        load_checkpoint(tmp_path)


def test_directory_with_foreign_files_is_not_replaced(full_policy, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="notes.txt"):
        save_checkpoint(full_policy, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_kill_at_any_point_leaves_the_old_or_the_new_generation(full_policy, tmp_path):
    """SIGKILL a save of version 2 over version 1 at each of its file-system calls: the
    next load gets version 1 or 2, whole (weights of that version), and the next save
    repairs what the kill left."""
    old = full_policy
    save_checkpoint(old, tmp_path / "template", CheckpointMetadata(version=1))
    new = Policy(old.config)
    _perturb(new)
    target, outcomes = tmp_path / "run" / "ckpt", set()

    def save_new():
        save_checkpoint(new, target, CheckpointMetadata(version=2))

    def fresh():
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        shutil.copytree(tmp_path / "template", target)

    fresh()
    points = kill_points(save_new, tmp_path)
    assert len(points) >= 20
    for k in points:
        fresh()
        kill_save_at(save_new, k, tmp_path)
        loaded = load_checkpoint(target)
        assert loaded.version in (1, 2), k
        assert _same_weights(loaded, old if loaded.version == 1 else new), k
        outcomes.add(loaded.version)
        save_checkpoint(old, target, CheckpointMetadata(version=3))  # the next writer repairs
        assert load_checkpoint(target).version == 3 and sorted(p.name for p in target.parent.iterdir()) == ["ckpt"]
    assert outcomes == {1, 2}
