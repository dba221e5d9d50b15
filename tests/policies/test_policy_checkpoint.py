"""Checkpoints: bit-exact round trips; pickle files refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policies.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    UnsafeCheckpointError,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from policies.policy import Policy


def _perturb(policy: Policy) -> None:
    """Make the weights differ from any fresh init, as after training."""
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    policy.mark_updated()


@pytest.mark.parametrize("name", ["full_policy", "cpu_policy"])
def test_round_trip_is_bit_exact(name, request, tmp_path, batch):
    policy = request.getfixturevalue(name)
    _perturb(policy)
    meta = CheckpointMetadata(version=7, steps=120, metrics={"success": 0.25}, train_config={"algo": "il"})
    save_checkpoint(policy, tmp_path / "ckpt", meta)
    assert {"model.safetensors", "config.json", "metadata.json"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == policy.config and loaded.version == 7
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
