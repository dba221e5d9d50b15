"""Encoder families beyond BERT: tiny random RoBERTa, ELECTRA, DeBERTa and DeBERTa-v2/v3
models built from configs, saved with a tokenizer built offline, loaded by path. The
layer-by-layer forward equals the model's own; a policy with frozen lower layers trains;
an unsupported architecture (GPT-2) is refused by name when it loads."""

from __future__ import annotations

import random

import pytest
import torch

from policies import encoder as enc
from policies.architectures import UnsupportedEncoderError, lower_modules
from policies.il import ILStep, ILTrainer
from policies.model import ActionScorer
from policies.policy import Policy, PolicyConfig

SPECIALS_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
         "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
DEBERTA_V3 = {"relative_attention": True, "position_buckets": 16, "max_relative_positions": -1,
              "norm_rel_ebd": "layer_norm", "share_att_key": True, "pos_att_type": ["p2c", "c2p"],
              "position_biased_input": False, "type_vocab_size": 0}
CONFIGS = {  # name -> (model_type, config fields beyond SMALL)
    "bert": ("bert", {}),
    "roberta": ("roberta", {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
                            "max_position_embeddings": 514, "type_vocab_size": 1}),
    "electra": ("electra", {"embedding_size": 16}),  # projected up to the hidden size
    "deberta": ("deberta", {"relative_attention": True, "pos_att_type": ["c2p", "p2c"],
                            "max_relative_positions": -1, "type_vocab_size": 0}),
    "deberta-v3": ("deberta-v2", DEBERTA_V3),
    "deberta-v2-conv": ("deberta-v2", {**DEBERTA_V3, "conv_kernel_size": 3, "conv_act": "gelu"}),
}


def words() -> list[str]:
    return list(dict.fromkeys(w for w in enc.tiny_vocab() if w.isalpha() and len(w) > 1 and "#" not in w))


def roberta_tokenizer():
    """A byte-level BPE tokenizer: RoBERTa's specials, the byte alphabet, merges that
    spell each shop word (with its leading-space marker) left to right."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(ch, len(vocab))
    merges = []
    for w in words():
        piece = "Ġ" + w
        for i in range(2, len(piece) + 1):
            if piece[:i] not in vocab:
                merges.append((piece[:i - 1], piece[i - 1]))
                vocab[piece[:i]] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=True)


def deberta_tokenizer():
    """A Unigram (SentencePiece-style) tokenizer: specials, characters, whole words."""
    from transformers import DebertaV2Tokenizer

    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,:;!?()[]<>$&'-/"))
    vocab = [(t, 0.0) for t in SPECIALS_BERT] + [("▁", -3.0)]
    vocab += [(c, -8.0) for c in chars] + [("▁" + w, -2.0) for w in words()]
    return DebertaV2Tokenizer(vocab=vocab, do_lower_case=True)


def tokenizer_for(model_type: str):
    if model_type in ("roberta",):
        return roberta_tokenizer()
    if model_type.startswith("deberta"):
        return deberta_tokenizer()
    return enc.tiny_tokenizer()


def build(name: str, seed: int = 0):
    """(model, tokenizer) of a tiny random model of family `name`."""
    model_type, extra = CONFIGS[name]
    tokenizer = tokenizer_for(model_type)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = enc.model_from_config({"model_type": model_type, "vocab_size": len(tokenizer), **SMALL, **extra})
        with torch.no_grad():  # LayerNorm biases and the padding embedding start at 0: not in a trained model
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model.eval(), tokenizer


def save(name: str, directory) -> str:
    model, tokenizer = build(name)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return str(directory)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_layer_by_layer_equals_the_models_own_forward(name):
    model, tokenizer = build(name, seed=1)
    texts = ["click[buy now]", "i need a red shirt, size large, price lower than 30.00 dollars",
             "search[blue bag]"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any()  # padded rows: the masks must be honoured
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (N, T, D)
        whole = enc.run_layers(model, ids, mask, 0, 2)
        split = enc.run_layers(model, enc.run_layers(model, ids, mask.bool(), 0, 1), mask.bool(), 1, 2)
    real = mask.bool()
    assert reference.abs().max() > 0.1
    torch.testing.assert_close(whole[real], reference[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(split[real], reference[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["roberta", "deberta-v3", "deberta-v2-conv", "electra"])
def test_a_policy_loaded_by_path_trains_its_top_layer(name, tmp_path):
    path = save(name, tmp_path / name)
    policy = Policy(PolicyConfig(model=path, max_state_tokens=64, trainable_top_layers=1, freeze_action_side=True))
    model = policy.model
    assert type(model.encoder).__name__ == type(build(name)[0]).__name__
    rng = random.Random(0)
    colors = ["red", "blue", "green", "black", "white", "pink"]
    steps = []
    for _ in range(8):
        pick = rng.sample(colors, 3)
        steps.append(ILStep(f"instruction: [SEP] i need a {pick[0]} shirt [SEP] search",
                            tuple(f"click[{c}]" for c in pick), 0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = ILTrainer(policy).train_batch(steps)
    assert torch.isfinite(torch.tensor(metrics["loss"])) and metrics["grad_norm"] > 0
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    lower = model.lower_prefixes()
    assert "encoder.embeddings." in lower and "encoder.encoder.layer.0." in lower
    if name.startswith("deberta"):  # every layer reads them: frozen with the lower layers
        assert "encoder.encoder.rel_embeddings." in lower and "encoder.encoder.LayerNorm." in lower
    if name == "deberta-v2-conv":
        assert "encoder.encoder.conv." in lower
    if name == "electra":
        assert "encoder.embeddings_project." in lower
    assert not [k for k in changed if k.startswith(lower + ("action_encoder.",))]
    assert any(k.startswith("encoder.encoder.layer.1.") for k in changed)
    assert any(k.startswith("head.") for k in changed)
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    unused = ("action_encoder.", "encoder.pooler.")  # the frozen action side; RoBERTa's pooler is unused
    assert frozen == {k for k, _ in model.named_parameters() if k.startswith(lower + unused)}


def test_a_deberta_checkpoint_round_trip_scores_the_same(tmp_path):
    from policies.checkpoint import load_checkpoint, save_checkpoint

    policy = Policy(PolicyConfig(model=save("deberta-v3", tmp_path / "hf"), max_state_tokens=64))
    save_checkpoint(policy, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert type(loaded.model.encoder).__name__ == "DebertaV2Model"
    states, cands = ["i need a red shirt [SEP] search"], [["click[red]", "click[blue]", "click[buy now]"]]
    a = policy.evaluate(states, cands, [0]).logp_all
    b = loaded.evaluate(states, cands, [0]).logp_all
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def gpt2_dir(tmp_path) -> str:
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64)).save_pretrained(
        str(tmp_path / "gpt2"))
    return str(tmp_path / "gpt2")


def test_a_decoder_is_refused_by_name_when_it_loads(tmp_path, monkeypatch):
    path = gpt2_dir(tmp_path)
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were loaded before the architecture was checked")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
    for load in (lambda: enc.load_pretrained(path), lambda: enc.check_encoder(path),
                 lambda: Policy(PolicyConfig(model=path))):
        with pytest.raises(UnsupportedEncoderError) as err:
            load()
        message = str(err.value)
        assert "\n" not in message
        assert f"encoder {path!r}: GPT2Model (model_type 'gpt2') is not supported" in message
        for family in ("BERT (bert)", "RoBERTa (roberta, xlm-roberta)", "ELECTRA (electra)",
                       "DeBERTa (deberta, deberta-v2)"):
            assert family in message


def test_built_models_and_configs_are_checked_too():
    from transformers import GPT2Config, GPT2Model

    with pytest.raises(UnsupportedEncoderError, match=r"^encoder: GPT2Model \(model_type 'gpt2'\) is not"):
        ActionScorer(GPT2Model(GPT2Config(n_embd=32, n_layer=1, n_head=2)), None, False)
    with pytest.raises(UnsupportedEncoderError, match=r"LlamaModel \(model_type 'llama'\)"):
        enc.model_from_config({"model_type": "llama", "hidden_size": 32})
    with pytest.raises(UnsupportedEncoderError, match=r"BertModel \(model_type 'bert'\) is configured as a decoder"):
        enc.model_from_config({**enc.tiny_config(50), "is_decoder": True})


def test_nothing_is_frozen_when_every_layer_trains():
    model, _ = build("deberta-v3")
    assert lower_modules(model, 0) == {}
    scorer = ActionScorer(model, None, False)
    assert scorer.lower_prefixes() == () and all(p.requires_grad for p in scorer.encoder.parameters())


def test_the_train_command_refuses_an_unsupported_encoder_in_one_line(tmp_path, capsys):
    from cluster.cli import main as cli

    path = gpt2_dir(tmp_path)
    capsys.readouterr()  # the save's progress bar
    assert cli(["train", "--set", f"policy.model={path}", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("webshop-rl train: error: ") and "GPT2Model (model_type 'gpt2')" in err
    assert not (tmp_path / "run").exists()


def test_on_a_gpu_the_encoders_attend_without_cudnn_and_the_flags_come_back():
    """cuDNN's attention builds a graph for every new shape (policies.architectures.GPU_ATTENTION);
    the choice holds only while an encoder runs, and a CPU run changes nothing."""
    from torch.backends import cuda as flags

    from policies.architectures import attention_kernels

    before = (flags.cudnn_sdp_enabled(), flags.flash_sdp_enabled(), flags.mem_efficient_sdp_enabled(),
              flags.math_sdp_enabled())
    assert before == (True, True, True, True)  # torch's defaults: every kernel allowed
    with attention_kernels("cpu"):
        assert (flags.cudnn_sdp_enabled(), flags.flash_sdp_enabled()) == (True, True)
    with attention_kernels(torch.device("cuda", 0)):
        assert not flags.cudnn_sdp_enabled()
        assert flags.flash_sdp_enabled() and flags.mem_efficient_sdp_enabled() and flags.math_sdp_enabled()
    assert (flags.cudnn_sdp_enabled(), flags.flash_sdp_enabled(), flags.mem_efficient_sdp_enabled(),
            flags.math_sdp_enabled()) == before
