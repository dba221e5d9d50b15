"""Encoders: the shipped MiniLM path, offline loading, the layer-split forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from policies import encoder as enc


def test_default_model_path_has_model_files():
    path = Path(enc.default_model_path())
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        assert (path / name).is_file(), name


def test_missing_path_gives_a_clear_error(tmp_path):
    with pytest.raises(enc.EncoderNotFoundError, match="does not exist"):
        enc.load_pretrained(str(tmp_path / "no_such_model"))
    with pytest.raises(enc.EncoderNotFoundError, match="not available offline"):
        enc.load_pretrained("some-org/model-that-is-not-cached")


def test_split_forward_matches_the_hf_forward():
    model, tokenizer = enc.tiny_encoder(seed=3, num_layers=3)
    model.eval()
    batch = tokenizer(["click[buy now]", "i need a red shirt, size large"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state
        low = enc.run_layers(model, ids, mask, 0, 1)
        split = enc.run_layers(model, low, mask, 1, 3)
    real = mask.bool()
    torch.testing.assert_close(split[real], reference[real], atol=1e-5, rtol=1e-5)


def test_keeping_lower_layers_gives_those_layers_outputs_bit_for_bit():
    full, tokenizer = enc.tiny_encoder(seed=3, num_layers=3)
    short, _ = enc.tiny_encoder(seed=3, num_layers=3)
    enc.keep_lower_layers(short, 2)
    assert enc.num_layers(short) == 2 and short.config.num_hidden_layers == 2
    batch = tokenizer(["click[buy now]", "i need a red shirt, size large"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        assert torch.equal(enc.run_layers(short, ids, mask, 0, 2), enc.run_layers(full, ids, mask, 0, 2))
    for keep in (0, 3):
        with pytest.raises(enc.EncoderLayersError, match=rf"from 1 to 2 \(the encoder's layer count\), got {keep}"):
            enc.keep_lower_layers(short, keep)


def test_the_cpu_preset_runs_minilms_own_first_two_layers():
    from policies.policy import Policy, preset_config

    policy = Policy(preset_config("cpu"))
    assert policy.model.num_layers == 2 and policy.model.num_frozen_layers == 1
    full, _ = enc.load_pretrained("default")
    kept, every = policy.model.encoder.state_dict(), full.state_dict()
    dropped = {k for k in every if k.startswith(tuple(f"encoder.layer.{i}." for i in range(2, 6)))}
    assert len(dropped) == 4 * 16 and kept.keys() == every.keys() - dropped
    for name, value in kept.items():
        assert torch.equal(value, every[name]), name


def test_check_encoder_names_more_layers_than_the_encoder_has():
    enc.check_encoder("default", 6)
    enc.check_encoder("tiny", 2)
    with pytest.raises(enc.EncoderLayersError, match=r"from 1 to 6 \(the encoder's layer count\), got 7"):
        enc.check_encoder("default", 7)


def test_tiny_tokenizer_knows_shop_words():
    tokenizer = enc.tiny_tokenizer()
    tokens = tokenizer.tokenize("click[buy now] red shirt")
    assert "[UNK]" not in tokens and "click" in tokens and "shirt" in tokens


def test_tiny_tokenizer_leaves_no_temp_folder_and_still_saves(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(enc.tempfile, "tempdir", str(scratch))
    tokenizer = enc.tiny_tokenizer()
    assert list(scratch.iterdir()) == []
    tokenizer.save_pretrained(str(tmp_path / "saved"))
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(tmp_path / "saved"), local_files_only=True)
    text = "click[buy now] red shirt, size 7"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"] and len(loaded) == len(enc.tiny_vocab())


def test_default_minilm_loads_offline():
    model, tokenizer = enc.load_pretrained("default")
    assert enc.num_layers(model) == 6 and model.config.hidden_size == 384
    assert model.config.hidden_dropout_prob == 0.0
    assert tokenizer("click[buy now]")["input_ids"][0] == tokenizer.cls_token_id
